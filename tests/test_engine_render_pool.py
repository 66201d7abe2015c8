"""Rendering in worker processes: the same pictures as the in-process renderer, an engine that
renders its sessions there, a crashed process that takes down only the sessions pinned to it, and
nothing left behind (processes, shared memory) when it closes."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from posetalk.engine.errors import BackendError
from posetalk.engine.render_pool import RenderPool
from posetalk.models.motion.infer import MotionModel
from posetalk.models.render import make_renderer
from posetalk.tests.engine_fixtures import arun, buzz, engine


def _motion(avatar: Any, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(n, dtype=np.float32)[:, None]
    pose = avatar.pose + np.float32(0.15) * np.sin(t / 3) * np.array([1, 0.5, 0.2, 0, 0, 0], np.float32)
    expression = np.zeros((n, 21), np.float32)
    expression[:, 0] = 0.4 * (1 + np.sin(t[:, 0]))  # the jaw opens and closes
    return pose, np.repeat(avatar.gaze[None], n, 0), expression


def test_a_process_renders_the_same_frames(small_avatar: Any) -> None:
    pose, gaze, expression = _motion(small_avatar, 6)
    want = make_renderer(small_avatar, "cpu").render(pose, gaze, expression)
    pool = RenderPool(2)
    try:
        a, b = pool.renderer(small_avatar), pool.renderer(small_avatar)
        assert a._worker is not b._worker  # two sessions, one per process
        np.testing.assert_array_equal(a.render(pose, gaze, expression), want)
        np.testing.assert_array_equal(b.render(pose[3:], gaze[3:], expression[3:]), want[3:])
        name = a._buffer.name
        a.close()
        a.close()  # closing twice is harmless
        assert not Path("/dev/shm", name).exists()  # its frame buffer is gone
        with pytest.raises(BackendError, match="closed"):
            a.render(pose[:1], gaze[:1], expression[:1])
        np.testing.assert_array_equal(b.render(pose[:1], gaze[:1], expression[:1]), want[:1])  # the other goes on
    finally:
        pool.close()
    assert not [p for p in mp.active_children() if p.name.startswith("posetalk-render")]


def test_an_engine_renders_its_sessions_in_processes(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run_() -> list[Any]:
        async with engine(motion_model, render_processes=2) as e:
            sessions = [await e.open_session(small_avatar) for _ in range(2)]
            for s in sessions:
                s.push_audio(buzz(0.6), 16000)
            await e.advance(0.8)
            frames = [s.drain() for s in sessions]
            assert e.stats.counters.get("render_errors", 0) == 0
            assert len([p for p in mp.active_children() if p.name.startswith("posetalk-render")]) == 2
        return frames

    frames = arun(run_())
    for outs in frames:
        pictures = [o.video for o in outs if o.video is not None]
        assert len(pictures) >= 15 and pictures[-1].shape == (128, 128, 3)
        assert np.abs(pictures[-1].astype(int) - pictures[0].astype(int)).mean() > 0.5  # the face moved
    assert not [p for p in mp.active_children() if p.name.startswith("posetalk-render")]  # stopped with the engine


def test_a_crashed_render_process_ends_only_its_own_sessions(motion_model: MotionModel, small_avatar: Any) -> None:
    async def run_() -> tuple[list[Any], list[bool], dict[str, int]]:
        async with engine(motion_model, render_processes=2) as e:
            sessions = [await e.open_session(small_avatar) for _ in range(2)]
            for s in sessions:
                s.push_audio(buzz(2.0), 16000)
            await e.advance(0.4)
            for s in sessions:
                s.drain()
            doomed = sessions[0].renderer._worker.process  # type: ignore[union-attr]
            doomed.kill()
            doomed.join()
            await e.advance(0.8)
            frames = [s.drain() for s in sessions]
            closed = [s.closed for s in sessions]
            return frames, closed, dict(e.stats.counters)

    (lost, kept), closed, counters = arun(run_())
    assert closed == [True, False] and counters.get("sessions_lost") == 1
    pictures = [o.video for o in kept if o.video is not None]
    assert len(pictures) >= 15 and not any(o.repeated for o in kept[-10:])  # the other renders on, in order
    assert [o.index for o in kept] == list(range(kept[0].index, kept[0].index + len(kept)))
    assert not [p for p in mp.active_children() if p.name.startswith("posetalk-render")]


def test_render_processes_deliver_every_frame_in_order_over_a_minute(motion_model: MotionModel,
                                                                    small_avatar: Any) -> None:  # fmt: skip
    async def run_() -> list[list[Any]]:
        async with engine(motion_model, render_processes=2) as e:
            sessions = [await e.open_session(small_avatar) for _ in range(2)]
            outs: list[list[Any]] = [[], []]
            for _ in range(6):  # a minute of speech in 10 s pushes, drained as it goes
                for s in sessions:
                    s.push_audio(buzz(10.0), 16000)
                await e.advance(10.0)
                for got, s in zip(outs, sessions, strict=True):
                    got.extend(s.drain())
            assert e.stats.counters.get("render_errors", 0) == 0
        return outs

    for outs in arun(run_()):
        assert len(outs) >= 1490  # 25 frames a second
        assert [o.index for o in outs] == list(range(outs[0].index, outs[0].index + len(outs)))
        assert sum(o.video is not None for o in outs) == len(outs)
