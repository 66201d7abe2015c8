"""The loop of a render process (engine/render_pool.py starts them). It lives here, not in the
engine package, so that a spawned process imports only the renderer: importing anything under
posetalk.engine loads the whole engine, PyTorch included (345 MB before the first portrait)."""

from __future__ import annotations

from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory

import numpy as np


def serve(conn: Connection) -> None:
    """A worker process: renderers by key, each with its session's shared frame buffer."""
    from posetalk.models.render.cpu import CpuRenderer

    renderers: dict[int, tuple[CpuRenderer, SharedMemory, np.ndarray]] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the engine's process is gone
            break
        op = msg[0]
        try:
            if op == "render":
                _, key, pose, gaze, expression = msg
                renderer, _, frame = renderers[key]
                frame[...] = renderer.render(pose, gaze, expression)[0]
            elif op == "open":
                _, key, avatar, shm_name = msg
                shm = SharedMemory(name=shm_name)  # the engine's tracker (shared with spawned children) owns it
                frame = np.ndarray((avatar.size, avatar.size, 3), np.uint8, buffer=shm.buf)
                renderers[key] = (CpuRenderer(avatar), shm, frame)
            elif op == "close":
                _, shm, frame = renderers.pop(msg[1])
                del frame
                shm.close()
            elif op == "stop":
                conn.send(("ok", None))
                break
            conn.send(("ok", None))
        except Exception as exc:  # the engine hears about it as a BackendError; this process goes on
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    while renderers:
        _, (_, shm, frame) = renderers.popitem()
        del frame
        shm.close()
