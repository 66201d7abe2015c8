"""The batched PyTorch renderer (CUDA when present): the same pictures as the CPU renderer.

Per batch of frames: deform and project the control mesh, rank triangles back to front,
rasterise by scattering each triangle's candidate pixels with its draw rank (the highest rank
wins, as the last triangle painted does on the CPU), build the backward map, sample the atlas
with grid_sample and composite over the background plate. This is the readable reference that
kernels/ will speed up.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from posetalk.models.render.avatar import Avatar
from posetalk.models.render.mesh import foldable

EDGE_TOLERANCE = 0.5  # pixels: cover pixels whose centre is within this of a triangle's edge
BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)


def rotation_matrices(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) = Rz(roll) · Rx(pitch) · Ry(-yaw), as geometry.rotation_matrix."""
    cy, sy = torch.cos(-yaw), torch.sin(-yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    o, z = torch.ones_like(yaw), torch.zeros_like(yaw)
    ry = torch.stack([cy, z, sy, z, o, z, -sy, z, cy], -1).view(-1, 3, 3)
    rx = torch.stack([o, z, z, z, cp, -sp, z, sp, cp], -1).view(-1, 3, 3)
    rz = torch.stack([cr, -sr, z, sr, cr, z, z, z, o], -1).view(-1, 3, 3)
    return rz @ rx @ ry


class TorchRenderer:
    name = "torch"

    def __init__(self, avatar: Avatar, device: str | torch.device | None = None) -> None:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.avatar = avatar
        self.size = avatar.size
        d = self.device

        def t(x: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x), dtype=dtype, device=d)

        self.verts = t(avatar.verts)
        self.basis = t(avatar.basis)
        self.iris = t(avatar.iris, torch.long)
        self.eye_centres = t(avatar.eye_centres)
        self.outer_can = t(avatar.outer_can)
        self.outer_src = t(avatar.outer_src)
        self.outer_head = t(avatar.outer_head)[:, None]
        self.uv = t(avatar.uv)
        self.tris = t(avatar.triangles, torch.long)
        self.layer = t(avatar.layer)
        self.pivot = t(avatar.pivot)
        self.src_rotation = t(avatar.rotation)
        self.src_offset = t(avatar.offset)
        static_vertex = np.zeros(len(avatar.uv), bool)
        static_vertex[avatar.n_deform :] = avatar.outer_head == 0
        self.moving = t(~static_vertex[avatar.triangles].all(1), torch.bool)
        q = avatar.uv[avatar.triangles].astype(np.float64)
        f1, f2 = q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]
        self.uv_winding = t(np.sign(f1[:, 0] * f2[:, 1] - f1[:, 1] * f2[:, 0]), torch.float64)
        self.foldable = t(foldable(avatar), torch.bool)
        # a folded lip triangle: pixel -> the same pixel of the clean portrait (mesh.affines)
        self.identity = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, avatar.clean_row]], device=self.device)
        atlas = t(avatar.atlas).permute(2, 0, 1)[None]  # (1, 4, 4S, S)
        self.atlas = atlas
        self.plate = t(avatar.plate)  # (S, S, 3)
        s = self.size
        ys, xs = torch.meshgrid(torch.arange(s, device=d), torch.arange(s, device=d), indexing="ij")
        self.pix = torch.stack([xs, ys], -1).float().view(-1, 2)  # (S·S, 2)

    def vertices(self, pose: torch.Tensor, gaze: torch.Tensor, expr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, V, 2) output pixels and (B, V) depths; mirrors mesh.frame_vertices."""
        av = self.avatar
        v = self.verts + torch.einsum("bk,knc->bnc", expr, self.basis)  # (B, N, 3)
        rg = rotation_matrices(gaze[:, 0], gaze[:, 1], torch.zeros_like(gaze[:, 0]))
        for eye in range(2):
            ids, c = self.iris[eye], self.eye_centres[eye]
            v[:, ids] = (v[:, ids] - c) @ rg.transpose(1, 2) + c
        r = rotation_matrices(pose[:, 0], pose[:, 1], pose[:, 2])
        s = (av.scale * torch.exp(pose[:, 5]))[:, None, None]
        anchor = av.scale * self.src_rotation @ self.pivot + self.src_offset  # (3,)
        shift = torch.stack([pose[:, 3], pose[:, 4], torch.zeros_like(pose[:, 3])], -1) * av.scale
        anchor = (anchor + shift)[:, None]  # (B, 1, 3)
        x = s * (v - self.pivot) @ r.transpose(1, 2) + anchor
        xo = s * (self.outer_can - self.pivot) @ r.transpose(1, 2) + anchor
        h = self.outer_head
        xo2 = h * xo[..., :2] + (1 - h) * self.outer_src
        return torch.cat([x[..., :2], xo2], 1), torch.cat([x[..., 2], xo[..., 2]], 1)

    def _rasterise(self, xy: torch.Tensor, rank: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Per pixel, the highest draw rank of a covering triangle, or -1: (B, S·S) int64."""
        b, s = xy.shape[0], self.size
        tri_xy = xy[:, self.tris]  # (B, K, 3, 2)
        lo = tri_xy.amin(2).floor().clamp(0, s - 1)
        hi = tri_xy.amax(2).ceil().clamp(0, s - 1)
        extent = ((hi - lo).amax(-1) + 1) * valid  # (B, K)
        best = torch.full((b * s * s,), -1, dtype=torch.long, device=xy.device)
        need = extent.amax(0)  # (K,) box side needed over the batch
        prev = 0
        for size in BUCKETS:
            sel = torch.nonzero((need > prev) & (need <= size)).flatten()
            prev = size
            if len(sel) == 0:
                continue
            off = torch.arange(size, device=xy.device, dtype=torch.float32)
            p = tri_xy[:, sel]  # (B, k, 3, 2)
            px = lo[:, sel, 0, None, None] + off[None, None, None, :]  # (B, k, 1, n)
            py = lo[:, sel, 1, None, None] + off[None, None, :, None]  # (B, k, n, 1)
            inside = torch.ones(px.shape[:2] + (size, size), dtype=torch.bool, device=xy.device)
            area = (p[..., 1, 0] - p[..., 0, 0]) * (p[..., 2, 1] - p[..., 0, 1]) - (p[..., 1, 1] - p[..., 0, 1]) * (
                p[..., 2, 0] - p[..., 0, 0]
            )
            sign = torch.where(area >= 0, 1.0, -1.0)[..., None, None]
            for i in range(3):
                a, c = p[:, :, i], p[:, :, (i + 1) % 3]
                ex, ey = c[..., 0] - a[..., 0], c[..., 1] - a[..., 1]
                length = torch.sqrt(ex * ex + ey * ey).clamp_min(1e-6)
                e = ex[..., None, None] * (py - a[..., 1, None, None]) - ey[..., None, None] * (
                    px - a[..., 0, None, None]
                )
                inside &= (sign * e / length[..., None, None]) >= -EDGE_TOLERANCE
            inside &= (px <= hi[:, sel, 0, None, None]) & (py <= hi[:, sel, 1, None, None])
            inside &= valid[:, sel, None, None]
            bi = torch.arange(b, device=xy.device)[:, None, None, None]
            flat = bi * s * s + py.long() * s + px.long()
            vals = rank[:, sel, None, None].expand_as(inside)
            best.scatter_reduce_(0, flat.expand_as(inside)[inside], vals[inside], reduce="amax")
        return best.view(b, s * s)

    @torch.no_grad()
    def render_tensor(self, pose: torch.Tensor, gaze: torch.Tensor, expr: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 3) float32 frames in [0, 255] on the renderer's device."""
        b, s = pose.shape[0], self.size
        xy, depth = self.vertices(pose, gaze, expr)
        # Draw order: by layer, farthest first within a layer; rank = position in that order.
        tri_depth = depth[:, self.tris].mean(-1)  # (B, K)
        key = self.layer * 1e4 - tri_depth
        order = torch.argsort(key, dim=1, stable=True)  # (B, K) triangle ids back to front
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        tri_xy = xy[:, self.tris]  # (B, K, 3, 2)
        m = torch.cat([tri_xy, torch.ones_like(tri_xy[..., :1])], -1).double()  # (B, K, 3, 3)
        det = torch.linalg.det(m)
        folded = (det * self.uv_winding <= 0) & self.foldable  # as in mesh.affines: drawn as the portrait
        drawn = (det.abs() > 1e-6) & self.moving
        valid = drawn & ~folded
        m = torch.where(valid[..., None, None], m, torch.eye(3, device=m.device, dtype=m.dtype))
        aff = torch.linalg.solve(m, self.uv[self.tris].double().expand(b, -1, -1, -1)).float()  # (B, K, 3, 2)
        aff = torch.where(folded[..., None, None], self.identity, aff)
        best = self._rasterise(xy, rank, drawn)  # (B, S·S)
        covered = best >= 0
        tri = torch.gather(order, 1, best.clamp_min(0))  # (B, S·S)
        a = aff[torch.arange(b, device=xy.device)[:, None], tri]  # (B, S·S, 3, 2)
        pix = self.pix.expand(b, -1, -1)
        mapped = pix[..., 0:1] * a[..., 0, :] + pix[..., 1:2] * a[..., 1, :] + a[..., 2, :]
        mapped = torch.where(covered[..., None], mapped, pix)  # (B, S·S, 2)
        h_atlas = self.atlas.shape[2]
        grid = torch.stack([mapped[..., 0] / (s - 1) * 2 - 1, mapped[..., 1] / (h_atlas - 1) * 2 - 1], -1).view(
            b, s, s, 2
        )
        warped = F.grid_sample(self.atlas.expand(b, -1, -1, -1), grid, mode="bilinear",
                               padding_mode="border", align_corners=True)  # fmt: skip
        warped = warped.permute(0, 2, 3, 1)  # (B, S, S, 4)
        alpha = warped[..., 3:4] / 255.0
        return self.plate + (warped[..., :3] - self.plate) * alpha

    def render(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """Frames (T, S, S, 3) uint8, rendered in one batch."""
        args = [
            torch.as_tensor(np.atleast_2d(np.asarray(x, np.float32)), device=self.device)
            for x in (pose, gaze, expression)
        ]
        out = self.render_tensor(*args)
        return (out + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
