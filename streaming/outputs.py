"""Where frames go besides WebRTC: an mp4 file (PyAV, encoded in a thread of its own) and a
virtual camera (pyvirtualcam, only when it is installed).

``Mp4Writer`` takes video frames by frame index and mono audio by sample position, both counted
from one origin, and writes a constant-frame-rate H.264 + AAC mp4 in which frame i plays at
i / fps and audio sample k at k / sample_rate. A missing frame repeats the previous picture (as
a player shows it), missing audio is silence, so the file keeps the timing it was given.
``Mp4Sink`` and ``VirtualCameraSink`` are sinks for ``SessionMedia`` (engine ``Output`` in)."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.engine import FPS, Output
from posetalk.engine.audio_input import WIDE_FRAME, WIDE_RATE
from posetalk.models.render.video import add_audio_stream, add_video_stream
from posetalk.streaming.errors import StreamingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mp4Summary:
    path: Path
    frames: int  # frames in the file
    filled: int  # of which repeats written for missing frames
    late: int  # frames that came after a later one and were left out
    audio_samples: int


class Mp4Writer:
    """See the module docstring. ``video``/``audio`` only queue (cheap, any thread); ``close``
    waits for the encoder thread and returns what was written. RGBA pictures (an alpha session)
    need a .webm or .mov ``path`` (models/render/video.py's streams)."""

    def __init__(self, path: str | Path, sample_rate: int, fps: int = FPS, crf: int = 20) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.fps = fps
        self.crf = crf
        self._queue: queue.SimpleQueue[tuple[str, int, np.ndarray] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._summary: Mp4Summary | None = None
        self._done = False  # close()'s marker was taken from the queue
        self._thread = threading.Thread(target=self._run, name="posetalk-mp4", daemon=True)
        self._thread.start()

    def video(self, index: int, rgb: np.ndarray) -> None:
        self._queue.put(("v", index, rgb))

    def audio(self, pos: int, samples: np.ndarray) -> None:
        self._queue.put(("a", pos, np.asarray(samples, np.float32).reshape(-1)))

    def close(self) -> Mp4Summary:
        if self._summary is None:
            self._queue.put(None)
            self._thread.join()
            if self._error is not None:
                raise StreamingError(f"{self.path}: writing the mp4 failed: {self._error}") from self._error
            assert self._summary is not None
        return self._summary

    def _run(self) -> None:
        try:
            self._summary = self._encode()
        except BaseException as exc:  # reported by close(), in the caller's thread
            self._error = exc
            while not self._done and self._queue.get() is not None:  # drain up to close()'s marker
                pass

    def _next(self) -> tuple[str, int, np.ndarray] | None:
        item = self._queue.get()
        self._done = item is None
        return item

    def _encode(self) -> Mp4Summary:
        import av

        container: Any = None
        vstream: Any = None
        astream: Any = None
        pending_audio: list[tuple[int, np.ndarray]] = []  # audio before the first picture
        next_index, filled, late, last = 0, 0, 0, None
        audio_end = 0  # samples written

        def write_audio(pos: int, x: np.ndarray) -> None:
            nonlocal audio_end
            if pos + len(x) <= audio_end:
                return
            if pos > audio_end:  # a gap: silence
                x, pos = np.concatenate([np.zeros(pos - audio_end, np.float32), x]), audio_end
            x = x[audio_end - pos :]
            frame = av.AudioFrame.from_ndarray(np.clip(x, -1, 1)[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = self.sample_rate, audio_end, Fraction(1, self.sample_rate)
            for packet in astream.encode(frame):
                container.mux(packet)
            audio_end += len(x)

        def write_video(rgb: np.ndarray) -> None:
            fmt = "rgba" if rgb.shape[2] == 4 else "rgb24"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: vstream.height, : vstream.width]),
                                               format=fmt)  # fmt: skip
            for packet in vstream.encode(frame):
                container.mux(packet)

        while (item := self._next()) is not None:
            kind, pos, data = item
            if kind == "a":
                if container is None:
                    pending_audio.append((pos, data))
                else:
                    write_audio(pos, data)
                continue
            if container is None:
                container = av.open(str(self.path), mode="w")
                h, w = data.shape[:2]
                vstream = add_video_stream(container, self.path, w, h, self.fps, self.crf, data.shape[2] == 4)
                astream = add_audio_stream(container, self.path, self.sample_rate)
                for p, x in pending_audio:
                    write_audio(p, x)
                pending_audio.clear()
            if pos < next_index:
                late += 1
                continue
            fill = last if last is not None else data  # before the first picture: that picture
            while next_index < pos:
                write_video(fill)
                next_index += 1
                filled += 1
            write_video(data)
            next_index, last = pos + 1, data
        if container is None:
            raise StreamingError("no video frame arrived: nothing to write")
        for packet in astream.encode(None):
            container.mux(packet)
        for packet in vstream.encode(None):
            container.mux(packet)
        container.close()
        return Mp4Summary(self.path, next_index, filled, late, audio_end)


class Mp4Sink:
    """A session's frames into an mp4 (video and the frames' own audio as it came in, full band
    at 48 kHz), counted from the first frame it receives."""

    def __init__(self, path: str | Path) -> None:
        self.writer = Mp4Writer(path, WIDE_RATE)
        self._first: int | None = None

    def __call__(self, out: Output) -> None:
        if self._first is None:
            self._first = out.index
        if out.video is not None:
            self.writer.video(out.index - self._first, out.video)
        self.writer.audio((out.index - self._first) * WIDE_FRAME, out.wide)

    def close(self) -> Mp4Summary:
        return self.writer.close()


class VirtualCameraSink:
    """A session's frames to a virtual camera (v4l2loopback on Linux, OBS elsewhere); needs
    ``pip install pyvirtualcam`` and a camera device."""

    def __init__(self, size: int, device: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise StreamingError("a virtual camera needs pyvirtualcam: pip install pyvirtualcam") from None
        try:
            self.camera = pyvirtualcam.Camera(width=size, height=size, fps=FPS, device=device)
        except Exception as exc:  # pyvirtualcam raises RuntimeError and others when no device exists
            raise StreamingError(f"no virtual camera could be opened: {exc}") from exc
        log.info("virtual camera: %s", self.camera.device)

    def __call__(self, out: Output) -> None:
        if out.video is not None:
            self.camera.send(out.video)

    def close(self) -> None:
        self.camera.close()


def virtual_camera_available() -> bool:
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        return False
    return True
