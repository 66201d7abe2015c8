"""Helpers the engine tests share: a tiny randomly initialised pose model whose prompt encoder
needs no sentence model, synthetic speech-like audio, an engine on a virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import numpy as np
import torch
from posetalk.engine import Engine, EngineConfig, VirtualClock
from posetalk.models.motion.infer import MotionModel
from posetalk.models.pld.stream import PoseModel
from posetalk.tests.test_pld import TINY, HashEncoder, random_model
from posetalk.tests.test_pld import speech as buzz  # syllable-like bursts of a 140 Hz buzz at 16 kHz

torch.set_num_threads(1)  # these nets are tiny; extra threads only contend on a shared machine
T = TypeVar("T")

__all__ = ["SeededPrompts", "arun", "buzz", "engine", "tiny_pose_model"]


class SeededPrompts(HashEncoder):
    """The pose tests' hash encoder (a fixed random unit vector per prompt; the empty prompt is
    zero, as with MiniLM) that also records every text it is asked to embed, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts: object) -> np.ndarray:  # type: ignore[override]
        items = [texts] if isinstance(texts, str) else list(texts)  # type: ignore[call-overload]
        self.seen += [str(x).strip() for x in items]
        return super().embed(items)


def tiny_pose_model(seed: int = 0) -> PoseModel:
    """An untrained PLD small enough for a unit test, with non-zero output layers so that the
    prompt reaches the output."""
    model = random_model(TINY, seed)
    model.default_steps, model.prompts = 2, SeededPrompts()
    return model


def arun(coro: Awaitable[T]) -> T:
    """Run a coroutine to the end on a fresh event loop."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())


def engine(motion_model: MotionModel, clock: Any = None, pose_model: PoseModel | None = None, **kw: Any) -> Engine:
    """An engine on a virtual clock (unless ``clock``), keeping every frame, procedural head by default."""
    cfg = EngineConfig(**{"output_queue": 1000, "head": "procedural", **kw})
    return Engine(cfg, clock=clock or VirtualClock(), motion_model=motion_model, pose_model=pose_model)
