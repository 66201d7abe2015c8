"""Where a session's head motion comes from: the pose model (PLD) when its weights exist, else
the procedural live head (engine.live_head).

Both are driven the same way, once per frame in order: ``push`` the frame's input slot (which
returns the pose model's next hop when the slot completes one: the engine runs every session's due
hops in one batched call, ``run_hops``, and hands each its window with ``take``), then ``frame``
for the frame being shown (``lookahead`` slots behind). ``set_prompt`` takes effect at the next
hop of 8 frames in both.

The pose model commits a hop of 8 frames only once it has heard the hop and its own lookahead,
about a hop after the lips of the hop's first frame are ready. Rather than hold the head (or the
whole picture) back by that much, the head shows each window the model generates as soon as it
exists: the committed frames and the window's plan beyond them (``PoseStream.ahead``), which
reaches 24 frames past the hop. A newer window takes over with a raised-cosine crossfade over one
hop, as the stream's own hops do, so there is no jump and no lag; the frames shown were made from
a little less audio than the committed ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
from posetalk.engine.live_head import HOP, Blinker, HeadFrame, LiveHead, style_for_prompt

if TYPE_CHECKING:
    import torch
    from posetalk.models.pld.stream import HopJob, PoseModel


class HeadSource(Protocol):
    """Pose, gaze and blinks for a session, frame by frame."""

    def set_prompt(self, prompt: str) -> None: ...

    def prepare_prompt(self, prompt: str) -> None:
        """Do the slow part of ``set_prompt`` ahead (encode it), from any thread."""
        ...

    def push(self, slot: np.ndarray) -> HopJob | None:
        """The next frame's input audio (640 samples, 16 kHz); the pose model's hop it completes."""
        ...

    def take(self, job: HopJob, window: torch.Tensor) -> None:
        """The window of the hop ``push`` returned (``pld.stream.run_hops``)."""
        ...

    def frame(self, level_db: float, next_db: float, speaking: bool) -> tuple[HeadFrame, str]:
        """The next frame shown and what made it (e.g. "procedural:nodding")."""
        ...


class ProceduralHead:
    """The live procedural head: a prompt picks its style (``style_for_prompt``)."""

    def __init__(self, prompt: str = "", seed: int = 0) -> None:
        self.head = LiveHead(seed, style_for_prompt(prompt))

    def set_prompt(self, prompt: str) -> None:
        self.head.set_style(style_for_prompt(prompt))

    def prepare_prompt(self, prompt: str) -> None:
        pass  # a keyword match: nothing slow

    def push(self, slot: np.ndarray) -> HopJob | None:
        return None  # the levels and the speaking state come with frame()

    def take(self, job: HopJob, window: torch.Tensor) -> None:
        raise AssertionError("the procedural head makes no hops")

    def frame(self, level_db: float, next_db: float, speaking: bool) -> tuple[HeadFrame, str]:
        out = self.head.step(level_db, next_db, speaking)
        return out, f"procedural:{self.head.style.name}"


class PoseModelHead:
    """The PLD's ``PoseStream`` for the pose and gaze (its newest window, crossfaded in; see the
    module docstring), blinks from the procedural blinker."""

    def __init__(
        self, model: PoseModel, prompt: str = "", seed: int = 0, motion_lookahead: int = 2, steps: int | None = None
    ) -> None:
        cfg = model.cfg
        lookahead = min(motion_lookahead, cfg.max_lookahead)
        self.stream = model.stream(prompt, seed=seed, lookahead=lookahead, steps=steps)
        self.hop = cfg.hop
        self.prompt = prompt
        k = np.arange(self.hop, dtype=np.float32)
        self.fade = 0.5 * (1 + np.cos(np.pi * k / max(1, self.hop - 1)))  # 1 -> 0 over a hop
        self.source: tuple[int, np.ndarray, str] | None = None  # (first frame, (n, 8), label) shown now
        self.old: tuple[int, np.ndarray, str] | None = None  # the one it is crossfading from
        self.switched = 0  # display frame where the crossfade started
        self.started = -1  # display frame the first window was shown at
        self.blinker = Blinker(np.random.default_rng(seed))
        self.frames = 0
        self.starved = 0  # frames no window covered (held the last pose)
        self.last = np.zeros(8, np.float32)

    def set_prompt(self, prompt: str) -> None:
        self.stream.set_prompt(prompt)
        self.prompt = prompt

    def prepare_prompt(self, prompt: str) -> None:
        self.stream.model.prompts.embed([prompt])  # cached: set_prompt then finds it there

    def push(self, slot: np.ndarray) -> HopJob | None:
        self.stream.feed(slot)
        heard_to = self.stream.due()
        return self.stream.plan_hop(heard_to) if heard_to is not None else None

    def take(self, job: HopJob, window: torch.Tensor) -> None:
        from posetalk.models.pld.stream import run_hops

        start = self.stream.t0
        hops = [self.stream.commit(job, window)]
        while (heard_to := self.stream.due()) is not None:  # audio that came in a lump: the rest one by one
            hops.append(self.stream.commit(next_job := self.stream.plan_hop(heard_to), run_hops([next_job])[0]))
        pose, gaze = self.stream.emit(hops)
        first, plan = self.stream.ahead()  # type: ignore[misc]  # a hop was made: there is a plan
        assert first == start + len(pose)
        frames = np.concatenate([np.concatenate([pose, gaze], 1), plan])
        label = f"pose model:{self.prompt!r}"  # the hops push() made used the prompt in effect now
        self.old, self.source, self.switched = self.source, (start, frames, label), self.frames
        if self.started < 0:
            self.started = self.frames

    @staticmethod
    def _at(source: tuple[int, np.ndarray, str] | None, i: int) -> np.ndarray | None:
        if source is None or not source[0] <= i < source[0] + len(source[1]):
            return None
        return source[1][i - source[0]]

    def frame(self, level_db: float, next_db: float, speaking: bool) -> tuple[HeadFrame, str]:
        i = self.frames
        self.frames += 1
        blink = self.blinker.step()
        new = self._at(self.source, i)
        if new is None:
            if self.source is None:
                return HeadFrame(np.zeros(6, np.float32), np.zeros(2, np.float32), blink), "pose model:starting"
            self.starved += 1
            return HeadFrame(self.last[:6], self.last[6:], blink), "pose model:held"
        k = i - self.switched
        old = self._at(self.old, i)
        x = new if old is None or k >= self.hop else self.fade[k] * old + (1 - self.fade[k]) * new
        ramp = min(1.0, (i - self.started) / self.hop)  # ease in from the portrait's own pose over a hop
        self.last = (x * ramp * ramp * (3 - 2 * ramp)).astype(np.float32)
        return HeadFrame(self.last[:6], self.last[6:], blink), self.source[2]  # type: ignore[index]


def make_head(
    model: PoseModel | None, prompt: str, seed: int, motion_lookahead: int, steps: int | None = None
) -> HeadSource:
    """The pose model's head when there is a model, else the procedural one."""
    if model is None:
        return ProceduralHead(prompt, seed)
    return PoseModelHead(model, prompt, seed, motion_lookahead, steps)


__all__ = ["HOP", "HeadSource", "PoseModelHead", "ProceduralHead", "make_head"]
