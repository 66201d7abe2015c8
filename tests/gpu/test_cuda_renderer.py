"""The renderer on CUDA (skips without CUDA): the PyTorch renderer gives the CPU renderer's
pictures; the Triton kernel gives its reference's on awkward shapes; a batch captured in a CUDA
graph gives the eager path's frames."""

import numpy as np
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


@pytest.mark.parametrize(("seed", "size"), [(0, 37), (1, 16), (2, 130)])
def test_the_triton_kernel_equals_the_reference_on_cuda(seed: int, size: int) -> None:
    from posetalk.kernels.render import implementation, reference
    from posetalk.kernels.render import triton as kernel
    from posetalk.tests.test_kernels_render import awkward_case

    case = {k: v.cuda() for k, v in awkward_case(seed, size).items()}
    assert implementation(case["tri_xy"]) == "triton"
    diff = (kernel.warp_composite(**case) - reference.warp_composite(**case)).abs()
    assert (diff > 1e-2).float().mean() < 0.002 and float(diff.median()) < 1e-3


def test_a_steady_batch_is_captured_and_gives_the_eager_frames(avatar) -> None:
    from posetalk.models.render.torch_render import GRAPH_AFTER, BatchRenderer

    batch = BatchRenderer("cuda")
    members = [batch.renderer(avatar) for _ in range(3)]
    pose, gaze, expr = random_motion(avatar, 3 * (GRAPH_AFTER + 2), seed=6)
    frames = []
    for t in range(GRAPH_AFTER + 2):
        rows = range(3 * t, 3 * t + 3)
        frames.append(batch.render_many([(m, pose[r], gaze[r], expr[r]) for m, r in zip(members, rows, strict=True)]))
    assert batch._graph is not None, batch.graph_error
    eager = BatchRenderer("cuda")
    same = [eager.renderer(avatar) for _ in range(3)]
    for t, got in enumerate(frames):
        rows = range(3 * t, 3 * t + 3)
        want = eager._draw(
            same,
            *[torch.as_tensor(x[list(rows)], device="cuda") for x in (pose, gaze, expr)],
            *eager._stacked()[:2],
            torch.zeros(3, dtype=torch.int32, device="cuda"),
        )
        np.testing.assert_allclose(got, (want + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy(), atol=1)
