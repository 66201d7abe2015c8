"""Whole-picture properties: reconstruction, a still background, the two renderers agreeing."""

import numpy as np
import pytest
from posetalk.models.render import make_renderer
from posetalk.tests.conftest import pose_with, psnr, random_motion


def test_own_pose_and_expression_reproduce_the_crop(cpu_renderer, avatar) -> None:
    frame = cpu_renderer.render(avatar.pose, avatar.gaze, avatar.expression)[0]
    assert psnr(frame, avatar.image) >= 35.0


def test_background_away_from_the_person_stays_still(cpu_renderer, avatar) -> None:
    import cv2

    person = (avatar.alpha > 0.05).astype(np.uint8)
    near = cv2.dilate(person, np.ones((81, 81), np.uint8)).astype(bool)  # 40 px around the person
    away = ~near
    assert away.mean() > 0.05, "the test needs some background"
    for yaw, pitch, roll in ((25, 0, 0), (-25, 10, 0), (0, -15, 12)):
        frame = cpu_renderer.render(pose_with(avatar, yaw, pitch, roll), avatar.gaze, avatar.expression)[0]
        diff = np.abs(frame.astype(int) - avatar.image.astype(int)).max(-1)
        assert diff[away].max() <= 1
        # ...while the head did move.
        assert (diff[near] > 20).mean() > 0.02


def test_cpu_and_torch_renderers_agree(avatar) -> None:
    cpu = make_renderer(avatar, "cpu")
    tr = make_renderer(avatar, "torch", device="cpu")
    n = 4
    pose, gaze, expr = random_motion(avatar, n, seed=3)
    a, b = cpu.render(pose, gaze, expr), tr.render(pose, gaze, expr)
    assert a.shape == b.shape == (n, avatar.size, avatar.size, 3)
    for i in range(n):
        assert psnr(a[i], b[i]) >= 40.0


@pytest.mark.parametrize("size", [256, 320])
def test_other_output_sizes(astronaut, size: int) -> None:
    from posetalk.models.render import prepare

    av = prepare(astronaut, size=size)
    frame = make_renderer(av, "cpu").render(av.pose, av.gaze, av.expression)[0]
    assert frame.shape == (size, size, 3)
    assert av.alpha.shape == (size, size)
    assert psnr(frame, av.image) >= 33.0
