"""Alignment of a recording to its transcript without an acoustic model of its language: espeak-ng
speaks the transcript with phone timings, and dynamic time warping between the two recordings'
cepstra carries each of espeak's phone boundaries onto the real recording (the method of aeneas).

Used for the real voices in languages pocketsphinx has no model for (data/real.py); on English it
is checked against pocketsphinx's forced alignment (real.alignment_report).
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct

from ..errors import CorpusError
from .phones import SAMPLE_RATE, SILENCE, Phone, check_timings

HOP_S = 0.01  # the log-mel's frame hop
N_CEPS = 13  # cepstral coefficients kept (c0, the level, dropped)
QUIET_DB = 35.0  # frames this far below the loudest are silence in both recordings
SILENCE_COST = 2.0  # extra cost of matching a silent frame with a speech frame


def cepstra(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, N_CEPS) cepstra of 16 kHz audio, normalised per utterance (mean 0, variance 1 per
    coefficient over the speech frames), and (T,) which frames are speech."""
    from posetalk.models.audio.mel import log_mel

    mel = log_mel(np.asarray(audio, np.float32))  # (80, T), natural log
    c = dct(mel.T, type=2, norm="ortho", axis=1)[:, 1 : N_CEPS + 1]
    level = mel.max(0)
    speech = level > level.max() - QUIET_DB / 10 * np.log(10)
    ref = c[speech] if speech.sum() > 10 else c
    return (c - ref.mean(0)) / (ref.std(0) + 1e-6), speech


def warp_path(cost: np.ndarray) -> np.ndarray:
    """The cheapest monotonic path through ``cost`` (N, M) from (0, 0) to (N-1, M-1) with steps
    (1, 0), (0, 1) and (1, 1); (K, 2) index pairs.

    Each row is solved at once: D[i, j] = c[i, j] + min(a[j], D[i, j-1]) with a[j] =
    min(D[i-1, j-1], D[i-1, j]) unrolls to S[j] + min over k <= j of (a[k] - S[k-1]), S the
    row's cumulative cost, which is a cumulative minimum."""
    n, m = cost.shape
    acc = np.empty((n, m))
    acc[0] = np.cumsum(cost[0])
    for i in range(1, n):
        prev = acc[i - 1]
        a = np.minimum(prev, np.concatenate([[np.inf], prev[:-1]]))
        s = np.cumsum(cost[i])
        acc[i] = s + np.minimum.accumulate(a - np.concatenate([[0.0], s[:-1]]))
    # Walk back from the end, taking the cheapest predecessor.
    i, j = n - 1, m - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
            i, j = min(steps, key=lambda ij: acc[ij])
        path.append((i, j))
    return np.array(path[::-1])


def map_times(path: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Times (s) on the first sequence's axis -> the second's: the middle of the frames the path
    matches with the first sequence's frame at each time."""
    frames = np.clip(np.round(np.asarray(times) / HOP_S).astype(int), 0, path[-1, 0])
    lo = np.searchsorted(path[:, 0], frames, side="left")
    hi = np.searchsorted(path[:, 0], frames, side="right") - 1
    return (path[lo, 1] + path[hi, 1]) / 2 * HOP_S


def align_to(reference: np.ndarray, phones: list[Phone], audio: np.ndarray) -> list[Phone]:
    """Carry ``phones`` (timings of ``reference``, both 16 kHz) onto ``audio`` that says the same
    words; CorpusError when the two are too unlike to warp (one is silent, or lengths differ by
    more than 3x)."""
    duration = len(audio) / SAMPLE_RATE
    ratio = duration / max(len(reference) / SAMPLE_RATE, 1e-6)
    if not 1 / 3 <= ratio <= 3:
        raise CorpusError(f"the recording lasts {ratio:.1f}x the rendering of its transcript: not the same words")
    a, a_speech = cepstra(reference)
    b, b_speech = cepstra(audio)
    if a_speech.sum() < 5 or b_speech.sum() < 5:
        raise CorpusError("no speech to align")
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T  # (Ta, Tb) squared distances
    cost = np.sqrt(np.maximum(sq, 0.0) / a.shape[1])  # rms distance per coefficient
    cost = cost + SILENCE_COST * (a_speech[:, None] != b_speech[None, :])
    path = warp_path(cost)
    ends = map_times(path, np.array([p.end for p in phones[:-1]]))
    out: list[Phone] = []
    start = 0.0
    for p, end in zip(phones, [*ends.tolist(), duration], strict=True):
        end = float(np.clip(end, start, duration))
        if p.label == SILENCE and out and out[-1].label == SILENCE:
            out[-1] = Phone(SILENCE, out[-1].start, end)
        else:
            out.append(Phone(p.label, start, end, p.stress))
        start = end
    check_timings(out, duration)
    return out
