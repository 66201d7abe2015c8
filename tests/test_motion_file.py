import json

import numpy as np
import pytest
from posetalk.models.errors import MotionFileError
from posetalk.models.face.motion_file import Motion, load_motion, save_motion
from posetalk.models.face.params import BLENDSHAPE_NAMES, N_BLENDSHAPES


def _motion(t: int = 10) -> Motion:
    rng = np.random.default_rng(0)
    return Motion(rng.uniform(-0.3, 0.3, (t, 6)), rng.uniform(-0.2, 0.2, (t, 2)), rng.uniform(0, 1, (t, 21)), 25.0)


def test_names_are_the_21_arkit_shapes() -> None:
    assert N_BLENDSHAPES == 21
    assert len(set(BLENDSHAPE_NAMES)) == 21
    assert {"jawOpen", "mouthClose", "eyeBlinkLeft", "browInnerUp", "mouthRollUpper"} <= set(BLENDSHAPE_NAMES)


@pytest.mark.parametrize("ext", ["npz", "json"])
def test_round_trip(tmp_path, ext: str) -> None:
    m = _motion()
    save_motion(m, tmp_path / f"m.{ext}")
    back = load_motion(tmp_path / f"m.{ext}")
    assert back.fps == 25.0
    np.testing.assert_allclose(back.pose, m.pose, atol=1e-5)
    np.testing.assert_allclose(back.gaze, m.gaze, atol=1e-5)
    np.testing.assert_allclose(back.expression, m.expression, atol=1e-5)


def test_json_names_can_be_reordered_and_partial(tmp_path) -> None:
    doc = {"fps": 30, "names": ["eyeBlinkLeft", "jawOpen"], "pose": [[0] * 6] * 3, "gaze": [[0, 0]] * 3,
           "expression": [[1.0, 0.5]] * 3}  # fmt: skip
    (tmp_path / "m.json").write_text(json.dumps(doc))
    m = load_motion(tmp_path / "m.json")
    assert m.fps == 30
    assert m.expression[0, BLENDSHAPE_NAMES.index("jawOpen")] == 0.5
    assert m.expression[0, BLENDSHAPE_NAMES.index("eyeBlinkLeft")] == 1.0
    assert m.expression.sum() == pytest.approx(4.5)


def test_unknown_blendshape_name(tmp_path) -> None:
    doc = {"names": ["jawOpen", "tongueOut"], "pose": [[0] * 6], "gaze": [[0, 0]], "expression": [[0, 0]]}
    (tmp_path / "m.json").write_text(json.dumps(doc))
    with pytest.raises(MotionFileError, match="tongueOut"):
        load_motion(tmp_path / "m.json")


@pytest.mark.parametrize(
    "pose,gaze,expr",
    [((5, 5), (5, 2), (5, 21)), ((5, 6), (4, 2), (5, 21)), ((5, 6), (5, 2), (5, 20)), ((5, 6), (5, 3), (5, 21))],
)
def test_wrong_shapes(tmp_path, pose, gaze, expr) -> None:
    np.savez(tmp_path / "m.npz", pose=np.zeros(pose), gaze=np.zeros(gaze), expression=np.zeros(expr),
             names=np.array(BLENDSHAPE_NAMES), fps=25.0)  # fmt: skip
    with pytest.raises(MotionFileError):
        load_motion(tmp_path / "m.npz")


def test_unreadable_and_missing(tmp_path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(MotionFileError):
        load_motion(tmp_path / "bad.npz")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(MotionFileError):
        load_motion(tmp_path / "bad.json")
    with pytest.raises(MotionFileError):
        load_motion(tmp_path / "absent.npz")
    with pytest.raises(MotionFileError):
        Motion(np.full((2, 6), np.nan), np.zeros((2, 2)), np.zeros((2, 21)))
