"""The NumPy twins of the pose model (models/pld/fast.py) give the PyTorch modules' numbers: a
whole stream of hops, with a prompt change, at 1, 2 and 4 steps and with guidance 0 (the prompt
ignored) or the student's own; the VAE decoder alone; and a teacher falls back to PyTorch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from posetalk.models.pld.denoiser import DenoiserConfig
from posetalk.models.pld.fast import FastDecoder
from posetalk.models.pld.stream import PoseModel
from posetalk.tests.test_pld import TINY, random_model, speech

STUDENT = dataclasses.replace(TINY, guidance_embed=True, consistency=True)


def _run(model: PoseModel, fast: bool, steps: int, guidance: float) -> np.ndarray:
    audio = speech(3.1, seed=2)
    s = model.stream("calm", seed=7, steps=steps, guidance=guidance, fast=fast)
    pose, gaze = s.push(audio[:20000])
    s.set_prompt("shakes the head")
    pose2, gaze2 = s.push(audio[20000:])
    pose3, gaze3 = s.flush()
    return np.concatenate([np.concatenate([pose, pose2, pose3]), np.concatenate([gaze, gaze2, gaze3])], 1)


@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("guidance", [0.0, 1.5])
def test_numpy_hops_equal_the_pytorch_hops(steps: int, guidance: float) -> None:
    model = random_model(STUDENT)
    assert model.fast() is not None
    reference, fast = _run(model, False, steps, guidance), _run(model, True, steps, guidance)
    assert reference.shape == (78, 8) and np.abs(reference).max() > 0.01
    np.testing.assert_allclose(fast, reference, atol=2e-5)


def test_numpy_hops_equal_at_the_shipped_size() -> None:
    model = random_model(dataclasses.replace(DenoiserConfig(), guidance_embed=True, consistency=True), seed=1)
    np.testing.assert_allclose(_run(model, True, 2, 1.5), _run(model, False, 2, 1.5), atol=2e-5)


def test_numpy_decoder_equals_the_vae_decoder() -> None:
    vae = random_model(STUDENT).vae
    z = torch.randn(3, 8, vae.cfg.latent, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = vae.decode_raw(z).numpy()
    dec = FastDecoder(vae)
    for i in range(3):
        np.testing.assert_allclose(dec(z[i].numpy()), want[i], atol=1e-5)


def test_a_teacher_runs_on_pytorch() -> None:
    model = random_model()  # a teacher: two passes for guidance, not served by the NumPy twin
    assert model.fast() is None
    np.testing.assert_array_equal(_run(model, True, 2, 1.5), _run(model, False, 2, 1.5))


def test_a_long_stream_in_odd_chunks_equals_pytorch_and_keeps_only_the_context() -> None:
    """Past its first hops the NumPy path reads the stream's own log-mel, made once as the audio
    came, instead of re-making the window's: the numbers stay the PyTorch path's, and the kept
    audio and mel frames stay within what the next window's context reaches."""
    model = random_model(dataclasses.replace(DenoiserConfig(), guidance_embed=True, consistency=True), seed=1)
    audio = speech(8.0, seed=4)
    cuts = np.cumsum(np.random.default_rng(0).integers(50, 9000, 60))
    outs = []
    for fast in (True, False):
        s = model.stream("calm", seed=5, steps=2, fast=fast)
        parts = [s.push(chunk)[0] for chunk in np.split(audio, cuts[cuts < len(audio)])]
        outs.append(np.concatenate([*parts, s.flush()[0]]))
        if fast:
            cfg = model.cfg
            reach = (cfg.context + cfg.window) * 640  # samples
            assert len(s.audio) <= reach and s.mels.shape[1] <= reach // 160
            assert s.mels.shape[1] == len(s.audio) // 160  # a mel frame for every 10 ms kept
    assert outs[0].shape == (200, 6)
    np.testing.assert_allclose(outs[0], outs[1], atol=2e-5)
