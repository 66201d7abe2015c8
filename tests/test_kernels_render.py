"""The renderer's hot path: the Triton kernel (kernels/render/triton.py) gives its PyTorch
reference's pictures on awkward shapes (a frame side that is no multiple of the tile, triangles
off the frame, degenerate and undrawn ones, several avatars in one batch), run on the CPU by
Triton's interpreter (TRITON_INTERPRET=1, in a subprocess: the variable must be set before Triton
loads); and the renderer built on it still gives the CPU renderer's pictures."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
from posetalk.kernels.render import reference

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")


def awkward_case(seed: int, size: int = 37, k: int = 60, avatars: int = 2, batch: int = 3) -> dict[str, torch.Tensor]:
    """Random triangles (some larger than the frame, some off it, some degenerate, some undrawn),
    random affines into random atlases."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(batch, k, 1, 2, generator=g) * (size + 20) - 10
    spread = torch.rand(batch, k, 1, 1, generator=g) ** 3 * size
    tri_xy = centre + torch.randn(batch, k, 3, 2, generator=g) * spread
    tri_xy[:, :3, 1] = tri_xy[:, :3, 0]  # degenerate: two corners on one point
    h = 4 * size
    aff = torch.randn(batch, k, 3, 2, generator=g) * 0.3
    aff[..., 0, 0] += 1.0
    aff[..., 1, 1] += 1.0
    aff[..., 2, :] += torch.rand(batch, k, 2, generator=g) * torch.tensor([size, h])
    drawn = torch.rand(batch, k, generator=g) > 0.1
    atlas = torch.rand(avatars, h, size, 4, generator=g) * 255
    plate = torch.rand(avatars, size, size, 3, generator=g) * 255
    which = torch.randint(0, avatars, (batch,), generator=g, dtype=torch.int32)
    return {"tri_xy": tri_xy, "aff": aff, "drawn": drawn, "atlas": atlas, "plate": plate, "which": which}


INTERPRETED = """
import sys, torch
from posetalk.kernels.render import implementation, warp_composite
case = torch.load(sys.argv[1])
assert implementation(case["tri_xy"]) == "triton"
torch.save(warp_composite(**case), sys.argv[2])
"""


@pytest.mark.parametrize(("seed", "size"), [(0, 37), (1, 16), (2, 5)])
def test_the_triton_kernel_equals_the_reference_in_the_interpreter(tmp_path: Any, seed: int, size: int) -> None:
    case = awkward_case(seed, size)
    torch.save(case, tmp_path / "case.pt")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    subprocess.run([sys.executable, "-c", INTERPRETED, str(tmp_path / "case.pt"), str(tmp_path / "out.pt")], env=env,
                   check=True, timeout=600)  # fmt: skip
    got = torch.load(tmp_path / "out.pt")
    want = reference.warp_composite(**case)
    assert got.shape == want.shape == (3, size, size, 3)
    covered = reference.rasterise(case["tri_xy"], case["drawn"], size) >= 0
    assert 0.2 < covered.float().mean() < 1.0  # some pixels covered, some not
    diff = (got - want).abs()
    # Float rounding may move a pixel centre that lies exactly on an edge's tolerance line.
    assert (diff > 1e-2).float().mean() < 0.002 and float(diff.median()) < 1e-3


def test_the_reference_is_what_the_dispatch_takes_on_the_cpu() -> None:
    from posetalk.kernels.render import implementation

    if os.environ.get("TRITON_INTERPRET") != "1":
        assert implementation(torch.zeros(1)) == "reference"


def test_the_reference_covers_what_a_triangle_covers() -> None:
    """One triangle by hand: the pixels inside (and within half a pixel of an edge) take the
    atlas's colour through its affine, the rest show the plate."""
    s = 8
    tri_xy = torch.tensor([[[[1.0, 1.0], [6.0, 1.0], [1.0, 6.0]]]])
    aff = torch.tensor([[[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]])
    atlas = torch.zeros(1, 4 * s, s, 4)
    atlas[..., :3], atlas[..., 3] = 200.0, 255.0
    atlas[0, :s, :, 3] = torch.where(torch.arange(s)[None, :] >= 0, 255.0, 0.0)
    plate = torch.full((1, s, s, 3), 10.0)
    out = reference.warp_composite(tri_xy, aff, torch.ones(1, 1, dtype=torch.bool), atlas, plate,
                                   torch.zeros(1, dtype=torch.int32))[0, ..., 0]  # fmt: skip
    inside = np.zeros((s, s), bool)
    for y in range(s):
        for x in range(s):
            inside[y, x] = 1 <= x <= 6 and 1 <= y <= 6 and x + y <= 7 + 0.5 * np.sqrt(2)
    assert np.array_equal(out.numpy() == 200.0, np.ones((s, s), bool))  # alpha 255 everywhere: the atlas shows
    assert reference.rasterise(tri_xy, torch.ones(1, 1, dtype=torch.bool), s).view(s, s).ge(0).numpy().tolist() == \
        inside.tolist()  # fmt: skip
