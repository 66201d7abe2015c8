"""The canonical neutral face: 478 points in canonical units, shipped as canonical.npz.

mediapipe ships no canonical mesh in the 0.10.14 wheel, so we build one from the bundled
astronaut portrait: track it and its mirror image, pair each point with its mirror twin,
make the shape left-right symmetric in a frontal frame, then remove its expression (open
smiling mouth) with the blendshape fields. Rebuild with ``python -m posetalk.models.face.canonical``.

Canonical frame: x to the image's right, y down, z away from the camera; the symmetry plane is
x = 0, the forehead-to-chin line (points 10, 152) is vertical, face width (234 to 454) is 1,
the origin is the centroid of the 468 mesh points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from posetalk.models.face import topology as T

PATH = Path(__file__).with_name("canonical.npz")


@dataclass(frozen=True)
class Canonical:
    vertices: np.ndarray  # (478, 3) float32 neutral face
    mirror: np.ndarray  # (478,) int32: index of each point's mirror twin
    rigid: np.ndarray  # (R,) int32: points that move only with the head (pose fitting)


def _frame(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Rotate, centre and scale ``points`` into the canonical frame."""
    x = points - points[: T.N_MESH].mean(0)
    # Symmetry-plane normal: improper Procrustes of the shape onto its mirror-paired self.
    u, _, vt = np.linalg.svd(x[mirror].T @ x)
    q = u @ vt
    if np.linalg.det(q) > 0:  # force a reflection
        u[:, -1] *= -1
        q = u @ vt
    w, v = np.linalg.eig(q)
    n = np.real(v[:, np.argmin(np.real(w))])
    if (x[T.CHEEK_LEFT] - x[T.CHEEK_RIGHT]) @ n < 0:
        n = -n
    ey = x[T.CHIN] - x[T.FOREHEAD]
    ey = ey - (ey @ n) * n
    ey /= np.linalg.norm(ey)
    ez = np.cross(n, ey)
    y = x @ np.stack([n, ey, ez], 1)
    return y / np.linalg.norm(y[T.CHEEK_LEFT] - y[T.CHEEK_RIGHT])


def _rigid_points(c: np.ndarray) -> np.ndarray:
    """Points above the upper lip that are away from eyelids and brows."""
    movers = list(T.LEFT_EYE_UPPER + T.LEFT_EYE_LOWER + T.RIGHT_EYE_UPPER + T.RIGHT_EYE_LOWER)
    movers += list(T.LEFT_BROW_UPPER + T.LEFT_BROW_LOWER + T.RIGHT_BROW_UPPER + T.RIGHT_BROW_LOWER)
    d = np.sqrt(((c[: T.N_MESH, None, :2] - c[None, movers, :2]) ** 2).sum(-1)).min(1)
    upper_lip_y = c[list(T.LIP_OUTER_UPPER), 1].min()
    ok = (d > 0.06) & (c[: T.N_MESH, 1] < upper_lip_y - 0.03)
    return np.flatnonzero(ok).astype(np.int32)


def build() -> Canonical:
    """Build the canonical face from the astronaut portrait (about a second)."""
    import skimage.data
    from posetalk.models.face.blendshapes import basis
    from posetalk.models.face.params import INDEX
    from posetalk.models.face.tracker import track
    from scipy.optimize import linear_sum_assignment, lsq_linear

    img = skimage.data.astronaut()
    w = img.shape[1]
    a, b = track(img), track(np.ascontiguousarray(img[:, ::-1]))
    if a is None or b is None:
        raise RuntimeError("the astronaut portrait lost its face")
    la, lb = a.landmarks.astype(np.float64), b.landmarks.astype(np.float64)
    lb[:, 0] = w - 1 - lb[:, 0]  # the mirror image's points, flipped back
    # Point i of the mirror image lands on the mirror twin of point i.
    cost = ((lb[:, None] - la[None]) ** 2).sum(-1)
    _, mirror = linear_sum_assignment(cost)
    y = _frame((la + lb[np.argsort(mirror)]) / 2, mirror)
    sym = (y + y[mirror] * [-1, 1, 1]) / 2

    # Remove the portrait's expression: close the lips, lower the smiling corners.
    names = ["jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthUpperUpLeft",
             "mouthUpperUpRight", "mouthLowerDownLeft", "mouthLowerDownRight"]  # fmt: skip
    bs = basis(sym)[[INDEX[n] for n in names]]  # (K, 478, 3)

    def residual_rows(shape_or_field: np.ndarray, with_offset: bool) -> np.ndarray:
        f = shape_or_field
        gaps = f[list(T.LIP_INNER_UPPER[1:-1]), :2] - f[list(T.LIP_INNER_LOWER[1:-1]), :2]
        centre_y = (f[13, 1] + f[14, 1]) / 2
        corners = f[[61, 291], 1] - centre_y - (0.01 if with_offset else 0.0)
        return np.concatenate([gaps[:, 1], 0.3 * gaps[:, 0], corners])

    target = residual_rows(sym, True)
    a_mat = np.stack([residual_rows(f, False) for f in bs], 1)
    wts = lsq_linear(a_mat, target, bounds=(0.0, 1.0)).x
    neutral = sym - np.tensordot(wts, bs, 1)
    for u, lo in zip(T.LIP_INNER_UPPER, T.LIP_INNER_LOWER, strict=True):
        mid = (neutral[u] + neutral[lo]) / 2
        neutral[u], neutral[lo] = mid, mid
    neutral = (neutral + neutral[mirror] * [-1, 1, 1]) / 2
    neutral -= neutral[: T.N_MESH].mean(0)
    return Canonical(neutral.astype(np.float32), mirror.astype(np.int32), _rigid_points(neutral))


@lru_cache(maxsize=1)
def load() -> Canonical:
    with np.load(PATH) as z:
        return Canonical(z["vertices"], z["mirror"], z["rigid"])


def main() -> None:
    c = build()
    np.savez(PATH, vertices=c.vertices, mirror=c.mirror, rigid=c.rigid)
    print(f"wrote {PATH} ({len(c.vertices)} points, {len(c.rigid)} rigid)")


if __name__ == "__main__":
    main()
