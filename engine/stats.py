"""Per-stage timings and counters, for the server's stats and /metrics and for the bench.

Each stage keeps its last ``window`` durations (a bounded deque: an hour-long session does not grow
it), so p50/p95 describe the recent past. Durations are wall seconds of the work itself
(perf_counter), except ``latency``, measured on the engine's clock from the push of the audio
that completes a frame to the frame going out.

Stages the engine records:
  input    one push_audio: checks, conversion, resampling, buffering (on the event loop)
  prepare  one round's voice gate, head motion and mel for every session due
  lips     one round's CoarseNet + RefineNet, batched over those sessions
  render   one frame of one session
  tick     a whole tick: every session's motion and rendering (the worker's share)
  latency  audio in -> frame out, per frame that carried pushed audio: from the push that
           completed the frame's audio to the frame's publication"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

STAGES = ("input", "prepare", "lips", "render", "tick", "latency")


@dataclass(frozen=True)
class StageSummary:
    """Milliseconds over the recent window of one stage."""

    count: int  # samples ever recorded
    p50_ms: float
    p95_ms: float
    max_ms: float

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:7.2f} ms  p95 {self.p95_ms:7.2f} ms  max {self.max_ms:7.2f} ms  (n={self.count})"


class Stats:
    """Thread-safe: the worker records stage times, the event loop latencies and counters."""

    def __init__(self, window: int = 3000) -> None:
        self.window = window
        self._times: dict[str, deque[float]] = {}
        self._counts: dict[str, int] = {}
        self.counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._times.setdefault(stage, deque(maxlen=self.window)).append(seconds)
            self._counts[stage] = self._counts.get(stage, 0) + 1

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.record(stage, time.perf_counter() - t0)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def summary(self, stage: str) -> StageSummary | None:
        with self._lock:
            times = list(self._times.get(stage, ()))
            count = self._counts.get(stage, 0)
        if not times:
            return None
        ms = np.asarray(times) * 1000.0
        return StageSummary(count, float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(ms.max()))

    def summaries(self) -> dict[str, StageSummary]:
        """Every stage recorded so far."""
        with self._lock:
            names = list(self._times)
        return {name: s for name in names if (s := self.summary(name)) is not None}

    def reset(self) -> None:
        """Forget the timings (counters stay): e.g. after a warm-up."""
        with self._lock:
            self._times.clear()
            self._counts.clear()
