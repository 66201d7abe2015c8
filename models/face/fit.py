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
# head pose (tests/test_gaze_fit.py, at 256² and 512²):
#  * The iris points' depth is no measurement: all five carry the mean depth of the 16 eyelid
#    points, whatever the eye does. Only the image position of the iris means anything; and since
#    the five points share one depth, their ring lies parallel to the image, which gives the
#    camera's direction in the canonical frame from the points alone.
#  * The iris centre reads about 0.85 of the iris's motion across the image and about half of its
#    motion up and down: where the lids hide part of the iris, the reported centre sits near the
#    centre of the part that shows.
#  * The eye corners and lids follow the iris by 0.15-0.35 of its motion (mediapipe issue #1786
#    reports the same on real faces), and the corners' canonical positions move with the head,
#    by 0.3-0.5 of its yaw and pitch in gaze units. Measured against the corners, the iris lost
#    half its gain and took in a third of the head's yaw and pitch. Points farther from the eye
#    follow the iris less, and the orbit's skin keeps its place under head turns.
# So each eye is read in the image plane: the iris centre, corrected for the lids hiding part of
# it, against where the eyeball centre projects, placed from rings of points around the orbit by
# the canonical face's offsets; then the ray through the iris meets the eyeball, a sphere of
# EYE_RADIUS (the renderer's geometry: prepare.py turns the iris about a centre that far behind).
IRIS_RADIUS = 0.042  # 11.7 mm / 2 over a 14 cm face (the iris diameter varies little between people)
# Rings of mesh points around the subject's right eye, by edge distance from the eyelid contour
# (1: the lid folds, 3: the lower edge of the brow and the upper cheek). The eyeball centre's
# horizontal place comes from ring 3, which mediapipe drags least with the iris and whose brow
# points move up and down with expressions, not sideways; its vertical place from ring 1, below
# the brows. Not from the lids: a real upper lid follows the eye when it looks down.
_RING_X = (35, 46, 52, 53, 55, 65, 111, 117, 118, 119, 120, 121, 124, 128, 193, 245)
_RING_Y = (22, 23, 24, 25, 26, 27, 28, 29, 30, 56, 110, 112, 130, 190, 243, 247)
_LID_LOOP = T.RIGHT_EYE_UPPER + T.RIGHT_EYE_LOWER[-2:0:-1]  # the opening's closed contour


@dataclass(frozen=True)
class _Eye:
    iris: int  # the iris centre point
    lids: list[int]  # the opening's contour
    ring_x: list[int]
    ring_y: list[int]


@lru_cache(maxsize=1)
def _eyes() -> tuple[_Eye, _Eye]:
    mirror = canonical.load().mirror

    def m(ids: tuple[int, ...]) -> list[int]:
        return [int(mirror[i]) for i in ids]

    right = _Eye(T.RIGHT_IRIS[0], list(_LID_LOOP), list(_RING_X), list(_RING_Y))
    left = _Eye(T.LEFT_IRIS[0], m(_LID_LOOP), m(_RING_X), m(_RING_Y))
    return right, left


def _view_direction(points: np.ndarray) -> np.ndarray:
    """Unit vector from the camera into the scene in the frame of ``points``: the normal of both
    irises' rings, which mediapipe draws parallel to the image (see above)."""
    v = np.zeros(3)
    for a, b, c, d in (T.RIGHT_IRIS[1:], T.LEFT_IRIS[1:]):
        v += np.cross(points[a] - points[c], points[b] - points[d])
    n = np.linalg.norm(v)
    if n < 1e-9:
        return np.array([0.0, 0.0, 1.0])
    v = v / n if v[2] >= 0 else -v / n
    # More than 60° off the camera is beyond what the tracker follows: not a ring to trust.
    return v if v[2] > 0.5 else np.array([0.0, 0.0, 1.0])


def _image_axes(v: np.ndarray) -> np.ndarray:
    """(2, 3) orthonormal axes of the image plane (normal v), the first along the head's x."""
    e1 = np.array([1.0, 0.0, 0.0]) - v[0] * v
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(v, e1)])


def _visible_centroid(c: np.ndarray, radius: float, poly: np.ndarray, rows: int = 32) -> tuple[np.ndarray, float]:
    """Centroid of the part of the disk (c, radius) inside the polygon, scanned in rows (the
    polygon taken as convex along each row), and the fraction of the disk that shows."""
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
    """Where the whole iris disk sits (2D), given the centre of the part the lids leave showing.

    Fixed-point steps, each moving the disk by what its visible centroid misses. An eye showing
    less than a fifth of its iris (closing, blinking) is taken as reported, the correction fades
    in up to half showing, and it never moves the centre by more than a radius.
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


@lru_cache(maxsize=1)
def _rest() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Per eye, the eyeball centre's offsets from the means of its two rings on the canonical
    face, which defines gaze 0: seen from the front, EYE_RADIUS behind its iris centre."""
    points = canonical.load().vertices.astype(np.float64)
    axes = _image_axes(np.array([0.0, 0.0, 1.0]))
    out = []
    for eye in _eyes():
        seen = axes @ points[eye.iris]
        shift = _iris_centre(seen, points[eye.lids] @ axes.T) - seen
        ball = points[eye.iris] + shift @ axes + [0.0, 0.0, EYE_RADIUS]
        out.append((ball - points[eye.ring_x].mean(0), ball - points[eye.ring_y].mean(0)))
    return tuple(out)


def _eye_directions(points: np.ndarray) -> list[np.ndarray]:
    """Each eye's unit gaze direction in the frame of ``points`` (the canonical frame)."""
    v = _view_direction(points)
    axes = _image_axes(v)
    out = []
    for eye, (off_x, off_y) in zip(_eyes(), _rest(), strict=True):
        centre = _iris_centre(axes @ points[eye.iris], points[eye.lids] @ axes.T)
        # The eyeball centre in the image, across from one ring and up from the other. Projecting
        # onto the image axes drops the landmarks' depth, the tracker's least reliable axis.
        ball = np.array(
            [axes[0] @ (points[eye.ring_x].mean(0) + off_x), axes[1] @ (points[eye.ring_y].mean(0) + off_y)]
        )
        a = (centre - ball) / EYE_RADIUS
        n = float(np.linalg.norm(a))
        if n > 0.99:
            a, n = a * 0.99 / n, 0.99
        out.append(a @ axes - np.sqrt(1 - n * n) * v)  # the sphere's near side
    return out


def fit_gaze(points: np.ndarray) -> np.ndarray:
    """Eye yaw/pitch (radians, relative to the head) from the landmarks in the canonical frame.

    0 is the canonical face's gaze, the signs those of models/face/params.py. The two eyes'
    directions are averaged (the renderer turns both eyes together).
    """
    d = np.mean(_eye_directions(np.asarray(points, np.float64)), 0)
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
