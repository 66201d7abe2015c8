"""Time in the engine: sample counts for media, one clock for pacing.

Media time is counted in samples at 16 kHz, never in seconds of wall time: video frame n covers
samples [n * 640, (n + 1) * 640) of its session, its pts is n * 640, and the audio chunk that goes
out with it is exactly those samples. Audio and video therefore cannot drift apart, however long a
session runs. Wall time enters only to say *when* a frame is due: the engine's frame grid is
``Timeline``, whose tick times are computed from integers each time (origin + k * 640 / 16000), so
they do not accumulate rounding either (``tests/test_engine_clock.py`` simulates an hour).

``Clock`` is what the scheduler sleeps on: ``MonotonicClock`` in real time, ``VirtualClock`` for
tests and benchmarks (a fast clock: time moves only when someone sleeps or advances it)."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Protocol

from posetalk.models.rates import FPS, SAMPLE_RATE  # the models' rate is the unit of every timestamp here

FRAME = SAMPLE_RATE // FPS  # 640 samples of audio per video frame
FRAME_S = FRAME / SAMPLE_RATE  # 0.04 s


class Clock(Protocol):
    """Seconds on some monotonic scale, and a way to wait for a point on it."""

    def now(self) -> float: ...

    async def sleep_until(self, t: float) -> None: ...


class MonotonicClock:
    """Real time (time.monotonic): what a server runs on."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, t: float) -> None:
        delay = t - time.monotonic()
        await asyncio.sleep(max(0.0, delay))


class VirtualClock:
    """Simulated time: ``sleep_until(t)`` returns at once with the clock set to t (a fast clock),
    ``advance``/``set`` move it by hand. An Engine on a VirtualClock runs no background loop; the
    caller steps it with ``Engine.advance(seconds)``, so what happens at each tick is exact and
    independent of how busy the machine is."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def set(self, t: float) -> None:
        """Move to ``t`` (never backwards: time is monotonic)."""
        self._now = max(self._now, float(t))

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)

    async def sleep_until(self, t: float) -> None:
        self.set(t)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


@dataclass(frozen=True)
class Timeline:
    """The engine's frame grid: tick k starts computing at ``tick_time(k)``; what it computes is
    due ``budget`` samples later (``due_time(k)``). A session opened at tick k0 shows its frame n
    at tick k0 + n. All times come from integer sample counts in one division, so tick 90 000 (an
    hour) is exactly where the first tick's arithmetic says it is."""

    origin: float  # clock time of tick 0
    budget: int  # samples (at 16 kHz) between a tick's start and its frames' due time

    def tick_time(self, k: int) -> float:
        return self.origin + (k * FRAME) / SAMPLE_RATE

    def due_time(self, k: int) -> float:
        return self.origin + (k * FRAME + self.budget) / SAMPLE_RATE

    def tick_at(self, t: float) -> int:
        """The last tick whose start is at or before ``t`` (-1 before the origin)."""
        k = math.floor((t - self.origin) * SAMPLE_RATE / FRAME)
        if self.tick_time(k + 1) <= t:  # the float product can land a hair short of a boundary
            k += 1
        return k


def latency_samples(lookahead: int, budget: int) -> int:
    """The pipeline latency in samples: from the first sample of a frame's audio arriving (from a
    real-time source in step with the frame grid) to the frame being due. The frame's own audio
    (one frame) and ``lookahead`` more frames must be in before it can be computed, and then the
    processing budget passes; the audio that goes out with the frame is the input delayed by
    exactly this much."""
    return (lookahead + 1) * FRAME + budget
