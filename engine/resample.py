"""Streaming sample-rate conversion: chunks in at one rate, chunks out at another, with the same
numbers as converting the whole signal at once.

models.audio.io converts whole files with scipy's ``resample_poly``; pushing 20 ms chunks through
that one by one would put an edge (a click) at every chunk boundary, because each call assumes
silence before and after its chunk. ``StreamingResampler`` runs the same filter (a Kaiser-windowed
FIR with beta 5, 10 zero crossings per side of the lower rate, linear phase with its delay
compensated) over a kept history, so output sample k is

    y[k] = sum_i x[i] * h[k * down + half - i * up]

exactly as ``resample_poly(x, up, down)`` gives it, chunked or not. An output sample is emitted
as soon as every input sample its filter reaches has arrived (half / up input samples of
lookahead: 0.6 ms at 48 kHz), and ``flush`` ends the stream with silence after it."""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import firwin

MIN_RATE, MAX_RATE = 8000, 192000  # Hz accepted on the way in (telephony to studio rates)


class StreamingResampler:
    """``push(x)`` -> the output samples completed so far; ``flush()`` -> the rest (the stream
    then starts afresh). Mono float32 in and out."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        g = gcd(rate_in, rate_out)
        self.rate_in, self.rate_out = rate_in, rate_out
        self.up, self.down = rate_out // g, rate_in // g
        self.half = 10 * max(self.up, self.down)
        if self.up == self.down:  # the same rate: samples pass through untouched
            h = np.ones(1)
        else:
            h = firwin(2 * self.half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        self.taps = -(-len(h) // self.up)  # input samples one output sample reaches, at most
        padded = np.zeros(self.taps * self.up + self.up)
        padded[: len(h)] = h
        # phases[p, m] = h[p + m * up]: the taps that meet input sample i_max - m for phase p.
        self.phases = padded[np.arange(self.up)[:, None] + self.up * np.arange(self.taps)[None, :]]
        self.reset()

    @property
    def passthrough(self) -> bool:
        return self.up == self.down

    def reset(self) -> None:
        """Forget the stream: the next push starts a new one (silence before it)."""
        self.buf = np.zeros(self.taps, np.float64)  # input samples from index `base` on
        self.base = -self.taps  # zeros stand in for the samples before the stream
        self.received = 0  # input samples pushed
        self.emitted = 0  # output samples returned

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape(-1)
        if self.passthrough:
            return x.copy()
        self.buf = np.concatenate([self.buf, x.astype(np.float64)])
        self.received += len(x)
        # Output k is ready once input (k * down + half) // up has arrived.
        ready = (self.received * self.up - 1 - self.half) // self.down + 1
        return self._emit(max(ready, self.emitted))

    def flush(self) -> np.ndarray:
        """The output samples still owed, up to ceil(received * up / down), then a fresh stream."""
        if self.passthrough:
            return np.zeros(0, np.float32)
        total = -(-self.received * self.up // self.down)
        self.buf = np.concatenate([self.buf, np.zeros(self.half // self.up + 2)])
        out = self._emit(max(total, self.emitted))
        self.reset()
        return out

    def _emit(self, end: int) -> np.ndarray:
        k = np.arange(self.emitted, end)
        if len(k) == 0:
            return np.zeros(0, np.float32)
        j = k * self.down + self.half
        last, phase = j // self.up, j % self.up
        idx = last[:, None] - np.arange(self.taps)[None, :] - self.base  # (outputs, taps) into buf
        y = np.einsum("ot,ot->o", self.buf[idx], self.phases[phase])
        self.emitted = end
        keep_from = (end * self.down + self.half) // self.up - self.taps + 1  # the next output's oldest input
        drop = keep_from - self.base
        if drop > 0:
            self.buf, self.base = self.buf[drop:], keep_from
        out: np.ndarray = y.astype(np.float32)
        return out
