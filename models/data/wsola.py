"""WSOLA time-stretching (waveform-similarity overlap-add, after Verhelst & Roelands 1993), anchored so
that it adds no delay: output sample i comes from around input sample i · len(x) / out_len.

Output frames of ``WINDOW`` samples are laid every ``HOP`` samples and overlap-added under a Hann
window. Frame k ideally copies the input around k·HOP·ratio (its anchor); WSOLA lets it move by up to
``TOLERANCE`` samples to an offset whose waveform continues the previous frame, which keeps the pitch
periods intact (no phasiness, no doubled or dropped pulses). The offsets are never accumulated into
the anchor, so the mapping cannot drift away; locally it is off by up to about half a pitch period.
Three choices keep it centred on average and exact at onsets:

- of the offsets that continue the waveform about as well as the best (one per pitch period), take
  the one that brings the recent offsets' running sum closest to zero;
- match only where the frames overlap, weighted by both windows, so a faint copy at the very edge of
  the previous frame does not drag the next frames along;
- where the output so far holds little of what comes (a pause, an onset) use the anchor itself.
"""

from __future__ import annotations

import numpy as np

WINDOW = 384  # 24 ms at 16 kHz
HOP = WINDOW // 4
NEAR_BEST = 0.1  # offsets scoring within this fraction of the score range from the best are "as good"
ONSET_RATIO = 0.25  # a frame 6 dB louder than what came before is an onset
DRIFT_DECAY = 0.9  # memory of the drift, per hop (~60 ms)
TOLERANCE = 120  # ±7.5 ms: half a period of a 67 Hz voice, enough to find a matching phase


def time_stretch(
    x: np.ndarray, out_len: int, window: int = WINDOW, hop: int = HOP, tolerance: int = TOLERANCE
) -> np.ndarray:
    """``x`` stretched or compressed to exactly ``out_len`` samples, pitch unchanged (float64)."""
    x = np.asarray(x, dtype=np.float64)
    if out_len <= 0 or x.size == 0:
        return np.zeros(max(out_len, 0))
    ratio = x.size / out_len  # input samples per output sample
    half = window // 2
    margin = half + tolerance + window + int(np.ceil(3 * hop * max(ratio, 1.0)))
    xp = np.pad(x, (margin, margin))
    win = np.hanning(window + 2)[1:-1]  # symmetric, no zero end points
    # The previous frame's weight where the next frame starts: its last window - hop samples.
    tail = np.r_[win[hop:], np.zeros(hop)]
    overlap = tail * win  # how much each sample of a candidate meets the output already there
    n_frames = out_len // hop + 2
    out = np.zeros((n_frames + 1) * hop + window)
    norm = np.zeros_like(out)
    silent = 1e-10 * window * max(float(np.mean(x**2)), 1e-20)
    prev = None  # where (in xp) the previous frame was copied from
    drift = 0.0  # recent offsets, summed with a decay: the local time error the mapping has built up
    for k in range(n_frames):
        target = margin + round(k * hop * ratio) - half  # the ideal copy start in xp
        delta = 0
        if prev is not None:
            template = xp[prev + hop : prev + hop + window]  # what would naturally come next
            anchor = xp[target : target + window] * win
            # After a pause or at an onset the output so far holds little of what comes: stay on the
            # anchor, so that an onset lands where it belongs instead of following a faint early copy.
            if np.sum((template * tail) ** 2) > max(silent, ONSET_RATIO * (anchor @ anchor)):
                region = xp[target - tolerance : target + tolerance + window]
                # Normalised cross-correlation over the overlap, weighted by both windows.
                corr = np.correlate(region, template * overlap, mode="valid")
                score = corr / np.sqrt(np.correlate(region**2, overlap, mode="valid") + silent)
                # Of the offsets that continue the waveform almost as well as the best one (one per pitch
                # period, typically), take the one that best cancels the recent drift.
                peak = np.r_[True, score[1:] >= score[:-1]] & np.r_[score[:-1] >= score[1:], True]
                good = np.flatnonzero(peak & (score >= score.max() - NEAR_BEST * (score.max() - score.min())))
                delta = int(good[np.argmin(np.abs(good - tolerance + DRIFT_DECAY * drift))]) - tolerance
        drift = DRIFT_DECAY * drift + delta
        start = target + delta
        out[k * hop : k * hop + window] += win * xp[start : start + window]
        norm[k * hop : k * hop + window] += win
        prev = start
    # Output position k*hop + half corresponds to input position k*hop*ratio: drop the half window.
    y = out[half : half + out_len] / np.maximum(norm[half : half + out_len], 1e-8)
    return y
