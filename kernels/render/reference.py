"""The renderer's hot path in PyTorch: the specification the Triton kernel (triton.py) is held to.

``warp_composite(tri_xy, aff, drawn, atlas, plate, which)`` for B frames of K triangles each, given
in draw order (back to front, so the last triangle covering a pixel wins, as the last one painted
does on the CPU):

- rasterise: a pixel is covered by a drawn triangle when its centre lies inside it or within
  ``EDGE_TOLERANCE`` of an edge, and inside the triangle's integer bounding box (clipped to the
  frame);
- dense map: the covering triangle's affine (``aff`` (B, K, 3, 2): rows x, y, 1 -> atlas column
  and row) moves the pixel into the atlas; an uncovered pixel keeps its own place;
- sample: bilinear, coordinates clamped to the atlas's edge (``grid_sample``, align_corners,
  border);
- composite: over the frame's avatar's background plate by the atlas's alpha.

``atlas`` (A, H, S, 4) and ``plate`` (A, S, S, 3) float32 hold A avatars; ``which`` (B,) says each
frame's. Returns (B, S, S, 3) float32 in [0, 255]. Rasterising scatters each triangle's bounding
box, grouped by box size (``BUCKETS``): readable, but it asks the host which triangles fall in
each group (``nonzero``), so it cannot be captured in a CUDA graph; the Triton kernel can."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EDGE_TOLERANCE = 0.5  # pixels: cover pixels whose centre is within this of a triangle's edge
BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)


def bounds(tri_xy: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each triangle's integer bounding box (lo, hi) (B, K, 2), clipped to the frame."""
    lo = tri_xy.amin(2).floor().clamp(0, size - 1)
    hi = tri_xy.amax(2).ceil().clamp(0, size - 1)
    return lo, hi


def rasterise(tri_xy: torch.Tensor, drawn: torch.Tensor, size: int) -> torch.Tensor:
    """Per pixel, the index (in draw order) of the last drawn triangle covering it, or -1: (B, S·S)."""
    b, s = tri_xy.shape[0], size
    lo, hi = bounds(tri_xy, s)
    extent = ((hi - lo).amax(-1) + 1) * drawn  # (B, K)
    best = torch.full((b * s * s,), -1, dtype=torch.long, device=tri_xy.device)
    rank = torch.arange(tri_xy.shape[1], device=tri_xy.device).expand(b, -1)
    need = extent.amax(0)  # (K,) box side needed over the batch
    prev = 0
    for box in BUCKETS:
        sel = torch.nonzero((need > prev) & (need <= box)).flatten()
        prev = box
        if len(sel) == 0:
            continue
        off = torch.arange(box, device=tri_xy.device, dtype=torch.float32)
        p = tri_xy[:, sel]  # (B, k, 3, 2)
        px = lo[:, sel, 0, None, None] + off[None, None, None, :]  # (B, k, 1, n)
        py = lo[:, sel, 1, None, None] + off[None, None, :, None]  # (B, k, n, 1)
        inside = torch.ones(px.shape[:2] + (box, box), dtype=torch.bool, device=tri_xy.device)
        area = (p[..., 1, 0] - p[..., 0, 0]) * (p[..., 2, 1] - p[..., 0, 1]) - (p[..., 1, 1] - p[..., 0, 1]) * (
            p[..., 2, 0] - p[..., 0, 0]
        )
        sign = torch.where(area >= 0, 1.0, -1.0)[..., None, None]
        for i in range(3):
            a, c = p[:, :, i], p[:, :, (i + 1) % 3]
            ex, ey = c[..., 0] - a[..., 0], c[..., 1] - a[..., 1]
            length = torch.sqrt(ex * ex + ey * ey).clamp_min(1e-6)
            e = ex[..., None, None] * (py - a[..., 1, None, None]) - ey[..., None, None] * (px - a[..., 0, None, None])
            inside &= (sign * e / length[..., None, None]) >= -EDGE_TOLERANCE
        inside &= (px <= hi[:, sel, 0, None, None]) & (py <= hi[:, sel, 1, None, None])
        inside &= drawn[:, sel, None, None]
        bi = torch.arange(b, device=tri_xy.device)[:, None, None, None]
        flat = bi * s * s + py.long() * s + px.long()
        vals = rank[:, sel, None, None].expand_as(inside)
        best.scatter_reduce_(0, flat.expand_as(inside)[inside], vals[inside], reduce="amax")
    return best.view(b, s * s)


def warp_composite(tri_xy: torch.Tensor, aff: torch.Tensor, drawn: torch.Tensor, atlas: torch.Tensor,
                   plate: torch.Tensor, which: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """See the module docstring."""
    b, s = tri_xy.shape[0], plate.shape[1]
    best = rasterise(tri_xy, drawn, s)  # (B, S·S)
    covered = best >= 0
    a = aff[torch.arange(b, device=aff.device)[:, None], best.clamp_min(0)]  # (B, S·S, 3, 2)
    ys, xs = torch.meshgrid(torch.arange(s, device=aff.device), torch.arange(s, device=aff.device), indexing="ij")
    pix = torch.stack([xs, ys], -1).float().view(1, -1, 2).expand(b, -1, -1)  # (B, S·S, 2)
    mapped = pix[..., 0:1] * a[..., 0, :] + pix[..., 1:2] * a[..., 1, :] + a[..., 2, :]
    mapped = torch.where(covered[..., None], mapped, pix)
    h_atlas, w_atlas = atlas.shape[1], atlas.shape[2]
    grid = torch.stack([mapped[..., 0] / (w_atlas - 1) * 2 - 1, mapped[..., 1] / (h_atlas - 1) * 2 - 1], -1)
    source = atlas[which].permute(0, 3, 1, 2)  # (B, 4, H, W)
    warped = F.grid_sample(source, grid.view(b, s, s, 2), mode="bilinear", padding_mode="border", align_corners=True)
    warped = warped.permute(0, 2, 3, 1)  # (B, S, S, 4)
    back = plate[which]
    return back + (warped[..., :3] - back) * (warped[..., 3:4] / 255.0)
