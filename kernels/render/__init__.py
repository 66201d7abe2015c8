"""The renderer's hot path (rasterise + dense map + sample + composite): ``warp_composite`` runs
the Triton kernel (triton.py) on CUDA tensors, and in Triton's interpreter on CPU tensors when
TRITON_INTERPRET=1 (how the tests check it without a GPU); the PyTorch reference (reference.py)
everywhere else. ``implementation(tensor)`` says which one a call on that tensor's device takes."""

from __future__ import annotations

import importlib.util
import os

import torch
from posetalk.kernels.render import reference


def _have_triton() -> bool:
    return importlib.util.find_spec("triton") is not None


def implementation(like: torch.Tensor) -> str:
    """ "triton" or "reference"."""
    if not _have_triton():
        return "reference"
    if like.is_cuda or os.environ.get("TRITON_INTERPRET") == "1":
        return "triton"
    return "reference"


def warp_composite(tri_xy: torch.Tensor, aff: torch.Tensor, drawn: torch.Tensor, atlas: torch.Tensor,
                   plate: torch.Tensor, which: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """reference.warp_composite's contract, by the fastest implementation for the device."""
    if implementation(tri_xy) == "triton":
        from posetalk.kernels.render import triton as kernel

        return kernel.warp_composite(tri_xy, aff, drawn, atlas, plate, which)
    return reference.warp_composite(tri_xy, aff, drawn, atlas, plate, which)
