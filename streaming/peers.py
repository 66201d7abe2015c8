"""One connected client and everything its session holds, released in one place.

A ``Peer`` owns a session, its ``SessionMedia`` pump, the WebRTC peer connection (when it came
through POST /offer) or the WebSocket it streams over (raw PCM clients), the WebSockets that
control it, and its tasks. ``close`` releases all of it and is idempotent; it runs when the peer
connection fails or closes, when a PCM WebSocket closes, when a peer never connects within the
connect timeout, on DELETE /sessions/{key}, and when the server stops.

Also here: the control protocol of the WebSocket (JSON text messages) and the frame messages a
PCM client receives, so that the HTTP layer only routes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web
from posetalk.engine import Output, Session
from posetalk.engine.errors import SessionClosedError
from posetalk.models.errors import AudioInputError, InputError
from posetalk.models.face.params import BLENDSHAPE_NAMES
from posetalk.streaming.errors import SignalingError
from posetalk.streaming.tracks import SessionMedia, pack_matte

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)

VIDEO_TAG = b"\x01"  # binary message out: JPEG of one frame
AUDIO_TAG = b"\x02"  # binary message out: that frame's audio, int16 LE mono: 640 samples at 16 kHz (audio=1)
#                      or its full band, 1920 samples at 48 kHz (audio=48000)
MAX_PROMPT = 500


def check_prompt(value: object) -> str:
    if not isinstance(value, str):
        raise SignalingError(f"prompt must be a string, got {type(value).__name__}")
    if len(value) > MAX_PROMPT:
        raise SignalingError(f"prompt is {len(value)} characters; the limit is {MAX_PROMPT}")
    return value


@dataclass(frozen=True)
class FrameOptions:
    """What a PCM WebSocket client receives per frame."""

    motion: bool = True  # a JSON "frame" message: pts, flags, pose, gaze, expression
    video: bool = False  # a binary VIDEO_TAG + JPEG message
    audio: int = 0  # a binary AUDIO_TAG + PCM message at this rate (16000: the models' copy, 48000: full band)
    jpeg_quality: int = 85


def frame_message(out: Output) -> dict[str, Any]:
    return {
        "type": "frame",
        "pts": out.pts,
        "index": out.index,
        "end_of_speech": out.end_of_speech,
        "speaking": out.speaking,
        "repeated": out.repeated,
        "head": out.head_source,
        "lips": out.lips,
        "pose": [round(float(v), 5) for v in out.pose],
        "gaze": [round(float(v), 5) for v in out.gaze],
        "expression": {n: round(float(v), 4) for n, v in zip(BLENDSHAPE_NAMES, out.expression, strict=True)},
    }


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as int16."""
    out: np.ndarray = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    return out


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """VIDEO_TAG + the JPEG of an RGB frame, or of an RGBA frame packed as ``pack_matte``."""
    import cv2

    if image.shape[2] == 4:
        image = pack_matte(image)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return VIDEO_TAG + (data.tobytes() if ok else b"")


class Peer:
    """A session and what serves it; see the module docstring."""

    def __init__(self, transport: str, session: Session, media: SessionMedia,
                 on_close: Callable[[Peer, str], Awaitable[None]], *, alpha: bool = False) -> None:  # fmt: skip
        self.key = secrets.token_urlsafe(16)  # unguessable: it addresses the session in URLs
        self.transport = transport  # "webrtc" or "websocket"
        self.session = session
        self.media = media
        self.alpha = alpha  # the session renders RGBA (the person on a transparent background)
        self.pc: RTCPeerConnection | None = None
        # Watchers (POST /watch, the overlay page): their peer connections, each with its own media
        # (a sink of this peer's), released with the peer.
        self.viewers: dict[RTCPeerConnection, SessionMedia] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closed = False
        self.close_reason = ""
        self._on_close = on_close

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """A task that lives as long as the peer (cancelled by ``close``)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(f"posetalk-{name}-{self.session.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed, self.close_reason = True, reason
        log.info("session %s (%s) closed: %s", self.session.id, self.transport, reason)
        current = asyncio.current_task()
        tasks = [t for t in self.tasks if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.media.close()
        await self.session.close()
        for pc in list(self.viewers):
            await self.drop_viewer(pc)
        if self.pc is not None:
            pc, self.pc = self.pc, None
            pc.remove_all_listeners()
            await pc.close()
        for ws in list(self.sockets):
            await ws.close(code=1000, message=reason[:120].encode())
        self.sockets.clear()
        await self._on_close(self, reason)

    async def drop_viewer(self, pc: RTCPeerConnection) -> None:
        media = self.viewers.pop(pc, None)
        if media is None:
            return
        with contextlib.suppress(ValueError):
            self.media.sinks.remove(media)
        await media.close()
        pc.remove_all_listeners()
        await pc.close()

    def control(self, text: str) -> dict[str, Any] | None:
        """Act on one control message; the reply to send, if any. Raises SignalingError."""
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SignalingError(f"invalid JSON: {exc}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise SignalingError('a control message is a JSON object with a "type"')
        kind = msg["type"]
        try:
            if kind == "prompt":
                self.session.set_prompt(check_prompt(msg.get("text")))
                return {"type": "prompt", "text": self.session.prompt}
            if kind == "interrupt":
                self.session.interrupt()
                self.media.interrupt()
                return None
            if kind == "flush":
                self.session.flush()
                return None
            if kind == "text":  # the words of the audio sent next, untimed
                self.session.push_text(msg.get("text"))
                return None
            if kind == "words":  # the same, timed: [{"word", "start", "end"}, ...] in seconds (Session.push_words)
                items = msg.get("words")
                if not isinstance(items, list) or not all(isinstance(w, dict) for w in items):
                    raise SignalingError('"words" must be a list of {"word", "start", "end"}')
                in_utterance = msg.get("in_utterance", False)
                if not isinstance(in_utterance, bool):
                    raise SignalingError('"in_utterance" must be true or false')
                words = [(w.get("word"), w.get("start"), w.get("end")) for w in items]
                self.session.push_words(words, in_utterance=in_utterance)
                return None
            if kind == "ping":
                return {"type": "pong"}
        except (SessionClosedError, InputError) as exc:
            raise SignalingError(str(exc)) from None
        if kind == "stats":
            return {"type": "stats"}  # the server fills in the figures (it knows the engine)
        raise SignalingError(f"unknown message type {kind!r} (prompt, interrupt, flush, text, words, stats, ping)")

    def push_pcm(self, data: bytes, rate: int) -> None:
        """Raw PCM from a WebSocket client: int16 little-endian mono at ``rate``."""
        if self.transport != "websocket":
            raise SignalingError("this socket controls a WebRTC session: send audio over WebRTC")
        try:
            self.session.push_audio(data, rate)
        except AudioInputError as exc:
            raise SignalingError(str(exc)) from None


class FrameStream:
    """Frames for one PCM WebSocket: a sink that never blocks the pump (a bounded buffer, overflow
    DROP_OLDEST, counted in ``dropped``) and a writer task that sends them."""

    def __init__(self, ws: web.WebSocketResponse, options: FrameOptions, maxlen: int = 8) -> None:
        self.ws = ws
        self.options = options
        self.buffer: deque[Output] = deque()
        self.maxlen = maxlen
        self.dropped = 0
        self.sent = 0
        self._ready = asyncio.Event()

    def clear(self) -> None:
        """Barge-in: drop the frames not sent yet."""
        self.dropped += len(self.buffer)
        self.buffer.clear()

    def __call__(self, out: Output) -> None:
        if len(self.buffer) >= self.maxlen:
            self.buffer.popleft()
            self.dropped += 1
        self.buffer.append(out)
        self._ready.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.ws.closed:
            if not self.buffer:
                self._ready.clear()
                await self._ready.wait()
                continue
            out = self.buffer.popleft()
            with contextlib.suppress(ConnectionError, RuntimeError):  # the socket closed meanwhile
                if self.options.motion:
                    await self.ws.send_json(frame_message(out))
                if self.options.video and out.video is not None:
                    jpeg = await loop.run_in_executor(None, encode_jpeg, out.video, self.options.jpeg_quality)
                    await self.ws.send_bytes(jpeg)
                if self.options.audio:
                    pcm = out.audio if self.options.audio == 16000 else out.wide
                    await self.ws.send_bytes(AUDIO_TAG + pcm16(pcm).astype("<i2").tobytes())
                self.sent += 1
