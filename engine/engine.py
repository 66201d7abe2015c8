"""The engine: sessions, and one scheduler that does every session's due work each tick.

Every 40 ms (a tick of ``Timeline``) the scheduler, on the event loop:

1. takes from each session the input slots its next frame needs (cheap ring reads) together
   with its pending control (interrupt, prompt: control goes first);
2. runs, in a worker thread, the voice gate, the head and the lip models of all sessions, the
   lip models batched across sessions (``pipeline.run_round``);
3. renders each session's newest frame in the worker pool (one task per session);
4. publishes each frame at its due time, tick start + ``budget_ms``, into the session's output
   queue, with the frame's own input samples as its audio.

The event loop never computes: it only slices buffers and awaits the workers. When a tick
starts late (the machine was busy), the scheduler catches up in one go: every missed frame's lip
motion is still computed (cheap, and the audio must go out), but only the newest frame of each
session is rendered; the others go out with the previous picture (``repeated``). So a slow
renderer costs smoothness, never a growing delay.

Queues and their overflow policies: audio in, per session, ``input_buffer_s`` of 16 kHz audio,
DROP_OLDEST (a push never blocks the loop); frames out, per session, ``output_queue`` frames,
DROP_OLDEST. Sessions beyond ``max_sessions`` are refused with SessionLimitError."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from posetalk.engine.audio_input import Slot
from posetalk.engine.clock import FRAME, Clock, MonotonicClock, Timeline, VirtualClock, latency_samples
from posetalk.engine.errors import BackendError, EngineError, SessionLimitError
from posetalk.engine.head import make_head
from posetalk.engine.pipeline import FrameMotion, SessionPipeline, run_round
from posetalk.engine.session import Output, Session
from posetalk.engine.stats import StageSummary, Stats
from posetalk.engine.vad import VoiceDetector
from posetalk.engine.words import Aligner
from posetalk.models.motion.runtime import MotionRunner

if TYPE_CHECKING:
    from posetalk.engine.render_pool import RenderPool
    from posetalk.models.motion.infer import MotionModel
    from posetalk.models.pld.stream import PoseModel
    from posetalk.models.render import Avatar, Renderer
    from posetalk.models.render.torch_render import BatchRenderer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """How an engine runs. ``head``: "auto" (the pose model when its weights ship, else the
    procedural head), "procedural", or "pose" (the pose model, required)."""

    # renderer: "cpu" (NumPy/OpenCV, per session), "cuda" (the PyTorch renderer on CUDA, every
    # session's frame of a tick in one batch: torch_render.BatchRenderer and the Triton kernel) or
    # "torch" (the same batched path on the CPU: slow, for tests and comparisons)
    backend: str = "cpu"
    max_sessions: int = 8
    # Threads for model and render work (default: one per core). Sessions render in parallel, one
    # thread each, as far as the renderer's OpenCV and NumPy calls release the GIL.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    lookahead: int = 2  # frames of audio the lips wait for (80 ms)
    budget_ms: float = 20.0  # processing time allowed between a tick's start and its frames' due time
    input_buffer_s: float = 60.0  # per session, DROP_OLDEST past it
    output_queue: int = 8  # frames per session, DROP_OLDEST past it
    head: str = "auto"
    # The pose model's sampling steps live (None: the model's own, 4 for the shipped student). Its
    # hop runs inside a tick, on ONNX Runtime (models/pld/hop.py; `posetalk bench pose` prints its
    # cost at each step count; the model card has the quality of each).
    pose_steps: int | None = None
    # Render in this many worker processes (backend "cpu"): the renderer holds the GIL for about
    # half of each frame, so threads barely add up (engine/render_pool.py). 0: in the worker threads.
    render_processes: int = 0
    vad_mode: int = 2  # webrtcvad aggressiveness 0..3
    # Threads torch and OpenCV may use inside one operation (set process-wide at start; None
    # leaves them alone). Per-frame work is small matrices and one remap, where intra-op threads
    # cost more than they give and contend with the workers; sessions are the parallelism.
    intra_op_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.backend not in ("cpu", "cuda", "torch"):
            raise ValueError(f"backend must be cpu, cuda or torch, got {self.backend!r}")
        if self.head not in ("auto", "procedural", "pose"):
            raise ValueError(f"head must be auto, procedural or pose, got {self.head!r}")
        if not 0 <= self.lookahead <= 4 or self.max_sessions < 1 or self.workers < 1 or self.render_processes < 0:
            raise ValueError(f"invalid engine config: {self}")
        if not 0 <= self.budget_ms < 40:  # a frame must be due before the next tick starts
            raise ValueError(f"budget_ms must be in [0, 40), got {self.budget_ms}")


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine's figures (``Stats`` documents the stages)."""

    sessions: int
    latency_ms: float  # the stated pipeline latency (clock.latency_samples)
    stages: dict[str, StageSummary]
    counters: dict[str, int] = field(default_factory=dict)


class Engine:
    """Owns the sessions, the worker threads and the scheduler. Use ``async with Engine() as e``
    (or ``start``/``close``). On a ``VirtualClock`` no background loop runs: ``advance`` steps it."""

    def __init__(
        self, config: EngineConfig | None = None, *, clock: Clock | None = None,
        motion_model: MotionModel | None = None, pose_model: PoseModel | None = None,
    ) -> None:  # fmt: skip
        self.config = config or EngineConfig()
        self.clock: Clock = clock or MonotonicClock()
        self.stats = Stats()
        self.sessions: dict[str, Session] = {}
        self.pose_model = pose_model
        self._motion_model = motion_model
        self.runner: MotionRunner | None = None
        self.timeline = Timeline(0.0, round(self.config.budget_ms * 16))
        self._next_tick = 0
        self._pool: ThreadPoolExecutor | None = None
        self._render_pool: RenderPool | None = None
        self._batch: BatchRenderer | None = None  # backends cuda and torch: a tick's frames in one batch
        self.aligner = Aligner()  # aligns the sessions' pushed texts, in a process of its own
        self._task: asyncio.Task[None] | None = None
        self._ids = itertools.count()
        self._started = self._closing = False

    @property
    def latency_ms(self) -> float:
        """The pipeline latency: lookahead + one frame + the processing budget."""
        return latency_samples(self.config.lookahead, self.timeline.budget) / 16.0

    @property
    def head_kind(self) -> str:
        return "pose model" if self.pose_model is not None else "procedural"

    async def start(self) -> None:
        """Load the models (in a worker) and start the scheduler."""
        if self._started:
            return
        if self.config.backend == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise BackendError("backend 'cuda' asked for, but CUDA is not available here")
        if self.config.intra_op_threads is not None:
            import cv2
            import torch

            torch.set_num_threads(self.config.intra_op_threads)
            cv2.setNumThreads(self.config.intra_op_threads)
        self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="posetalk-engine")
        await asyncio.get_running_loop().run_in_executor(self._pool, self._load)
        if self.config.render_processes and self.config.backend == "cpu":
            from posetalk.engine.render_pool import RenderPool

            self._render_pool = await asyncio.get_running_loop().run_in_executor(
                self._pool, RenderPool, self.config.render_processes
            )
        if self.config.backend in ("cuda", "torch"):
            from posetalk.models.render.torch_render import BatchRenderer

            self._batch = BatchRenderer("cuda" if self.config.backend == "cuda" else "cpu")
        self.timeline = Timeline(self.clock.now(), self.timeline.budget)
        self._started = True
        if not isinstance(self.clock, VirtualClock):
            self._task = asyncio.create_task(self._run(), name="posetalk-scheduler")

    def _load(self) -> None:
        self.runner = MotionRunner(self._motion_model, self.config.lookahead)
        if self.pose_model is None and self.config.head != "procedural":
            from posetalk.models.pld import weights

            if self.config.head == "pose" or not weights.missing():
                from posetalk.models.pld.stream import PoseModel

                self.pose_model = PoseModel.load(weights.WEIGHTS)
        if self.pose_model is not None:
            self.pose_model.prompts.embed(["warm up"])  # load the sentence encoder now, not in a tick

    async def close(self) -> None:
        """Close every session, stop the scheduler and the worker threads."""
        self._closing = True
        for session in list(self.sessions.values()):
            await session.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._render_pool is not None:
            render_pool, self._render_pool = self._render_pool, None
            await asyncio.get_running_loop().run_in_executor(None, render_pool.close)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        await asyncio.get_running_loop().run_in_executor(None, self.aligner.close)
        self._started = False

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open_session(
        self, avatar: Avatar | None, *, prompt: str = "", seed: int = 0, alpha: bool = False
    ) -> Session:
        """A new session showing ``avatar`` (a prepared portrait; None: motion only, no video).
        ``alpha``: its pictures are RGBA, the person on a transparent background (for overlays;
        rendered on the CPU in the engine's threads, whatever the backend)."""
        if not self._started or self._closing:
            raise EngineError("the engine is not running (use `async with Engine() as engine`)")
        if len(self.sessions) >= self.config.max_sessions:
            raise SessionLimitError(f"session limit reached: {self.config.max_sessions} sessions are running")
        assert self._pool is not None and self.runner is not None
        runner = self.runner

        def build() -> tuple[Renderer | None, SessionPipeline]:
            if avatar is None:
                renderer = None
            elif alpha:
                from posetalk.models.render.cpu import AlphaRenderer

                renderer = AlphaRenderer(avatar)
            else:
                renderer = self._renderer(avatar)
            head = make_head(self.pose_model, prompt, seed, self.config.lookahead, self.config.pose_steps)
            # A voice detector per session: webrtcvad keeps state from frame to frame.
            return renderer, SessionPipeline(runner, head, VoiceDetector(self.config.vad_mode))

        renderer, pipeline = await asyncio.get_running_loop().run_in_executor(self._pool, build)
        if len(self.sessions) >= self.config.max_sessions:  # another open won the race meanwhile
            raise SessionLimitError(f"session limit reached: {self.config.max_sessions} sessions are running")
        session = Session(f"s{next(self._ids)}", avatar, renderer, pipeline, prompt, self.clock, self._next_tick,
                          self.config.input_buffer_s, self.config.output_queue, self._remove, self.stats,
                          self.aligner)  # fmt: skip
        self.sessions[session.id] = session
        return session

    def _renderer(self, avatar: Avatar) -> Renderer:
        from posetalk.models.render import make_renderer

        if self._batch is not None:
            return self._batch.renderer(avatar)
        if self._render_pool is not None:
            return self._render_pool.renderer(avatar)
        return make_renderer(avatar, "cpu")

    async def _remove(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        close = getattr(session.renderer, "close", None)  # a process renderer frees its process's share
        if close is not None and self._pool is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, close)

    def snapshot(self) -> EngineStats:
        """Per-stage p50/p95 and the counters."""
        return EngineStats(len(self.sessions), self.latency_ms, self.stats.summaries(), dict(self.stats.counters))

    async def advance(self, seconds: float, *, every: float | None = None) -> None:
        """On a VirtualClock: run every tick due in the next ``seconds``, then stop there. With
        ``every``, the scheduler wakes only every that many seconds, as a real one does when the
        machine is too busy, and catches up as it would (see the module docstring)."""
        if not isinstance(self.clock, VirtualClock):
            raise EngineError("advance() steps an engine on a VirtualClock; this one runs in real time")
        end = self.clock.now() + seconds
        while self.timeline.tick_time(self._next_tick) <= end:
            wake = self.timeline.tick_time(self._next_tick)
            if every is not None:
                wake = min(end, max(wake, self.clock.now() + every))
            self.clock.set(wake)
            await self._tick(max(self._next_tick, self.timeline.tick_at(wake)))
        self.clock.set(end)

    async def _run(self) -> None:
        while not self._closing:
            await self.clock.sleep_until(self.timeline.tick_time(self._next_tick))
            now_tick = self.timeline.tick_at(self.clock.now())
            try:
                await self._tick(max(self._next_tick, now_tick))
            except Exception:  # one bad tick must not stop every session's frames
                log.exception("engine tick failed")
                self.stats.count("tick_errors")

    async def _tick(self, tick: int) -> None:
        """Compute and publish every session's frames up to ``tick``."""
        if tick > self._next_tick:  # woke late: the ticks in between are caught up in this one
            self.stats.count("late_ticks", tick - self._next_tick)
        self._next_tick = tick + 1
        jobs = [(s, *self._take(s, tick)) for s in list(self.sessions.values())]
        jobs = [j for j in jobs if j[1]]
        if not jobs:
            return
        loop = asyncio.get_running_loop()
        assert self._pool is not None
        t0 = time.perf_counter()
        work = [(s.pipeline, slots, prompt, interrupt) for s, slots, prompt, interrupt, _ in jobs]
        motions = await loop.run_in_executor(self._pool, self._motion, work)
        todo = [(s, m[-1]) for (s, *_), m in zip(jobs, motions, strict=True) if m and s.renderer is not None]
        in_batch = [self._batch is not None and getattr(s.renderer, "batch", None) is self._batch for s, _ in todo]
        alone = [t for t, b in zip(todo, in_batch, strict=True) if not b]
        batched = [t for t, b in zip(todo, in_batch, strict=True) if b]
        todo = alone + batched
        images: list[Any] = await asyncio.gather(*(loop.run_in_executor(self._pool, self._render, s.renderer,
                                                                        s.avatar, m) for s, m in alone),
                                                 return_exceptions=True)  # fmt: skip
        if batched:
            try:
                images += list(await loop.run_in_executor(self._pool, self._render_batch, batched))
            except Exception as exc:  # every batched session shows its previous picture
                images += [exc] * len(batched)
        self.stats.record("tick", time.perf_counter() - t0)
        rendered = {}
        for (s, _), img in zip(todo, images, strict=True):
            if isinstance(img, BaseException):  # that session shows its previous picture; the others go on
                if not s.closed:
                    log.error("rendering session %s failed: %r", s.id, img)
                    self.stats.count("render_errors")
                    if getattr(s.renderer, "alive", True) is False:  # its render process has died: it ends
                        self.stats.count("sessions_lost")
                        await s.close()
            else:
                rendered[id(s)] = img
        await self.clock.sleep_until(self.timeline.due_time(tick))
        now = self.clock.now()
        for (session, _, _, _, epoch), frames in zip(jobs, motions, strict=True):
            if session.closed or epoch != session.epoch:  # closed or interrupted meanwhile
                self.stats.count("discarded_frames", len(frames))
                continue
            for m in frames:
                image = rendered.get(id(session)) if m is frames[-1] else None
                self._publish(session, m, image, now)

    def _take(self, s: Session, tick: int) -> tuple[list[Slot], str | None, bool, int]:
        """Session ``s``'s input slots for its frames up to ``tick``, and its pending control."""
        frames_due = tick - s.first_tick + 1
        need = frames_due + self.config.lookahead - s.slots_taken if frames_due > 0 else 0
        slots = [s.input.take_slot() for _ in range(max(0, need))]
        s.slots_taken += len(slots)
        prompt, interrupt = s.pending_prompt, s.pending_interrupt
        s.pending_prompt, s.pending_interrupt = None, False
        return slots, prompt, interrupt, s.epoch

    def _motion(self, work: list[tuple[SessionPipeline, list[Slot], str | None, bool]]) -> list[list[FrameMotion]]:
        """Worker: control first, then the slots in rounds, the lip models batched per round."""
        assert self.runner is not None
        for pipeline, _, prompt, interrupt in work:
            if interrupt:
                pipeline.interrupt()
            if prompt is not None:
                pipeline.head.set_prompt(prompt)
        out: list[list[FrameMotion]] = [[] for _ in work]
        for r in range(max(len(slots) for _, slots, _, _ in work)):
            due = [i for i, (_, slots, _, _) in enumerate(work) if r < len(slots)]
            results = run_round(self.runner, [(work[i][0], work[i][1][r]) for i in due], self.stats)
            for i, m in zip(due, results, strict=True):
                if m is not None:
                    out[i].append(m)
        return out

    def _render_batch(self, work: list[tuple[Session, FrameMotion]]) -> np.ndarray:
        """Worker: one frame of each of several sessions, in one batch (backends cuda and torch)."""
        assert self._batch is not None
        with self.stats.time("render"):
            return self._batch.render_many([(s.renderer, s.avatar.pose + m.pose, s.avatar.gaze + m.gaze,  # type: ignore[union-attr]
                                             m.expression) for s, m in work])  # fmt: skip

    def _render(self, renderer: Renderer | None, avatar: Avatar | None, m: FrameMotion) -> np.ndarray:
        """Worker: one frame of one session (absolute pose and gaze: the portrait's own plus the motion)."""
        assert renderer is not None and avatar is not None
        with self.stats.time("render"):
            frame: np.ndarray = renderer.render((avatar.pose + m.pose)[None], (avatar.gaze + m.gaze)[None],
                                                m.expression[None])[0]  # fmt: skip
        return frame

    def _publish(self, s: Session, m: FrameMotion, image: np.ndarray | None, now: float) -> None:
        repeated = image is None and s.renderer is not None
        if image is not None:
            s.last_image = image
        elif repeated:
            s.repeated += 1
            self.stats.count("repeated_frames")
        due = self.timeline.due_time(s.first_tick + m.index)
        shown = image if image is not None else s.last_image
        s.output.put(Output(m.index * FRAME, shown, m.audio, m.end_of_speech, m.speaking, m.expression, m.pose,
                            m.gaze, m.head_source, repeated, due, m.lips, m.wide))  # fmt: skip
        s.frames_out += 1
        if m.arrival is not None:
            self.stats.record("latency", now - m.arrival)
