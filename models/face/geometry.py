"""Rotations with the documented angle conventions, similarity fitting, and rigid points."""

from __future__ import annotations

import numpy as np


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) · Rx(pitch) · Ry(-yaw) in the camera frame (x right, y down, z forward).

    Signs as in params.py: yaw > 0 turns the nose to the image's right, pitch > 0 tips it down,
    roll > 0 turns the head clockwise in the image.
    """
    cy, sy = np.cos(-yaw), np.sin(-yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def angles_from_matrix(r: np.ndarray) -> tuple[float, float, float]:
    """Inverse of rotation_matrix: (yaw, pitch, roll) in radians."""
    # R = Rz(c) Rx(b) Ry(a) with a = -yaw; its row 2 is (-cb·sa, sb, cb·ca) and column 1 is
    # (-sc·cb, cc·cb, sb).
    pitch = float(np.arcsin(np.clip(r[2, 1], -1.0, 1.0)))
    a = float(np.arctan2(-r[2, 0], r[2, 2]))
    roll = float(np.arctan2(-r[0, 1], r[1, 1]))
    return -a, pitch, roll


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R, t with dst ≈ s·R·src + t (Umeyama; R a proper rotation)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / (a**2).sum())
    t = mu_d - s * r @ mu_s
    return s, r, t
