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
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from posetalk.engine.errors import BackendError
from posetalk.models.render.process import Close, Open, Render, serve
from posetalk.models.workers import Pool, SharedBuffer, Worker, WorkerError

if TYPE_CHECKING:
    from posetalk.models.render import Avatar


class RenderPool:
    """``processes`` render processes; ``renderer(avatar)`` gives a Renderer that renders in one."""

    def __init__(self, processes: int) -> None:
        self._pool = Pool(processes, serve, "render")
        self._open: weakref.WeakSet[ProcessRenderer] = weakref.WeakSet()

    def renderer(self, avatar: Avatar) -> ProcessRenderer:
        worker, key, release = self._pool.pin()
        try:
            renderer = ProcessRenderer(worker, key, avatar, release)
        except BaseException:
            release()
            raise
        self._open.add(renderer)
        return renderer

    def close(self) -> None:
        """Close the renderers still open (their buffers are unlinked) and stop the processes."""
        for r in list(self._open):
            r.close()
        self._pool.stop()


class ProcessRenderer:
    """The Renderer interface (models.render) for one avatar rendered in a worker process."""

    name = "cpu-process"

    def __init__(self, worker: Worker, key: int, avatar: Avatar, on_close: Callable[[], None]) -> None:
        self.size = avatar.size
        self._worker, self._key, self._on_close = worker, key, on_close
        self._lock = threading.Lock()  # a render and a close from two threads never interleave
        self._buffer = SharedBuffer(self.size * self.size * 3)
        self._frame: np.ndarray = self._buffer.array((self.size, self.size, 3))
        try:
            worker.call(Open(key, avatar, self._buffer.name))
        except BaseException:
            self._release()
            raise
        self._open = True

    @property
    def alive(self) -> bool:
        """Its process still runs (a crashed one takes down only the sessions pinned to it)."""
        return self._worker.alive

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
            with contextlib.suppress(WorkerError):  # the process is gone: nothing of this renderer is left in it
                self._worker.call(Close(self._key))
            self._on_close()
            self._release()

    def _release(self) -> None:
        del self._frame
        self._buffer.release()
