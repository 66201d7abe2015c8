"""The PyTorch renderer on CUDA gives the CPU renderer's pictures (skips without CUDA)."""

import pytest
import torch
from posetalk.models.render import make_renderer
from posetalk.tests.conftest import psnr, random_motion

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_cuda_matches_cpu(avatar) -> None:
    cpu = make_renderer(avatar, "cpu")
    gpu = make_renderer(avatar, "torch", device="cuda")
    n = 16
    pose, gaze, expr = random_motion(avatar, n, seed=5)
    a, b = cpu.render(pose, gaze, expr), gpu.render(pose, gaze, expr)
    assert min(psnr(x, y) for x, y in zip(a, b, strict=True)) >= 40.0
