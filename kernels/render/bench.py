"""`posetalk bench kernels`: the renderer's hot path per frame, reference against the Triton kernel
on the same inputs (a real portrait's triangles, in draw order), at batch 1 and 16. Without CUDA
only the reference runs (Triton's interpreter is for correctness, not speed)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch


def _inputs(size: int, batch: int, device: str) -> dict[str, torch.Tensor]:
    """The hot path's inputs for ``batch`` frames of the bundled portrait in random motion."""
    import skimage.data
    from posetalk.models.render import prepare
    from posetalk.models.render.torch_render import TorchRenderer

    avatar = prepare(skimage.data.astronaut(), size=size)  # type: ignore[no-untyped-call]
    r = TorchRenderer(avatar, device=device)
    rng = np.random.default_rng(0)
    pose = avatar.pose + rng.normal(0, 0.1, (batch, 6)) * np.array([1, 1, 0.5, 0.05, 0.05, 0.05])
    gaze = np.repeat(avatar.gaze[None], batch, 0)
    expr = rng.uniform(0, 0.6, (batch, avatar.basis.shape[0]))
    tri_xy, aff, drawn = r.frame_inputs(*(torch.as_tensor(np.asarray(x, np.float32), device=device)
                                          for x in (pose, gaze, expr)))  # fmt: skip
    return {"tri_xy": tri_xy, "aff": aff, "drawn": drawn, "atlas": r.atlas, "plate": r.plate,
            "which": r.which[:1].expand(batch)}  # fmt: skip


def _ms(fn: Any, sync: bool, repeats: int = 20) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def bench_kernels(size: int = 512) -> dict[str, float]:
    from posetalk.kernels.render import reference

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name() if cuda else "CPU (no CUDA: the reference only)"
    print(f"posetalk bench kernels: warp_composite at {size}×{size} on {name}, ms per frame (median)")
    results: dict[str, float] = {}
    for batch in (1, 16):
        case = _inputs(size, batch, device)
        results[f"reference_b{batch}"] = _ms(lambda: reference.warp_composite(**case), cuda) / batch  # noqa: B023
        line = f"  batch {batch:2d}: reference {results[f'reference_b{batch}']:8.3f}"
        if cuda:
            from posetalk.kernels.render import triton as kernel

            results[f"triton_b{batch}"] = _ms(lambda: kernel.warp_composite(**case), cuda) / batch  # noqa: B023
            line += f"   triton {results[f'triton_b{batch}']:8.3f}"
        print(line)
    return results
