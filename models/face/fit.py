"""Fitting tracked landmarks: head pose by Procrustes on rigid points, blendshape weights by
bounded least squares against the canonical neutral face, gaze from the irises."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from posetalk.models.face import canonical
from posetalk.models.face import topology as T
from posetalk.models.face.blendshapes import basis
from posetalk.models.face.geometry import angles_from_matrix, fit_similarity
from scipy.optimize import lsq_linear

EYE_RADIUS = 0.085  # eyeball radius in face widths (12 mm over a 14 cm face)


@dataclass
class FaceFit:
    scale: float  # pixels per face width
    rotation: np.ndarray  # (3, 3) canonical -> camera
    offset: np.ndarray  # (3,) pixels: points = scale · R · canonical + offset
    points: np.ndarray  # (478, 3) the landmarks in the canonical frame (pose removed)
    expression: np.ndarray  # (21,) blendshape weights
    gaze: np.ndarray  # (2,) yaw, pitch of the eyes relative to the head

    @property
    def angles(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) radians."""
        return angles_from_matrix(self.rotation)


@lru_cache(maxsize=1)
def canonical_basis() -> np.ndarray:
    return basis(canonical.load().vertices)


def fit_pose(landmarks: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (scale, R, offset) taking canonical rigid points onto the landmarks."""
    c = canonical.load()
    return fit_similarity(c.vertices[c.rigid].astype(np.float64), landmarks[c.rigid].astype(np.float64))


# Gaze. What mediapipe's landmarks give, measured on frames the renderer drew with known gaze and
# head pose (tests/test_gaze_fit.py):
#  * The iris points' depth is no measurement: all five carry the mean depth of the 16 eyelid
#    points, whatever the eye does. Only the image position of the iris means anything; and
#    because the five points share one depth, the plane of the iris ring lies parallel to the
#    image, which gives the camera's direction in the canonical frame from the points alone.
#  * The eye corners and lids follow the iris (by 0.15-0.35 of its motion in the image; see
#    mediapipe issue #1786), and the corners' canonical positions move with the head pose (about
#    0.3-0.5 of the head's angle, in gaze units). The iris measured against the corners lost half
#    its gain and took in a third of the head's yaw and pitch. The ring of skin around the orbit
#    follows the iris least and keeps its place under head turns.
#  * Where the lids hide part of the iris, the reported centre sits near the centre of the part
#    that shows (vertically the iris then reads about half its motion).
# So each eye's gaze is read in the image plane: the iris centre, corrected for the lids hiding it,
# against where the eyeball centre projects, placed from the orbit ring by the canonical face's
# offsets; then the ray through the iris meets the eyeball, a sphere of EYE_RADIUS, the renderer's
# geometry (prepare.py turns the iris about a centre EYE_RADIUS behind it).
IRIS_RADIUS = 0.042  # 11.7 mm / 2 over a 14 cm face (the iris diameter varies little between people)
# Rings of mesh points around the subject's right eye, by edge distance from the eyelid contour
# (1: the lid folds, 2: the orbit rim, 3: the lower brow edge and upper cheek). The eyeball
# centre's horizontal place comes from ring 3 (mediapipe drags it least with the iris, and the
# brows move up and down, not sideways), its vertical place from ring 1 (nearest to the eye,
# below the brows, and the least swayed by head pitch).
_RING_X = (35, 46, 52, 53, 55, 65, 111, 117, 118, 119, 120, 121, 124, 128, 193, 245)
_RING_Y = (22, 23, 24, 25, 26, 27, 28, 29, 30, 56, 110, 112, 130, 190, 243, 247)
_LID_LOOP = T.RIGHT_EYE_UPPER + T.RIGHT_EYE_LOWER[-2:0:-1]  # closed contour of the opening


@dataclass(frozen=True)
class _Eye:
    iris: int  # centre point
    ring: tuple[int, ...]  # the four iris ring points
    lids: list[int]
    ring_x: list[int]
    ring_y: list[int]


@lru_cache(maxsize=1)
def _eyes() -> tuple[_Eye, _Eye]:
    mirror = canonical.load().mirror

    def m(ids: tuple[int, ...]) -> list[int]:
        return [int(mirror[i]) for i in ids]

    right = _Eye(T.RIGHT_IRIS[0], T.RIGHT_IRIS[1:], list(_LID_LOOP), list(_RING_X), list(_RING_Y))
    left = _Eye(T.LEFT_IRIS[0], T.LEFT_IRIS[1:], m(_LID_LOOP), m(_RING_X), m(_RING_Y))
    return right, left


def _view_direction(points: np.ndarray) -> np.ndarray:
    """Unit vector from the camera into the scene, in the frame of ``points``: normal to both
    irises' ring planes, which mediapipe draws parallel to the image (see above)."""
    v = np.zeros(3)
    for a, b, c, d in (T.RIGHT_IRIS[1:], T.LEFT_IRIS[1:]):
        v += np.cross(points[a] - points[c], points[b] - points[d])
    n = np.linalg.norm(v)
    if n < 1e-9:
        return np.array([0.0, 0.0, 1.0])
    v = v / n if v[2] >= 0 else -v / n
    # A face more than 60° off the camera is beyond what the tracker follows: no ring there.
    return v if v[2] > 0.5 else np.array([0.0, 0.0, 1.0])


def _image_axes(v: np.ndarray) -> np.ndarray:
    """(2, 3) orthonormal axes of the image plane (normal v), the first along the head's x."""
    e1 = np.array([1.0, 0.0, 0.0]) - v[0] * v
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(v, e1)])


def _visible_centroid(c: np.ndarray, radius: float, poly: np.ndarray, rows: int = 32) -> tuple[np.ndarray, float]:
    """Centroid of the part of the disk (c, radius) inside the polygon, scanned in rows (the
    polygon is taken as convex along each row), and the fraction of the disk that shows."""
    u = (np.arange(rows) + 0.5) / rows * 2 - 1
    ys = c[1] + radius * u
    half = radius * np.sqrt(1 - u**2)
    a, b = poly, np.roll(poly, -1, 0)
    y0, y1 = a[None, :, 1], b[None, :, 1]
    yy = ys[:, None]
    crosses = (yy >= np.minimum(y0, y1)) & (yy < np.maximum(y0, y1))
    x = a[None, :, 0] + (yy - y0) / np.where(y1 == y0, 1.0, y1 - y0) * (b[:, 0] - a[:, 0])[None]
    inside = crosses.any(1)
    lo = np.where(crosses, x, np.inf).min(1)
    hi = np.where(crosses, x, -np.inf).max(1)
    x0 = np.where(inside, np.maximum(lo, c[0] - half), 0.0)
    x1 = np.where(inside, np.minimum(hi, c[0] + half), 0.0)
    w = np.clip(x1 - x0, 0.0, None)
    total = float(w.sum())
    if total <= 1e-12:
        return c, 0.0
    return np.array([(w * (x0 + x1)).sum() / (2 * total), (w * ys).sum() / total]), total / (2 * half.sum())


def _iris_centre(seen: np.ndarray, lids: np.ndarray, radius: float = IRIS_RADIUS) -> np.ndarray:
    """Where the whole iris disk sits, given the centre of the part the lids leave showing.

    Solved by fixed-point steps (each moves the disk by what its visible centroid misses). An
    eye that shows less than a fifth of its iris (closing, blinking) is taken as reported, and
    the correction fades in up to half showing; it never moves the centre by more than a radius.
    """
    c = seen.copy()
    frac = 1.0
    for _ in range(8):
        vis, frac = _visible_centroid(c, radius, lids)
        if frac < 0.2:
            return seen
        c = c + (seen - vis)
        off = np.linalg.norm(c - seen)
        if off > radius:
            c = seen + (c - seen) * radius / off
    return seen + (c - seen) * min(1.0, (frac - 0.2) / 0.3)


def _eye_directions(points: np.ndarray, rest: tuple[np.ndarray, ...] | None) -> list[np.ndarray]:
    """Each eye's unit gaze direction in the frame of ``points``; with ``rest`` None, the
    canonical face's eyeball-centre offsets from its rings instead (the definition of gaze 0)."""
    v = np.array([0.0, 0.0, 1.0]) if rest is None else _view_direction(points)
    axes = _image_axes(v)
    out = []
    for i, eye in enumerate(_eyes()):
        seen = axes @ points[eye.iris]
        centre = _iris_centre(seen, points[eye.lids] @ axes.T)
        if rest is None:
            # The canonical face looks ahead: its eyeball centre lies EYE_RADIUS behind the iris.
            ball = points[eye.iris] + (centre - seen) @ axes + [0.0, 0.0, EYE_RADIUS]
            out += [ball - points[eye.ring_x].mean(0), ball - points[eye.ring_y].mean(0)]
            continue
        # The eyeball centre in the image: x from one ring, y from the other. Projecting onto the
        # image axes drops the landmarks' depth, the tracker's least reliable axis.
        bx = axes[0] @ (points[eye.ring_x].mean(0) + rest[2 * i])
        by = axes[1] @ (points[eye.ring_y].mean(0) + rest[2 * i + 1])
        a = (centre - [bx, by]) / EYE_RADIUS
        n = float(np.linalg.norm(a))
        if n > 0.99:
            a, n = a * 0.99 / n, 0.99
        out.append(a @ axes - np.sqrt(1 - n * n) * v)  # the near side of the eyeball
    return out


@lru_cache(maxsize=1)
def _rest() -> tuple[np.ndarray, ...]:
    return tuple(_eye_directions(canonical.load().vertices.astype(np.float64), None))


def fit_gaze(points: np.ndarray) -> np.ndarray:
    """Eye yaw/pitch (radians, relative to the head) from the landmarks in the canonical frame.

    0 is the canonical face's gaze; the signs are those of models/face/params.py. Both eyes'
    directions are averaged (the renderer turns both eyes together).
    """
    d = np.mean(_eye_directions(np.asarray(points, np.float64), _rest()), 0)
    d /= np.linalg.norm(d)
    # d = rotation_matrix(yaw, pitch, 0) · (0, 0, -1) = (sin y, sin p cos y, -cos p cos y)
    return np.array([np.arcsin(np.clip(d[0], -1.0, 1.0)), np.arctan2(d[1], -d[2])], np.float32)


def fit_expression(points: np.ndarray) -> np.ndarray:
    """Blendshape weights in [0, 1] explaining ``points`` (canonical frame) as neutral + B·w."""
    c = canonical.load()
    b = canonical_basis()[:, : T.N_MESH]  # (21, 468, 3)
    moving = np.ones(T.N_MESH, bool)
    moving[c.rigid] = False
    # Depth from a single image is the tracker's least reliable axis: weight it down.
    wz = np.array([1.0, 1.0, 0.3])
    a = (b[:, moving] * wz).reshape(len(b), -1).T  # (3·n, 21)
    r = ((points[: T.N_MESH][moving] - c.vertices[: T.N_MESH][moving]) * wz).reshape(-1)
    # A small ridge keeps shapes that the points cannot tell apart at zero.
    lam = 1e-3
    a = np.vstack([a, np.sqrt(lam) * np.eye(len(b))])
    r = np.concatenate([r, np.zeros(len(b))])
    return lsq_linear(a, r, bounds=(0.0, 1.0)).x.astype(np.float32)


def fit_face(landmarks: np.ndarray) -> FaceFit:
    """Pose, expression and gaze of one face's (478, 3) pixel landmarks."""
    lm = landmarks.astype(np.float64)
    s, r, t = fit_pose(lm)
    points = ((lm - t) @ r) / s  # R^T (lm - t) / s, row-wise
    return FaceFit(s, r, t, points, fit_expression(points), fit_gaze(points))
