import numpy as np
import pytest
from posetalk.models.face import canonical
from posetalk.models.face import topology as T
from posetalk.models.face.geometry import angles_from_matrix, fit_similarity, rotation_matrix


@pytest.mark.parametrize("angles", [(0.3, -0.2, 0.1), (-0.6, 0.4, -0.45), (0.0, 0.0, 0.0)])
def test_angles_round_trip(angles) -> None:
    assert np.allclose(angles_from_matrix(rotation_matrix(*angles)), angles, atol=1e-9)


def test_angle_signs_match_the_documentation() -> None:
    nose = np.array([0.0, 0.0, -1.0])  # toward the camera
    assert (rotation_matrix(0.3, 0, 0) @ nose)[0] > 0  # yaw > 0: nose to the image's right
    assert (rotation_matrix(0, 0.3, 0) @ nose)[1] > 0  # pitch > 0: nose down
    assert (rotation_matrix(0, 0, 0.3) @ np.array([1.0, 0, 0]))[1] > 0  # roll > 0: clockwise


def test_similarity_fit_recovers_a_known_transform() -> None:
    x = np.random.default_rng(1).normal(size=(60, 3))
    r = rotation_matrix(0.2, -0.1, 0.3)
    s, r2, t = fit_similarity(x, 3.0 * x @ r.T + [5, -2, 1])
    assert s == pytest.approx(3.0) and np.allclose(r2, r) and np.allclose(t, [5, -2, 1])


def test_canonical_face_is_symmetric_and_neutral() -> None:
    c = canonical.load()
    v = c.vertices
    assert v.shape == (478, 3)
    assert np.allclose(v[c.mirror] * [-1, 1, 1], v, atol=1e-5)
    assert np.linalg.norm(v[T.CHEEK_LEFT] - v[T.CHEEK_RIGHT]) == pytest.approx(1.0, abs=0.02)
    # Lips closed: the inner contours meet.
    gap = np.abs(v[list(T.LIP_INNER_UPPER), 1] - v[list(T.LIP_INNER_LOWER), 1]).max()
    assert gap < 0.01


def test_mesh_triangles_leave_eye_and_mouth_holes() -> None:
    tris = {tuple(t) for t in T.triangles().tolist()}
    assert len(tris) > 800
    # No triangle joins the upper and lower inner lip at the mouth centre, nor the eyelids.
    for a, b in ((13, 14), (159, 145), (386, 374)):
        assert not any(a in t and b in t for t in tris)
