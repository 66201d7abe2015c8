"""The loop of a render process (engine/render_pool.py starts them) and the messages it takes. It
lives here, not in the engine package, so that a spawned process imports only the renderer:
importing anything under posetalk.engine loads the whole engine, PyTorch included (345 MB before
the first portrait).

The engine sends one message at a time and waits for the reply: ``Open`` (a session's avatar and
the name of its shared frame buffer), ``Render`` (one frame's motion: the picture is written into
that buffer), ``Close``, ``Stop`` (models/workers.py: the loop, the replies)."""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import TYPE_CHECKING

import numpy as np
from posetalk.models.workers import Stop, serve_requests

if TYPE_CHECKING:
    from posetalk.models.render.avatar import Avatar


@dataclass(frozen=True)
class Open:
    key: int
    avatar: Avatar
    shm_name: str


@dataclass(frozen=True)
class Render:
    key: int
    pose: np.ndarray  # (1, 6)
    gaze: np.ndarray  # (1, 2)
    expression: np.ndarray  # (1, 21)


@dataclass(frozen=True)
class Close:
    key: int


Message = Open | Render | Close | Stop


def serve(conn: Connection) -> None:
    """A worker process: renderers by key, each with its session's shared frame buffer."""
    from posetalk.models.render.cpu import CpuRenderer

    renderers: dict[int, tuple[CpuRenderer, SharedMemory, np.ndarray]] = {}

    def handle(msg: Message) -> None:
        if isinstance(msg, Render):
            renderer, _, frame = renderers[msg.key]
            frame[...] = renderer.render(msg.pose, msg.gaze, msg.expression)[0]
        elif isinstance(msg, Open):
            shm = SharedMemory(name=msg.shm_name)  # the engine's tracker (shared with spawned children) owns it
            frame = np.ndarray((msg.avatar.size, msg.avatar.size, 3), np.uint8, buffer=shm.buf)
            renderers[msg.key] = (CpuRenderer(msg.avatar), shm, frame)
        elif isinstance(msg, Close):
            _, shm, frame = renderers.pop(msg.key)
            del frame
            shm.close()
        else:
            raise TypeError(f"not a render process message: {msg!r}")

    serve_requests(conn, handle)
    while renderers:
        _, (_, shm, frame) = renderers.popitem()
        del frame
        shm.close()
