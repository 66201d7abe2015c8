"""Rendering in worker processes.

The CPU renderer holds Python's GIL for about half of each frame (its ~1300 per-triangle
fillConvexPoly calls and the NumPy glue around them), so threads render only ~1.35x as fast as one
(120 -> 163 frames/s on two cores, measured), and the engine's own motion work waits for the GIL
too. Each worker process here renders the sessions pinned to it in its own interpreter: the motion
parameters go in over a pipe, the frame comes back through shared memory (one buffer per session,
written by the worker, copied out here).

A session is pinned at open to the process with the fewest sessions; calls into one process are
serialised by its lock (it renders one frame at a time anyway). Processes are started with
"spawn" (forking a process that runs threads and PyTorch is unsafe) and stopped by ``close``."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import weakref
from collections.abc import Callable
from multiprocessing.shared_memory import SharedMemory
from typing import TYPE_CHECKING, Any

import numpy as np
from posetalk.models.errors import BackendError
from posetalk.models.render.process import Close, Failed, Message, Open, Render, Stop, serve

if TYPE_CHECKING:
    from posetalk.models.render import Avatar

STOP_TIMEOUT_S = 5.0


class _Worker:
    """One render process and the pipe to it."""

    def __init__(self, ctx: Any, index: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child,), name=f"posetalk-render-{index}", daemon=True)
        self.process.start()
        child.close()
        self.lock = threading.Lock()
        self.sessions = 0

    def call(self, msg: Message) -> None:
        with self.lock:
            try:
                self.conn.send(msg)
                reply = self.conn.recv()
            except (EOFError, OSError) as exc:
                raise BackendError(f"the render process {self.process.name} is gone ({exc!r})") from None
        if isinstance(reply, Failed):
            raise BackendError(f"the render process failed: {reply.error}")

    def stop(self) -> None:
        with contextlib.suppress(BackendError):  # already gone: nothing to stop
            self.call(Stop())
        self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class RenderPool:
    """``processes`` render processes; ``renderer(avatar)`` gives a Renderer that renders in one."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"need at least one render process, got {processes}")
        ctx = mp.get_context("spawn")
        self._workers = [_Worker(ctx, i) for i in range(processes)]
        self._keys = iter(range(1 << 62))
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[ProcessRenderer] = weakref.WeakSet()

    def renderer(self, avatar: Avatar) -> ProcessRenderer:
        with self._lock:
            worker = min(self._workers, key=lambda w: w.sessions)
            worker.sessions += 1
            key = next(self._keys)
        try:
            renderer = ProcessRenderer(worker, key, avatar, lambda: self._release(worker))
        except BaseException:
            self._release(worker)
            raise
        self._open.add(renderer)
        return renderer

    def _release(self, worker: _Worker) -> None:
        """A session of ``worker`` ended: counted under the lock the choice of worker reads."""
        with self._lock:
            worker.sessions -= 1

    def close(self) -> None:
        """Close the renderers still open (their buffers are unlinked) and stop the processes."""
        for r in list(self._open):
            r.close()
        for w in self._workers:
            w.stop()
        self._workers = []


class ProcessRenderer:
    """The Renderer interface (models.render) for one avatar rendered in a worker process."""

    name = "cpu-process"

    def __init__(self, worker: _Worker, key: int, avatar: Avatar, on_close: Callable[[], None]) -> None:
        self.size = avatar.size
        self._worker, self._key, self._on_close = worker, key, on_close
        self._lock = threading.Lock()  # a render and a close from two threads never interleave
        self._shm = SharedMemory(create=True, size=self.size * self.size * 3)
        self._frame: np.ndarray = np.ndarray((self.size, self.size, 3), np.uint8, buffer=self._shm.buf)
        try:
            worker.call(Open(key, avatar, self._shm.name))
        except BaseException:
            self._release()
            raise
        self._open = True

    @property
    def alive(self) -> bool:
        """Its process still runs (a crashed one takes down only the sessions pinned to it)."""
        return bool(self._worker.process.is_alive())

    def render(self, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray) -> np.ndarray:
        out = np.empty((len(pose), self.size, self.size, 3), np.uint8)
        with self._lock:
            if not self._open:
                raise BackendError("this renderer was closed")
            for i in range(len(pose)):
                self._worker.call(Render(self._key, pose[i : i + 1], gaze[i : i + 1], expression[i : i + 1]))
                out[i] = self._frame
        return out

    def close(self) -> None:
        """Drop the avatar from its process and free the frame buffer (idempotent)."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            with contextlib.suppress(BackendError):  # the process is gone: nothing of this renderer is left in it
                self._worker.call(Close(self._key))
            self._on_close()
            self._release()

    def _release(self) -> None:
        del self._frame
        self._shm.close()
        self._shm.unlink()
