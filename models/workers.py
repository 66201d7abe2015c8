"""Worker processes that serve one request at a time over a pipe: the render processes
(engine/render_pool.py, models/render/process.py) and the video encoder processes
(streaming/encoder.py). Requests are dataclasses; the reply is ``Done`` (with a value) or
``Failed`` (the error, as text), and ``Stop`` ends a worker. Importing this module loads nothing
heavy: a spawned process imports only what its loop needs."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from posetalk.models.errors import PosetalkError

STOP_TIMEOUT_S = 5.0


class WorkerError(PosetalkError):
    """A worker process failed a request, or is gone."""


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Done:
    value: Any = None


@dataclass(frozen=True)
class Failed:
    error: str


class Worker:
    """One process running ``target(conn)`` and the pipe to it; ``call`` is one request and its
    reply (serialised by a lock), WorkerError when the process failed the request or is gone."""

    def __init__(self, ctx: Any, target: Callable[[Connection], None], name: str) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child,), name=name, daemon=True)
        self.process.start()
        child.close()
        self.lock = threading.Lock()
        self.sessions = 0  # what the pool has pinned to it

    @property
    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def call(self, msg: Any) -> Any:
        """``msg``'s reply value."""
        with self.lock:
            try:
                self.conn.send(msg)
                reply = self.conn.recv()
            except (EOFError, OSError) as exc:
                raise WorkerError(f"the worker process {self.process.name} is gone ({exc!r})") from None
        if isinstance(reply, Failed):
            raise WorkerError(f"the worker process {self.process.name} failed: {reply.error}")
        return reply.value

    def stop(self) -> None:
        with contextlib.suppress(WorkerError):  # already gone: nothing to stop
            self.call(Stop())
        self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def serve_requests(conn: Connection, handle: Callable[[Any], Any]) -> None:
    """A worker's loop: each request to ``handle`` (its return value the reply), until ``Stop``
    or the other end goes away; an exception is the request's ``Failed``, and the loop goes on."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent process is gone
            return
        if isinstance(msg, Stop):
            conn.send(Done())
            return
        try:
            conn.send(Done(handle(msg)))
        except Exception as exc:
            conn.send(Failed(f"{type(exc).__name__}: {exc}"))


class Pool:
    """``processes`` workers running ``target``; each session is pinned to the least busy one."""

    def __init__(self, processes: int, target: Callable[[Connection], None], name: str) -> None:
        import multiprocessing as mp

        if processes < 1:
            raise ValueError(f"need at least one {name} process, got {processes}")
        ctx = mp.get_context("spawn")  # forking a process that runs threads (and PyTorch) is unsafe
        self.workers = [Worker(ctx, target, f"posetalk-{name}-{i}") for i in range(processes)]
        self._keys = iter(range(1 << 62))
        self._lock = threading.Lock()

    def pin(self) -> tuple[Worker, int, Callable[[], None]]:
        """The least busy worker, a key no other session has, and the call that unpins it."""
        with self._lock:
            worker = min(self.workers, key=lambda w: w.sessions)
            worker.sessions += 1
            key = next(self._keys)

        def release() -> None:
            with self._lock:
                worker.sessions -= 1

        return worker, key, release

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers = []


class SharedBuffer:
    """``size`` bytes of shared memory made here for a worker to open by ``name``; ``array`` views
    it; ``release`` frees it (idempotent)."""

    def __init__(self, size: int) -> None:
        from multiprocessing.shared_memory import SharedMemory

        self._shm: Any = SharedMemory(create=True, size=size)
        self.name: str = self._shm.name

    def array(self, shape: tuple[int, ...]) -> Any:
        import numpy as np

        return np.ndarray(shape, np.uint8, buffer=self._shm.buf)

    def release(self) -> None:
        if self._shm is not None:
            shm, self._shm = self._shm, None
            shm.close()
            shm.unlink()
