"""The pure core of the outgoing media (streaming/pacing.py), and the aiortc tracks built on it fed
by a real engine on a simulated clock: slot times and RTP timestamps from sample counts, the common
start of both tracks, repeat-when-late and skip-when-behind for video, gapless audio resampled
chunk by chunk exactly as the whole signal, silence for audio that came too late."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from posetalk.engine import Engine, EngineConfig, Output, VirtualClock
from posetalk.engine.audio_input import WIDE_FRAME
from posetalk.engine.clock import FRAME
from posetalk.streaming.pacing import AUDIO_PACKET, AUDIO_SLOT, VIDEO_TICKS, AudioOut, Pacer, VideoOut
from posetalk.tests.engine_fixtures import buzz


def test_pacer_anchors_on_the_first_frame_and_counts_samples() -> None:
    p = Pacer(margin=0.04)
    p.on_output(pts=5 * FRAME, due=100.25)
    p.on_output(pts=6 * FRAME, due=999.0)  # only the first frame sets the anchor
    assert p.anchor == pytest.approx(100.25 - 0.2 + 0.04)
    assert p.time_of(5 * FRAME) == pytest.approx(100.29)
    # An hour later the slot times still come from the sample count alone.
    hour = 25 * 3600 * FRAME
    assert p.time_of(hour) - p.time_of(0) == pytest.approx(3600.0, abs=1e-9)


def test_both_tracks_begin_at_one_frame_boundary() -> None:
    p = Pacer(margin=0.0)
    p.on_output(0, 10.0)
    start = p.begin(10.0 + 0.013)  # between frames 0 and 1: the next boundary
    assert start == FRAME
    assert p.video_slot(None, 10.5) == 1  # the video track asks late: still the common start
    assert p.audio_slot(None, 10.9) == FRAME // AUDIO_SLOT == 2
    assert p.begin(99.0) == FRAME  # decided once


def test_video_slots_skip_only_when_a_whole_frame_behind() -> None:
    p = Pacer(margin=0.0)
    p.on_output(0, 0.0)
    p.begin(0.0)
    assert p.video_slot(3, 0.125) == 4  # slot 4 plays from 0.16: on time, the next one
    assert p.video_slot(3, 0.165) == 4  # a little late: still the next one
    assert p.video_slot(3, 0.205) == 5  # slot 5 is already playing: skip 4
    assert p.video_slot(3, 0.61) == 15  # far behind: jump to the slot playing now, never queue
    assert [p.audio_slot(j, 9.0) for j in (0, 1, 7)] == [1, 2, 8]  # audio never skips


def test_video_out_repeats_when_late_and_keeps_only_the_newest() -> None:
    frames = {i: np.full((4, 4, 3), i, np.uint8) for i in range(20)}
    v = VideoOut(keep=3, placeholder=np.zeros((4, 4, 3), np.uint8))
    img, rep = v.take(0)
    assert rep and not img.any()  # nothing yet: the portrait placeholder
    v.put(1, frames[1])
    img, rep = v.take(1)
    assert not rep and img[0, 0, 0] == 1
    img, rep = v.take(2)  # frame 2 is late: frame 1 again
    assert rep and img[0, 0, 0] == 1
    v.put(2, frames[2])  # too late for its slot: ignored
    v.put(3, frames[3])
    assert v.take(3)[0][0, 0, 0] == 3
    for i in range(4, 12):
        v.put(i, frames[i])
    assert sorted(v.frames) == [9, 10, 11] and v.dropped == 5  # bounded: DROP_OLDEST
    assert v.has(10) and v.has(5)  # 5 will never come: don't wait for it
    img, rep = v.take(10)
    assert img[0, 0, 0] == 10 and sorted(v.frames) == [11]  # older ones released


def test_audio_packets_are_the_frames_full_band_audio_with_no_seam() -> None:
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(48000)).astype(np.float32)  # white: energy up to 24 kHz
    a = AudioOut()
    start_slot = 4  # the stream starts at 48 kHz position 3840 (16 kHz 1280)
    for pos in range(0, len(x), WIDE_FRAME):  # as the engine publishes it: frame by frame
        a.put(3840 + pos, x[pos : pos + WIDE_FRAME])
    packets = []
    for j in range(start_slot, start_slot + 50):
        assert a.ready(j)
        packets.append(a.packet(j))
    got = np.concatenate(packets).astype(np.float64) / 32767
    np.testing.assert_allclose(got, np.clip(x, -1, 1)[: len(got)], atol=2e-5)  # what came in, int16-rounded
    assert a.underrun == 0 and all(p + len(c) > a.fed for p, c in a.chunks.items())  # sent audio is released


def test_audio_that_misses_its_packet_is_silence_and_later_ignored() -> None:
    a = AudioOut()
    tone = np.full(WIDE_FRAME, 0.5, np.float32)
    a.put(0, tone)
    assert a.ready(0) and a.ready(1) and not a.ready(2)  # a frame is two packets
    p0, p1, p2 = a.packet(0), a.packet(1), a.packet(2)  # slot 2 sent anyway (its deadline passed)
    assert abs(p0.astype(float) / 32767 - 0.5).max() < 1e-3 and not p2.any()
    assert a.underrun == AUDIO_PACKET
    a.put(WIDE_FRAME, tone)  # the late frame: what was not sent yet still goes out
    p3 = a.packet(3)
    assert abs(p3.astype(float) / 32767 - 0.5).max() < 1e-3 and len(p1) == AUDIO_PACKET
    with pytest.raises(ValueError, match="consecutive"):
        a.packet(5)


def test_barge_in_silences_what_was_not_sent_at_once() -> None:
    a, v = AudioOut(), VideoOut()
    tone = np.full(WIDE_FRAME, 0.5, np.float32)
    for n in range(4):
        a.put(n * WIDE_FRAME, tone)
        v.put(n, np.full((2, 2, 3), n, np.uint8))
    a.packet(0)
    assert v.take(0)[0][0, 0, 0] == 0
    assert a.silence_pending() == 4 * WIDE_FRAME - a.fed and v.clear() == 3
    assert tone.all()  # the engine's own arrays are not touched
    assert a.ready(1) and a.ready(6)  # nothing to wait for
    later = np.concatenate([a.packet(j) for j in range(1, 7)])
    assert not later.any() and a.underrun == 0  # silence, and nothing waited for
    img, repeated = v.take(1)
    assert repeated and img[0, 0, 0] == 0  # the last picture shown, repeated


def test_audio_buffer_is_bounded_before_the_tracks_start() -> None:
    a = AudioOut(keep_s=0.5)
    for n in range(200):  # 8 s of frames, nobody sending
        a.put(n * WIDE_FRAME, np.zeros(WIDE_FRAME, np.float32))
    assert sum(len(c) for c in a.chunks.values()) <= 24000 + WIDE_FRAME


def arun(coro: Any) -> Any:
    return asyncio.run(coro)


def test_tracks_send_the_engines_frames_with_sample_count_timestamps(small_avatar: Any) -> None:
    from posetalk.models.motion.infer import MotionModel
    from posetalk.streaming.tracks import SessionAudioTrack, SessionMedia, SessionVideoTrack

    clock = VirtualClock()
    audio = buzz(2.0)

    async def run() -> tuple[list[Any], list[Any], list[Output]]:
        cfg = EngineConfig(head="procedural", output_queue=1000)
        async with Engine(cfg, clock=clock, motion_model=MotionModel.load()) as engine:
            session = await engine.open_session(small_avatar)
            media = SessionMedia(session, clock, margin=0.04)
            outs: list[Output] = []
            media.sinks.append(outs.append)
            media.start()
            session.push_audio(audio, 16000)
            await engine.advance(0.5)  # frames published before anyone pulls
            await asyncio.sleep(0)
            video, sound = SessionVideoTrack(media), SessionAudioTrack(media)
            first = media.pacer.begin(clock.now()) // FRAME
            vf, af = [], []
            for i in range(30):  # the clock just past each slot's send time, as a real sender sees it
                await engine.advance(max(0.0, media.pacer.time_of((first + i) * FRAME) + 0.005 - clock.now()))
                await asyncio.sleep(0)
                vf.append(await video.recv())
                af += [await sound.recv(), await sound.recv()]
            await media.close()
            return vf, af, outs

    vf, af, outs = arun(run())
    by_index = {o.index: o for o in outs}
    k0 = vf[0].pts // VIDEO_TICKS
    assert [f.pts for f in vf] == [(k0 + i) * VIDEO_TICKS for i in range(30)]  # 3600 per frame
    assert af[0].pts == k0 * FRAME * 3  # the audio starts at the same frame boundary
    assert [f.pts for f in af] == [af[0].pts + i * AUDIO_PACKET for i in range(60)]
    for f in vf:  # each slot shows its own frame
        np.testing.assert_array_equal(f.to_ndarray(format="rgb24"), by_index[f.pts // VIDEO_TICKS].video)
    sent = np.concatenate([f.to_ndarray()[0][::2] for f in af]).astype(np.float64) / 32767  # stereo, L = R
    want = np.concatenate([by_index[k].wide for k in sorted(by_index) if k >= k0])
    np.testing.assert_allclose(sent, want[: len(sent)], atol=2e-5)  # the frames' own full-band audio, in step
