"""`posetalk render` and `posetalk motion` with the pose model: an mp4 with its sound and one
frame per 40 ms of it; the prompt, seed and motion scale reach the pose model (motion scale 0:
a still head); without pose weights a notice and procedural (render) or neutral (motion) heads;
`--pose-from` copies a rendered video's yaw sweep; bad input gets one clear line.

The pose model here is random-initialised (tests/test_pld.py trains and tests the real thing):
these tests check the plumbing, not how good the motion is."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from posetalk.clients.cli import main
from posetalk.models.face.motion_file import Motion, load_motion, save_motion
from posetalk.models.motion import checkpoint
from posetalk.models.motion.infer import WEIGHTS as MOTION_WEIGHTS
from posetalk.tests.test_pld import HashEncoder, random_model, speech

torch.set_num_threads(1)
pytestmark = pytest.mark.skipif(
    not (MOTION_WEIGHTS / "coarse.safetensors").exists(), reason="no shipped motion weights"
)


def wav(path: Path, seconds: float, seed: int = 0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(speech(seconds, seed), -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def pld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-initialised pose model saved as checkpoints (its output depends on everything)."""
    model = random_model()
    folder = tmp_path_factory.mktemp("pld")
    checkpoint.save(folder / "pld_vae.safetensors", model.vae, model.vae.cfg, "pld_vae")
    checkpoint.save(folder / "pld_denoiser.safetensors", model.net, model.cfg, "pld_denoiser")
    return folder


@pytest.fixture(autouse=True)
def hashed_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prompts embedded by a hash instead of MiniLM (no 5 s model load per test run)."""
    from posetalk.models.pld import text

    monkeypatch.setitem(text._encoders, "minilm", HashEncoder())


def _mp4_streams(path: Path) -> tuple[int, float | None]:
    """(video frames decoded, audio stream duration in seconds or None without one)."""
    import av

    with av.open(str(path)) as c:
        audio = None
        if c.streams.audio:
            audio = sum(f.samples for f in c.decode(audio=0)) / 16000  # AAC at 16 kHz, as written
            c.seek(0)
        frames = sum(1 for _ in c.decode(video=0))
    return frames, audio


def test_render_writes_an_mp4_with_its_sound_and_a_still_head_at_scale_0(tmp_path: Path, pld: Path) -> None:
    from posetalk.clients.copy_head import head_from_video

    audio, out, sheet = wav(tmp_path / "a.wav", 1.6), tmp_path / "out.mp4", tmp_path / "sheet.png"
    common = ["--audio", str(audio), "--pose-weights", str(pld), "--steps", "3", "--size", "256"]
    # The random model moves the head by about a degree: scaled up, the tracker sees it clearly.
    assert main(["render", *common, "--prompt", "nods a lot", "--motion-scale", "8", "--out", str(out),
                 "--contact-sheet", str(sheet)]) == 0  # fmt: skip
    frames, seconds = _mp4_streams(out)
    assert seconds is not None and abs(seconds - 1.6) < 0.05
    assert abs(frames - seconds * 25) <= 1
    assert sheet.stat().st_size > 10_000
    # Motion scale 0: the re-tracked head does not move (the tracker reads up to ~0.8° as the mouth moves).
    still = tmp_path / "still.mp4"
    assert main(["render", *common, "--motion-scale", "0", "--out", str(still)]) == 0
    moving, _ = head_from_video(out, 40)
    pose, _ = head_from_video(still, 40)
    assert np.degrees(np.abs(moving[:, :3])).max() > 4.0, np.degrees(np.abs(moving[:, :3]).max(0))
    assert np.degrees(np.abs(pose[:, :3])).max() < 1.5, np.degrees(np.abs(pose[:, :3]).max(0))


def test_motion_prompt_seed_and_scale_reach_the_pose_model(tmp_path: Path, pld: Path) -> None:
    audio = wav(tmp_path / "a.wav", 1.6)

    def motion(*flags: str) -> Motion:
        out = tmp_path / "m.npz"
        assert main(["motion", "--audio", str(audio), "--pose-weights", str(pld), "--steps", "3", "--out", str(out),
                     *flags]) == 0  # fmt: skip
        return load_motion(out)

    nods = motion("--prompt", "nods a lot")
    assert nods.pose.shape == (40, 6) and nods.gaze.shape == (40, 2) and nods.expression.shape == (40, 21)
    assert np.abs(nods.pose[:, :3]).max() > np.radians(0.5)  # not the neutral pose
    assert not np.allclose(motion("--prompt", "holds perfectly still").pose, nods.pose)
    assert not np.allclose(motion("--prompt", "nods a lot", "--seed", "1").pose, nods.pose)
    half = motion("--prompt", "nods a lot", "--motion-scale", "0.5")
    np.testing.assert_allclose(half.pose, 0.5 * nods.pose, atol=1e-6)
    still = motion("--prompt", "nods a lot", "--motion-scale", "0")
    assert not still.pose.any() and not still.gaze.any()


def test_without_pose_weights_a_notice_and_a_procedural_or_neutral_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from posetalk.clients.render import speech_motion
    from posetalk.models.pld import weights

    monkeypatch.setattr(weights, "WEIGHTS", tmp_path / "no-weights")
    out = tmp_path / "m.json"
    assert main(["motion", "--audio", str(wav(tmp_path / "a.wav", 1.0)), "--prompt", "nods", "--out", str(out)]) == 0
    notice = [line for line in capsys.readouterr().out.splitlines() if line.startswith("notice:")]
    assert len(notice) == 1 and "neutral" in notice[0] and "ignored" in notice[0]
    m = load_motion(out)
    assert m.pose.shape == (25, 6) and not m.pose.any() and not m.gaze.any()
    calm, source = speech_motion(speech(2.0))
    assert "calm" in source and "calm" in capsys.readouterr().out
    assert 0.1 < np.degrees(calm.pose[:, :3].std(0)).max() < 10
    # A folder named on the command line must hold a model: no silent fallback there.
    assert main(["motion", "--audio", str(tmp_path / "a.wav"), "--pose-weights", str(tmp_path), "--out", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_pose_from_copies_the_yaw_of_a_rendered_video(tmp_path: Path, astronaut: np.ndarray) -> None:
    from posetalk.clients.copy_head import head_from_video
    from posetalk.models.render import prepare

    av = prepare(astronaut, size=256)
    n = 50
    sweep = np.radians(20) * np.sin(2 * np.pi * np.arange(n) / n)  # one turn each way in 2 s
    pose = np.repeat(av.pose[None], n, 0)
    pose[:, 0] += sweep
    save_motion(Motion(pose, np.repeat(av.gaze[None], n, 0), np.repeat(av.expression[None], n, 0)), tmp_path / "s.npz")
    clip, out = tmp_path / "sweep.mp4", tmp_path / "copy.mp4"
    assert main(["animate", "--motion", str(tmp_path / "s.npz"), "--size", "256", "--out", str(clip)]) == 0
    audio = wav(tmp_path / "a.wav", 2.0)
    assert main(["render", "--audio", str(audio), "--pose-from", str(clip), "--size", "256", "--out", str(out)]) == 0
    # What the tracker sees in the copy against what it sees in the source (both relative to their
    # medians): the copy adds one more pass of the renderer and tracker, whose yaw reads ~10 % high.
    source, _ = head_from_video(clip, n)
    copied, _ = head_from_video(out, n)
    err = np.degrees(copied[:, 0] - source[:, 0])
    assert np.abs(err).max() < 3.5, err.round(1)
    assert np.corrcoef(copied[:, 0], sweep)[0, 1] > 0.98
    assert 0.9 < copied[:, 0].std() / sweep.std() < 1.3
    # No pitch or roll was asked for; what the tracker reads there (crosstalk from the turn) is copied.
    print("yaw, pitch, roll: largest difference copy - source (deg)", np.degrees(np.abs(copied - source)[:, :3].max(0)))
    assert np.degrees(np.abs(copied[:, 1:3] - source[:, 1:3])).max() < 2.5
    assert np.degrees(np.abs(copied[:, 1:3])).max() < 5.0


def test_a_short_video_loops_back_and_forth() -> None:
    from posetalk.clients.copy_head import back_and_forth

    assert back_and_forth(4, 11).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert back_and_forth(5, 3).tolist() == [0, 1, 2]
    assert back_and_forth(1, 3).tolist() == [0, 0, 0]


def _bad_cases(d: Path, pld: Path) -> dict[str, tuple[list[str], str]]:
    from posetalk.models.render.video import write_mp4

    (d / "notes.wav").write_text("not audio")
    (d / "notes.mp4").write_text("not a video")
    (d / "face.png").write_text("not an image")
    import cv2

    cv2.imwrite(str(d / "wall.png"), np.full((300, 300, 3), 128, np.uint8))
    write_mp4(d / "wall.mp4", np.full((10, 128, 128, 3), 128, np.uint8))
    return {
        "missing image": (["--image", str(d / "missing.png")], "missing.png"),
        "not an image": (["--image", str(d / "face.png")], "not a readable image"),
        "no face": (["--image", str(d / "wall.png")], "no face"),
        "unreadable audio": (["--audio", str(d / "notes.wav")], "notes.wav"),
        "unreadable video": (["--pose-from", str(d / "notes.mp4")], "notes.mp4"),
        "video without a face": (["--pose-from", str(d / "wall.mp4")], "face was found in 0 of 10"),
        "negative motion scale": (["--motion-scale", "-1"], "--motion-scale"),
        "no sampling steps": (["--pose-weights", str(pld), "--steps", "0"], "steps must be"),
    }


def test_bad_input_gets_one_clear_line(tmp_path: Path, pld: Path, capsys: pytest.CaptureFixture[str]) -> None:
    audio = wav(tmp_path / "a.wav", 0.5)
    for name, (flags, expect) in _bad_cases(tmp_path, pld).items():
        out = tmp_path / "o.mp4"
        args = ["render", "--audio", str(audio), "--size", "128", *flags, "--out", str(out)]  # later flags win
        assert main(args) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("posetalk: error:") and expect in err[0], (name, err)
        assert not out.exists(), name
