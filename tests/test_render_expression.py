"""Blendshapes do what their ARKit names say, measured by re-tracking the rendered frames."""

import numpy as np
import pytest
from posetalk.models.face import topology as T
from posetalk.models.face.fit import fit_face
from posetalk.models.face.params import INDEX
from posetalk.models.face.tracker import track


def _points(frame: np.ndarray) -> np.ndarray:
    """Re-tracked landmarks in the canonical frame (face widths, pose removed)."""
    found = track(frame)
    assert found is not None, "the rendered face was not found again"
    return fit_face(found.landmarks).points


def _render(renderer, avatar, weights: dict[str, float]) -> np.ndarray:  # type: ignore[no-untyped-def]
    e = np.zeros(21, np.float32)
    for k, v in weights.items():
        e[INDEX[k]] = v
    return renderer.render(avatar.pose, avatar.gaze, e)[0]


def _lip_gap(p: np.ndarray) -> float:
    return float(np.mean(p[[14, 87, 317], 1] - p[[13, 82, 312], 1]))


def _eye_aspect(p: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...]) -> float:
    h = np.linalg.norm(p[list(upper[2:7]), :2] - p[list(lower[2:7]), :2], axis=1).mean()
    return float(h / np.linalg.norm(p[upper[0], :2] - p[upper[-1], :2]))


def test_lip_gap_grows_monotonically_with_jaw_open(cpu_renderer, avatar) -> None:
    gaps = [_lip_gap(_points(_render(cpu_renderer, avatar, {"jawOpen": w}))) for w in np.linspace(0, 1, 6)]
    assert all(b > a for a, b in zip(gaps, gaps[1:], strict=False)), np.round(gaps, 4)
    assert gaps[-1] - gaps[0] > 0.08  # face widths: a wide-open mouth


@pytest.mark.parametrize("side", ["Left", "Right"])
def test_blink_closes_the_eye(cpu_renderer, avatar, side: str) -> None:
    from posetalk.models.render.mesh import frame_vertices

    lids = (T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER) if side == "Left" else (T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER)
    shut_w = np.zeros(21, np.float32)
    shut_w[INDEX[f"eyeBlink{side}"]] = 1.0
    # The lids as drawn in the frame: fully closed.
    drawn_open = _eye_aspect(frame_vertices(avatar, avatar.pose, avatar.gaze, np.zeros(21))[0], *lids)
    drawn_shut = _eye_aspect(frame_vertices(avatar, avatar.pose, avatar.gaze, shut_w)[0], *lids)
    assert drawn_shut < 0.1 * drawn_open
    # As mediapipe sees the picture: the lid's own skin unrolled over the eye and a thin lash line,
    # not the photo's lashes slid down as a dark band (that read as a slit: 0.28 and 0.44 of open).
    open_ = _eye_aspect(_points(_render(cpu_renderer, avatar, {})), *lids)
    shut = _eye_aspect(_points(_render(cpu_renderer, avatar, {f"eyeBlink{side}": 1.0})), *lids)
    assert shut < 0.3 * open_, (open_, shut)


def test_zero_weights_close_the_smiling_mouth(cpu_renderer, avatar) -> None:
    own = _points(cpu_renderer.render(avatar.pose, avatar.gaze, avatar.expression)[0])
    relaxed = _points(_render(cpu_renderer, avatar, {}))
    assert avatar.expression[INDEX["mouthSmileLeft"]] > 0.3  # the astronaut smiles with teeth
    assert _lip_gap(own) > 0.04
    assert _lip_gap(relaxed) < 0.015
    # The corners come down from the smile.
    assert relaxed[[61, 291], 1].mean() - own[[61, 291], 1].mean() > 0.01


# (shape, measure of the re-tracked canonical points, minimum change in face widths)
def _width(p):  # type: ignore[no-untyped-def]
    return p[291, 0] - p[61, 0]


CHECKS = [
    ("jawOpen", lambda p: p[152, 1], 0.05),
    ("mouthFunnel", lambda p: -_width(p), 0.015),
    ("mouthPucker", lambda p: -_width(p), 0.03),
    ("mouthStretchLeft", lambda p: p[291, 0], 0.008),
    ("mouthStretchRight", lambda p: -p[61, 0], 0.008),
    ("mouthSmileLeft", lambda p: -p[291, 1], 0.02),
    ("mouthSmileRight", lambda p: -p[61, 1], 0.02),
    ("mouthUpperUpLeft", lambda p: -p[[311, 312], 1].mean(), 0.006),
    ("mouthUpperUpRight", lambda p: -p[[81, 82], 1].mean(), 0.006),
    ("mouthLowerDownLeft", lambda p: p[[317, 402], 1].mean(), 0.012),
    ("mouthLowerDownRight", lambda p: p[[87, 178], 1].mean(), 0.012),
    ("browInnerUp", lambda p: -p[[107, 336], 1].mean(), 0.015),
    ("browDownLeft", lambda p: p[[334, 296], 1].mean(), 0.012),
    ("browDownRight", lambda p: p[[105, 66], 1].mean(), 0.012),
    ("browOuterUpLeft", lambda p: -p[[300, 293], 1].mean(), 0.015),
    ("browOuterUpRight", lambda p: -p[[70, 63], 1].mean(), 0.015),
]


@pytest.mark.parametrize("name,measure,minimum", CHECKS, ids=[c[0] for c in CHECKS])
def test_blendshape_moves_the_named_feature(cpu_renderer, avatar, name, measure, minimum) -> None:
    base = _points(_render(cpu_renderer, avatar, {}))
    moved = _points(_render(cpu_renderer, avatar, {name: 1.0}))
    assert measure(moved) - measure(base) > minimum


def test_mouth_close_brings_the_lips_together_with_the_jaw_open(cpu_renderer, avatar) -> None:
    open_ = _lip_gap(_points(_render(cpu_renderer, avatar, {"jawOpen": 1.0})))
    closed = _lip_gap(_points(_render(cpu_renderer, avatar, {"jawOpen": 1.0, "mouthClose": 1.0})))
    assert closed < 0.3 * open_


def test_gaze_moves_the_irises(cpu_renderer, avatar) -> None:
    e = np.zeros(21, np.float32)
    left = track(cpu_renderer.render(avatar.pose, np.array([-0.3, 0.0]), e)[0]).landmarks
    right = track(cpu_renderer.render(avatar.pose, np.array([0.3, 0.0]), e)[0]).landmarks
    width = np.linalg.norm(left[454, :2] - left[234, :2])
    for iris in (468, 473):
        assert (right[iris, 0] - left[iris, 0]) / width > 0.03


@pytest.mark.parametrize("name,outer,inner", [("mouthRollLower", 17, 14), ("mouthRollUpper", 0, 13)])
def test_lip_roll_thins_the_lip(avatar, name: str, outer: int, inner: int) -> None:
    # mediapipe barely re-tracks a rolled lip (about 0.003 face widths), so this checks the
    # lip as drawn: its red part loses most of its height.
    from posetalk.models.render.mesh import frame_vertices

    w = np.zeros(21, np.float32)
    before = frame_vertices(avatar, avatar.pose, avatar.gaze, w)[0]
    w[INDEX[name]] = 1.0
    after = frame_vertices(avatar, avatar.pose, avatar.gaze, w)[0]
    assert abs(after[outer, 1] - after[inner, 1]) < 0.35 * abs(before[outer, 1] - before[inner, 1])


def test_closed_lips_hide_the_mouth_and_the_open_jaw_leaves_the_upper_lip(cpu_renderer, avatar) -> None:
    from posetalk.models.face.blendshapes import _lip_sets_of
    from posetalk.models.face.canonical import load
    from posetalk.models.render.mesh import frame_vertices

    # Every point the symmetric canonical face has on the upper lip only stays with the skull
    # when the jaw opens (the astronaut's smile once put point 271 on the lower lip: a flap of
    # upper lip was dragged across the open mouth).
    upper, lower = _lip_sets_of(load().vertices)
    upper_only = np.flatnonzero(upper & ~lower)
    jaw = np.zeros(21, np.float32)
    jaw[INDEX["jawOpen"]] = 1.0
    shut = frame_vertices(avatar, avatar.pose, avatar.gaze, np.zeros(21, np.float32))[0]
    opened = frame_vertices(avatar, avatar.pose, avatar.gaze, jaw)[0]
    drop = (opened - shut)[upper_only, 1]
    assert drop.max() < 1.0, (upper_only[drop.argmax()], drop.max())  # px at 512²
    # With the lips closed, no pixel between the corners shows the mouth interior (folded lip
    # triangles once left holes there: dark spikes at the corners).
    cpu_renderer.render_frame(avatar.pose, avatar.gaze, np.zeros(21, np.float32))
    ids = cpu_renderer._ids
    (x0, y0), (x1, y1) = shut[list(T.MOUTH_CORNERS)].min(0), shut[list(T.MOUTH_CORNERS)].max(0)
    box = ids[int(y0) - 15 : int(y1) + 15, int(x0) - 5 : int(x1) + 6]
    drawn = box[box < len(avatar.layer)]
    assert (avatar.layer[drawn] == 3).all(), np.unique(avatar.layer[drawn], return_counts=True)
