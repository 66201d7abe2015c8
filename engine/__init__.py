"""The real-time engine: sessions that turn live audio into talking-portrait frames at 25 fps.

    from posetalk.engine import Engine, EngineConfig, run
    from posetalk.models.render import prepare

    async def main() -> None:
        async with Engine(EngineConfig(max_sessions=4)) as engine:
            session = await engine.open_session(prepare("portrait.jpg"), prompt="calm")
            session.push_audio(pcm_int16, 48000)
            session.flush()
            async for out in session.frames():   # out.video, out.audio, out.pts, out.end_of_speech
                ...

    run(main())   # asyncio, on uvloop when it is installed

Modules: ``clock`` (sample-count time, the frame grid, real and virtual clocks), ``resample`` and
``audio_input`` (PCM in, the bounded 16 kHz ring), ``vad`` (speech/listening), ``head`` and
``motion`` (head motion and the batched lip models), ``pipeline`` (one session's synchronous
core), ``session`` (the public per-session API), ``engine`` (sessions and the scheduler),
``stats`` (per-stage timings). The engine imports models/, never streaming/ or clients/."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from posetalk.engine.clock import FPS, FRAME, SAMPLE_RATE, MonotonicClock, VirtualClock, latency_samples
from posetalk.engine.engine import Engine, EngineConfig, EngineStats
from posetalk.engine.session import Output, Session, SessionStats
from posetalk.engine.stats import StageSummary

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a new event loop: uvloop's when it is installed (it is a dependency on
    Linux and macOS), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


__all__ = [
    "FPS", "FRAME", "SAMPLE_RATE", "Engine", "EngineConfig", "EngineStats", "MonotonicClock", "Output", "Session",
    "SessionStats", "StageSummary", "VirtualClock", "latency_samples", "run",
]  # fmt: skip
