"""Voice normalisation by pitch: the log-mel of a high voice moved down in frequency before the
nets see it, by a factor set by the voice's running median F0 (a crude vocal tract length
normalisation).

The held-out CMU ARCTIC woman (SLT, F0 ~171 Hz) is where the motion nets fail most, and every
natural-sounding English training voice is a man: moving her spectrum down 3 semitones lifted her
closures from 48 % to 69 %. With ``train motion --f0norm`` the corpus's women are moved down in
training too, so that the nets learn on the axis they are run on.

Causal, so that streams get the same numbers as whole files: frame t's factor comes from the
pitch of the HISTORY frames before it (each from the 64 ms of audio ending with its frame), and
is 1 until MIN_VOICED of them were voiced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from posetalk.models.rates import FPS, SAMPLE_RATE

F0_REF = 150.0  # Hz: voices above this are moved down (the training men: 85-130 Hz; SLT 172)
POWER = 1.0  # alpha = (ref / F0) ** POWER
LOWEST = 0.85  # by default the most a voice is moved: about 3 semitones
HISTORY = 250  # frames (10 s) of pitch the running median looks back on
MIN_VOICED = 12  # voiced frames (about 0.5 s) before any move
WINDOW = 1024  # samples of the pitch analysis, ending with each frame
APERIODIC = 0.25  # YIN's aperiodicity below this, and
QUIET_DBFS = -50.0  # the window's level above this: voiced
HOP = SAMPLE_RATE // FPS  # samples per video frame


@dataclass(frozen=True)
class VoiceNorm:
    """alpha = clip((ref / F0) ** POWER, lowest, 1): voices above ``ref`` Hz moved down, by at
    most ``lowest``."""

    ref: float = F0_REF
    lowest: float = LOWEST

    def factor(self, f0: float) -> float:
        """alpha for a voice of median pitch ``f0`` Hz (1 if unvoiced)."""
        if not f0 > 0:
            return 1.0
        return float(np.clip((self.ref / f0) ** POWER, self.lowest, 1.0))


def of_config(cfg: Any) -> VoiceNorm | None:
    """The normalisation a net's config (nets.NetConfig) was trained with; None for none."""
    return VoiceNorm(cfg.f0_ref, cfg.f0_lowest) if cfg.f0_ref else None


def config_fields(norm: VoiceNorm | None) -> dict[str, float]:
    """The nets.NetConfig fields that store ``norm`` (of_config's inverse); none for None."""
    return {"f0_ref": norm.ref, "f0_lowest": norm.lowest} if norm is not None else {}


def frame_pitch(windows: np.ndarray) -> np.ndarray:
    """(T, WINDOW) audio windows -> (T,) F0 in Hz, 0 where unvoiced."""
    from posetalk.models.audio.pitch import yin

    windows = np.asarray(windows, np.float64)
    f0, aperiodicity = yin(windows)
    level = 10 * np.log10(np.mean(windows**2, axis=1) + 1e-12)
    return np.where((aperiodicity < APERIODIC) & (level > QUIET_DBFS), f0, 0.0)


def pitch_of(audio: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) frame_pitch of each frame's window (the WINDOW samples ending with it)."""
    x = np.zeros(frames * HOP + WINDOW - HOP, np.float64)
    a = np.asarray(audio, np.float64).reshape(-1)[: frames * HOP]
    x[WINDOW - HOP : WINDOW - HOP + len(a)] = a
    return frame_pitch(np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::HOP][:frames])


def running_factor(pitch: np.ndarray, norm: VoiceNorm) -> float:
    """The factor after ``pitch`` (the frames so far): from the median of the voiced ones among
    the last HISTORY."""
    recent = pitch[-HISTORY:]
    voiced = recent[recent > 0]
    return norm.factor(float(np.median(voiced))) if len(voiced) >= MIN_VOICED else 1.0


def factors(audio: np.ndarray, frames: int, norm: VoiceNorm) -> np.ndarray:
    """(frames,) each frame's factor, from the pitch of the frames before it."""
    p = pitch_of(audio, frames)
    return np.array([running_factor(p[:t], norm) for t in range(frames)], np.float32)


class PitchTracker:
    """``factors`` for a stream: ``push`` each completed frame's HOP samples; ``alpha`` is the
    next frame's factor."""

    def __init__(self, norm: VoiceNorm) -> None:
        self.norm = norm
        self.tail = np.zeros(WINDOW, np.float64)
        self.pitch: list[float] = []
        self.alpha = 1.0

    def push(self, frame: np.ndarray) -> None:
        self.tail = np.concatenate([self.tail[HOP:], np.asarray(frame, np.float64)])
        self.pitch.append(float(frame_pitch(self.tail[None])[0]))
        del self.pitch[:-HISTORY]
        self.alpha = running_factor(np.array(self.pitch), self.norm)


def source_bins(alpha: np.ndarray) -> np.ndarray:
    """(..., 80) the fractional mel bin each bin reads from when moved by ``alpha`` (...)."""
    from posetalk.models.audio.mel import mel_centres

    centres = mel_centres()
    a = np.asarray(alpha, np.float64)[..., None]
    return np.interp(centres / a, centres, np.arange(len(centres)))


def warp_frequency(mel: torch.Tensor, alpha: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A (B, 80, F) log-mel with its content moved along frequency by alpha, one per row (B,) or
    per mel frame (B, F) (< 1: down), linearly interpolated between mel bins."""
    b, n, f = mel.shape
    a = np.asarray(alpha, np.float64).reshape(b, -1)
    pos = torch.as_tensor(source_bins(a), dtype=mel.dtype, device=mel.device).transpose(1, 2)  # (B, 80, 1 | F)
    pos = pos.expand(b, n, f)
    lo = pos.floor().long().clamp(0, n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = pos - lo
    return mel.gather(1, lo) * (1 - frac) + mel.gather(1, hi) * frac


def warp_rows(mel: np.ndarray, alpha: float) -> np.ndarray:
    """warp_frequency in NumPy for (..., 80) mel rows, all moved by one ``alpha``."""
    pos = source_bins(np.float64(alpha))
    lo = np.clip(np.floor(pos).astype(np.int64), 0, len(pos) - 1)
    hi = np.minimum(lo + 1, len(pos) - 1)
    frac = (pos - lo).astype(np.float32)
    return mel[..., lo] * (1 - frac) + mel[..., hi] * frac
