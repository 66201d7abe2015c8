"""Many sessions' frames in one launch of the hot path (torch_render.BatchRenderer, what the
engine's cuda backend does every tick; backend "torch" runs it on the CPU): each frame is the one
its avatar's renderer makes alone, avatars come and go, and an engine on it gives its sessions
their pictures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from posetalk.models.render.torch_render import BatchRenderer, TorchRenderer
from posetalk.tests.conftest import random_motion
from posetalk.tests.engine_fixtures import arun, buzz, engine


@pytest.fixture(scope="module")
def two(small_avatar: Any) -> list[Any]:
    import dataclasses

    other = dataclasses.replace(small_avatar, atlas=small_avatar.atlas[..., ::-1].copy())  # another face's colours
    return [small_avatar, other]


def test_a_batch_of_avatars_gives_each_its_own_frames(two: list[Any]) -> None:
    batch = BatchRenderer("cpu")
    a, b, a2 = batch.renderer(two[0]), batch.renderer(two[1]), batch.renderer(two[0])
    pose, gaze, expr = random_motion(two[0], 3, seed=4)
    items = [(a, pose[0], gaze[0], expr[0]), (b, pose[1], gaze[1], expr[1]), (a2, pose[2], gaze[2], expr[2])]
    got = batch.render_many(items)
    for (member, p, g, e), frame in zip(items, got, strict=True):
        alone = TorchRenderer(member.torch.avatar, device="cpu").render(p[None], g[None], e[None])[0]
        assert np.abs(frame.astype(int) - alone.astype(int)).max() <= 1
    assert not np.array_equal(got[0], got[1])
    b.close()
    b.close()  # twice is harmless
    assert len(batch._avatars) == 1  # the other avatar's atlas is let go; the first is shared
    again = batch.render_many([(a2, pose[2], gaze[2], expr[2])])
    np.testing.assert_array_equal(again[0], got[2])


def test_an_engine_renders_a_ticks_frames_in_one_batch(motion_model: Any, two: list[Any]) -> None:
    async def run() -> tuple[list[list[Any]], dict[str, int]]:
        async with engine(motion_model, backend="torch") as e:
            sessions = [await e.open_session(av) for av in two]
            for s in sessions:
                s.push_audio(buzz(0.6), 16000)
            await e.advance(0.8)
            assert e._batch is not None and len(e._batch._avatars) == 2
            frames = [s.drain() for s in sessions]
            counters = dict(e.stats.counters)
        return frames, counters

    frames, counters = arun(run())
    assert counters.get("render_errors", 0) == 0
    for outs in frames:
        pictures = [o.video for o in outs if o.video is not None]
        assert len(pictures) >= 15 and pictures[-1].shape == (128, 128, 3)
        assert np.abs(pictures[-1].astype(int) - pictures[0].astype(int)).mean() > 0.5  # the face moved
    assert not np.array_equal(frames[0][-1].video, frames[1][-1].video)
