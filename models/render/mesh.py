"""Per-frame geometry shared by the renderers: where every control vertex lands in the output
frame for a given pose, gaze and expression (NumPy reference; torch_render mirrors it)."""

from __future__ import annotations

import numpy as np
from posetalk.models.face.blendshapes import lip_sets
from posetalk.models.face.geometry import rotation_matrix
from posetalk.models.face.topology import LIP_INNER_UPPER, LIP_OUTER_UPPER, N_MESH
from posetalk.models.render.avatar import Avatar


def frame_vertices(
    av: Avatar, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Output-pixel positions (N+M, 2) and depths (N+M,) of all control vertices for one frame."""
    v = av.verts + np.tensordot(expression.astype(np.float32), av.basis, 1)  # (N, 3)
    rg = rotation_matrix(float(gaze[0]), float(gaze[1]), 0.0).astype(np.float32)
    for eye in range(2):
        ids, c = av.iris[eye], av.eye_centres[eye]
        v[ids] = (v[ids] - c) @ rg.T + c
    r = rotation_matrix(float(pose[0]), float(pose[1]), float(pose[2])).astype(np.float32)
    s = av.scale * float(np.exp(pose[5]))
    anchor = av.scale * av.rotation @ av.pivot + av.offset
    anchor = anchor + np.array([pose[3] * av.scale, pose[4] * av.scale, 0.0], np.float32)
    x = s * (v - av.pivot) @ r.T + anchor  # (N, 3)
    xo = s * (av.outer_can - av.pivot) @ r.T + anchor  # (M, 3)
    h = av.outer_head[:, None]
    xo_2d = h * xo[:, :2] + (1 - h) * av.outer_src
    xy = np.vstack([x[:, :2], xo_2d]).astype(np.float32)
    depth = np.concatenate([x[:, 2], xo[:, 2]]).astype(np.float32)
    return xy, depth


def draw_order(av: Avatar, depth: np.ndarray) -> np.ndarray:
    """Triangle indices back to front: by layer, then farthest first within a layer."""
    tri_depth = depth[av.triangles].mean(1)
    return np.lexsort((-tri_depth, av.layer))


def foldable(av: Avatar) -> np.ndarray:
    """(K,) which triangles to skip when drawn with the opposite winding to their atlas triangle:
    those touching the lips, which fold under their neighbours when smiling corners are pulled
    in. Elsewhere (the far cheek in a head turn) the folded skin is what the eye expects to see,
    and the mesh has nothing behind it."""
    upper, lower = lip_sets(av.verts[:N_MESH])
    lips = np.zeros(len(av.uv), bool)
    lips[:N_MESH] = upper | lower
    lips[list(LIP_OUTER_UPPER + LIP_INNER_UPPER)] = True  # the corners too
    return lips[av.triangles].any(1) & (av.triangles < N_MESH).all(1)


def affines(
    xy: np.ndarray, uv: np.ndarray, tris: np.ndarray, cull: np.ndarray | bool = False, hidden_row: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-triangle 2×3 maps from output pixels to atlas pixels, and which to draw: those not
    degenerate. Where ``cull`` says so, a triangle folded over (see ``foldable``) maps each pixel
    to the same pixel ``hidden_row`` rows down the atlas (the portrait with its mouth's dark
    creases and teeth painted over as lip and skin): it hides what lies behind it (the mouth
    interior, which showed through as dark holes at the corners of a smile pulled in), and shows
    no dark corner of the photo's own open mouth."""
    p = xy[tris].astype(np.float64)  # (K, 3, 2) output corners
    q = uv[tris].astype(np.float64)  # (K, 3, 2) atlas corners
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    f1, f2 = q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    flipped = det * (f1[:, 0] * f2[:, 1] - f1[:, 1] * f2[:, 0]) <= 0
    ok = np.abs(det) > 1e-6
    hide = ok & flipped & cull
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # M = [f1 f2] · [e1 e2]^-1, then the offset that sends corner 0 to its atlas point.
    m = np.empty((len(tris), 2, 3))
    for r in range(2):
        m[:, r, 0] = (f1[:, r] * e2[:, 1] - f2[:, r] * e1[:, 1]) * inv_det
        m[:, r, 1] = (f2[:, r] * e1[:, 0] - f1[:, r] * e2[:, 0]) * inv_det
        m[:, r, 2] = q[:, 0, r] - m[:, r, 0] * p[:, 0, 0] - m[:, r, 1] * p[:, 0, 1]
    m[~ok] = 0.0
    m[hide] = [[1.0, 0.0, 0.0], [0.0, 1.0, hidden_row]]
    return m.astype(np.float32), ok
