"""VP8 encoding in worker processes, for many sessions per machine (``serve --encode-processes``).

aiortc encodes each WebRTC video track in the server's process, in threads, and part of every
frame's encoding holds Python's GIL: two streams encoded in two threads on two cores ran 1.39x as
fast as one (512², this machine), so a big machine's cores go unused. Here a session's video track
hands its picture to an encoder process through shared memory (one buffer per track) and gets back
the VP8 frame, which the track returns as an ``av.Packet``: aiortc then only packetises it (its
sender's path for pre-encoded media). Each process runs one libvpx thread per stream (libvpx's own
threading collapses when many processes each start several).

What aiortc's own encoder does and this one cannot: a receiver's keyframe request (PLI) and its
bandwidth estimate (REMB) do not reach the process, so it sends a keyframe every ``KEYFRAME_EVERY``
frames (a receiver that lost one recovers within 2 s) at a fixed ``BITRATE``. The offer must take
VP8 (the server prefers it for these peers)."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np
from posetalk.models.errors import BackendError
from posetalk.models.workers import Pool, SharedBuffer, Stop, Worker, serve_requests

BITRATE = 1_000_000  # bits per second for a 512² avatar (aiortc's own encoder adapts 0.25-1.5 Mbit/s)
KEYFRAME_EVERY = 50  # frames (2 s)


@dataclass(frozen=True)
class Open:
    key: int
    shm_name: str
    shape: tuple[int, int]  # the largest (height, width) the track will send


@dataclass(frozen=True)
class Encode:
    key: int
    height: int
    width: int
    pts: int  # 90 kHz
    keyframe: bool


@dataclass(frozen=True)
class Close:
    key: int


Message = Open | Encode | Close | Stop


def serve(conn: Connection) -> None:
    """An encoder process: one libvpx context per track, its pictures in the track's buffer."""
    import av

    tracks: dict[int, tuple[SharedMemory, np.ndarray, Any]] = {}

    def context(width: int, height: int) -> Any:
        ctx = av.CodecContext.create("libvpx", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.bit_rate, ctx.gop_size, ctx.qmin, ctx.qmax = BITRATE, 3000, 2, 56
        ctx.thread_count = 1
        ctx.options = {
            "bufsize": str(BITRATE),
            "cpu-used": "-6",
            "deadline": "realtime",
            "lag-in-frames": "0",
            "minrate": str(BITRATE),
            "maxrate": str(BITRATE),
            "noise-sensitivity": "4",
            "overshoot-pct": "15",
            "partitions": "0",
            "static-thresh": "1",
            "undershoot-pct": "100",
        }  # fmt: skip  (aiortc's settings for real time)
        return ctx

    def handle(msg: Message) -> bytes | None:
        if isinstance(msg, Encode):
            shm, buf, ctx = tracks[msg.key]
            if ctx is None or (ctx.width, ctx.height) != (msg.width, msg.height):
                ctx = context(msg.width, msg.height)
                tracks[msg.key] = (shm, buf, ctx)
            image = buf[: msg.height * msg.width * 3].reshape(msg.height, msg.width, 3)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = msg.pts, Fraction(1, 90_000)
            if msg.keyframe:
                frame.pict_type = av.video.frame.PictureType.I
            return b"".join(bytes(p) for p in ctx.encode(frame))
        if isinstance(msg, Open):
            shm = SharedMemory(name=msg.shm_name)
            tracks[msg.key] = (shm, np.ndarray((msg.shape[0] * msg.shape[1] * 3,), np.uint8, buffer=shm.buf), None)
            return None
        if isinstance(msg, Close):
            shm, buf, _ = tracks.pop(msg.key)
            del buf
            shm.close()
            return None
        raise TypeError(f"not an encoder process message: {msg!r}")

    serve_requests(conn, handle)
    while tracks:
        _, (shm, buf, _) = tracks.popitem()
        del buf
        shm.close()


class EncodePool:
    """``processes`` encoder processes; ``encoder(shape)`` gives a track its ``ProcessEncoder``."""

    def __init__(self, processes: int) -> None:
        self._pool = Pool(processes, serve, "encode")
        self._open: weakref.WeakSet[ProcessEncoder] = weakref.WeakSet()

    def encoder(self, shape: tuple[int, int]) -> ProcessEncoder:
        """An encoder for pictures up to ``shape`` (height, width), on the least busy process."""
        worker, key, release = self._pool.pin()
        try:
            enc = ProcessEncoder(worker, key, shape, release)
        except BaseException:
            release()
            raise
        self._open.add(enc)
        return enc

    def close(self) -> None:
        for enc in list(self._open):
            enc.close()
        self._pool.stop()


class ProcessEncoder:
    """One track's encoder in a worker process: ``encode(image, pts)`` -> the VP8 frame's bytes
    (blocking: call it from a thread). Thread-safe; ``close`` is idempotent."""

    def __init__(self, worker: Worker, key: int, shape: tuple[int, int], on_close: Callable[[], None]) -> None:
        self._worker, self._key, self._on_close = worker, key, on_close
        self._lock = threading.Lock()
        self._buffer = SharedBuffer(shape[0] * shape[1] * 3)
        self._buf: np.ndarray = self._buffer.array((shape[0] * shape[1] * 3,))
        self.frames = 0
        try:
            worker.call(Open(key, self._buffer.name, shape))
        except BaseException:
            self._release()
            raise
        self._open = True

    @property
    def alive(self) -> bool:
        return self._worker.alive

    def encode(self, image: np.ndarray, pts: int) -> bytes:
        """``image`` (h, w, 3) uint8 RGB -> its VP8 frame (a keyframe first and every KEYFRAME_EVERY)."""
        h, w = image.shape[:2]
        with self._lock:
            if not self._open:
                raise BackendError("this encoder was closed")
            self._buf[: h * w * 3] = image.reshape(-1)
            keyframe = self.frames % KEYFRAME_EVERY == 0
            data: bytes = self._worker.call(Encode(self._key, h, w, pts, keyframe))
            self.frames += 1
        return data

    def close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
            with contextlib.suppress(BackendError):  # the process is gone: nothing of this track is left in it
                self._worker.call(Close(self._key))
            self._on_close()
            self._release()

    def _release(self) -> None:
        del self._buf
        self._buffer.release()
