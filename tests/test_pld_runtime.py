"""The student's hop exported to ONNX and run by ONNX Runtime (models/pld/hop.py) gives the PyTorch
modules' numbers: a whole stream of hops, with a prompt change, at 1, 2 and 4 steps and with
guidance 0 (the prompt ignored) or the student's own; batched hops equal single ones; and a
teacher stays on PyTorch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from posetalk.models.pld.denoiser import DenoiserConfig
from posetalk.models.pld.stream import PoseModel
from posetalk.tests.test_pld import TINY, random_model, speech

STUDENT = dataclasses.replace(TINY, guidance_embed=True, consistency=True)


def _run(model: PoseModel, onnx: bool, steps: int, guidance: float) -> np.ndarray:
    audio = speech(3.1, seed=2)
    s = model.stream("calm", seed=7, steps=steps, guidance=guidance, onnx=onnx)
    pose, gaze = s.push(audio[:20000])
    s.set_prompt("shakes the head")
    pose2, gaze2 = s.push(audio[20000:])
    pose3, gaze3 = s.flush()
    return np.concatenate([np.concatenate([pose, pose2, pose3]), np.concatenate([gaze, gaze2, gaze3])], 1)


@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("guidance", [0.0, 1.5])
def test_onnx_hops_equal_the_pytorch_hops(steps: int, guidance: float) -> None:
    model = random_model(STUDENT)
    assert model.runtime(steps) is not None
    reference, onnx = _run(model, False, steps, guidance), _run(model, True, steps, guidance)
    assert reference.shape == (78, 8) and np.abs(reference).max() > 0.01
    np.testing.assert_allclose(onnx, reference, atol=1e-4)


def test_onnx_hops_equal_at_the_shipped_size() -> None:
    model = random_model(dataclasses.replace(DenoiserConfig(), guidance_embed=True, consistency=True), seed=1)
    np.testing.assert_allclose(_run(model, True, 2, 1.5), _run(model, False, 2, 1.5), atol=1e-4)


def test_batched_hops_equal_single_ones() -> None:
    """Many streams' hops in one call (the engine's batch) give each stream its own frames."""
    from posetalk.models.pld.hop import PoseHop

    model = random_model(STUDENT)
    session = model.runtime(2)
    hop = PoseHop(model.net, model.vae, 2)
    g = torch.Generator().manual_seed(3)
    args = [torch.randn(a.shape, generator=g) for a in hop.example(batch=3)]
    args[1], args[3] = (args[1] > 0).float(), (args[3] > 0).float()
    feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
    together = session.run(None, feeds)[0]
    with torch.no_grad():
        reference = hop(*args).numpy()
    np.testing.assert_allclose(together, reference, atol=1e-4)
    for b in range(3):
        alone = session.run(None, {k: v[b : b + 1] for k, v in feeds.items()})[0]
        np.testing.assert_allclose(alone[0], together[b], atol=1e-5)


def test_a_teacher_runs_on_pytorch() -> None:
    model = random_model()  # a teacher: two passes for guidance, not exported as one graph
    assert model.runtime(2) is None
    np.testing.assert_array_equal(_run(model, True, 2, 1.5), _run(model, False, 2, 1.5))


def test_a_long_stream_in_odd_chunks_equals_pytorch_and_keeps_only_the_context() -> None:
    """Past its first hops the ONNX path reads the stream's own log-mel, made once as the audio
    came, instead of re-making the window's: the numbers stay the PyTorch path's, and the kept
    audio and mel frames stay within what the next window's context reaches."""
    model = random_model(dataclasses.replace(DenoiserConfig(), guidance_embed=True, consistency=True), seed=1)
    audio = speech(8.0, seed=4)
    cuts = np.cumsum(np.random.default_rng(0).integers(50, 9000, 60))
    outs = []
    for onnx in (True, False):
        s = model.stream("calm", seed=5, steps=2, onnx=onnx)
        parts = [s.push(chunk)[0] for chunk in np.split(audio, cuts[cuts < len(audio)])]
        outs.append(np.concatenate([*parts, s.flush()[0]]))
        if onnx:
            cfg = model.cfg
            reach = (cfg.context + cfg.window) * 640  # samples
            assert len(s.audio) <= reach and s.mels.shape[1] <= reach // 160
            assert s.mels.shape[1] == len(s.audio) // 160  # a mel frame for every 10 ms kept
    assert outs[0].shape == (200, 6)
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)
