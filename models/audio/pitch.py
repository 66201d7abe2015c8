"""Pitch: YIN (de Cheveigné and Kawahara 2002) over frames of 16 kHz audio, for the corpus's head
motion (its beats follow pitch) and the motion model's voice normalisation alike."""

from __future__ import annotations

import numpy as np
from posetalk.models.rates import SAMPLE_RATE

F0_MIN, F0_MAX = 70.0, 400.0  # Hz: the voices looked for


def yin(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz) and the cumulative-mean-normalised difference at it, per frame (YIN, steps 1-5)."""
    t, n = frames.shape
    lag_min, lag_max = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN) + 1
    lags = np.arange(lag_max + 2)
    spec = np.fft.rfft(frames, 2 * n)
    acf = np.fft.irfft(np.abs(spec) ** 2, 2 * n)[:, : lag_max + 2]
    cs = np.concatenate([np.zeros((t, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    diff = np.maximum(cs[:, n - lags] + cs[:, n : n + 1] - cs[:, lags] - 2 * acf, 0)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)
    seg = cmnd[:, lag_min - 1 : lag_max + 2]  # one lag of margin each side for the interpolation
    mid = seg[:, 1:-1]
    dips = (mid < 0.15) & (mid <= seg[:, :-2]) & (mid <= seg[:, 2:])
    first = np.where(dips.any(1), dips.argmax(1), mid.argmin(1)) + 1
    rows = np.arange(t)
    a, b, c = seg[rows, first - 1], seg[rows, first], seg[rows, first + 1]
    curv = a - 2 * b + c
    shift = np.clip(np.where(np.abs(curv) > 1e-12, 0.5 * (a - c) / np.where(curv == 0, 1, curv), 0), -1, 1)
    return SAMPLE_RATE / (lag_min - 1 + first + shift), b
