"""The NumPy/OpenCV renderer: rasterise triangle ids back to front, turn them into a dense
backward map with per-triangle lookup tables, sample the atlas with cv2.remap and blend over
the background plate."""

from __future__ import annotations

import cv2
import numpy as np
from posetalk.models.render.avatar import Avatar
from posetalk.models.render.mesh import affines, draw_order, foldable, frame_vertices

SUBPIXEL_BITS = 4


class CpuRenderer:
    """Renders frames of one avatar on the CPU. Not thread-safe: one per worker thread."""

    name = "cpu"

    def __init__(self, avatar: Avatar) -> None:
        self.avatar = avatar
        size = avatar.size
        self.size = size
        yy, xx = np.mgrid[:size, :size].astype(np.float32)
        self._xx, self._yy = xx, yy
        self._ids = np.empty((size, size), np.int32)
        # Triangles whose corners never move (the border) map to themselves: skip them.
        n_def = avatar.n_deform
        tri = avatar.triangles
        static_vertex = np.zeros(len(avatar.uv), bool)
        static_vertex[n_def:] = avatar.outer_head == 0
        self._moving = ~static_vertex[tri].all(1)
        self._foldable = foldable(avatar)
        self._fg = np.ascontiguousarray(avatar.atlas)
        self._plate = np.ascontiguousarray(avatar.plate)
        self._crop_composite = avatar.image.copy()
        self._person = np.ascontiguousarray(avatar.atlas[:size])  # the still portrait's colour and matte
        # Affine table rows: one per triangle, then the identity for pixels no triangle covers.
        self._table = np.zeros((6, len(tri) + 1), np.float32)
        self._blank = len(tri)
        self._buffers: dict[str, np.ndarray] = {}

    def render_frame(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """One frame (size, size, 3) uint8 RGB."""
        found = self._warp(pose, gaze, expression)
        if found is None:
            return self._crop_composite.copy()
        warped, (x0, y0, x1, y1) = found
        h, w = y1 - y0, x1 - x0
        alpha = self._scratch("alpha", (h, w), np.float32)
        np.multiply(warped[..., 3], 1.0 / 255.0, out=alpha)
        beta = self._scratch("beta", (h, w), np.float32)
        np.subtract(1.0, alpha, out=beta)
        rgb = cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB, dst=self._scratch("rgb", (h, w, 3), np.uint8))
        out = self._crop_composite.copy()
        out[y0:y1, x0:x1] = cv2.blendLinear(
            rgb, self._plate[y0:y1, x0:x1], alpha, beta, dst=self._scratch("blend", (h, w, 3), np.uint8)
        )
        return out

    def render_rgba(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """One frame (size, size, 4) uint8: the person's own colour and the person matte, no
        background (straight alpha), for overlays: composited over the portrait's background
        plate it is ``render_frame``."""
        out = self._person.copy()
        found = self._warp(pose, gaze, expression)
        if found is not None:
            warped, (x0, y0, x1, y1) = found
            out[y0:y1, x0:x1] = warped
        return out

    def _warp(
        self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray
    ) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """The atlas warped over the region the moving triangles reach, (h, w, 4) RGBA, and that
        region (x0, y0, x1, y1); None when nothing moves into the frame."""
        av = self.avatar
        xy, depth = frame_vertices(av, pose, gaze, expression)
        order = draw_order(av, depth)
        a, ok = affines(xy, av.uv, av.triangles, self._foldable, av.clean_row)
        order = order[(self._moving & ok)[order]]
        ids = self._ids
        ids.fill(self._blank)
        pts = np.round(xy * (1 << SUBPIXEL_BITS)).astype(np.int32)
        tri_pts = pts[av.triangles[order]]
        fill = cv2.fillConvexPoly
        for k, p in zip(order.tolist(), tri_pts, strict=True):
            fill(ids, p, k, cv2.LINE_8, SUBPIXEL_BITS)
        if len(order) == 0:
            return None
        # The region the moving triangles can reach: their bounding box, clipped to the frame.
        lo = np.floor(xy[av.triangles[order]].reshape(-1, 2).min(0)).astype(int)
        hi = np.ceil(xy[av.triangles[order]].reshape(-1, 2).max(0)).astype(int) + 1
        x0, y0 = np.maximum(lo, 0)
        x1, y1 = np.minimum(hi, self.size)
        if x1 <= x0 or y1 <= y0:
            return None
        table = self._table
        table[:, :-1] = a.reshape(-1, 6).T
        table[:, -1] = (1, 0, 0, 0, 1, 0)
        h, w = y1 - y0, x1 - x0
        sub = self._scratch("sub", (h, w), np.int32)
        sub[:] = ids[y0:y1, x0:x1]
        xx, yy = self._xx[y0:y1, x0:x1], self._yy[y0:y1, x0:x1]
        maps = []
        for row in (0, 3):
            m = self._scratch(f"map{row}", (h, w), np.float32)
            c = self._scratch("coef", (h, w), np.float32)
            table[row + 2].take(sub, out=m, mode="clip")
            table[row].take(sub, out=c, mode="clip")
            c *= xx
            m += c
            table[row + 1].take(sub, out=c, mode="clip")
            c *= yy
            m += c
            maps.append(m)
        warped = cv2.remap(
            self._fg,
            maps[0],
            maps[1],
            cv2.INTER_LINEAR,
            dst=self._scratch("warped", (h, w, 4), np.uint8),
            borderMode=cv2.BORDER_REPLICATE,
        )
        return warped, (int(x0), int(y0), int(x1), int(y1))

    def _scratch(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """A contiguous work array reused across frames (fresh allocations cost page faults)."""
        n = int(np.prod(shape))
        buf = self._buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.size < n:
            buf = np.empty(self.size * self.size * int(np.prod(shape[2:])), dtype)
            self._buffers[name] = buf
        return buf[:n].reshape(shape)

    def render(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """Frames (T, size, size, 3) uint8 for T rows of pose (T,6), gaze (T,2), expression (T,21)."""
        pose, gaze, expression = (np.atleast_2d(np.asarray(x, np.float32)) for x in (pose, gaze, expression))
        return np.stack([self.render_frame(p, g, e) for p, g, e in zip(pose, gaze, expression, strict=True)])


class AlphaRenderer:
    """``render`` gives RGBA frames (``CpuRenderer.render_rgba``: the person on a transparent
    background, straight alpha): what an engine session opened with ``alpha=True`` renders, for
    overlays."""

    name = "cpu-alpha"

    def __init__(self, avatar: Avatar) -> None:
        self.cpu = CpuRenderer(avatar)

    def render(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """Frames (T, size, size, 4) uint8 for T rows of pose, gaze and expression."""
        pose, gaze, expression = (np.atleast_2d(np.asarray(x, np.float32)) for x in (pose, gaze, expression))
        return np.stack([self.cpu.render_rgba(p, g, e) for p, g, e in zip(pose, gaze, expression, strict=True)])
