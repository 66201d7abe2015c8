"""A client of a running `posetalk serve` over its PCM WebSocket: speech, text and control in;
frames (picture, the frame's full-band audio, timestamps, blendshapes) out.

    async with PosetalkClient("http://127.0.0.1:8080", prompt="calm") as avatar:
        avatar.push_audio(pcm_bytes, 24000)       # int16 mono (or numpy), any rate
        avatar.flush()                            # end of a reply: show it all, then listen
        async for frame in avatar.frames():       # 25 fps: frame.image (H, W, 3) uint8 RGB,
            ...                                   # frame.audio (1920,) int16 at 48 kHz, frame.pts

Sending never blocks: messages queue and one task writes them in order. Frames arrive at the
server's pace (25 a second once anything was pushed); ``frames()`` ends when the session does."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VIDEO_TAG = b"\x01"  # the server's binary messages: a JPEG picture
AUDIO_TAG = b"\x02"  # or that frame's audio, int16 LE mono
OUT_RATE = 48_000  # the frames' audio: the input's full band (`audio=48000`)
FRAME_SAMPLES = OUT_RATE // 25  # 1920


class PosetalkError(Exception):
    """The server refused something, or the connection failed."""


@dataclass
class AvatarFrame:
    """One frame of the avatar: ``index`` (25 a second from the session's start), ``pts`` (its
    first audio sample, 16 kHz), ``image`` (H, W, 3) uint8 RGB (RGBA (H, W, 4) with ``alpha``),
    ``audio`` (1920,) int16 mono at 48 kHz (the pushed speech of this frame, delayed with it), the
    voice gate's ``speaking`` and ``end_of_speech``, the ARKit ``expression`` and head ``pose`` it
    shows, what made its mouth (``lips``: "audio", or "text" where words pushed with the speech
    were used), and where it lies in a reply: ``in_reply`` from the reply's first sound up to the
    frame that ends it (its audio is the reply's), ``reply_ended`` on that ending frame."""

    index: int
    pts: int
    image: np.ndarray
    audio: np.ndarray
    speaking: bool
    end_of_speech: bool
    expression: dict[str, float] = field(default_factory=dict)
    pose: list[float] = field(default_factory=list)
    lips: str = "audio"
    in_reply: bool = False
    reply_ended: bool = False


class PosetalkClient:
    """One avatar session on a posetalk server. ``url``: what `posetalk serve` prints;
    ``avatar``: a portrait id on the server (its default when None); ``token``: for a server
    off loopback; ``alpha``: pictures (H, W, 4) RGBA, the person on a transparent background (the
    server packs the matte beside the colour; unpacked here), and the session shows on the server's
    /overlay page with its matte."""

    def __init__(self, url: str, *, avatar: str | None = None, prompt: str = "", token: str | None = None,
                 input_rate: int = 16000, alpha: bool = False) -> None:  # fmt: skip
        self.url = url.rstrip("/") + "/"
        self.alpha = alpha
        self.avatar, self.prompt, self.token = avatar, prompt, token
        self.input_rate = input_rate  # the rate push_audio's bytes are taken at when none is given
        self.session: str | None = None
        self._http: Any = None
        self._ws: Any = None
        self._outbox: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._frames: asyncio.Queue[AvatarFrame | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._rate: int | None = None  # the rate the socket was opened at
        self._epoch = 0  # bumped by interrupt(): frames from before it are dropped here too
        self.closed = False
        self.errors: list[str] = []  # what the server said was wrong

    async def connect(self) -> PosetalkClient:
        import aiohttp

        params = {"rate": str(self.input_rate), "video": "jpeg", "audio": str(OUT_RATE), "motion": "1",
                  "alpha": "1" if self.alpha else "0"}  # fmt: skip
        if self.avatar:
            params["avatar"] = self.avatar
        if self.prompt:
            params["prompt"] = self.prompt
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = aiohttp.ClientSession(headers=headers)
        try:
            self._ws = await self._http.ws_connect(self.url + "ws", params=params, max_msg_size=2**24)
            ready = await self._ws.receive_json(timeout=60)
        except Exception as e:
            await self._http.close()
            raise PosetalkError(f"could not open a session on {self.url}: {e}") from e
        if ready.get("type") != "ready":
            await self.close()
            raise PosetalkError(f"unexpected first message from the server: {ready}")
        self.session = ready["session"]
        self._rate = self.input_rate
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._receive())]
        return self

    async def __aenter__(self) -> PosetalkClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- in ------------------------------------------------------------------------------------

    def push_audio(self, pcm: bytes | np.ndarray, sample_rate: int | None = None, channels: int = 1) -> None:
        """Speech: int16 bytes or an int16/float32 array, mono or interleaved ``channels``, at
        ``sample_rate`` (the socket's rate is fixed when it opens: other rates are resampled
        here, linearly, which is enough for what the models hear; listeners get the input rate's
        band up to the socket's)."""
        self._check_open()
        rate = sample_rate or self.input_rate
        if not isinstance(rate, int) or not 8000 <= rate <= 192000:
            raise PosetalkError(f"sample_rate must be a whole number of Hz in 8000..192000, got {rate!r}")
        if not isinstance(channels, int) or not 1 <= channels <= 8:
            raise PosetalkError(f"channels must be 1..8, got {channels!r}")
        a = np.frombuffer(bytes(pcm), "<i2") if isinstance(pcm, (bytes, bytearray, memoryview)) else np.asarray(pcm)
        if a.dtype != np.int16:
            a = (np.clip(a.astype(np.float32), -1, 1) * 32767).astype(np.int16)
        if channels > 1:
            if len(a) % channels:
                raise PosetalkError(f"{len(a)} samples are not whole frames of {channels} channels")
            a = a.reshape(-1, channels).mean(1).astype(np.int16)
        if rate != self._rate:
            n = int(round(len(a) * self._rate / rate))  # type: ignore[operator]
            a = np.interp(np.linspace(0, len(a) - 1, n), np.arange(len(a)), a).astype(np.int16) if len(a) else a
        self._outbox.put_nowait(("bytes", a.astype("<i2").tobytes()))

    def push_text(self, text: str) -> None:
        """The words of the audio pushed next (their shapes join the lips once aligned)."""
        self._control({"type": "text", "text": text})

    def push_words(self, words: list[tuple[str, float, float]], *, in_utterance: bool = False) -> None:
        """The same, timed: (word, start_s, end_s) from the first sample of the audio pushed next;
        ``in_utterance``: from the first sample of the utterance being pushed (since the last
        flush or interrupt), for words that come while their audio streams in; each such push
        replaces the one before for that utterance (send all its words so far)."""
        words_json = [{"word": w, "start": a, "end": b} for w, a, b in words]
        self._control({"type": "words", "words": words_json, "in_utterance": in_utterance})

    def flush(self) -> None:
        """The reply is complete: it is shown to its end, then the avatar listens."""
        self._control({"type": "flush"})

    def interrupt(self) -> None:
        """Barge-in: the server drops what it holds, and frames not yet taken here are dropped."""
        self._epoch += 1
        while not self._frames.empty():
            self._frames.get_nowait()
        self._control({"type": "interrupt"})

    def set_prompt(self, prompt: str) -> None:
        self._control({"type": "prompt", "text": prompt})

    # ---- out -----------------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[AvatarFrame]:
        """Frames as they arrive, until the session ends."""
        while True:
            frame = await self._frames.get()
            if frame is None:
                return
            yield frame

    async def close(self) -> None:
        """End the session on the server and release everything here."""
        if self.closed:
            return
        self.closed = True
        self._outbox.put_nowait(None)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._http is not None:
            await self._http.close()
        self._frames.put_nowait(None)

    # ---- inside --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed or self._ws is None:
            raise PosetalkError("the avatar session is not open (connect first; after close, open a new one)")

    def _control(self, msg: dict[str, Any]) -> None:
        self._check_open()
        self._outbox.put_nowait(("str", json.dumps(msg)))

    async def _send(self) -> None:
        while True:
            item = await self._outbox.get()
            if item is None:
                return
            kind, data = item
            if kind == "bytes":
                await self._ws.send_bytes(data)
            else:
                await self._ws.send_str(data)

    async def _receive(self) -> None:
        import aiohttp
        from PIL import Image

        pending: dict[str, Any] | None = None
        picture: np.ndarray | None = None
        in_reply = False  # a reply's sound has begun and its end not yet come
        epoch = self._epoch
        try:
            async for msg in self._ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if data.get("type") == "frame":
                        pending, picture, epoch = data, None, self._epoch
                    elif data.get("type") == "error":
                        self.errors.append(str(data.get("error")))
                elif msg.type == aiohttp.WSMsgType.BINARY and pending is not None:
                    tag, body = msg.data[:1], msg.data[1:]
                    if tag == VIDEO_TAG:
                        picture = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
                        if self.alpha:  # colour | matte, side by side
                            w = picture.shape[1] // 2
                            picture = np.dstack([picture[:, :w], picture[:, w:, 1]])
                    elif tag == AUDIO_TAG:  # the last message of a frame
                        if epoch == self._epoch and picture is not None:
                            audio, ended = np.frombuffer(body, "<i2").copy(), pending["end_of_speech"]
                            started = in_reply or bool(audio.any())
                            self._frames.put_nowait(AvatarFrame(
                                pending["index"], pending["pts"], picture, audio, pending["speaking"], ended,
                                pending.get("expression", {}), pending.get("pose", []), pending.get("lips", "audio"),
                                started and not ended, started and ended,
                            ))  # fmt: skip
                            in_reply = started and not ended
                        pending = None
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
        finally:
            self._frames.put_nowait(None)
