"""The animate command writes a playable H.264 mp4 and a contact sheet; prepare() is cached."""

import numpy as np
from posetalk.clients.cli import main
from posetalk.models.face.motion_file import Motion, save_motion
from posetalk.models.render import prepare
from posetalk.models.render.video import read_mp4


def test_animate_builtin_motion(tmp_path) -> None:
    out, sheet = tmp_path / "nod.mp4", tmp_path / "nod.png"
    assert main(["animate", "--motion", "nod", "--seconds", "1", "--size", "256", "--out", str(out),
                 "--contact-sheet", str(sheet)]) == 0  # fmt: skip
    frames, fps = read_mp4(out)
    assert frames.shape == (25, 256, 256, 3) and fps == 25
    assert sheet.stat().st_size > 10_000
    # The head nods: frames differ from the first one in the middle of the clip.
    assert np.abs(frames[6].astype(int) - frames[0].astype(int)).mean() > 2


def test_animate_motion_file(tmp_path, avatar) -> None:
    n = 10
    expr = np.repeat(avatar.expression[None], n, 0)
    expr[:, 0] = np.linspace(0, 1, n)
    save_motion(Motion(np.repeat(avatar.pose[None], n, 0), np.zeros((n, 2)), expr, 25.0), tmp_path / "m.json")
    assert main(["animate", "--motion", str(tmp_path / "m.json"), "--out", str(tmp_path / "m.mp4")]) == 0
    frames, _ = read_mp4(tmp_path / "m.mp4")
    assert frames.shape == (n, 512, 512, 3)


def test_prepare_is_cached_on_disk(astronaut, avatar) -> None:
    again = prepare(astronaut)
    for name in ("atlas", "verts", "triangles", "uv", "pose", "expression"):
        assert np.array_equal(getattr(again, name), getattr(avatar, name))


def test_data_commands_fail_with_one_clear_line(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["data", "track", "--videos", str(tmp_path / "empty"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "posetalk: error:" in err[0] and "empty" in err[0]
    assert not (tmp_path / "t" / "corpus.json").exists()
    assert main(["data", "synth", "--out", str(tmp_path / "s"), "--hours", "0.001", "--engines", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["data", "inspect", str(tmp_path / "s")]) == 2
    assert "not a complete corpus" in capsys.readouterr().err


def test_animate_speaks_a_line_with_sound(tmp_path) -> None:
    from posetalk.models.audio.io import load_audio
    from posetalk.models.motion.infer import WEIGHTS

    if not (WEIGHTS / "coarse.safetensors").exists():
        import pytest

        pytest.skip("no shipped motion weights")
    out = tmp_path / "say.mp4"
    assert main(["animate", "--say", "Bob made a map.", "--size", "256", "--out", str(out)]) == 0
    frames, fps = read_mp4(out)
    sound = load_audio(out)
    assert len(sound) > 8000 and np.abs(sound).max() > 0.05  # the line is in the file
    assert abs(len(frames) / fps - len(sound) / 16000) < 0.1  # as long as the speech
    # The mouth moves while speaking: the lower face changes across frames.
    lower = frames[:, 150:200, 100:160].astype(float)
    assert lower.std(0).mean() > 1.0


def test_commands_are_quiet_unless_verbose(tmp_path) -> None:
    """Other libraries' start-up logs (mediapipe's TF Lite delegate, absl warnings, protobuf's
    deprecation) stay out of a command's output; -v shows them."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "posetalk.clients.cli"]
    args = ["inspect", "render", "--size", "192", "--out", str(tmp_path / "s.png")]
    env = {**__import__("os").environ, "POSETALK_CACHE": str(tmp_path / "cache")}  # prepare() runs mediapipe
    quiet = subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    noise = ("XNNPACK", "W0000", "GetPrototype", "inference_feedback")
    assert not [line for line in (quiet.stdout + quiet.stderr).splitlines() if any(n in line for n in noise)]
    env["POSETALK_CACHE"] = str(tmp_path / "cache2")  # prepare() again, so that mediapipe starts
    loud = subprocess.run([*cmd, "-v", *args], capture_output=True, text=True, env=env, timeout=300)
    assert loud.returncode == 0 and any(n in loud.stderr for n in noise), loud.stderr[-500:]
