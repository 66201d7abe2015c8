"""Head motion for live sessions: the procedural head starts on the portrait's own pose, is calm
and smooth while listening, blinks, switches style at hop boundaries without a jump; prompts map
to styles; the pose-model head shows each window the PLD makes as soon as it exists, crossfaded in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from posetalk.engine.audio_input import Slot
from posetalk.engine.clock import FRAME
from posetalk.engine.head import PoseModelHead, ProceduralHead
from posetalk.engine.live_head import BLINK_SHAPE, HOP, LiveHead, style_for_prompt
from posetalk.models.pld.stream import run_hops
from posetalk.tests.engine_fixtures import buzz, tiny_pose_model


def run(head: LiveHead, speaking: list[bool], level: float = -20.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frames = [head.step(level if s else -120.0, level if s else -120.0, s) for s in speaking]
    return (np.array([f.pose for f in frames]), np.array([f.gaze for f in frames]),
            np.array([f.blink for f in frames]))  # fmt: skip


def test_the_head_starts_on_the_portrait_and_listens_calmly_without_jitter() -> None:
    pose, gaze, _ = run(LiveHead(seed=3), [False] * 25 * 60)
    assert not pose[0].any() and not gaze[0].any()
    assert np.abs(np.degrees(pose[:, :3])).max() < 6.0  # calm: a few degrees of sway
    assert np.abs(np.degrees(pose[:, :3])).std(0).min() > 0.2  # but alive, not frozen
    # No jitter: frame-to-frame acceleration of the head stays tiny (sway is a sum of slow sines).
    accel = np.abs(np.diff(np.degrees(pose[:, :3]), 2, axis=0))
    assert accel.max() < 0.05  # degrees per frame²
    assert np.abs(np.degrees(gaze)).max() < 6.0


def test_blinks_are_whole_and_a_few_seconds_apart() -> None:
    _, _, blink = run(LiveHead(seed=1), [False] * 25 * 120)
    starts = np.flatnonzero((blink > 0) & (np.r_[0, blink[:-1]] == 0))
    assert 15 <= len(starts) <= 80  # 120 s at 2-8 s per blink
    assert np.diff(starts).min() >= 25 + len(BLINK_SHAPE) - 1  # at least a second between blinks
    for s in starts:
        np.testing.assert_allclose(blink[s : s + len(BLINK_SHAPE)], BLINK_SHAPE)


def test_a_style_shows_while_speaking_and_fades_to_calm_idle_in_silence() -> None:
    head = LiveHead(seed=0, style=style_for_prompt("nods a lot"))
    pose, _, _ = run(head, [True] * 250 + [False] * 250)
    pitch = np.degrees(pose[:, 1])
    assert np.ptp(pitch[100:250]) > 4.0  # nodding (6° swings) while speaking
    assert np.ptp(pitch[400:]) < 3.0  # calm idle once the activity envelope has decayed


def test_a_new_style_starts_at_the_next_hop_and_crossfades() -> None:
    head = LiveHead(seed=2)
    speaking = [True] * 300
    frames = [head.step(-20.0, -20.0, s) for s in speaking[:13]]
    head.set_style(style_for_prompt("shakes her head fast"))
    assert head.source == "procedural:shaking" and head.style.name == "calm"  # asked for, not yet shown
    styles = []
    for s in speaking[13:]:
        frames.append(head.step(-20.0, -20.0, s))
        styles.append(head.style.name)
    first = 13 + styles.index("shaking")
    assert first == 16 and first % HOP == 0
    yaw = np.degrees(np.array([f.pose[0] for f in frames]))
    steady = np.abs(np.diff(yaw[100:])).max()  # the shake's own fastest frame-to-frame step
    assert np.ptp(yaw[100:]) > 8.0
    assert np.abs(np.diff(yaw[10:30])).max() <= steady  # no jump at the switch: a crossfade over a hop


@pytest.mark.parametrize(
    "prompt, style",
    [("", "calm"), ("She nods slowly while she talks", "nodding"), ("shakes his head", "shaking"),
     ("energetic, looks around a lot", "energetic"), ("looks around, energetic", "looking_around"),
     ("tilts the head", "tilting"), ("keeps very still", "still"), ("Looks down at notes", "looking_down"),
     ("turns to the right", "turning"), ("something unrelated", "calm")],
)  # fmt: skip
def test_prompts_pick_a_style(prompt: str, style: str) -> None:
    assert style_for_prompt(prompt).name == style


def test_prompt_words_scale_the_style() -> None:
    assert style_for_prompt("nods slowly").hz < style_for_prompt("nods").hz < style_for_prompt("nods fast").hz
    assert style_for_prompt("small nods").amp_deg < style_for_prompt("big nods").amp_deg
    assert style_for_prompt("turns right").offset_deg[0] < 0 < style_for_prompt("turns left").offset_deg[0]


def test_procedural_head_source_names_the_style_in_effect() -> None:
    head = ProceduralHead("nodding", seed=0)
    _, source = head.frame(-20.0, -20.0, True)
    assert source == "procedural:nodding"


def test_pose_model_head_shows_each_window_at_once_and_crossfades_to_the_next() -> None:
    model = tiny_pose_model()
    head = PoseModelHead(model, "nods", seed=4, motion_lookahead=2)
    ref = model.stream("nods", seed=4, lookahead=2)  # the same stream, run by hand
    audio = buzz(6.0)
    slots = [audio[i * FRAME : (i + 1) * FRAME] for i in range(len(audio) // FRAME)]
    shown, windows = [], {}  # display frame at which a window appeared -> (first frame, (n, 8))
    for s, slot in enumerate(slots):
        job = head.push(slot)
        if job is not None:  # a hop due: the engine runs it (batched with other sessions') and hands it back
            head.take(job, run_hops([job])[0])
        p, g = ref.push(slot)
        if len(p):
            first, plan = ref.ahead()  # type: ignore[misc]
            windows[s - 2] = (first - len(p), np.concatenate([np.concatenate([p, g], 1), plan]))
        if s >= 2:  # frame s - 2, as the pipeline asks
            f, _ = head.frame(-20.0, -20.0, True)
            shown.append(np.concatenate([f.pose, f.gaze]))
    x = np.array(shown)
    first_shown = min(windows)
    assert first_shown <= HOP  # the first window is on screen a hop in, not a hop and a half
    assert head.starved == 0 and not x[: first_shown + 1].any()  # the portrait's own pose until then
    checked = 0
    for at, (start, frames) in windows.items():  # a crossfade ends exactly on the newest window
        i = at + HOP - 1
        if at >= first_shown + HOP and i < len(x):
            np.testing.assert_allclose(x[i], frames[i - start], atol=1e-5)
            checked += 1
    assert checked >= 10
    steps = np.abs(np.diff(x[first_shown + HOP :], axis=0)).max(1)
    switch = np.isin(np.arange(first_shown + HOP + 1, len(x)), list(windows))
    assert steps[switch].max() <= 1.5 * np.percentile(steps[~switch], 95)  # no jump where windows change


def test_the_engine_runs_every_sessions_due_hop_in_one_call(motion_model: Any) -> None:
    """Three sessions whose hops fall due on the same ticks: one batched call per tick (ONNX
    Runtime) for all three, and each session's head motion is what it gets alone."""
    import dataclasses

    from posetalk.engine.pipeline import SessionPipeline, run_round
    from posetalk.engine.vad import VoiceDetector
    from posetalk.models.motion.runtime import MotionRunner
    from posetalk.tests.test_pld import TINY, random_model

    model = random_model(dataclasses.replace(TINY, guidance_embed=True, consistency=True))
    model.default_steps = 2
    runner = MotionRunner(motion_model)
    session = model.runtime(2)
    calls: list[int] = []

    class Counting:
        def run(self, names: Any, feeds: dict[str, np.ndarray]) -> Any:
            calls.append(len(feeds["x"]))
            return session.run(names, feeds)

    model._hops[(2, "cpu")] = Counting()
    pipes = [SessionPipeline(runner, PoseModelHead(model, p, seed=s), VoiceDetector()) for s, p in
             enumerate(["nods", "shakes the head", "calm"])]  # fmt: skip
    alone = SessionPipeline(runner, PoseModelHead(model, "shakes the head", seed=1), VoiceDetector())
    audio = buzz(3.0)
    together, single = [], []
    for i in range(len(audio) // FRAME):
        slot = Slot(audio[i * FRAME : (i + 1) * FRAME], True, None)
        together.append(run_round(runner, [(p, slot) for p in pipes]))
        single.append(alone.run(slot))
    hops = [n for n in calls if n == 3]
    assert len(hops) >= 8 and len(calls) == len(hops) + sum(1 for n in calls if n == 1)  # batched, then alone
    got = np.array([f[1].pose for f in together if f[1] is not None])
    want = np.array([f.pose for f in single if f is not None])
    assert np.abs(got).max() > 1e-3
    np.testing.assert_allclose(got, want, atol=1e-5)
