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


def eye_rest(points: np.ndarray) -> np.ndarray:
    """(2, 3): where each iris centre sits relative to its eye-corner midpoint, looking ahead."""
    out = []
    for iris, (a, b) in ((468, (33, 133)), (473, (263, 362))):
        out.append(points[iris] - (points[a] + points[b]) / 2)
    return np.array(out)


def fit_gaze(points: np.ndarray) -> np.ndarray:
    """Eye yaw/pitch (radians) from the irises' offset against the canonical rest offset."""
    d = (eye_rest(points) - eye_rest(canonical.load().vertices.astype(np.float64))).mean(0)
    return np.arcsin(np.clip(d[:2] / EYE_RADIUS, -0.9, 0.9)).astype(np.float32)


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
