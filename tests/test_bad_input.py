"""Bad input gets its own error type, and the command prints one line and exits non-zero."""

import cv2
import numpy as np
import pytest
from posetalk.clients.cli import main
from posetalk.models.errors import FaceTooSmallError, ImageTooLargeError, MotionFileError, NoFaceError, NotAnImageError
from posetalk.models.render import prepare


def _png(path, rgb: np.ndarray):  # type: ignore[no-untyped-def]
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_not_an_image(tmp_path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("hello, I am text")
    with pytest.raises(NotAnImageError):
        prepare(p, use_cache=False)
    with pytest.raises(NotAnImageError):
        prepare(tmp_path / "missing.jpg", use_cache=False)


def test_no_face(tmp_path) -> None:
    rng = np.random.default_rng(0)
    sky = np.clip(rng.normal(120, 30, (300, 400, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(NoFaceError):
        prepare(_png(tmp_path / "sky.png", sky), use_cache=False)


def test_face_too_small(tmp_path, astronaut) -> None:
    small = cv2.resize(astronaut, (340, 340), interpolation=cv2.INTER_AREA)  # face ≈ 52 px
    canvas = np.full((512, 512, 3), 200, np.uint8)
    canvas[86:426, 86:426] = small
    with pytest.raises(FaceTooSmallError):
        prepare(_png(tmp_path / "small.png", canvas), use_cache=False)


def test_image_too_large(tmp_path) -> None:
    huge = np.zeros((6400, 6400, 3), np.uint8)  # 41 MP, a tiny file
    with pytest.raises(ImageTooLargeError):
        prepare(_png(tmp_path / "huge.png", huge), use_cache=False)


def test_several_faces_use_the_largest(tmp_path, astronaut, capsys) -> None:
    face = astronaut[20:260, 120:360]
    canvas = np.full((520, 1000, 3), 180, np.uint8)
    canvas[20:500, 20:500] = cv2.resize(face, (480, 480))
    canvas[80:380, 560:860] = cv2.resize(face, (300, 300))
    av = prepare(_png(tmp_path / "two.png", canvas), use_cache=False)
    assert av.faces_seen == 2
    assert main(["animate", "--image", str(tmp_path / "two.png"), "--motion", "blink", "--seconds", "0.4",
                 "--size", "128", "--out", str(tmp_path / "two.mp4")]) == 0  # fmt: skip
    assert "animating the largest" in capsys.readouterr().out


def test_bad_motion_files(tmp_path) -> None:
    np.savez(tmp_path / "m.npz", pose=np.zeros((4, 5)), gaze=np.zeros((4, 2)), expression=np.zeros((4, 21)))
    with pytest.raises(MotionFileError):
        from posetalk.models.face.motion_file import load_motion

        load_motion(tmp_path / "m.npz")


@pytest.mark.parametrize(
    "setup,expect",
    [
        (lambda d: (d / "x.png").write_text("text"), "not a readable image"),
        (lambda d: _png(d / "x.png", np.full((200, 200, 3), 90, np.uint8)), "no face"),
    ],
)
def test_cli_prints_one_clear_line(tmp_path, capsys, setup, expect: str) -> None:
    setup(tmp_path)
    code = main(["animate", "--image", str(tmp_path / "x.png"), "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and expect in err[0] and err[0].startswith("posetalk: error:")
    assert not (tmp_path / "o.mp4").exists()


def test_cli_bad_motion_file(tmp_path, capsys) -> None:
    (tmp_path / "m.json").write_text('{"names": ["jawOpen", "smirk"], "pose": [], "gaze": [], "expression": []}')
    code = main(["animate", "--motion", str(tmp_path / "m.json"), "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "smirk" in err[0]
