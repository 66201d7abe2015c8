"""Tracking talking-head videos: videos rendered from known motion, with a sound track, are
tracked back to that motion; bad videos and folders get clear errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from posetalk.models.data.phones import FPS, SAMPLE_RATE
from posetalk.models.data.track import TrackedVideo, _solver, track_folder, track_video
from posetalk.models.errors import NoVideosError, VideoError
from posetalk.models.face.fit import fit_expression, fit_face
from posetalk.models.face.params import INDEX
from posetalk.models.face.tracker import track
from posetalk.models.render import make_renderer, prepare
from posetalk.models.render.video import read_audio, write_mp4

SIZE = 256  # small frames keep rendering and tracking quick
PITCH_SLACK = 1.0  # degrees: mediapipe reads the rendered head's pitch less well than yaw and roll
SECONDS = 5.0
HOP = SAMPLE_RATE // FPS
BLINKS = (0.48, 1.8, 3.12, 4.32)  # seconds: at head turns of up to 20° yaw and 12° pitch


def motion(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Commanded pose, gaze and expression at times ``t`` (seconds): every axis at once.

    The angles are absolute, as the renderer takes them (the portrait's own pose is where the
    renderer starts from, so tracking the frames should give these angles back); tx, ty and
    scale are relative to the portrait's own position and size.
    """
    n = len(t)
    pose = np.zeros((n, 6), np.float32)
    pose[:, 0] = np.radians(20) * np.sin(2 * np.pi * t / 2.5)
    pose[:, 1] = np.radians(12) * np.sin(2 * np.pi * t / 1.9 + 0.7)
    pose[:, 2] = np.radians(10) * np.sin(2 * np.pi * t / 3.1 + 1.9)
    pose[:, 3] = 0.04 * np.sin(2 * np.pi * t / 2.2)
    pose[:, 4] = 0.03 * np.sin(2 * np.pi * t / 1.7 + 1.0)
    pose[:, 5] = 0.08 * np.sin(2 * np.pi * t / 2.9 + 0.3)
    gaze = np.zeros((n, 2), np.float32)
    gaze[:, 0] = 0.15 * np.sin(2 * np.pi * t / 1.3)
    expr = np.zeros((n, 21), np.float32)
    # 0 -> 0.65 -> 0, 7 times: a talking mouth; 0.65 opens it as far as jawOpen 1 did before the
    # jaw was calibrated (0.26 -> 0.40 rad at jawOpen 1, now a wide-open mouth).
    expr[:, INDEX["jawOpen"]] = 0.65 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 0.72))
    blink = np.zeros(n)
    for c in BLINKS:  # 0.28 s each, a triangle peaking at 1
        blink = np.maximum(blink, np.clip(1 - np.abs(t - c) / 0.14, 0, 1))
    expr[:, INDEX["eyeBlinkLeft"]] = blink
    expr[:, INDEX["eyeBlinkRight"]] = blink
    return pose, gaze, expr


def sound(seconds: float, seed: int = 1) -> np.ndarray:
    """A 220 Hz tone with noise bursts: nothing periodic enough to match at a wrong offset."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    bursts = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * t / 0.6) > 0.3)
    return (0.2 * np.sin(2 * np.pi * 220 * t) + 0.3 * bursts).astype(np.float32)


@dataclass
class Clip:
    path: Path
    pose: np.ndarray
    gaze: np.ndarray
    expression: np.ndarray
    audio: np.ndarray
    frames: np.ndarray


@pytest.fixture(scope="module")
def small_avatar(astronaut):  # type: ignore[no-untyped-def]
    return prepare(astronaut, size=SIZE)


@pytest.fixture(scope="module")
def renderer(small_avatar):  # type: ignore[no-untyped-def]
    return make_renderer(small_avatar, "cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def clip(folder: Path, renderer) -> Clip:  # type: ignore[no-untyped-def]
    t = np.arange(round(SECONDS * FPS)) / FPS
    pose, gaze, expr = motion(t)
    frames = renderer.render(pose, gaze, expr)
    audio = sound(SECONDS)
    path = folder / "talk.mp4"
    assert write_mp4(path, frames, FPS, audio=audio) == len(t)
    path.with_suffix(".txt").write_text("turns, nods and tilts while talking\n", encoding="utf-8")
    return Clip(path, pose, gaze, expr, audio, frames)


@pytest.fixture(scope="module")
def tracked(clip: Clip) -> TrackedVideo:
    return track_video(clip.path)


@pytest.fixture(scope="module")
def blank_video(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    frames = np.clip(rng.normal(120, 30, (25, 128, 128, 3)), 0, 255).astype(np.uint8)
    path = folder / "blank.mp4"
    write_mp4(path, frames, audio=sound(1.0))
    return path


@pytest.fixture(scope="module")
def silent_video(folder: Path, clip: Clip) -> Path:
    path = folder / "silent.mp4"
    write_mp4(path, clip.frames[:25])
    return path


def test_arrays_are_on_the_25_fps_grid_of_the_sound(tracked: TrackedVideo, clip: Clip) -> None:
    n = len(clip.pose)
    assert tracked.fps == FPS and tracked.frames == n
    assert tracked.pose.shape == (n, 6) and tracked.gaze.shape == (n, 2) and tracked.expression.shape == (n, 21)
    assert tracked.pose.dtype == tracked.expression.dtype == tracked.audio.dtype == np.float32
    assert len(tracked.audio) == n * HOP
    assert tracked.frames_with_face == 1.0 and tracked.face_mask.all()
    assert tracked.text == "turns, nods and tilts while talking"
    assert tracked.source == clip.path
    assert ((tracked.expression >= 0) & (tracked.expression <= 1)).all()


def test_head_pose_is_recovered(tracked: TrackedVideo, clip: Clip) -> None:
    # Measured at 256²: 95th percentiles 2.0° yaw, 3.5° pitch, 1.1° roll, medians 0.9°, 1.7°,
    # 0.4°; the worst frames (5.3° pitch) combine 20° of yaw, 12° of pitch and an open jaw, where
    # mediapipe reads pitch about 14% steep and an open jaw adds about 0.8°. PITCH_SLACK: since
    # the renderer stopped dragging a flap of upper lip over the open mouth and drawing dark
    # spikes up from the corners, mediapipe reads the head ~0.6° lower at every jaw opening,
    # closed included (mean signed error -0.61°, was -0.1°; p95 / median were 2.7° / 1.0°). The
    # frames side by side differ only at the mouth; likely cause: the portrait's own pose, which
    # the renderer starts from, was read off a photo smiling with teeth, and the spikes kept some
    # of that smile's raised corners.
    err = np.degrees(np.abs(tracked.pose[:, :3] - clip.pose[:, :3]))
    p95, worst, median = np.percentile(err, 95, 0), err.max(0), np.median(err, 0)
    summary = f"p95 {np.round(p95, 2)}, max {np.round(worst, 2)}, median {np.round(median, 2)} (yaw, pitch, roll °)"
    assert (p95 < [3.0, 3.0 + PITCH_SLACK, 3.0]).all(), summary
    assert (worst < [5.0, 5.0 + PITCH_SLACK, 5.0]).all(), summary
    assert (median < [1.5, 1.5 + PITCH_SLACK, 1.5]).all(), summary
    # tx, ty, scale are relative to the video's median face: compare against the commanded path
    # relative to its own median. Errors in face widths (log ratio for scale).
    commanded = clip.pose[:, 3:] - np.median(clip.pose[:, 3:], 0)
    off = np.abs(tracked.pose[:, 3:] - commanded).max(0)
    assert (off < 0.06).all(), f"tx, ty, scale worst error {np.round(off, 3)}"
    # ty's error is that pitch bias traded for height (correlation -0.93): 0.70 measured (0.83 before),
    # 0.60 with the new mouth interior, 0.59 since closed eyes read as closed (unrolling lids):
    # mediapipe places the face 0.013 face widths higher on blink frames (0.008 before).
    for i, least in enumerate((0.75, 0.55, 0.75)):
        assert np.corrcoef(tracked.pose[:, 3 + i], commanded[:, i])[0, 1] > least


@pytest.mark.parametrize("name", ["jawOpen", "eyeBlinkLeft", "eyeBlinkRight"])
def test_jaw_and_blinks_are_recovered(tracked: TrackedVideo, clip: Clip, name: str) -> None:
    i = INDEX[name]
    r = np.corrcoef(tracked.expression[:, i], clip.expression[:, i])[0, 1]
    assert r >= 0.9, f"{name}: Pearson r {r:.3f}"


def test_the_sound_comes_back(tracked: TrackedVideo, clip: Clip) -> None:
    for audio in (read_audio(clip.path), tracked.audio):
        assert abs(len(audio) - len(clip.audio)) <= 0.040 * SAMPLE_RATE
        n = min(len(audio), len(clip.audio))
        assert np.corrcoef(audio[:n], clip.audio[:n])[0, 1] > 0.9  # AAC is lossy, not shifted


def test_weights_are_relative_to_the_videos_relaxed_face(tracked: TrackedVideo, clip: Clip) -> None:
    absolute = track_video(clip.path, relative=False)
    assert (absolute.baseline == 0).all()
    assert (tracked.baseline >= 0).all() and (tracked.baseline <= 1).all()
    # The relaxed face comes off: each weight's 5th percentile is then about 0.
    assert (np.percentile(tracked.expression, 5, 0) < 0.02).all()
    for name in ("jawOpen", "eyeBlinkLeft"):
        i = INDEX[name]
        assert np.corrcoef(absolute.expression[:, i], clip.expression[:, i])[0, 1] >= 0.9


def test_batched_solver_is_fit_expression(clip: Clip) -> None:
    points = []
    for frame in clip.frames[::25]:
        found = track(frame)
        assert found is not None
        points.append(fit_face(found.landmarks).points)
    fast = _solver().solve(np.array(points), blinks=False)
    reference = np.array([fit_expression(p) for p in points])
    np.testing.assert_allclose(fast, reference, atol=2e-3)


def test_other_frame_rates_are_resampled_on_time(tmp_path: Path, renderer) -> None:  # type: ignore[no-untyped-def]
    seconds, fps = 2.0, 30
    t = np.arange(round(seconds * fps)) / fps
    pose, gaze, expr = motion(t)
    path = tmp_path / "thirty.mp4"
    write_mp4(path, renderer.render(pose, gaze, expr), fps, audio=sound(seconds))
    tv = track_video(path)
    assert tv.frames == round(seconds * FPS) and abs(tv.duration - seconds) < 1e-6
    # Frame k holds the head as it was at k/25 s (taking frames by index would be 20% slow).
    want, _, want_expr = motion(np.arange(tv.frames) / FPS)
    err = np.degrees(np.abs(tv.pose[:, :3] - want[:, :3]))
    assert (np.percentile(err, 95, 0) < [3.0, 3.0 + PITCH_SLACK, 3.0]).all(), np.round(np.percentile(err, 95, 0), 2)
    i = INDEX["jawOpen"]
    assert np.corrcoef(tv.expression[:, i], want_expr[:, i])[0, 1] >= 0.9


def test_short_gaps_are_filled_and_long_ones_marked(tmp_path: Path, clip: Clip) -> None:
    frames = clip.frames[:60].copy()
    frames[10:15] = 128  # 0.2 s without a face: a tracking dropout
    frames[30:45] = 128  # 0.6 s: too long to trust a straight line through it
    path = tmp_path / "gaps.mp4"
    write_mp4(path, frames, audio=clip.audio[: 60 * HOP])
    tv = track_video(path)
    assert tv.frames_with_face == pytest.approx(40 / 60)
    expect = np.ones(60, bool)
    expect[30:45] = False
    np.testing.assert_array_equal(tv.face_mask, expect)
    err = np.degrees(np.abs(tv.pose[10:15, :3] - clip.pose[10:15, :3]))
    assert err.max() < 4.0, np.round(err, 2)  # the head's smooth path, bridged


def test_a_video_without_sound_is_refused(silent_video: Path) -> None:
    with pytest.raises(VideoError, match="silent.mp4.*no audio track"):
        track_video(silent_video)


def test_a_video_without_a_face_is_refused(blank_video: Path) -> None:
    with pytest.raises(VideoError, match=r"blank.mp4.*face was found in 0 of 25 frames"):
        track_video(blank_video)


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is text, not a video")
    with pytest.raises(VideoError, match="notes.mp4.*not a readable video"):
        track_video(path)
    with pytest.raises(VideoError, match="no such file"):
        track_video(tmp_path / "missing.mp4")


def test_missing_or_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(NoVideosError, match="no such folder"):
        next(track_folder(tmp_path / "missing"))
    with pytest.raises(NoVideosError, match="no .mp4, .mov or .webm"):
        next(track_folder(tmp_path))
    (tmp_path / "notes.txt").write_text("not a video")
    with pytest.raises(NoVideosError):
        next(track_folder(tmp_path))


def test_folder_skips_bad_videos_and_reads_descriptions(
    tmp_path: Path, clip: Clip, silent_video: Path, blank_video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a_silent.mp4").write_bytes(silent_video.read_bytes())
    (tmp_path / "b_blank.mp4").write_bytes(blank_video.read_bytes())
    write_mp4(tmp_path / "c_talk.webm", clip.frames[:25], audio=clip.audio[: 25 * HOP])  # VP9 + Opus
    (tmp_path / "c_talk.txt").write_text("a short hello", encoding="utf-8")
    skipped: list[tuple[Path, str]] = []
    with caplog.at_level(logging.WARNING):
        videos = list(track_folder(tmp_path, skipped=skipped))
    assert [v.source.name for v in videos] == ["c_talk.webm"]
    v = videos[0]
    assert v.text == "a short hello" and v.frames == 25 and len(v.audio) == 25 * HOP
    assert np.corrcoef(v.audio, clip.audio[: 25 * HOP])[0, 1] > 0.9
    assert [p.name for p, _ in skipped] == ["a_silent.mp4", "b_blank.mp4"]
    assert "a_silent.mp4" in caplog.text and "b_blank.mp4" in caplog.text
    with pytest.raises(VideoError, match="a_silent.mp4"):
        list(track_folder(tmp_path, strict=True))


def test_a_folder_of_only_bad_videos_raises(tmp_path: Path, silent_video: Path, blank_video: Path) -> None:
    (tmp_path / "silent.mp4").write_bytes(silent_video.read_bytes())
    (tmp_path / "blank.MOV").write_bytes(blank_video.read_bytes())  # any letter case
    with pytest.raises(VideoError, match="none of the 2 videos could be used"):
        list(track_folder(tmp_path))
