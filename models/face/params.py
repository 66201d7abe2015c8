"""Motion parameters: head pose, gaze and the 21 ARKit blendshapes, with units and ranges.

Camera frame: x to the image's right, y down, z away from the camera (OpenCV convention).

Head pose per frame, ``pose[:, i]`` for i in POSE_NAMES order:
  yaw    radians, > 0 turns the nose toward the image's right (the subject's left)
  pitch  radians, > 0 tips the nose down (a nod's downstroke)
  roll   radians, > 0 tilts the head clockwise in the image
  tx, ty translation of the head in fractions of the face width (x right, y down)
  scale  natural log of the head's size relative to the portrait's own (0 = unchanged)
All zeros means facing the camera, upright, at the portrait's position and size.

Gaze per frame, ``gaze[:, i]`` for i in GAZE_NAMES order: eye yaw and pitch in radians relative
to the head, same signs as the head (> 0 yaw looks toward the image's right, > 0 pitch looks down).

Expression: ARKit blendshape weights in [0, 1] by ARKit's own names ("Left" is the subject's
left, the image's right). 0 is the relaxed neutral face, weights are absolute.
"""

from __future__ import annotations

import numpy as np

POSE_NAMES: tuple[str, ...] = ("yaw", "pitch", "roll", "tx", "ty", "scale")
GAZE_NAMES: tuple[str, ...] = ("yaw", "pitch")

MOUTH_SHAPES: tuple[str, ...] = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthRollLower",
    "mouthRollUpper",
)
UPPER_FACE_SHAPES: tuple[str, ...] = (
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "browInnerUp",
    "browDownLeft",
    "browDownRight",
    "browOuterUpLeft",
    "browOuterUpRight",
)
BLENDSHAPE_NAMES: tuple[str, ...] = MOUTH_SHAPES + UPPER_FACE_SHAPES
N_BLENDSHAPES = len(BLENDSHAPE_NAMES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}

# Ranges the renderer is designed for; motion files outside them are clipped, not rejected.
POSE_LIMITS = np.array(
    [
        [-0.70, 0.70],  # yaw   (±40°)
        [-0.50, 0.50],  # pitch (±29°)
        [-0.50, 0.50],  # roll  (±29°)
        [-0.50, 0.50],  # tx
        [-0.50, 0.50],  # ty
        [-0.40, 0.40],  # scale (×0.67 … ×1.49)
    ],
    dtype=np.float32,
)
GAZE_LIMITS = np.array([[-0.45, 0.45], [-0.35, 0.35]], dtype=np.float32)


def neutral(frames: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero pose, zero gaze, zero expression for ``frames`` frames."""
    return (
        np.zeros((frames, len(POSE_NAMES)), np.float32),
        np.zeros((frames, len(GAZE_NAMES)), np.float32),
        np.zeros((frames, N_BLENDSHAPES), np.float32),
    )


def clip_motion(
    pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip each array to the documented ranges (float32 copies)."""
    pose = np.clip(pose, POSE_LIMITS[:, 0], POSE_LIMITS[:, 1]).astype(np.float32)
    gaze = np.clip(gaze, GAZE_LIMITS[:, 0], GAZE_LIMITS[:, 1]).astype(np.float32)
    expression = np.clip(expression, 0.0, 1.0).astype(np.float32)
    return pose, gaze, expression
