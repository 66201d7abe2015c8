"""Where a session's head motion comes from: the pose model (PLD) when its weights exist, else
the procedural live head (models.data.live_head), which is what ships today.

Both are driven the same way, once per frame in order: ``push`` the frame's input slot, then
``frame`` for the frame being shown (``lookahead`` slots behind). ``set_prompt`` takes effect at
the next hop of 8 frames in both.

The pose model commits a hop of 8 frames once it has heard the hop and its own lookahead, so a
frame's pose is ready up to ``hop + lookahead - motion_lookahead - 1`` frames (7 at the defaults)
after the lips of that frame are. Rather than hold the whole picture (and the sound with it) back
by that much, the engine shows the pose model's motion that many frames late: the lips and sound
keep the 80 ms lookahead and the head lags the speech by 280 ms, about a syllable. (The window the
PLD generates reaches further ahead than the hop it commits; showing that plan and crossfading to
each new window would remove the lag. Not done yet.)"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Protocol

import numpy as np
from posetalk.models.data.live_head import HOP, Blinker, HeadFrame, LiveHead, style_for_prompt

if TYPE_CHECKING:
    from posetalk.models.pld.stream import PoseModel


class HeadSource(Protocol):
    """Pose, gaze and blinks for a session, frame by frame."""

    def set_prompt(self, prompt: str) -> None: ...

    def push(self, slot: np.ndarray) -> None:
        """The next frame's input audio (640 samples, 16 kHz)."""
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

    def push(self, slot: np.ndarray) -> None:
        pass  # the levels and the speaking state come with frame()

    def frame(self, level_db: float, next_db: float, speaking: bool) -> tuple[HeadFrame, str]:
        out = self.head.step(level_db, next_db, speaking)
        return out, f"procedural:{self.head.style.name}"


class PoseModelHead:
    """The PLD's ``PoseStream`` for the pose and gaze (shown ``delay`` frames late, see the module
    docstring), blinks from the procedural blinker."""

    def __init__(self, model: PoseModel, prompt: str = "", seed: int = 0, motion_lookahead: int = 2) -> None:
        cfg = model.cfg
        lookahead = min(motion_lookahead, cfg.max_lookahead)
        self.stream = model.stream(prompt, seed=seed, lookahead=lookahead)
        self.hop = cfg.hop
        self.delay = max(0, cfg.hop + lookahead - motion_lookahead - 1)
        self.prompt = prompt
        self.ready: deque[tuple[np.ndarray, np.ndarray, str]] = deque()  # committed frames not yet shown
        self.blinker = Blinker(np.random.default_rng(seed))
        self.frames = 0
        self.starved = 0  # frames the stream had not committed in time (held the last pose)
        self.last = (np.zeros(6, np.float32), np.zeros(2, np.float32))

    def set_prompt(self, prompt: str) -> None:
        self.stream.set_prompt(prompt)
        self.prompt = prompt

    def push(self, slot: np.ndarray) -> None:
        pose, gaze = self.stream.push(slot)
        label = f"pose model:{self.prompt!r}"  # the hops push() made used the prompt in effect now
        for p, g in zip(pose, gaze, strict=True):
            self.ready.append((p, g, label))

    def frame(self, level_db: float, next_db: float, speaking: bool) -> tuple[HeadFrame, str]:
        i = self.frames - self.delay  # the pose model's frame shown now
        self.frames += 1
        blink = self.blinker.step()
        if i < 0:
            return HeadFrame(np.zeros(6, np.float32), np.zeros(2, np.float32), blink), "pose model:starting"
        if not self.ready:
            self.starved += 1
            return HeadFrame(*self.last, blink), "pose model:held"
        pose, gaze, label = self.ready.popleft()
        ramp = min(1.0, i / self.hop)  # ease in from the portrait's own pose over the first hop
        ramp = ramp * ramp * (3 - 2 * ramp)
        self.last = ((pose * ramp).astype(np.float32), (gaze * ramp).astype(np.float32))
        return HeadFrame(*self.last, blink), label


def make_head(model: PoseModel | None, prompt: str, seed: int, motion_lookahead: int) -> HeadSource:
    """The pose model's head when there is a model, else the procedural one."""
    if model is None:
        return ProceduralHead(prompt, seed)
    return PoseModelHead(model, prompt, seed, motion_lookahead)


__all__ = ["HOP", "HeadSource", "PoseModelHead", "ProceduralHead", "make_head"]
