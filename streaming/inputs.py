"""Audio into sessions from sources other than a browser: a file (into a session, or as a
WebRTC microphone track that plays it in real time) and a local microphone (sounddevice)."""

from __future__ import annotations

import asyncio
import logging
import time
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from posetalk.engine import SAMPLE_RATE, Session
from posetalk.engine.clock import Clock, MonotonicClock
from posetalk.models.errors import PosetalkError
from posetalk.streaming.errors import StreamingError

log = logging.getLogger(__name__)

CHUNK = SAMPLE_RATE // 50  # 20 ms: what a microphone or a WebRTC stack delivers at a time


def load_speech(source: str | Path | np.ndarray) -> np.ndarray:
    """16 kHz mono float32 from a file (anything FFmpeg reads) or an array already at 16 kHz."""
    if isinstance(source, np.ndarray):
        return np.asarray(source, np.float32).reshape(-1)
    from posetalk.models.audio.io import load_audio

    return load_audio(source)


async def play_file(session: Session, source: str | Path | np.ndarray, *, realtime: bool = True,
                    clock: Clock | None = None) -> float:  # fmt: skip
    """Push a recording into ``session`` in 20 ms chunks, paced as a microphone would deliver
    them (``realtime``) or all at once, then ``flush``; returns its length in seconds."""
    audio = load_speech(source)
    clock = clock or MonotonicClock()
    start = clock.now()
    for i in range(0, len(audio), CHUNK):
        if realtime:
            await clock.sleep_until(start + i / SAMPLE_RATE)
        session.push_audio(audio[i : i + CHUNK], SAMPLE_RATE)
    session.flush()
    return len(audio) / SAMPLE_RATE


class FileAudioTrack(MediaStreamTrack):
    """A recording played as a WebRTC microphone: 20 ms frames of mono int16 at ``rate`` (48 kHz
    keeps a recording's full band), paced in real time from the first ``recv``; ``lead_s`` of
    silence first, silence after the end. ``finished`` is set once the last sample has been sent."""

    kind = "audio"

    def __init__(self, audio: np.ndarray, lead_s: float = 0.5, rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.rate = rate
        lead = np.zeros(round(lead_s * rate), np.float32)
        pcm = np.concatenate([lead, np.asarray(audio, np.float32)])
        self.pcm = (np.clip(pcm, -1, 1) * 32767).round().astype(np.int16)
        self.lead_s = lead_s
        self.finished = asyncio.Event()
        self.sent = 0  # samples
        self.started_at: float | None = None  # time.monotonic() of the first frame

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.rate

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.started_at is None:
            self.started_at = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self.started_at + self.sent / self.rate - time.monotonic()))
        n = self.rate // 50  # 20 ms
        chunk = self.pcm[self.sent : self.sent + n]
        if len(chunk) < n:
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), np.int16)])
        # stereo, both channels the same: aiortc's mono-to-stereo conversion for its Opus
        # encoder pans at -3 dB (streaming/tracks.py's audio track does the same)
        frame = av.AudioFrame.from_ndarray(np.repeat(chunk, 2)[None], format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.sent, Fraction(1, self.rate)
        self.sent += n
        if self.sent >= len(self.pcm):
            self.finished.set()
        return frame


class Microphone:
    """This machine's microphone into a session (``async with Microphone(session): ...``).
    sounddevice calls back on its own thread; the callback only hands the block to the event loop
    (it must not block), where ``push_audio`` runs."""

    def __init__(self, session: Session, device: int | str | None = None, rate: int = SAMPLE_RATE) -> None:
        self.session = session
        self.device = device
        self.rate = rate
        self.blocks = 0
        self._stream: Any = None

    def _push(self, block: np.ndarray) -> None:
        if self.session.closed:
            return
        try:
            self.session.push_audio(block, self.rate)
            self.blocks += 1
        except PosetalkError as exc:
            log.warning("microphone: %s", exc)

    async def __aenter__(self) -> Microphone:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:  # OSError: the PortAudio library is missing
            raise StreamingError(f"the microphone needs sounddevice and PortAudio (libportaudio2): {exc}") from exc
        loop = asyncio.get_running_loop()

        def callback(indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
            loop.call_soon_threadsafe(self._push, indata[:, 0].copy())

        try:
            self._stream = sd.InputStream(samplerate=self.rate, channels=1, dtype="float32", blocksize=self.rate // 50,
                                          device=self.device, callback=callback)  # fmt: skip
            self._stream.start()
        except Exception as exc:  # sounddevice.PortAudioError, ValueError for a bad device
            raise StreamingError(f"cannot open the microphone: {exc}") from exc
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
