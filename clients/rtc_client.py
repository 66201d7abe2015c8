"""`posetalk client`: a WebRTC client of `posetalk serve` that sends a recording as its microphone
(paced in real time) and records what comes back, video and audio, to an mp4.

The recording keeps the server's timing: each stream is placed by its RTP timestamps counted from
its own first packet, and the server starts both streams at one frame boundary (see
streaming/pacing.py), so frame i of the mp4 and its audio at i * 40 ms are what the server sent
together. ``ClientResult`` carries the timestamps for measurements (frame rate, gaps)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.streaming.errors import StreamingError
from posetalk.streaming.outputs import Mp4Summary, Mp4Writer

log = logging.getLogger(__name__)

VIDEO_TICKS = 3600  # 90 kHz ticks per frame at 25 fps
RECEIVE_RATE = 48_000  # WebRTC audio (Opus) decodes at 48 kHz


@dataclass
class ClientResult:
    out: Path
    session: str
    mp4: Mp4Summary
    video_pts: list[int] = field(default_factory=list)  # 90 kHz, from the first frame received
    audio_pts: list[int] = field(default_factory=list)  # 48 kHz, from the first packet received
    sent_s: float = 0.0  # audio sent, lead-in included

    @property
    def frames(self) -> int:
        return len(self.video_pts)

    @property
    def fps(self) -> float:
        """Frames received per second of their own timestamps (not of wall time)."""
        if len(self.video_pts) < 2:
            return 0.0
        span = (self.video_pts[-1] - self.video_pts[0]) / 90_000
        return (len(self.video_pts) - 1) / span if span > 0 else 0.0


def split_url(url: str, token: str | None) -> tuple[str, str | None]:
    """The server's base URL (no query, trailing slash) and the token (given, or from ?token=)."""
    from yarl import URL

    u = URL(url)
    if u.scheme not in ("http", "https") or not u.host:
        raise StreamingError(f"not an http(s) URL: {url!r}")
    return str(u.with_query(None).with_fragment(None).with_path("/")), token or u.query.get("token")


async def run_client(
    url: str, audio: str | Path | np.ndarray, out: str | Path, *, prompt: str = "", avatar: str | None = None,
    token: str | None = None, lead_s: float = 0.5, tail_s: float = 1.5, ice_mode: str | None = None,
    on_frame: Callable[[int, np.ndarray], None] | None = None, cafile: str | Path | None = None,
    rate: int = 16000,
) -> ClientResult:  # fmt: skip
    """Connect, play ``audio`` (a file, sent at 48 kHz with its full band, or float32 samples at
    ``rate``) as the microphone after ``lead_s`` of silence, keep recording ``tail_s`` after it
    ends, and write ``out``. ``ice_mode``: see
    streaming.ice (default: "loopback" for a server on this machine's loopback, else "host").
    ``cafile``: a PEM certificate to trust for an https:// server (e.g. `serve --self-signed`'s)."""
    import aiohttp
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from posetalk.streaming import ice
    from posetalk.streaming.inputs import FileAudioTrack
    from posetalk.streaming.tracks import frame_pcm
    from yarl import URL

    base, token = split_url(url, token)
    mode = ice_mode or ("loopback" if ice.is_loopback(URL(base).host or "") else "host")
    ice.set_mode(mode)
    if isinstance(audio, np.ndarray):
        mic = FileAudioTrack(np.asarray(audio, np.float32).reshape(-1), lead_s, rate)
    else:
        from posetalk.models.audio.io import load_audio
        from posetalk.models.render.video import decode_audio

        load_audio(audio)  # its checks and clear errors
        mic = FileAudioTrack(decode_audio(audio, RECEIVE_RATE)[0], lead_s, RECEIVE_RATE)
    writer = Mp4Writer(out, RECEIVE_RATE)
    result = ClientResult(Path(out), "", Mp4Summary(Path(out), 0, 0, 0, 0))
    first_frame = asyncio.Event()
    consumers: list[asyncio.Task[None]] = []

    async def video(track: Any) -> None:
        v0: int | None = None
        async for frame in _received(track):
            v0 = frame.pts if v0 is None else v0
            rel = int(frame.pts - v0)
            result.video_pts.append(rel)
            rgb = frame.to_ndarray(format="rgb24")
            writer.video(round(rel / VIDEO_TICKS), rgb)
            if on_frame is not None:
                on_frame(rel, rgb)
            first_frame.set()

    async def sound(track: Any) -> None:
        a0: int | None = None
        async for frame in _received(track):
            pcm, rate = frame_pcm(frame)
            if rate != RECEIVE_RATE:
                raise StreamingError(f"expected {RECEIVE_RATE} Hz audio from the server, got {rate}")
            mono = pcm.astype(np.float32).mean(axis=1)
            mono = mono / 32768.0 if pcm.dtype == np.int16 else mono
            a0 = frame.pts if a0 is None else a0
            result.audio_pts.append(int(frame.pts - a0))
            writer.audio(int(frame.pts - a0), mono)

    pc = RTCPeerConnection()

    @pc.on("track")  # type: ignore[untyped-decorator]
    def on_track(track: Any) -> None:
        consumers.append(asyncio.create_task(video(track) if track.kind == "video" else sound(track)))

    pc.addTrack(mic)
    pc.addTransceiver("video", direction="recvonly")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(cafile))) if cafile else None
        async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
            await pc.setLocalDescription(await pc.createOffer())
            body: dict[str, Any] = {"sdp": pc.localDescription.sdp, "type": "offer", "prompt": prompt}
            if avatar:
                body["avatar"] = avatar
            async with http.post(base + "offer", json=body) as resp:
                reply = await _json(resp)
                if resp.status != 200:
                    raise StreamingError(f"the server refused the offer ({resp.status}): {reply.get('error', reply)}")
            result.session = str(reply["session"])
            sdp = str(reply["sdp"])
            if mode == "loopback":
                sdp, _ = ice.loopback_only(sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=str(reply["type"])))
            try:
                await asyncio.wait_for(first_frame.wait(), 30.0)
            except TimeoutError:
                raise StreamingError(f"no video arrived within 30 s (connection: {pc.connectionState})") from None
            await asyncio.wait_for(mic.finished.wait(), mic.duration_s + 60.0)
            await asyncio.sleep(tail_s)
            result.sent_s = mic.sent / mic.rate
            with contextlib.suppress(aiohttp.ClientError):
                async with http.delete(base + f"sessions/{result.session}"):
                    pass
    finally:
        await pc.close()
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        summary = await asyncio.get_running_loop().run_in_executor(None, _close_writer, writer)
    if summary is None:
        raise StreamingError("no video was received: nothing recorded")
    result.mp4 = summary
    return result


async def _received(track: Any) -> AsyncIterator[Any]:
    """The frames a received track delivers, until it ends."""
    from aiortc.mediastreams import MediaStreamError

    while True:
        try:
            yield await track.recv()
        except MediaStreamError:
            return


def _close_writer(writer: Mp4Writer) -> Mp4Summary | None:
    try:
        return writer.close()
    except StreamingError as exc:
        log.warning("%s", exc)
        return None


async def _json(resp: Any) -> dict[str, Any]:
    try:
        data = await resp.json(content_type=None)
    except ValueError:
        return {"error": (await resp.text())[:200]}
    return data if isinstance(data, dict) else {"error": str(data)[:200]}
