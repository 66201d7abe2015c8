"""The engine's lifecycle and limits: the session limit refuses clearly, closing releases every
task, thread and object a session had, bad calls get clear errors, the output queue drops its
oldest frames, frames() ends when the session closes, and a real-time engine (uvloop) streams."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from typing import Any

import numpy as np
import pytest
from posetalk.engine import Engine, EngineConfig, Output, run
from posetalk.engine.clock import FRAME
from posetalk.engine.errors import BackendError, EngineError, SessionClosedError, SessionLimitError
from posetalk.models.errors import AudioInputError, PosetalkError
from posetalk.models.motion.infer import MotionModel
from posetalk.tests.engine_fixtures import arun, buzz, engine


def test_sessions_past_the_limit_are_refused_clearly(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run_() -> None:
        async with engine(motion_model, max_sessions=2) as e:
            a = await e.open_session(small_avatar)
            await e.open_session(None)
            with pytest.raises(SessionLimitError, match="session limit reached: 2"):
                await e.open_session(small_avatar)
            await a.close()
            await e.open_session(small_avatar)  # a freed place can be taken again
            assert len(e.sessions) == 2

    arun(run_())
    assert issubclass(SessionLimitError, EngineError) and issubclass(EngineError, PosetalkError)


def _other_threads() -> set[str]:
    """The names of the live threads that are not the engine pool's workers."""
    return {t.name for t in threading.enumerate() if not t.name.startswith("posetalk-engine")}


def test_closing_sessions_leaves_no_tasks_threads_or_objects(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run_() -> None:
        async with engine(motion_model) as e:
            warm = await e.open_session(small_avatar)
            await e.advance(0.1)
            await warm.close()
            tasks, threads = len(asyncio.all_tasks()), _other_threads()
            refs = []
            for i in range(30):
                s = await e.open_session(small_avatar if i % 2 else None, prompt="nods")
                s.push_audio(buzz(0.5, seed=i), 16000)
                await e.advance(0.2)
                consumer = asyncio.create_task(anext(s.frames()))  # a consumer waiting on it
                await s.close()
                refs += [weakref.ref(s), weakref.ref(s.pipeline), weakref.ref(s.input), weakref.ref(s.output)]
                await consumer
            del s, consumer
            for _ in range(3):  # abandoned frames() generators are closed by the loop (asyncio's finaliser)
                gc.collect()
                await asyncio.sleep(0)
            assert all(r() is None for r in refs)  # nothing a closed session held is still alive
            assert len(asyncio.all_tasks()) == tasks and _other_threads() == threads
            # The engine's own pool starts its workers on demand, up to its size, and keeps them.
            assert len(threading.enumerate()) - len(threads) <= e.config.workers
            assert e.sessions == {}

    before = threading.active_count()
    arun(run_())
    assert threading.active_count() == before  # the engine's worker threads are gone with it


def test_bad_calls_get_clear_errors(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run_() -> None:
        e = engine(motion_model)
        with pytest.raises(EngineError, match="not running"):
            await e.open_session(small_avatar)
        async with e:
            s = await e.open_session(small_avatar)
            with pytest.raises(AudioInputError, match="sample_rate"):
                s.push_audio(np.zeros(640, np.int16), 44)
            with pytest.raises(AudioInputError, match="int16 or float32"):
                s.push_audio(np.zeros(640, np.int64), 16000)
            with pytest.raises(AudioInputError, match=r"\(channels, samples\)"):
                s.push_audio(np.zeros((2, 9600), np.float32), 48000)
            assert s.stats.buffered_s == 0.0  # a refused push queues nothing
            with pytest.raises(TypeError):
                s.set_prompt(None)  # type: ignore[arg-type]
            await s.close()
            for call in (lambda: s.push_audio(np.zeros(640, np.int16), 16000), s.flush, s.interrupt,
                         lambda: s.set_prompt("calm")):  # fmt: skip
                with pytest.raises(SessionClosedError):
                    call()
        with pytest.raises(EngineError, match="VirtualClock"):
            await Engine(EngineConfig(head="procedural")).advance(1.0)

    arun(run_())
    with pytest.raises(ValueError):
        EngineConfig(backend="tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA"):
            arun(Engine(EngineConfig(backend="cuda", head="procedural")).start())


def test_a_consumer_that_falls_behind_gets_the_newest_frames(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run_() -> tuple[list[Output], int]:
        async with engine(motion_model, output_queue=4) as e:
            s = await e.open_session(small_avatar)
            await e.advance(0.99)  # 25 frames, nobody reading
            return s.drain(), s.stats.video_dropped

    outs, dropped = arun(run_())
    assert [o.index for o in outs] == [21, 22, 23, 24] and dropped == 21


def test_frames_iterates_as_frames_fall_due_and_ends_on_close(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run_() -> list[Output]:
        async with engine(motion_model) as e:
            s = await e.open_session(small_avatar)
            got: list[Output] = []

            async def consume() -> None:
                async for out in s.frames():
                    got.append(out)

            task = asyncio.create_task(consume())
            for _ in range(10):
                await e.advance(0.04)
                await asyncio.sleep(0)
            await s.close()
            await asyncio.wait_for(task, 5.0)  # the iteration ends by itself
            return got

    got = arun(run_())
    assert [o.pts for o in got] == [n * FRAME for n in range(len(got))] and len(got) >= 10


def test_a_real_time_engine_streams_frames_on_uvloop(motion_model: MotionModel, small_avatar: Any) -> None:
    """Real clock, background scheduler: frames arrive in order with their audio. No timing is
    asserted (a busy machine makes frames late, which the scheduler absorbs)."""

    async def main() -> tuple[list[Output], str]:
        async with Engine(EngineConfig(head="procedural"), motion_model=motion_model) as e:
            s = await e.open_session(small_avatar)
            s.push_audio((buzz(0.4) * 32767).astype(np.int16).tobytes(), 16000)
            got: list[Output] = []
            async for out in s.frames():
                got.append(out)
                if len(got) == 12:
                    break
            return got, type(asyncio.get_running_loop()).__module__

    got, loop_module = run(main())
    assert loop_module.startswith("uvloop")
    pts = [o.pts for o in got]
    assert pts == sorted(pts) and all(p % FRAME == 0 for p in pts)
    assert all(o.video is not None and o.video.shape == (128, 128, 3) for o in got)
