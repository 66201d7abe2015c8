"""Built-in motions for `posetalk animate --motion NAME`: nod, shake, look-around, talk, blink.

Each starts from the portrait's own pose, gaze and expression and returns to it, so the first
frame is the photo as it was.
"""

from __future__ import annotations

import numpy as np
from posetalk.models.face.motion_file import Motion
from posetalk.models.face.params import INDEX

BUILTIN = ("nod", "shake", "look-around", "talk", "blink")


def _envelope(t: np.ndarray, seconds: float) -> np.ndarray:
    """0 → 1 → 0 over the clip with half-second ramps, so motions begin and end at rest."""
    ramp = 0.5
    return np.clip(np.minimum(t / ramp, (seconds - t) / ramp), 0.0, 1.0)


def _blinks(t: np.ndarray, times: list[float]) -> np.ndarray:
    """Blink curve: each blink closes in ~80 ms, holds briefly and reopens in ~150 ms."""
    out = np.zeros_like(t)
    for c in times:
        d = t - c
        close = np.clip((d + 0.08) / 0.08, 0, 1) * (d < 0)
        open_ = np.clip(1 - (d - 0.04) / 0.15, 0, 1) * (d >= 0)
        out = np.maximum(out, close + open_)
    return out


def builtin_motion(
    name: str,
    base_pose: np.ndarray,
    base_gaze: np.ndarray,
    base_expression: np.ndarray,
    seconds: float = 4.0,
    fps: float = 25.0,
) -> Motion:
    if name not in BUILTIN:
        raise ValueError(f"unknown built-in motion '{name}'; choose from {', '.join(BUILTIN)}")
    t = np.arange(int(round(seconds * fps))) / fps
    env = _envelope(t, seconds)
    n = len(t)
    pose = np.repeat(base_pose[None].astype(np.float32), n, 0)
    gaze = np.repeat(base_gaze[None].astype(np.float32), n, 0)
    expr = np.repeat(base_expression[None].astype(np.float32), n, 0)
    if name == "nod":
        pose[:, 1] += np.radians(12) * np.sin(2 * np.pi * 1.0 * t) * env
    elif name == "shake":
        pose[:, 0] += np.radians(22) * np.sin(2 * np.pi * 0.75 * t) * env
    elif name == "look-around":
        pose[:, 0] += np.radians(20) * np.sin(2 * np.pi * 0.25 * t) * env
        pose[:, 1] += np.radians(8) * np.sin(2 * np.pi * 0.5 * t + 0.6) * env
        pose[:, 2] += np.radians(6) * np.sin(2 * np.pi * 0.25 * t + 1.2) * env
        gaze[:, 0] += 0.25 * np.sin(2 * np.pi * 0.25 * t + 0.3) * env
        gaze[:, 1] += 0.12 * np.sin(2 * np.pi * 0.5 * t + 0.9) * env
    elif name == "talk":
        # Syllable-rate jaw motion (about 4 Hz) with rounding and closures, gentle head motion.
        rng = np.random.default_rng(7)
        syll = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6.28)), 0, None)
        syll *= 0.5 + 0.5 * np.clip(np.sin(2 * np.pi * 0.6 * t) + 0.6, 0, 1)
        expr[:, :14] *= 1.0 - env[:, None]  # relax the portrait's own mouth while talking
        expr[:, INDEX["jawOpen"]] += 0.55 * syll * env
        expr[:, INDEX["mouthFunnel"]] += 0.35 * np.clip(np.sin(2 * np.pi * 1.3 * t), 0, 1) * env
        close = np.clip(np.sin(2 * np.pi * 0.9 * t + 1.0), 0, 1) ** 8
        expr[:, INDEX["mouthClose"]] += 0.6 * close * env
        for side in ("Left", "Right"):
            expr[:, INDEX["mouthSmile" + side]] += 0.25 * env
            expr[:, INDEX["eyeBlink" + side]] = np.maximum(expr[:, INDEX["eyeBlink" + side]], _blinks(t, [1.3, 3.1]))
        expr[:, INDEX["browInnerUp"]] += 0.3 * np.clip(np.sin(2 * np.pi * 0.5 * t), 0, 1) * env
        pose[:, 0] += np.radians(6) * np.sin(2 * np.pi * 0.3 * t) * env
        pose[:, 1] += np.radians(4) * np.sin(2 * np.pi * 0.8 * t + 0.5) * env
        pose[:, 2] += np.radians(3) * np.sin(2 * np.pi * 0.4 * t + 1.0) * env
    elif name == "blink":
        for side in ("Left", "Right"):
            k = INDEX["eyeBlink" + side]
            expr[:, k] = np.maximum(expr[:, k], _blinks(t, [0.8, 1.9, 3.0]))
    expr = np.clip(expr, 0.0, 1.0)
    return Motion(pose, gaze, expr, fps)
