"""The batched PyTorch renderer (CUDA when present): the same pictures as the CPU renderer.

Per batch of frames: deform and project the control mesh, put the triangles in draw order (back
to front), solve each triangle's affine into the atlas; then the hot path, kernels.render's
``warp_composite`` (rasterise, dense map, bilinear sample, composite over the background plate):
the Triton kernel on CUDA, its PyTorch reference on the CPU. Fixed shapes; on CUDA no host
synchronisation, so ``BatchRenderer`` can capture a tick's frames in a CUDA graph."""

from __future__ import annotations

import threading

import numpy as np
import torch
from posetalk.kernels.render import warp_composite
from posetalk.models.render.avatar import Avatar
from posetalk.models.render.mesh import foldable


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


def affines(tri_xy: torch.Tensor, uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per triangle the determinant of [x y 1] and the affine A (3, 2) with [x y 1] A = uv at its
    corners: (B, K) and (B, K, 3, 2) float32 (identity-like rows where the determinant is ~0).
    Closed form (the adjugate) in float64, element-wise: no solver, so nothing waits on the host."""
    x, y = tri_xy[..., 0].double(), tri_xy[..., 1].double()  # (B, K, 3)
    x1, x2, x3 = x.unbind(-1)
    y1, y2, y3 = y.unbind(-1)
    c11, c12, c13 = y2 - y3, x3 - x2, x2 * y3 - x3 * y2
    c21, c22, c23 = y3 - y1, x1 - x3, x3 * y1 - x1 * y3
    c31, c32, c33 = y1 - y2, x2 - x1, x1 * y2 - x2 * y1
    det = x1 * c11 + y1 * c12 + c13
    inv = torch.stack([c11, c21, c31, c12, c22, c32, c13, c23, c33], -1).view(*det.shape, 3, 3)
    safe = torch.where(det.abs() > 1e-6, det, torch.ones_like(det))
    aff = (inv / safe[..., None, None]) @ uv  # (B, K, 3, 2)
    return det, aff.float()


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
        self.uv_tris = self.uv[self.tris].double()  # (K, 3, 2)
        self.foldable = t(foldable(avatar), torch.bool)
        # a folded lip triangle: pixel -> the same pixel of the clean portrait (mesh.affines)
        self.identity = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, avatar.clean_row]], device=self.device)
        self.atlas = t(avatar.atlas)[None]  # (1, 4S, S, 4): one avatar (kernels.render takes several)
        self.plate = t(avatar.plate)[None]  # (1, S, S, 3)
        self.which = torch.zeros(1, dtype=torch.int32, device=d)

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

    @torch.no_grad()
    def render_tensor(self, pose: torch.Tensor, gaze: torch.Tensor, expr: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 3) float32 frames in [0, 255] on the renderer's device."""
        tri_xy, aff, drawn = self.frame_inputs(pose, gaze, expr)
        return warp_composite(tri_xy, aff, drawn, self.atlas, self.plate, self.which[:1].expand(pose.shape[0]))

    @torch.no_grad()
    def frame_inputs(self, pose: torch.Tensor, gaze: torch.Tensor,
                     expr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """The hot path's inputs for B frames: triangles (B, K, 3, 2), their affines into the atlas
        (B, K, 3, 2) and whether each is drawn (B, K), in draw order (back to front)."""
        b = pose.shape[0]
        xy, depth = self.vertices(pose, gaze, expr)
        # Draw order: by layer, farthest first within a layer.
        tri_depth = depth[:, self.tris].mean(-1)  # (B, K)
        order = torch.argsort(self.layer * 1e4 - tri_depth, dim=1, stable=True)  # (B, K) triangle ids back to front
        tri_xy = xy[:, self.tris]  # (B, K, 3, 2)
        det, aff = affines(tri_xy, self.uv_tris)
        folded = (det * self.uv_winding <= 0) & self.foldable  # as in mesh.affines: drawn as the portrait
        drawn = (det.abs() > 1e-6) & self.moving
        aff = torch.where(folded[..., None, None], self.identity, aff)
        rows = torch.arange(b, device=order.device)[:, None]
        return tri_xy[rows, order], aff[rows, order], drawn[rows, order]

    def render(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """Frames (T, S, S, 3) uint8, rendered in one batch."""
        args = [
            torch.as_tensor(np.atleast_2d(np.asarray(x, np.float32)), device=self.device)
            for x in (pose, gaze, expression)
        ]
        out = self.render_tensor(*args)
        return (out + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy()


GRAPH_AFTER = 3  # calls with the same handles before a batch is captured in a CUDA graph


class BatchRenderer:
    """Frames of many sessions, of any avatars of one size, in one launch of the hot path: each
    frame's mesh and affines are made with its avatar's own ``TorchRenderer`` (small tensors), then
    one ``warp_composite`` draws every frame, the avatars' atlases and plates stacked (the kernel
    picks each frame's). The engine's ``cuda`` backend renders a tick's frames this way;
    ``renderer(avatar)`` gives a session its handle (the Renderer interface, ``render_many`` for a
    tick)."""

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self._lock = threading.Lock()  # sessions open and close while a tick renders
        self._avatars: dict[int, tuple[TorchRenderer, int]] = {}  # id(avatar) -> (its renderer, handles open)
        self._stack: tuple[torch.Tensor, torch.Tensor, dict[int, int]] | None = None  # atlas, plate, slot by id
        # (handles, static inputs, the graph, its output): a captured batch and every tensor it reads
        self._graph: tuple[object, list[torch.Tensor], torch.cuda.CUDAGraph, torch.Tensor] | None = None
        self._seen: tuple[object, int] = (None, 0)  # the last batch's handles and how many times running
        self.graph_error = ""  # why the last capture failed, if it did

    def renderer(self, avatar: Avatar) -> BatchMember:
        key = id(avatar)
        with self._lock:
            r, n = self._avatars.get(key, (None, 0))
            if r is None:
                r = TorchRenderer(avatar, device=self.device)
                self._stack = self._graph = None
            self._avatars[key] = (r, n + 1)
        return BatchMember(self, key, r)

    def release(self, key: int) -> None:
        with self._lock:
            r, n = self._avatars[key]
            if n > 1:
                self._avatars[key] = (r, n - 1)
            else:
                del self._avatars[key]
                self._stack = self._graph = None  # a graph reads the stacked atlases it was captured with

    def _stacked(self) -> tuple[torch.Tensor, torch.Tensor, dict[int, int]]:
        if self._stack is None:
            keys = list(self._avatars)
            rs = [self._avatars[k][0] for k in keys]
            self._stack = (torch.cat([r.atlas for r in rs]), torch.cat([r.plate for r in rs]),
                           {k: i for i, k in enumerate(keys)})  # fmt: skip
        return self._stack

    @torch.no_grad()
    def render_many(self, items: list[tuple[BatchMember, np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
        """One frame for each (handle, pose (6,), gaze (2,), expression (21,)): (n, S, S, 3) uint8.
        On CUDA, once the same handles have come in the same order ``GRAPH_AFTER`` times running
        (sessions do not change every tick), the whole batch is captured in a CUDA graph and
        replayed until they change."""
        members = [m for m, *_ in items]
        inputs = [torch.as_tensor(np.stack([np.asarray(it[i], np.float32) for it in items]), device=self.device)
                  for i in (1, 2, 3)]  # fmt: skip
        with self._lock:
            atlas, plate, slots = self._stacked()
            key = tuple(id(m) for m in members)
            graph = self._graph if self._graph is not None and self._graph[0] == key else None
            self._seen = (key, self._seen[1] + 1 if self._seen[0] == key else 1)
            capture = graph is None and self.device.type == "cuda" and self._seen[1] >= GRAPH_AFTER
        if graph is not None:
            _, static, g, out = graph
            for dst, src in zip(static, inputs, strict=False):  # the inputs; ``which`` stays as captured
                dst.copy_(src)
            g.replay()
        else:
            which = torch.tensor([slots[m.key] for m in members], dtype=torch.int32, device=self.device)
            draw = self._capture if capture else self._draw
            out = draw(members, *inputs, atlas, plate, which)
        return (out + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy()

    def _draw(self, members: list[BatchMember], pose: torch.Tensor, gaze: torch.Tensor, expr: torch.Tensor,
              atlas: torch.Tensor, plate: torch.Tensor, which: torch.Tensor) -> torch.Tensor:  # fmt: skip
        parts = [m.torch.frame_inputs(pose[i : i + 1], gaze[i : i + 1], expr[i : i + 1]) for i, m in enumerate(members)]
        k = max(p[0].shape[1] for p in parts)  # avatars' meshes may differ: pad with undrawn triangles
        pad = [tuple(torch.cat([x, x.new_zeros((1, k - x.shape[1], *x.shape[2:]))], 1) for x in p) for p in parts]
        return warp_composite(torch.cat([p[0] for p in pad]), torch.cat([p[1] for p in pad]),
                              torch.cat([p[2] for p in pad]), atlas, plate, which)  # fmt: skip

    def _capture(self, members: list[BatchMember], pose: torch.Tensor, gaze: torch.Tensor, expr: torch.Tensor,
                 atlas: torch.Tensor, plate: torch.Tensor, which: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """``_draw``, captured for these handles in a CUDA graph (eager if that fails)."""
        inputs = [pose, gaze, expr]
        static = [x.clone() for x in inputs]
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm up off the capture (Triton compiles, allocators settle)
                for _ in range(2):
                    self._draw(members, *static, atlas, plate, which)
            torch.cuda.current_stream().wait_stream(side)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                out = self._draw(members, *static, atlas, plate, which)
        except Exception as exc:  # an op that cannot be captured: this batch stays eager
            self.graph_error = f"{type(exc).__name__}: {exc}"
            return self._draw(members, *inputs, atlas, plate, which)
        with self._lock:  # ``which`` goes into the static list too: the graph reads it
            self._graph = (tuple(id(m) for m in members), [*static, which], g, out)
        g.replay()
        return out


class BatchMember:
    """One session's handle on a ``BatchRenderer``: the Renderer interface (its own frames alone),
    and ``close`` to let its avatar go."""

    name = "torch-batched"

    def __init__(self, batch: BatchRenderer, key: int, renderer: TorchRenderer) -> None:
        self.batch, self.key, self.torch, self.size = batch, key, renderer, renderer.size
        self._open = True

    def render(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        rows = zip(np.atleast_2d(pose), np.atleast_2d(gaze), np.atleast_2d(expression), strict=True)
        return self.batch.render_many([(self, p, g, e) for p, g, e in rows])

    def close(self) -> None:
        if self._open:
            self._open = False
            self.batch.release(self.key)
