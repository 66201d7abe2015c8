"""The motion file (.npz or .json): per-frame pose (T×6), gaze (T×2), expression (T×21) with the
blendshape names stored beside it, and fps. The one module that reads and writes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from posetalk.models.errors import MotionFileError
from posetalk.models.face.params import (
    BLENDSHAPE_NAMES,
    GAZE_NAMES,
    N_BLENDSHAPES,
    POSE_NAMES,
)


@dataclass
class Motion:
    pose: np.ndarray  # (T, 6) float32, POSE_NAMES order
    gaze: np.ndarray  # (T, 2) float32, GAZE_NAMES order
    expression: np.ndarray  # (T, 21) float32, BLENDSHAPE_NAMES order
    fps: float = 25.0

    def __post_init__(self) -> None:
        self.pose = np.asarray(self.pose, np.float32)
        self.gaze = np.asarray(self.gaze, np.float32)
        self.expression = np.asarray(self.expression, np.float32)
        t = len(self.pose)
        if self.pose.shape != (t, len(POSE_NAMES)):
            raise MotionFileError(f"pose must be T×{len(POSE_NAMES)}, got {self.pose.shape}")
        if self.gaze.shape != (t, len(GAZE_NAMES)):
            raise MotionFileError(f"gaze must be {t}×{len(GAZE_NAMES)}, got {self.gaze.shape}")
        if self.expression.shape != (t, N_BLENDSHAPES):
            raise MotionFileError(f"expression must be {t}×{N_BLENDSHAPES}, got {self.expression.shape}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise MotionFileError(f"fps must be a positive number, got {self.fps}")
        for name, arr in (("pose", self.pose), ("gaze", self.gaze), ("expression", self.expression)):
            if not np.isfinite(arr).all():
                raise MotionFileError(f"{name} contains NaN or infinite values")

    def __len__(self) -> int:
        return len(self.pose)


def _expression_by_names(expression: np.ndarray, names: list[str]) -> np.ndarray:
    """Reorder columns given under ``names`` into BLENDSHAPE_NAMES order; absent ones are 0."""
    unknown = [n for n in names if n not in BLENDSHAPE_NAMES]
    if unknown:
        raise MotionFileError(f"unknown blendshape names: {', '.join(unknown)}")
    if len(set(names)) != len(names):
        raise MotionFileError("blendshape names are repeated")
    if expression.ndim != 2 or expression.shape[1] != len(names):
        raise MotionFileError(
            f"expression must be T×{len(names)} to match its {len(names)} names, got {expression.shape}"
        )
    out = np.zeros((expression.shape[0], N_BLENDSHAPES), np.float32)
    for j, name in enumerate(names):
        out[:, BLENDSHAPE_NAMES.index(name)] = expression[:, j]
    return out


def save_motion(motion: Motion, path: str | Path) -> None:
    """Write ``motion`` as .npz or .json, chosen by the file's extension."""
    path = Path(path)
    if path.suffix == ".npz":
        np.savez_compressed(
            path,
            pose=motion.pose,
            gaze=motion.gaze,
            expression=motion.expression,
            names=np.array(BLENDSHAPE_NAMES),
            fps=np.float32(motion.fps),
        )
    elif path.suffix == ".json":
        doc = {
            "fps": float(motion.fps),
            "pose_names": list(POSE_NAMES),
            "gaze_names": list(GAZE_NAMES),
            "names": list(BLENDSHAPE_NAMES),
            "pose": np.round(motion.pose, 6).tolist(),
            "gaze": np.round(motion.gaze, 6).tolist(),
            "expression": np.round(motion.expression, 6).tolist(),
        }
        path.write_text(json.dumps(doc))
    else:
        raise MotionFileError(f"{path}: a motion file must end in .npz or .json")


def _array(doc: dict, key: str, path: Path) -> np.ndarray:
    if key not in doc:
        raise MotionFileError(f"{path}: missing '{key}'")
    try:
        arr = np.asarray(doc[key], dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise MotionFileError(f"{path}: '{key}' is not a numeric array") from exc
    return arr


def load_motion(path: str | Path) -> Motion:
    """Read a motion file; wrong shapes or unknown blendshape names raise MotionFileError."""
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(f"{path}: no such motion file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                doc = {k: z[k] for k in z.files}
            names = [str(n) for n in doc.get("names", np.array(BLENDSHAPE_NAMES))]
        elif path.suffix == ".json":
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict):
                raise MotionFileError(f"{path}: the JSON document must be an object")
            names = [str(n) for n in doc.get("names", BLENDSHAPE_NAMES)]
        else:
            raise MotionFileError(f"{path}: a motion file must end in .npz or .json")
    except (OSError, ValueError) as exc:  # zip errors and JSON errors are ValueErrors
        raise MotionFileError(f"{path}: unreadable motion file ({exc})") from exc
    pose = _array(doc, "pose", path)
    gaze = _array(doc, "gaze", path)
    expression = _expression_by_names(_array(doc, "expression", path), names)
    fps = float(np.asarray(doc.get("fps", 25.0)))
    if pose.ndim != 2 or gaze.ndim != 2 or not (len(pose) == len(gaze) == len(expression)):
        raise MotionFileError(
            f"{path}: pose {pose.shape}, gaze {gaze.shape} and expression "
            f"{expression.shape} must share their frame count"
        )
    return Motion(pose, gaze, expression, fps)
