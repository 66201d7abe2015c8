"""Sample-count time: the frame grid's arithmetic, and an hour of real-time input simulated on a
fast clock with no drift between the audio going in, the audio going out and the frames."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from posetalk.engine.audio_input import AudioInput
from posetalk.engine.clock import FRAME, FRAME_S, SAMPLE_RATE, Timeline, VirtualClock, latency_samples


def test_the_stated_pipeline_latency() -> None:
    # One frame of its own audio + 2 frames of lookahead + a 20 ms budget = 140 ms.
    assert latency_samples(2, 320) == 2240
    assert latency_samples(2, 320) / SAMPLE_RATE == pytest.approx(0.140)
    assert FRAME == 640 and FRAME_S == 0.04


def test_timeline_ticks_come_from_integers() -> None:
    t = Timeline(origin=1234.5678, budget=320)
    for k in [0, 1, 2, 24, 25, 999, 90_000, 9_000_000]:
        assert t.tick_time(k) == 1234.5678 + k * 640 / 16000
        assert t.due_time(k) - t.tick_time(k) == pytest.approx(0.02, abs=1e-9)
        assert t.tick_at(t.tick_time(k)) == k
        assert t.tick_at(t.tick_time(k) + 1e-6) == k
        assert t.tick_at(t.tick_time(k) - 1e-6) == k - 1
    assert t.tick_at(1234.5678 - 0.5) < 0


def test_virtual_clock_is_monotonic_and_never_waits() -> None:
    clock = VirtualClock(10.0)

    async def run() -> None:
        await clock.sleep_until(12.5)
        assert clock.now() == 12.5
        await clock.sleep_until(11.0)  # in the past: returns at once, time does not go back
        assert clock.now() == 12.5

    asyncio.run(run())
    clock.advance(0.5)
    clock.set(1.0)
    assert clock.now() == 13.0


def test_an_hour_of_real_time_input_keeps_audio_and_frames_in_step() -> None:
    """A source pushes chunks in real time for an hour; every 40 ms tick takes one frame of
    input. Each frame's audio must be exactly the input samples it covers, at the same offset at
    the end as at the start, and the time from a frame's audio arriving to the frame being due
    must not grow: no drift of sound against picture, nor of either against the clock."""
    clock = VirtualClock(100.0)
    t = Timeline(clock.now(), budget=320)
    inp = AudioInput(capacity_s=2.0)
    chunk = 2500  # 156.25 ms (a WebRTC stack sends 20 ms; longer is quicker to simulate, and harder)
    frames = 3600 * 25
    pushed = 0
    offsets, lags = [], []
    for k in range(frames):
        clock.set(t.tick_time(k))
        # The source's chunks arrive when their last sample is due (its first sample at the origin).
        while pushed + chunk <= round((clock.now() - t.origin) * SAMPLE_RATE):
            idx = np.arange(pushed, pushed + chunk)
            inp.push((idx % 65536 / 65536.0).astype(np.float32), SAMPLE_RATE, clock.now())
            pushed += chunk
        slot = inp.take_slot()
        if not slot.real:
            # Silence goes in until a whole frame is buffered, and whenever a frame is incomplete
            # at its tick (each such gap delays the rest of the stream by a frame, which then
            # arrives in time): with chunks longer than a frame that settles within two seconds.
            assert k < 50
            continue
        first = round(float(slot.audio[0]) * 65536)  # the input sample index (mod 65536) it starts at
        if k % 50 == 0 or k > frames - 50:  # every sample of every 50th frame, and of the last ones
            expected = (first + np.arange(FRAME)) % 65536 / 65536.0
            np.testing.assert_array_equal(slot.audio, expected.astype(np.float32))
        offsets.append((k * FRAME - first) % 65536)
        assert slot.arrival is not None
        lags.append(t.due_time(k) - slot.arrival)
    assert len(offsets) >= frames - 50
    assert len(set(offsets[50:])) == 1  # the same sample offset at minute 60 as at minute 1
    # From the audio completing a frame arriving to the frame being due: it varies with where the
    # chunk edges fall against the frame grid (by less than a chunk and a frame), and does not grow.
    lags_ms = np.array(lags[50:]) * 1000
    assert lags_ms.max() - lags_ms.min() < 1000 * (chunk + FRAME) / SAMPLE_RATE + 1e-6
    first_minute, last_minute = lags_ms[: 25 * 60], lags_ms[-25 * 60 :]
    assert abs(first_minute.mean() - last_minute.mean()) < 1.0
    assert inp.dropped == 0 and inp.buffered < chunk + FRAME  # the buffer did not grow either
