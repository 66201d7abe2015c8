"""Voice normalisation by pitch: a high voice's log-mel is moved down by its running median F0,
a low voice's is left alone, causally (a stream gets what a whole file gets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from posetalk.models.audio.mel import log_mel, mel_centres
from posetalk.models.motion import voice_norm as vn


def voice(f0: float, seconds: float, seed: int = 0) -> np.ndarray:
    """A vowel-like buzz: harmonics of ``f0`` falling 6 dB an octave, a little noise."""
    t = np.arange(int(16000 * seconds)) / 16000
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(4000 // f0)))
    return (0.1 * x + 0.002 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def test_a_high_voice_is_moved_down_and_a_low_one_is_not() -> None:
    norm = vn.VoiceNorm(130.0, 0.75)
    high, low = vn.factors(voice(210.0, 2.0), 50, norm), vn.factors(voice(100.0, 2.0), 50, norm)
    assert (low == 1.0).all()
    assert (high[: vn.MIN_VOICED] == 1.0).all()  # nothing heard yet
    np.testing.assert_allclose(high[-10:], 0.75)  # 130 / 210 = 0.62, clipped at the most allowed
    mid = vn.factors(voice(150.0, 2.0), 50, norm)[-1]
    assert abs(mid - 130 / 150) < 0.02, mid
    assert abs(vn.factors(voice(210.0, 2.0), 50, vn.VoiceNorm(180.0, 0.5))[-1] - 180 / 210) < 0.02
    assert (vn.factors(np.zeros(32000, np.float32), 50, norm) == 1.0).all()  # silence: unvoiced


def test_the_tracker_gives_a_stream_what_a_whole_file_gets() -> None:
    audio = np.concatenate([voice(100.0, 1.0), voice(190.0, 1.5, seed=1)])
    frames = len(audio) // 640
    tracker, got = vn.PitchTracker(vn.VoiceNorm()), []
    for k in range(frames):
        got.append(tracker.alpha)
        tracker.push(audio[k * 640 : (k + 1) * 640])
    want = vn.factors(audio, frames, vn.VoiceNorm())
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert want[25] == 1.0 and want[-1] < 0.9  # the man, then the woman once her pitch dominates


def test_warping_moves_a_formant_down_by_the_factor() -> None:
    mel = log_mel(torch.from_numpy(voice(120.0, 0.5))[None])  # (1, 80, F)
    centres = mel_centres()
    peak = lambda m: centres[int(m[0, 20:].mean(1).argmax()) + 20]  # noqa: E731 - strongest band above ~1 kHz
    bump = torch.zeros_like(mel)
    bump[:, 50] = 5.0  # a formant-like peak at bin 50
    moved = vn.warp_frequency(mel + bump, np.array([0.8]))
    assert abs(peak(moved) / peak(mel + bump) - 0.8) < 0.05
    assert torch.equal(vn.warp_frequency(mel, np.array([1.0])), mel)
    rows = (mel + bump)[0].T.numpy()  # the NumPy version the streams use
    np.testing.assert_allclose(vn.warp_rows(rows, 0.8), moved[0].T.numpy(), atol=1e-5)


def test_training_refuses_a_pitch_change_it_would_not_follow(tmp_path: Path) -> None:
    from posetalk.models.motion.train import train_motion

    with pytest.raises(ValueError, match="f0norm"):
        train_motion(tmp_path / "corpus", tmp_path / "run", f0norm=vn.VoiceNorm(), vocoded=0.5, pitch=1.7)
    assert not (tmp_path / "run").exists()  # refused before anything was written
