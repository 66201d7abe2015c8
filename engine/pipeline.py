"""One session's synchronous pipeline, slot in, frame motion out: the voice-activity gate, the
head, the lip models and what joins them. No asyncio and no rendering here: the scheduler runs
this for every session in its worker thread and batches the lip models across sessions.

Per input slot s (one frame of audio), in this order:

1. its level and voice decision go into the gate, which decides frame f = s - lookahead;
2. the head source hears slot s and makes frame f's pose and gaze;
3. the lip models take slot s's mel with frame f's pose and gaze (batched across sessions by
   ``run_round``) and give frame f's 21 blendshapes;
4. frame f's mouth is closed if it is not speech (the gate) or below the silence level (as
   ``MotionModel.predict`` does), the blinks are added, and frame f goes out with slot f's audio.

A slot's audio leaves with its own frame: the pipeline holds the ``lookahead`` slots in between,
which is the whole of the audio delay."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch
from posetalk.engine.audio_input import WIDE_FRAME, Slot
from posetalk.engine.clock import FRAME
from posetalk.engine.head import HeadSource
from posetalk.engine.stats import Stats
from posetalk.engine.vad import GateFrame, SpeechGate, VoiceDetector, level_db
from posetalk.engine.words import LiveWords
from posetalk.models.face.params import clip_motion
from posetalk.models.motion.infer import BLINKS, SILENT_DBFS
from posetalk.models.motion.nets import N_MOUTH
from posetalk.models.motion.runtime import MotionRunner, MotionState
from posetalk.models.pld.stream import HopJob, run_hops

SILENCE_DB = -240.0


@dataclass(frozen=True)
class FrameMotion:
    """Everything about one frame but its picture.

    index: frame number in the session (pts = index * 640). audio: (640,) float32, the input
    samples of this frame (zeros where none came). pose (6,), gaze (2,): head motion relative to
    the portrait's own. expression: (21,) ARKit weights as rendered (absolute). speaking /
    end_of_speech: the gate's decisions. head_source: what made the head motion. arrival: when
    the audio completing this frame was pushed (None for silence put in). lips: what made the
    mouth ("audio", "text", "audio (text disagrees)": engine/words.py)."""

    index: int
    audio: np.ndarray
    pose: np.ndarray
    gaze: np.ndarray
    expression: np.ndarray
    speaking: bool
    end_of_speech: bool
    head_source: str
    arrival: float | None
    lips: str = "audio"
    wide: np.ndarray = field(default_factory=lambda: np.zeros(WIDE_FRAME, np.float32))  # its input at 48 kHz


@dataclass
class _Pending:
    """Frame f between steps 2 and 3."""

    slot: Slot
    index: int
    pose: np.ndarray
    gaze: np.ndarray
    blink: float
    speaking: bool
    end_of_speech: bool
    head_source: str
    silent: bool


class SessionPipeline:
    """``prepare(slot)`` then, after the batched lip step, ``finish(expression)``; ``run`` does
    both for one session alone."""

    def __init__(self, runner: MotionRunner, head: HeadSource, vad: VoiceDetector) -> None:
        self.runner, self.head, self.vad = runner, head, vad
        self.lookahead = runner.lookahead
        self.motion: MotionState = runner.new_state()
        self.gate = SpeechGate(self.lookahead)
        self.slots: deque[Slot] = deque()  # slots s - lookahead .. s: the audio delay line
        self.levels: deque[float] = deque()  # their levels, same order
        self.frames = 0  # frames finished
        self.pending: _Pending | None = None
        self.decision: GateFrame | None = None  # the gate's, for the slot listen() heard
        self.words = LiveWords()  # known words (Session.push_words / push_text)

    def listen(self, slot: Slot) -> HopJob | None:
        """Step 1 for the next slot: its level and voice, the gate, the head hears it; the pose
        model's hop the slot completes, if any (run by the caller: ``run_hops``, batched)."""
        level = level_db(slot.audio) if slot.real else SILENCE_DB
        voiced = slot.real and self.vad.voiced(slot.audio, level)
        self.slots.append(slot)
        self.levels.append(level)
        self.decision = self.gate.push(voiced, slot.after_utterance)
        return self.head.push(slot.audio)

    def prepare(self, slot: Slot, job: HopJob | None, window: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        """Step 2 for the slot ``listen`` heard, given its hop's window if it made one -> (its
        (4, 80) mel, the (8,) pose+gaze the lip step needs)."""
        if job is not None:
            assert window is not None
            self.head.take(job, window)
        decision, self.decision = self.decision, None
        pose_gaze = np.zeros(8, np.float32)
        self.pending = None
        if decision is not None:
            f_level, next_level = self.levels[0], self.levels[1] if len(self.levels) > 1 else SILENCE_DB
            head, source = self.head.frame(f_level, next_level, decision.speaking)
            pose_gaze = np.concatenate([head.pose, head.gaze]).astype(np.float32)
            self.pending = _Pending(
                self.slots[0], decision.frame, head.pose, head.gaze, head.blink, decision.speaking,
                decision.end_of_speech, source, f_level <= SILENT_DBFS,
            )  # fmt: skip
        return self.motion.push_audio(slot.audio), pose_gaze

    def finish(self, expression: np.ndarray) -> FrameMotion | None:
        """Step 4 with the lip models' output for the slot just prepared (None while the first
        ``lookahead`` slots fill the delay line)."""
        p = self.pending
        if p is None:
            return None
        self.pending = None
        self.slots.popleft()
        self.levels.popleft()
        expr = np.array(expression, np.float32)
        lips = "audio"
        if not p.speaking or p.silent:
            expr[:N_MOUTH] = 0.0  # listening, or a silent frame inside speech: lips at rest
        else:
            expr, lips = self.words.join(expr, p.slot.position)
        expr[BLINKS] = np.maximum(expr[BLINKS], p.blink)
        pose, gaze, expr = clip_motion(p.pose, p.gaze, expr)
        self.frames += 1
        return FrameMotion(p.index, p.slot.audio, pose, gaze, expr, p.speaking, p.end_of_speech, p.head_source,
                           p.slot.arrival, lips, p.slot.wide)  # fmt: skip

    def run(self, slot: Slot) -> FrameMotion | None:
        """listen + prepare + lip step + finish for this session alone."""
        job = self.listen(slot)
        mel, pose_gaze = self.prepare(slot, job, run_hops([job])[0] if job is not None else None)
        return self.finish(self.runner.step([self.motion], mel[None], pose_gaze[None])[0])

    def interrupt(self) -> None:
        """Speech heard but not shown yet is dropped: the held slots fall silent, the gate stops
        speaking at the next frame (which carries end_of_speech if it was speaking)."""
        silent = Slot(np.zeros(FRAME, np.float32), False, None)
        self.slots = deque(Slot(silent.audio, False, None, s.after_utterance) for s in self.slots)
        self.levels = deque(SILENCE_DB for _ in self.levels)
        self.gate.interrupt()
        self.words.clear()


def run_round(
    runner: MotionRunner, work: list[tuple[SessionPipeline, Slot]], stats: Stats | None = None
) -> list[FrameMotion | None]:
    """One slot for each of several sessions, with the pose model's due hops and the lip models
    each run once for all of them.
    With ``stats``: times "prepare" (gate, head, mel of every session) and "lips" (the batched nets)."""
    if not work:
        return []
    t0 = time.perf_counter()
    jobs = [p.listen(slot) for p, slot in work]
    due = [j for j in jobs if j is not None]
    windows = iter(run_hops(due))
    prepared = [p.prepare(slot, job, next(windows) if job is not None else None)
                for (p, slot), job in zip(work, jobs, strict=True)]  # fmt: skip
    mels = np.stack([m for m, _ in prepared])
    pose_gaze = np.stack([pg for _, pg in prepared])
    t1 = time.perf_counter()
    expr = runner.step([p.motion for p, _ in work], mels, pose_gaze)
    out = [p.finish(e) for (p, _), e in zip(work, expr, strict=True)]
    if stats is not None:
        stats.record("prepare", t1 - t0)
        stats.record("lips", time.perf_counter() - t1)
    return out
