"""The NumPy/OpenCV renderer: rasterise triangle ids back to front, turn them into a dense
backward map, sample the atlas with cv2.remap and composite over the background plate."""

from __future__ import annotations

import cv2
import numpy as np
from posetalk.models.render.avatar import Avatar
from posetalk.models.render.mesh import affines, draw_order, frame_vertices

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
        self._fg = np.ascontiguousarray(avatar.atlas)
        self._plate = avatar.plate.astype(np.float32)
        self._crop_composite = avatar.image.copy()

    def render_frame(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """One frame (size, size, 3) uint8 RGB."""
        av = self.avatar
        xy, depth = frame_vertices(av, pose, gaze, expression)
        order = draw_order(av, depth)
        order = order[self._moving[order]]
        a, ok = affines(xy, av.uv, av.triangles)
        order = order[ok[order]]
        ids = self._ids
        ids.fill(-1)
        pts = np.round(xy * (1 << SUBPIXEL_BITS)).astype(np.int32)
        tris = av.triangles
        for k in order.tolist():
            cv2.fillConvexPoly(ids, pts[tris[k]], k, cv2.LINE_8, SUBPIXEL_BITS)
        moved = ids >= 0
        rows = np.flatnonzero(moved.any(1))
        if len(rows) == 0:
            return self._crop_composite.copy()
        cols = np.flatnonzero(moved.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        sub = ids[y0:y1, x0:x1]
        inside = sub >= 0
        xx, yy = self._xx[y0:y1, x0:x1], self._yy[y0:y1, x0:x1]
        map_x, map_y = xx.copy(), yy.copy()
        k = sub[inside]
        px, py = xx[inside], yy[inside]
        ak = a[k]  # (P, 2, 3)
        map_x[inside] = ak[:, 0, 0] * px + ak[:, 0, 1] * py + ak[:, 0, 2]
        map_y[inside] = ak[:, 1, 0] * px + ak[:, 1, 1] * py + ak[:, 1, 2]
        warped = cv2.remap(self._fg, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = warped[..., 3:4].astype(np.float32) * (1.0 / 255.0)
        plate = self._plate[y0:y1, x0:x1]
        comp = plate + (warped[..., :3].astype(np.float32) - plate) * alpha
        out = self._crop_composite.copy()
        out[y0:y1, x0:x1] = np.clip(comp + 0.5, 0, 255).astype(np.uint8)
        return out

    def render(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """Frames (T, size, size, 3) uint8 for T rows of pose (T,6), gaze (T,2), expression (T,21)."""
        pose, gaze, expression = (np.atleast_2d(np.asarray(x, np.float32)) for x in (pose, gaze, expression))
        return np.stack([self.render_frame(p, g, e) for p, g, e in zip(pose, gaze, expression, strict=True)])
