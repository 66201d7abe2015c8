"""Sessions end to end on a simulated clock (VirtualClock: every tick exact, however busy the
machine): 25 fps listening frames when idle, A/V alignment, the mouth in speech and silence, the
lip path equal to the offline model, flush, interrupt, live prompts for both head sources, and
the frame grid under a late scheduler. Nothing here measures speed (that is `posetalk bench
engine`)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest
from posetalk.engine import Output
from posetalk.engine.clock import FRAME
from posetalk.models.face.params import INDEX
from posetalk.models.motion.infer import MotionModel
from posetalk.models.motion.nets import N_MOUTH
from posetalk.models.pld.stream import PoseStream
from posetalk.tests.engine_fixtures import SeededPrompts, arun, buzz, engine, tiny_pose_model

JAW = INDEX["jawOpen"]


def padded(audio: np.ndarray, before_s: float = 0.4, after_s: float = 0.8) -> np.ndarray:
    return np.concatenate(
        [np.zeros(int(before_s * 16000), np.float32), audio, np.zeros(int(after_s * 16000), np.float32)]
    )


def test_an_idle_session_listens_at_25_fps(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run() -> list[Output]:
        async with engine(motion_model) as e:
            s = await e.open_session(small_avatar)
            await e.advance(3.99)  # ticks at 0, 0.04, ..., 3.96 s
            return s.drain()

    outs = arun(run())
    assert len(outs) == 100  # 4 s at 25 fps
    assert [o.pts for o in outs] == [n * FRAME for n in range(100)]
    assert np.allclose(np.diff([o.due for o in outs]), 0.04)
    for o in outs:
        assert o.video is not None and o.video.shape == (128, 128, 3) and o.video.dtype == np.uint8
        assert not o.speaking and not o.end_of_speech and not o.repeated
        assert not o.audio.any() and not o.expression[:N_MOUTH].any()  # silent, mouth closed
        assert o.head_source == "procedural:calm"
    yaw = np.degrees([o.pose[0] for o in outs])
    assert np.ptp(yaw) > 0.05 and np.abs(np.diff(yaw, 2)).max() < 0.05  # alive, and smooth


def test_each_frame_carries_exactly_its_own_input_samples(motion_model: MotionModel, small_avatar: Any) -> None:
    rng = np.random.default_rng(0)
    audio16 = (0.1 * rng.standard_normal(16000 * 2 + 123)).astype(np.float32)
    audio48 = (0.1 * rng.standard_normal(48000 * 2)).astype(np.float32)

    async def run() -> tuple[list[Output], list[Output]]:
        async with engine(motion_model) as e:
            a = await e.open_session(small_avatar)
            b = await e.open_session(None)  # motion only: same audio path, no pictures
            a.push_audio(audio16, 16000)
            for i in range(0, len(audio48), 960):  # 20 ms chunks of int16 at 48 kHz
                b.push_audio((audio48[i : i + 960] * 32767).astype(np.int16), 48000)
            a.flush()
            b.flush()
            await e.advance(3.0)
            return a.drain(), b.drain()

    outs_a, outs_b = arun(run())
    got = np.concatenate([o.audio for o in outs_a])
    np.testing.assert_array_equal(got[: len(audio16)], audio16)  # frame n: input samples [640n, 640n + 640)
    assert not got[len(audio16) :].any()
    from scipy.signal import resample_poly

    want = resample_poly((audio48 * 32767).astype(np.int16) / 32768, 1, 3)
    got_b = np.concatenate([o.audio for o in outs_b])
    np.testing.assert_allclose(got_b[: len(want)], want, atol=1e-5)
    assert all(o.video is None for o in outs_b)
    # What listeners get: the input itself at 48 kHz (full band), in step with the models' copy.
    wide_b = np.concatenate([o.wide for o in outs_b])
    sent48 = (audio48 * 32767).astype(np.int16) / 32768
    np.testing.assert_array_equal(wide_b[: len(sent48)], sent48.astype(np.float32))
    wide_a = np.concatenate([o.wide for o in outs_a])
    np.testing.assert_allclose(wide_a[: 3 * len(audio16)], resample_poly(audio16, 3, 1), atol=1e-5)


def test_the_mouth_opens_in_speech_and_is_closed_in_silence(
    motion_model: MotionModel, small_avatar: Any, spoken: np.ndarray
) -> None:
    audio = padded(spoken)

    async def run() -> list[Output]:
        async with engine(motion_model) as e:
            s = await e.open_session(small_avatar)
            s.push_audio(audio, 16000)
            await e.advance(len(audio) / 16000 + 0.5)
            return s.drain()

    outs = arun(run())
    speaking = np.array([o.speaking for o in outs])
    jaw = np.array([o.expression[JAW] for o in outs])
    mouth = np.array([o.expression[:N_MOUTH] for o in outs])
    n0, n1 = 10, (len(audio) - int(0.8 * 16000)) // FRAME  # the speech's frames
    assert speaking[n0 + 2 : n1 - 2].mean() > 0.9 and not speaking[: n0 - 1].any()
    assert not speaking[n1 + 10 :].any()  # listening again once the hangover is over
    assert jaw[speaking].max() > 0.2 and np.percentile(jaw[speaking], 75) > 0.05
    assert not mouth[~speaking].any()  # closed exactly while listening
    assert sum(o.end_of_speech for o in outs) == 1


@pytest.mark.parametrize(("f0_ref", "adapt_var"), [(0.0, False), (100.0, False), (0.0, True)])
def test_the_lips_are_the_offline_models_lips(
    motion_model: MotionModel, small_avatar: Any, spoken: np.ndarray, f0_ref: float, adapt_var: bool
) -> None:
    audio = padded(spoken)

    def variant(f0_ref: float, adapt_var: bool) -> MotionModel:
        """The shipped nets told they were trained with voice_norm (this voice, ~120 Hz, moves down
        at 100 Hz) or not, with the running deviation taken off or not."""
        nets = [copy.deepcopy(n) for n in (motion_model.coarse, motion_model.refine)]
        for n in nets:
            n.cfg = dataclasses.replace(n.cfg, f0_ref=f0_ref, adapt_var=adapt_var)
        return MotionModel(*nets)

    plain, motion_model = variant(0.0, False), variant(f0_ref, adapt_var)

    async def run() -> list[Output]:
        async with engine(motion_model) as e:
            s = await e.open_session(small_avatar)
            s.push_audio(audio, 16000)
            await e.advance(len(audio) / 16000)
            return s.drain()

    outs = arun(run())[:-2]  # offline, the last frames repeat the last step (no future audio)
    heard = np.concatenate([o.audio for o in outs])
    pose_gaze = np.concatenate([np.array([o.pose for o in outs]), np.array([o.gaze for o in outs])], 1)
    ref = motion_model.predict(heard, lookahead=2, pose_gaze=pose_gaze)
    got = np.array([o.expression for o in outs])
    speaking = np.array([o.speaking for o in outs])
    np.testing.assert_allclose(got[speaking, :N_MOUTH], ref[speaking, :N_MOUTH], atol=2e-3)
    brows = [INDEX[n] for n in ("browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight")]
    np.testing.assert_allclose(got[:, brows], ref[:, brows], atol=2e-3)
    if f0_ref or adapt_var:
        moved = np.abs(plain.predict(heard, 2, pose_gaze)[speaking, :N_MOUTH] - ref[speaking, :N_MOUTH]).max()
        assert moved > 0.02  # the normalisation changed the lips, and the engine followed


def test_flush_shows_all_of_a_partial_frame_then_says_end_of_speech(
    motion_model: MotionModel, small_avatar: Any, spoken: np.ndarray
) -> None:
    audio = spoken[: 16000 + 333]  # not a whole number of frames

    async def run() -> list[Output]:
        async with engine(motion_model) as e:
            s = await e.open_session(small_avatar)
            await e.advance(0.2)
            s.push_audio(audio, 16000)
            s.flush()
            await e.advance(2.0)
            return s.drain()

    outs = arun(run())
    got = np.concatenate([o.audio for o in outs])
    start = next(i for i in range(0, len(got), FRAME) if got[i : i + FRAME].any())
    np.testing.assert_array_equal(got[start : start + len(audio)], audio)
    last = (start + len(audio) - 1) // FRAME  # the frame holding the last sample
    eos = [o.index for o in outs if o.end_of_speech]
    assert eos == [last + 1]  # at once after the utterance (no hangover), exactly once


def test_interrupt_silences_the_output_at_once(
    motion_model: MotionModel, small_avatar: Any, spoken: np.ndarray
) -> None:
    async def run() -> tuple[list[Output], list[Output], list[Output], float, Any]:
        async with engine(motion_model) as e:
            s = await e.open_session(small_avatar)
            s.push_audio(padded(spoken, 0.2), 16000)
            await e.advance(1.2)
            before = s.drain()
            await e.advance(0.2)  # frames the consumer has not taken yet
            t = e.clock.now()
            s.interrupt()
            queued = s.drain()
            await e.advance(1.5)
            return before, queued, s.drain(), t, s.stats

    before, queued, after, t_interrupt, stats = arun(run())
    assert any(o.speaking and o.audio.any() for o in before[-10:])  # mid-sentence
    assert queued == []  # what the consumer had not taken is gone
    assert after[0].due - t_interrupt <= 0.1  # the first frame after it is due within 100 ms...
    for o in after:  # ...and it and every one after are silent with the mouth closed
        assert not o.audio.any() and not o.speaking and not o.expression[:N_MOUTH].any()
    assert [o.end_of_speech for o in after].count(True) == 1 and after[0].end_of_speech
    assert stats.input_discarded > 16000  # the rest of the sentence
    assert [o.pts for o in after] == [after[0].pts + n * FRAME for n in range(len(after))]


def test_a_prompt_changes_the_procedural_style_at_the_next_hop(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run() -> tuple[list[Output], int]:
        async with engine(motion_model) as e:
            s = await e.open_session(small_avatar, prompt="calm")
            s.push_audio(buzz(5.0), 16000)
            await e.advance(1.0)
            shown = s.frames_out
            s.set_prompt("She shakes her head")
            assert s.prompt == "She shakes her head"
            await e.advance(2.0)
            return s.drain(), shown

    outs, shown = arun(run())
    sources = [o.head_source for o in outs]
    first = sources.index("procedural:shaking")
    assert set(sources[:first]) == {"procedural:calm"} and set(sources[first:]) == {"procedural:shaking"}
    assert outs[first].index == -(-shown // 8) * 8  # the first hop boundary after the call


def test_a_prompt_reaches_the_pose_models_next_hop(motion_model: MotionModel, small_avatar: Any) -> None:
    model = tiny_pose_model()
    audio = buzz(4.0)

    async def run() -> tuple[list[Output], int]:
        async with engine(motion_model, pose_model=model, head="pose") as e:
            s = await e.open_session(small_avatar, prompt="calm", seed=3)
            s.push_audio(audio, 16000)
            await e.advance(1.0)
            slots = s.slots_taken
            s.set_prompt("nods")
            await e.advance(3.0)
            return s.drain(), slots

    outs, slots = arun(run())
    # The same stream run by hand, with the prompt changed after the same slot: its windows, by
    # the display frame they appear at (slot s is pushed before frame s - 2 is shown).
    ref = PoseStream(model, "calm", seed=3, lookahead=2)
    windows = {}
    for i in range(len(outs) + 2):
        if i == slots:
            ref.set_prompt("nods")
        p, g = ref.push(np.resize(audio[i * FRAME : (i + 1) * FRAME], FRAME) * (i * FRAME < len(audio)))
        if len(p):
            first, plan = ref.ahead()  # type: ignore[misc]
            windows[i - 2] = (first - len(p), np.concatenate([np.concatenate([p, g], 1), plan]))
    got = np.array([np.concatenate([o.pose, o.gaze]) for o in outs])
    ends = [(at + 7, start, f) for at, (start, f) in windows.items() if at >= min(windows) + 8 and at + 7 < len(got)]
    assert len(ends) >= 5
    for i, start, f in ends:  # each crossfade ends exactly on the window the hand-run stream made
        np.testing.assert_allclose(got[i], f[i - start], atol=1e-5)
    labels = [o.head_source for o in outs]
    first = labels.index("pose model:'nods'")
    assert first in windows and first + 2 > slots  # the first window made after the change
    assert labels[first - 1] == "pose model:'calm'"
    assert isinstance(model.prompts, SeededPrompts) and "nods" in model.prompts.seen


def test_a_late_scheduler_skips_renders_not_time(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run() -> tuple[list[Output], dict[str, int]]:
        async with engine(motion_model) as e:
            s = await e.open_session(small_avatar)
            s.push_audio(buzz(3.0), 16000)
            await e.advance(1.99, every=0.2)  # the scheduler wakes only every 200 ms
            return s.drain(), e.snapshot().counters

    outs, counters = arun(run())
    assert [o.pts for o in outs] == [n * FRAME for n in range(len(outs))]  # still every frame's audio
    assert len(outs) == 50
    repeated = [o.repeated for o in outs]
    assert 35 <= sum(repeated) <= 45 and counters["late_ticks"] >= 35  # ~4 of every 5 not rendered
    for a, b in zip(outs, outs[1:], strict=False):
        if b.repeated:
            assert b.video is a.video  # the previous picture, not a stale queue


def test_each_session_has_its_own_voice_detector(motion_model: MotionModel) -> None:
    """webrtcvad keeps state from frame to frame: one session's speech must not colour another's
    voice decisions."""

    async def run() -> tuple[Any, Any]:
        async with engine(motion_model) as e:
            a, b = await e.open_session(None), await e.open_session(None)
            return a.pipeline.vad, b.pipeline.vad

    va, vb = arun(run())
    assert va is not vb and va.kind == vb.kind


def test_a_new_prompt_is_encoded_off_the_tick(motion_model: MotionModel, small_avatar: Any) -> None:
    """The sentence encoder never runs inside the engine's tick: while a prompt is being encoded
    (held here until released) frames keep coming with the old prompt; once encoded, the next
    pose hop uses it."""
    import threading

    model = tiny_pose_model()
    gate = threading.Event()
    encode = model.prompts.embed

    def slow_embed(texts: Any) -> np.ndarray:
        if "held" in str(texts):
            assert gate.wait(30)
        return encode(texts)

    model.prompts.embed = slow_embed  # type: ignore[method-assign]

    async def run() -> tuple[list[Output], list[Output]]:
        async with engine(motion_model, pose_model=model, head="pose") as e:
            s = await e.open_session(small_avatar, prompt="calm")
            s.push_audio(padded(buzz(3.0)), 16000)
            await e.advance(0.5)
            s.set_prompt("held prompt")
            await e.advance(1.0)  # ticks run while the encoder waits
            during = s.drain()
            gate.set()
            await s.settled()
            await e.advance(1.0)
            return during, s.drain()

    during, after = arun(run())
    assert len(during) >= 24 and all("held" not in o.head_source for o in during)
    assert any("held prompt" in o.head_source for o in after)
