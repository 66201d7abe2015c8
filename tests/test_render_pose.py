"""Re-tracking rendered frames with mediapipe recovers the commanded head rotation."""

import numpy as np
import pytest
from posetalk.models.face.fit import fit_face
from posetalk.models.face.tracker import track
from posetalk.models.render import make_renderer, prepare
from posetalk.tests.conftest import pose_with

# (yaw, pitch, roll) in degrees, camera frame: each axis to its extremes with the others at 0.
COMMANDS = [(25, 0, 0), (-25, 0, 0), (12, 0, 0), (0, 15, 0), (0, -15, 0), (0, 0, 15), (0, 0, -15),
            (0, 0, 0)]  # fmt: skip
TOLERANCE_DEG = 3.0


def _retracked(frame: np.ndarray) -> np.ndarray:
    found = track(frame)
    assert found is not None, "the rendered face was not found again"
    return np.degrees(fit_face(found.landmarks).angles)


@pytest.mark.parametrize("name", ["original", "mirrored", "scaled", "rotated+10", "rotated-10", "shifted", "relit"])
def test_commanded_rotation_is_recovered(variants, name: str) -> None:
    av = prepare(variants[name])
    renderer = make_renderer(av, "cpu")
    errors = []
    for yaw, pitch, roll in COMMANDS:
        pose = pose_with(av, yaw, pitch, roll)
        frame = renderer.render(pose, av.gaze, av.expression)[0]
        err = _retracked(frame) - np.degrees(pose[:3])
        errors.append(np.abs(err).max())
    assert max(errors) < TOLERANCE_DEG, f"{name}: worst re-tracking error {max(errors):.2f}°: {np.round(errors, 2)}"
