"""The portrait renderer behind one small interface, so a neural renderer can replace it.

avatar = prepare(image)                      # once per portrait, cached on disk
renderer = make_renderer(avatar, "cpu")      # or "torch" (CUDA when present)
frames = renderer.render(pose, gaze, expr)   # (T,6), (T,2), (T,21) -> (T, S, S, 3) uint8
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from posetalk.models.render.avatar import Avatar
from posetalk.models.render.prepare import prepare


class Renderer(Protocol):
    name: str
    size: int

    def render(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """Frames (T, size, size, 3) RGB uint8 for T rows of motion parameters."""
        ...


def make_renderer(avatar: Avatar, backend: str = "cpu", device: str | None = None) -> Renderer:
    """``backend``: "cpu" (NumPy/OpenCV) or "torch" (batched PyTorch; CUDA when available)."""
    if backend == "cpu":
        from posetalk.models.render.cpu import CpuRenderer

        return CpuRenderer(avatar)
    if backend == "torch":
        from posetalk.models.render.torch_render import TorchRenderer

        return TorchRenderer(avatar, device=device)
    raise ValueError(f"unknown renderer backend '{backend}' (cpu or torch)")


__all__ = ["Avatar", "Renderer", "make_renderer", "prepare"]
