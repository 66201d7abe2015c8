"""The renderer's hot path as one Triton kernel: rasterise, dense map, bilinear sample and
composite, with reference.py's numbers (the specification; tests/test_kernels_render.py holds the
two together, on the CPU through Triton's interpreter, TRITON_INTERPRET=1, and on CUDA in
tests/gpu).

One program per frame and tile of TILE x TILE pixels: it walks the frame's triangles in draw order,
skips those whose bounding box misses the tile (a scalar test), tests the tile's pixel centres
against the others' edges and keeps the last that covers each pixel; then maps every pixel through
its triangle's affine, samples the avatar's atlas bilinearly (clamped at its edges) and composites
over the plate. Fixed shapes and no host synchronisation: a CUDA graph can hold it."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from posetalk.kernels.render.reference import EDGE_TOLERANCE

TILE = 16


@triton.jit
def _warp_composite(tri_ptr, aff_ptr, drawn_ptr, atlas_ptr, plate_ptr, which_ptr, out_ptr, K, S, H, W,
                    TOL: tl.constexpr, TILE: tl.constexpr):  # fmt: skip
    b = tl.program_id(0)
    tile = tl.program_id(1)
    tiles_x = (S + TILE - 1) // TILE
    tx0 = (tile % tiles_x) * TILE
    ty0 = (tile // tiles_x) * TILE
    i = tl.arange(0, TILE * TILE)
    px_i = tx0 + i % TILE
    py_i = ty0 + i // TILE
    in_frame = (px_i < S) & (py_i < S)
    px = px_i.to(tl.float32)
    py = py_i.to(tl.float32)
    tx1 = (tx0 + TILE - 1).to(tl.float32)
    ty1 = (ty0 + TILE - 1).to(tl.float32)
    best = tl.full([TILE * TILE], -1, tl.int32)
    smax = (S - 1).to(tl.float32)
    for k in range(K):
        t = tri_ptr + (b * K + k) * 6
        ax = tl.load(t)
        ay = tl.load(t + 1)
        bx = tl.load(t + 2)
        by = tl.load(t + 3)
        cx = tl.load(t + 4)
        cy = tl.load(t + 5)
        lox = tl.minimum(tl.maximum(tl.floor(tl.minimum(tl.minimum(ax, bx), cx)), 0.0), smax)
        loy = tl.minimum(tl.maximum(tl.floor(tl.minimum(tl.minimum(ay, by), cy)), 0.0), smax)
        hix = tl.minimum(tl.maximum(tl.ceil(tl.maximum(tl.maximum(ax, bx), cx)), 0.0), smax)
        hiy = tl.minimum(tl.maximum(tl.ceil(tl.maximum(tl.maximum(ay, by), cy)), 0.0), smax)
        drawn = tl.load(drawn_ptr + b * K + k)
        meets = (drawn != 0) & (hix >= tx0) & (lox <= tx1) & (hiy >= ty0) & (loy <= ty1)
        if meets:
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            sign = tl.where(area >= 0, 1.0, -1.0)
            inside = (px >= lox) & (px <= hix) & (py >= loy) & (py <= hiy)
            ex = bx - ax
            ey = by - ay
            length = tl.maximum(tl.sqrt(ex * ex + ey * ey), 1e-6)
            inside = inside & (sign * (ex * (py - ay) - ey * (px - ax)) / length >= -TOL)
            ex = cx - bx
            ey = cy - by
            length = tl.maximum(tl.sqrt(ex * ex + ey * ey), 1e-6)
            inside = inside & (sign * (ex * (py - by) - ey * (px - bx)) / length >= -TOL)
            ex = ax - cx
            ey = ay - cy
            length = tl.maximum(tl.sqrt(ex * ex + ey * ey), 1e-6)
            inside = inside & (sign * (ex * (py - cy) - ey * (px - cx)) / length >= -TOL)
            best = tl.where(inside, k, best)
    covered = best >= 0
    a = aff_ptr + (b * K + tl.maximum(best, 0)) * 6
    a0 = tl.load(a, mask=covered, other=1.0)
    a1 = tl.load(a + 1, mask=covered, other=0.0)
    a2 = tl.load(a + 2, mask=covered, other=0.0)
    a3 = tl.load(a + 3, mask=covered, other=1.0)
    a4 = tl.load(a + 4, mask=covered, other=0.0)
    a5 = tl.load(a + 5, mask=covered, other=0.0)
    mx = px * a0 + py * a2 + a4  # rows (x, y, 1) of the affine: (a0 a1), (a2 a3), (a4 a5)
    my = px * a1 + py * a3 + a5
    mx = tl.minimum(tl.maximum(mx, 0.0), (W - 1).to(tl.float32))
    my = tl.minimum(tl.maximum(my, 0.0), (H - 1).to(tl.float32))
    x0f = tl.floor(mx)
    y0f = tl.floor(my)
    wx = mx - x0f
    wy = my - y0f
    x0 = x0f.to(tl.int32)
    y0 = y0f.to(tl.int32)
    x1 = tl.minimum(x0 + 1, W - 1)
    y1 = tl.minimum(y0 + 1, H - 1)
    av = tl.load(which_ptr + b).to(tl.int64)
    base = atlas_ptr + av * H * W * 4
    r00 = base + (y0.to(tl.int64) * W + x0) * 4
    r01 = base + (y0.to(tl.int64) * W + x1) * 4
    r10 = base + (y1.to(tl.int64) * W + x0) * 4
    r11 = base + (y1.to(tl.int64) * W + x1) * 4
    w00 = (1 - wx) * (1 - wy)
    w01 = wx * (1 - wy)
    w10 = (1 - wx) * wy
    w11 = wx * wy
    alpha = (tl.load(r00 + 3, mask=in_frame, other=0.0) * w00 + tl.load(r01 + 3, mask=in_frame, other=0.0) * w01
             + tl.load(r10 + 3, mask=in_frame, other=0.0) * w10
             + tl.load(r11 + 3, mask=in_frame, other=0.0) * w11) / 255.0  # fmt: skip
    pix = py_i.to(tl.int64) * S + px_i
    plate = plate_ptr + av * S * S * 3 + pix * 3
    out = out_ptr + (b.to(tl.int64) * S * S + pix) * 3
    for c in range(3):
        col = (tl.load(r00 + c, mask=in_frame, other=0.0) * w00 + tl.load(r01 + c, mask=in_frame, other=0.0) * w01
               + tl.load(r10 + c, mask=in_frame, other=0.0) * w10
               + tl.load(r11 + c, mask=in_frame, other=0.0) * w11)  # fmt: skip
        back = tl.load(plate + c, mask=in_frame, other=0.0)
        tl.store(out + c, back + (col - back) * alpha, mask=in_frame)


def warp_composite(tri_xy: torch.Tensor, aff: torch.Tensor, drawn: torch.Tensor, atlas: torch.Tensor,
                   plate: torch.Tensor, which: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """reference.warp_composite, in one kernel launch."""
    b, k = tri_xy.shape[:2]
    s, h, w = plate.shape[1], atlas.shape[1], atlas.shape[2]
    out = torch.empty((b, s, s, 3), dtype=torch.float32, device=tri_xy.device)
    tiles = triton.cdiv(s, TILE) ** 2
    _warp_composite[(b, tiles)](
        tri_xy.contiguous(), aff.contiguous(), drawn.to(torch.int8).contiguous(), atlas.contiguous(),
        plate.contiguous(), which.to(torch.int32).contiguous(), out, k, s, h, w, TOL=EDGE_TOLERANCE, TILE=TILE,
    )  # fmt: skip
    return out
