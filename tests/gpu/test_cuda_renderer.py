"""The PyTorch renderer on CUDA gives the CPU renderer's pictures (skips without CUDA)."""

import numpy as np
import pytest
import torch
from posetalk.models.render import make_renderer
from posetalk.tests.conftest import psnr

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_cuda_matches_cpu(avatar) -> None:
    cpu = make_renderer(avatar, "cpu")
    gpu = make_renderer(avatar, "torch", device="cuda")
    rng = np.random.default_rng(5)
    n = 16
    pose = np.repeat(avatar.pose[None], n, 0)
    pose[:, :3] += rng.uniform(-0.4, 0.4, (n, 3)) * [1, 0.6, 0.6]
    gaze = rng.uniform(-0.3, 0.3, (n, 2)).astype(np.float32)
    expr = (rng.uniform(0, 1, (n, 21)) * (rng.uniform(size=(n, 21)) < 0.3)).astype(np.float32)
    a, b = cpu.render(pose, gaze, expr), gpu.render(pose, gaze, expr)
    assert min(psnr(x, y) for x, y in zip(a, b, strict=True)) >= 40.0
