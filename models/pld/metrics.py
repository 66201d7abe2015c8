"""Pure metrics of head motion for `posetalk eval pose`: beat alignment, a Fréchet distance over
per-window statistics, seams at hop boundaries and the spread of several samples. Arrays are
per-frame at 25 fps; pose + gaze clips are (T, 8) in the order of the motion file (yaw, pitch,
roll, tx, ty, log-scale, gaze yaw, gaze pitch), angles in radians."""

from __future__ import annotations

import numpy as np
from posetalk.models.rates import FPS
from scipy.ndimage import gaussian_filter1d
from scipy.signal import argrelextrema

BEAT_SIGMA = 3.0  # frames: Bailando's tolerance
VELOCITY_SMOOTH = 2.0  # frames (Bailando smooths with sigma 5 at 60 fps: about 2 at 25 fps)
WINDOW, WINDOW_HOP = 50, 25  # frames: 2-s windows every second for the Fréchet features
FD_CHANNELS = (0, 1, 2, 6, 7)  # the angles: head yaw, pitch, roll and gaze yaw, pitch


def motion_beats(rotation: np.ndarray, smooth: float = VELOCITY_SMOOTH) -> np.ndarray:
    """Frames where the head's rotation speed (|d(yaw, pitch, roll)/dt|, Gaussian-smoothed) has a
    local minimum: the stops and turnarounds of the motion, Bailando's kinematic beats."""
    rot = np.asarray(rotation, np.float64)
    if len(rot) < 3:
        return np.zeros(0, np.int64)
    # Central differences: the speed at frame k itself, so a turnaround at frame k is a minimum
    # at k (one-sided steps would put it between two frames, as two equal samples).
    speed = np.linalg.norm(np.gradient(rot, axis=0), axis=1)
    speed = gaussian_filter1d(speed, smooth, mode="nearest") if smooth > 0 else speed
    return argrelextrema(speed, np.less)[0].astype(np.int64)


def beat_align(audio_beats: np.ndarray, motion: np.ndarray, sigma: float = BEAT_SIGMA) -> tuple[float, int]:
    """(sum over audio beats of exp(-d^2 / (2 sigma^2)), number of audio beats), where d is the
    distance in frames from the audio beat to the nearest motion beat. The mean over beats is
    the Beat Align Score (Bailando); the sum and count are returned so that scores pool over
    clips weighted by their beats."""
    beats = np.asarray(audio_beats, np.float64)
    motion = np.asarray(motion, np.float64)
    if len(beats) == 0:
        return 0.0, 0
    if len(motion) == 0:
        return 0.0, len(beats)
    d = np.abs(beats[:, None] - motion[None, :]).min(1)
    return float(np.exp(-(d**2) / (2 * sigma**2)).sum()), len(beats)


def speed_at_beats(audio_beats: np.ndarray, rotation: np.ndarray, radius: int = 2) -> tuple[float, int]:
    """(sum over audio beats of the head's peak rotation speed within ``radius`` frames of the
    beat, divided by its mean speed over the clip; number of beats). A companion to the Beat
    Align Score, which counts stops near beats and so cannot see motion (a nod's downstroke) that
    is fastest on the beat, as the corpus's is: above the chance level here means motion and
    speech emphasis move together."""
    rot = np.asarray(rotation, np.float64)
    beats = np.asarray(audio_beats, np.int64)
    beats = beats[(beats >= 0) & (beats < len(rot))]
    if len(beats) == 0 or len(rot) < 3:
        return 0.0, 0
    speed = gaussian_filter1d(np.linalg.norm(np.gradient(rot, axis=0), axis=1), VELOCITY_SMOOTH, mode="nearest")
    mean = speed.mean() + 1e-9
    peaks = [speed[max(0, b - radius) : b + radius + 1].max() / mean for b in beats]
    return float(np.sum(peaks)), len(beats)


def window_features(x: np.ndarray, window: int = WINDOW, hop: int = WINDOW_HOP) -> np.ndarray:
    """(N, 15) per-window statistics of a clip (T, 8): for each angle the mean, the standard
    deviation and the mean absolute velocity, in degrees and degrees per second. A clip shorter
    than one window gives one row over the whole clip (if it has at least half a window)."""
    ang = np.degrees(np.asarray(x, np.float64)[:, FD_CHANNELS])
    starts = list(range(0, len(ang) - window + 1, hop)) or ([0] if len(ang) >= window // 2 else [])
    rows = []
    for s in starts:
        w = ang[s : s + window]
        rows.append(np.concatenate([w.mean(0), w.std(0), np.abs(np.diff(w, axis=0)).mean(0) * FPS]))
    return np.array(rows, np.float64).reshape(len(rows), 3 * len(FD_CHANNELS))


def frechet(a: np.ndarray, b: np.ndarray, ref: np.ndarray | None = None) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, F) and b (M, F):
    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)). Features are first standardised by the
    mean and spread of ``ref`` (default: b), so that degrees, and degrees per second, weigh alike."""
    from scipy.linalg import sqrtm

    if len(a) < 2 or len(b) < 2:
        return float("nan")  # no spread to compare
    ref = b if ref is None else ref
    mu, sd = ref.mean(0), ref.std(0) + 1e-6
    a, b = (a - mu) / sd, (b - mu) / sd
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = sqrtm(ca @ cb)
    root = np.real(root)  # imaginary parts are round-off of a product of two PSD matrices
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root))


def seam_jumps(x: np.ndarray, hop: int, scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Velocity changes around every frame-to-frame step of a clip x (T, C), split into the steps
    that cross a hop boundary and the others: (at_boundaries, inside).

    Step i goes from frame i to i + 1 (a boundary step when i + 1 is a multiple of ``hop``); its
    jump is the larger velocity change it makes with its neighbours, max(|v_i - v_{i-1}|,
    |v_{i+1} - v_i|), as a norm over channels divided by ``scale`` (C,). Every step is measured
    the same way, so without seams the boundary steps are like any other."""
    x = np.asarray(x, np.float64)
    if scale is not None:
        x = x / np.asarray(scale, np.float64)
    v = np.diff(x, axis=0)  # (T-1, C)
    if len(v) < 3:
        return np.zeros(0), np.zeros(0)
    acc = np.linalg.norm(np.diff(v, axis=0), axis=1)  # acc[j] = |v[j+1] - v[j]|
    i = np.arange(1, len(v) - 1)  # steps with a neighbour on each side
    jump = np.maximum(acc[i - 1], acc[i])
    at = (i + 1) % hop == 0
    return jump[at], jump[~at]


def seam_summary(at: np.ndarray, inside: np.ndarray) -> dict[str, float]:
    """The boundary jumps against the 95th percentile of the jumps inside hops: their mean and
    largest as multiples of it, and the share above it (about 0.05 where there are no seams)."""
    if len(at) == 0 or len(inside) == 0:
        return {"boundaries": len(at), "inside_p95": float("nan"), "mean_over_p95": float("nan"),
                "max_over_p95": float("nan"), "share_over_p95": float("nan")}  # fmt: skip
    p95 = float(np.percentile(inside, 95)) + 1e-12
    return {"boundaries": len(at), "inside_p95": p95, "mean_over_p95": float(at.mean() / p95),
            "max_over_p95": float(at.max() / p95), "share_over_p95": float((at > p95).mean())}  # fmt: skip


def spread(samples: list[np.ndarray]) -> float:
    """Mean pairwise distance between clips (T, 8) of one prompt and audio: per frame the
    Euclidean distance of (yaw, pitch, roll) in degrees, averaged over frames and pairs."""
    rot = [np.degrees(np.asarray(s, np.float64)[:, :3]) for s in samples]
    d = [np.linalg.norm(rot[i] - rot[j], axis=1).mean() for i in range(len(rot)) for j in range(i + 1, len(rot))]
    return float(np.mean(d)) if d else float("nan")
