"""`posetalk serve`: the aiohttp server (WebRTC signaling, WebSocket control and PCM, portraits,
/metrics, /healthz, the browser page), over http:// or, with a certificate, https:// (streaming.tls:
browsers give the page the microphone only on https:// or on localhost).

Endpoints (every one needs the token when the server has one; see ``ServerConfig``):

  GET  /                       the browser client (clients/web)
  GET  /overlay?session=KEY    the overlay page for OBS's Browser Source (clients/web/overlay.html):
                               watches a session (without ``session``: the newest one, and the next
                               when it ends) on a transparent background
  GET  /static/{file}          the pages' scripts and style
  GET  /healthz                {"status": "ok", "sessions": n, "max_sessions": m}
  GET  /metrics                Prometheus text
  GET  /avatars                {"avatars": [ids], "default": "default"}
  POST /avatars                body: the image (raw bytes, or multipart field "image") -> 201 {"id"}
  GET  /avatars/{id}.png       the prepared portrait
  POST /offer                  {"sdp", "type": "offer", "avatar"?, "prompt"?, "alpha"?} -> {"sdp", "type":
                               "answer", "session": key}: the offer's audio track is the microphone;
                               the answer sends the avatar's video and the delayed audio
  POST /watch                  {"sdp", "type": "offer", "session"?} -> {"sdp", "type": "answer",
                               "session": key, "alpha": bool}: one more receiver of a running
                               session's video and audio (the newest session when none is named; 404
                               when there is none); an alpha session's pictures come packed, colour
                               left and matte right (tracks.pack_matte)
  GET  /ws?session=KEY         WebSocket controlling a WebRTC session
  GET  /ws?avatar=ID&rate=16000&video=jpeg&audio=1|48000&motion=1&alpha=0|1&prompt=...
                               WebSocket session for integrations without WebRTC: binary messages in
                               are int16 LE mono PCM at ``rate``; out, per frame, a JSON "frame"
                               message and optional binary messages (peers.VIDEO_TAG + JPEG,
                               peers.AUDIO_TAG + PCM: 16 kHz, or the input's full band at 48 kHz;
                               with alpha=1 the JPEGs are packed as on /watch)

Sessions opened with alpha (``"alpha": true``, ``alpha=1``, or every session when the server runs
with ``ServerConfig.alpha``: ``posetalk serve --alpha``) render the person on a transparent
background; their ordinary video shows it over the portrait's own background, as any session's.
  DELETE /sessions/{key}       end a session now (POST /sessions/{key}/close for sendBeacon)

Control messages (JSON text, both kinds of WebSocket): {"type": "prompt", "text"}, {"type":
"interrupt"}, {"type": "flush"}, {"type": "text", "text"} and {"type": "words", "words": [{"word",
"start", "end"}], "in_utterance"?: bool} (the words of the audio sent next, or with in_utterance
of the utterance being sent since the last flush: Session.push_text / push_words), {"type":
"stats"}, {"type": "ping"}. The server also sends
{"type": "stats", ...} every ``stats_interval`` seconds and {"type": "error", "error"} for a bad
message. HTTP errors are JSON {"error": "..."}: 400 malformed JSON/SDP/parameters, 401 token,
403 a loopback-only server addressed by another name, 404 unknown avatar or session, 413 upload
too large, 422 a portrait without a usable face, 503 session limit.

A WebRTC peer is released when its connection fails or closes, when it has not connected within
``connect_timeout_s``, and when its microphone has sent nothing for ``idle_timeout_s`` after its
first packet (a vanished browser; counted as sessions_closed_idle in /metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web
from aiortc import RTCPeerConnection, RTCSessionDescription
from posetalk.engine import Engine, EngineConfig, Output
from posetalk.engine.audio_input import check_rate
from posetalk.engine.errors import SessionLimitError
from posetalk.models.errors import AudioInputError, FaceTooSmallError, ImageTooLargeError, NoFaceError, NotAnImageError
from posetalk.streaming import ice, metrics, tls
from posetalk.streaming.avatars import DEFAULT, AvatarStore
from posetalk.streaming.checks import (
    ServerConfig,
    error_response,
    flag,
    int_param,
    json_body,
    offer_kinds,
    supplied_token,
)
from posetalk.streaming.errors import SignalingError, UnknownAvatarError
from posetalk.streaming.peers import FrameOptions, FrameStream, Peer, check_prompt
from posetalk.streaming.tracks import (
    MicrophoneIdleError,
    SessionAudioTrack,
    SessionMedia,
    SessionVideoTrack,
    media_stats,
    pump_microphone,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = {
    "app.js": "text/javascript",
    "style.css": "text/css",
    "index.html": "text/html",
    "net.js": "text/javascript",
    "overlay.js": "text/javascript",
    "overlay.html": "text/html",
}
MAX_OFFER_BYTES = 256 * 1024


class Server:
    """The app, its engine, its sessions. ``async with Server(config) as server`` (or ``running_server``)."""

    def __init__(self, config: ServerConfig, engine: Engine | None = None,
                 engine_config: EngineConfig | None = None) -> None:  # fmt: skip
        self.config = config
        self._own_engine = engine is None
        self.engine = engine or Engine(engine_config or EngineConfig(max_sessions=config.max_sessions))
        self.avatars = AvatarStore(config.size, config.limits, config.max_avatars)
        self.peers: dict[str, Peer] = {}
        self.counters: Counter[str] = Counter()
        self.media_totals: Counter[str] = Counter()
        # Observers of every session's frames (recording, tests): called with (session key, frame).
        self.taps: list[Callable[[str, Output], None]] = []
        self.app = self._make_app()
        self._runner: web.AppRunner | None = None
        self.port = config.port
        self.tls: tls.Tls | None = None  # set by start() when the config asks for https://

    @property
    def url(self) -> str:
        return self._address("")

    @property
    def overlay_url(self) -> str:
        """The overlay page (OBS's Browser Source): the newest session, on a transparent background."""
        return self._address("overlay")

    def _address(self, path: str) -> str:
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        host = f"[{host}]" if ":" in host else host
        query = f"?token={self.config.token}" if self.config.token else ""
        scheme = "https" if self.config.uses_tls else "http"
        return f"{scheme}://{host}:{self.port}/{path}{query}"

    async def start(self) -> None:
        c = self.config
        c.check()
        # Before the engine starts, so that a certificate that cannot be made fails with nothing to
        # undo; a key is made or read from disk: off the event loop.
        self.tls = await asyncio.get_running_loop().run_in_executor(
            None, tls.setup, c.host, c.cert, c.key, c.self_signed
        )
        if self.tls is not None:
            log.info("serving https:// with %s (SHA-256 %s)", self.tls.cert, self.tls.fingerprint)
        ice.set_mode(c.ice)
        if self._own_engine:
            await self.engine.start()
        if c.warm_aligner:
            self.engine.aligner.warm()
        await self.avatars.add_default(self.config.image)
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        context = self.tls.context if self.tls is not None else None
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=context)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])

    async def close(self) -> None:
        for peer in list(self.peers.values()):
            await peer.close("server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._own_engine:
            await self.engine.close()
        self.avatars.close()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the app ---------------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.limits.max_bytes, middlewares=[self._errors, self._guard])
        r = app.router
        r.add_get("/", self._index)
        r.add_get("/overlay", self._overlay)
        r.add_get("/static/{name}", self._static)
        r.add_get("/healthz", self._healthz)
        r.add_get("/metrics", self._metrics)
        r.add_get("/avatars", self._list_avatars)
        r.add_post("/avatars", self._upload)
        r.add_get("/avatars/{id}.png", self._avatar_image)
        r.add_post("/offer", self._offer)
        r.add_post("/watch", self._watch)
        r.add_get("/ws", self._websocket)
        r.add_delete("/sessions/{key}", self._end_session)
        r.add_post("/sessions/{key}/close", self._end_session)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every error as JSON {"error": ...} with its status; the project's errors mapped."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            self.counters[f"http_{exc.status}"] += 1
            text = exc.text or exc.reason
            if exc.status == 413:
                text = f"the request is too large: the limit is {self.config.limits.max_bytes} bytes"
            return error_response(exc.status, text)
        except (SignalingError, AudioInputError, NotAnImageError) as exc:
            self.counters["http_400"] += 1
            return error_response(400, str(exc))
        except UnknownAvatarError as exc:
            self.counters["http_404"] += 1
            return error_response(404, str(exc))
        except ImageTooLargeError as exc:
            self.counters["http_413"] += 1
            return error_response(413, str(exc))
        except (NoFaceError, FaceTooSmallError) as exc:
            self.counters["http_422"] += 1
            return error_response(422, f"cannot animate this portrait: {exc}")
        except SessionLimitError as exc:
            self.counters["sessions_refused"] += 1
            return error_response(503, f"{exc}; try again when one ends")

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The token on every endpoint; without one, only loopback names (DNS rebinding)."""
        token = self.config.token
        if token:
            given = supplied_token(request)
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                self.counters["http_401"] += 1
                resp = error_response(401, "missing or wrong token: pass ?token=... or 'Authorization: Bearer ...'")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return resp
        elif not ice.is_loopback(request.url.host or ""):
            self.counters["http_403"] += 1
            return error_response(403, "this server answers only requests addressed to 127.0.0.1 or localhost")
        return await handler(request)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return await self._static_file("index.html")

    async def _overlay(self, request: web.Request) -> web.StreamResponse:
        return await self._static_file("overlay.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        return await self._static_file(request.match_info["name"])

    async def _static_file(self, name: str) -> web.StreamResponse:
        if name not in STATIC:
            raise web.HTTPNotFound(text=f"no such file: {name}")
        data = resources.files("posetalk.clients").joinpath("web", name).read_bytes()
        return web.Response(body=data, content_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok", "sessions": len(self.peers), "max_sessions": self.config.max_sessions,
                                  "avatars": len(self.avatars)})  # fmt: skip

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        by_transport = Counter(p.transport for p in self.peers.values())
        media = Counter(self.media_totals)
        for p in self.peers.values():
            media.update(self._media_counts(p))
        text = metrics.render(
            self.engine.snapshot(), max_sessions=self.config.max_sessions,
            sessions={"webrtc": by_transport["webrtc"], "websocket": by_transport["websocket"]},
            counters=self.counters, media=media, avatars=len(self.avatars),
        )  # fmt: skip
        return web.Response(text=text, headers={"Content-Type": metrics.CONTENT_TYPE})

    @staticmethod
    def _media_counts(p: Peer) -> dict[str, int]:
        m = p.media
        return {"video_frames_sent": m.video_sent, "video_frames_repeated": m.video.repeated,
                "video_frames_skipped": m.video_skipped, "audio_packets_sent": m.audio_sent,
                "audio_underrun_samples": m.audio.underrun, "frames_published": m.frames_in}  # fmt: skip

    async def _list_avatars(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"avatars": self.avatars.ids(), "default": DEFAULT, "size": self.config.size})

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            item = form.get("image")
            if not isinstance(item, web.FileField):
                raise SignalingError('a multipart upload needs the image in a file field named "image"')
            data = item.file.read()
        else:
            data = await request.read()
        if not data:
            raise SignalingError("the upload is empty: send the image as the request body")
        avatar_id = await self.avatars.add(data)
        self.counters["avatars_uploaded"] += 1
        return web.json_response({"id": avatar_id, "size": self.config.size}, status=201)

    async def _avatar_image(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.avatars.thumbnail(request.match_info["id"]), content_type="image/png")

    async def _end_session(self, request: web.Request) -> web.StreamResponse:
        peer = self.peers.get(request.match_info["key"])
        if peer is None:
            raise web.HTTPNotFound(text="no such session")
        await peer.close("ended by the client")
        return web.json_response({"closed": True})

    # -- sessions --------------------------------------------------------------------------------

    async def _open(self, transport: str, avatar_id: str, prompt: str, alpha: bool) -> Peer:
        avatar = self.avatars.get(avatar_id)
        if len(self.peers) >= self.config.max_sessions:  # the engine's own limit backs this one up
            raise SessionLimitError(f"session limit reached: {len(self.peers)} sessions are running")
        alpha = alpha or self.config.alpha
        session = await self.engine.open_session(avatar, prompt=prompt, alpha=alpha)
        media = SessionMedia(session, self.engine.clock, margin=self.config.margin_ms / 1000.0)
        peer = Peer(transport, session, media, self._closed, alpha=alpha)

        def tap(out: Output) -> None:
            for observer in list(self.taps):
                observer(peer.key, out)

        media.sinks.append(tap)
        media.start()
        self.peers[peer.key] = peer
        self.counters[f"sessions_opened_{transport}"] += 1
        return peer

    async def _closed(self, peer: Peer, reason: str) -> None:
        self.peers.pop(peer.key, None)
        self.media_totals.update(self._media_counts(peer))
        self.counters["sessions_closed"] += 1

    def stats(self, peer: Peer) -> dict[str, Any]:
        snap = self.engine.snapshot()
        latency = snap.stages.get("latency")
        render = snap.stages.get("render")
        margin = self.config.margin_ms
        return {
            "type": "stats", "session": peer.key, "transport": peer.transport, "fps": 25,
            **media_stats(peer.media),
            "pipeline_ms": round(snap.latency_ms + margin, 1),
            "latency_ms": round((latency.p95_ms if latency else snap.latency_ms) + margin, 1),
            "render_p95_ms": round(render.p95_ms, 2) if render else None,
            "sessions": len(self.peers), "prompt": peer.session.prompt,
        }  # fmt: skip

    async def _offer_body(self, request: web.Request) -> tuple[dict[str, Any], str]:
        """The JSON body of an SDP offer and its SDP, checked (as far as loopback-only ICE)."""
        if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_OFFER_BYTES, request.content_length)
        body = await json_body(request)
        sdp, kind = body.get("sdp"), body.get("type")
        if not isinstance(sdp, str) or kind != "offer":
            raise SignalingError('expected {"sdp": "<SDP offer>", "type": "offer"}')
        if "video" not in offer_kinds(sdp):
            raise SignalingError("the offer must receive video: add a video transceiver (direction recvonly)")
        if self.config.ice == "loopback":
            sdp, kept = ice.loopback_only(sdp)
            if kept == 0:
                raise SignalingError("the offer has no loopback ICE candidate; this server only talks to 127.0.0.1")
        return body, sdp

    @staticmethod
    async def _answer(pc: RTCPeerConnection, sdp: str, media: SessionMedia, *, matte: bool) -> dict[str, Any]:
        """Answer ``sdp`` on ``pc`` with ``media``'s video and audio tracks."""
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for t in pc.getTransceivers():
                if t.kind == "video":
                    pc.addTrack(SessionVideoTrack(media, matte=matte))
                elif t.kind == "audio":
                    pc.addTrack(SessionAudioTrack(media))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # whatever aiortc raises on an offer it cannot use: the client's fault
            raise SignalingError(f"the SDP offer cannot be used: {exc}") from None
        local = pc.localDescription
        return {"sdp": local.sdp, "type": local.type}

    async def _offer(self, request: web.Request) -> web.StreamResponse:
        body, sdp = await self._offer_body(request)
        avatar_id = body.get("avatar") or DEFAULT
        if not isinstance(avatar_id, str):
            raise SignalingError("avatar must be a string id")
        prompt = check_prompt(body.get("prompt", ""))
        alpha = body.get("alpha", False)
        if not isinstance(alpha, bool):
            raise SignalingError("alpha must be true or false")
        self.avatars.get(avatar_id)  # 404 before a session is opened
        peer = await self._open("webrtc", avatar_id, prompt, alpha)
        pc = RTCPeerConnection()
        peer.pc = pc

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                peer.spawn(self._listen(peer, track), "microphone")

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await peer.close(f"peer connection {pc.connectionState}")

        try:
            answer = await self._answer(pc, sdp, peer.media, matte=False)
        except SignalingError:
            await peer.close("malformed offer")
            raise
        peer.spawn(self._connect_deadline(peer), "connect-deadline")
        return web.json_response({**answer, "session": peer.key,
                                  "latency_ms": self.engine.latency_ms + self.config.margin_ms})  # fmt: skip

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        body, sdp = await self._offer_body(request)
        key = body.get("session")
        if key is not None and not isinstance(key, str):
            raise SignalingError("session must be a session key (a string)")
        peer = self.peers.get(key) if key else next(reversed(self.peers.values()), None)  # the newest opened
        if peer is None or peer.closed:
            raise web.HTTPNotFound(text="no such session (it may have ended)" if key else "no session is running")
        media = SessionMedia(peer.session, self.engine.clock, margin=self.config.margin_ms / 1000.0)
        pc = RTCPeerConnection()
        peer.viewers[pc] = media
        peer.media.sinks.append(media)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await peer.drop_viewer(pc)

        try:
            answer = await self._answer(pc, sdp, media, matte=True)
        except SignalingError:
            await peer.drop_viewer(pc)
            raise
        self.counters["viewers_opened"] += 1
        return web.json_response({**answer, "session": peer.key, "alpha": peer.alpha})

    async def _listen(self, peer: Peer, track: Any) -> None:
        """The peer's microphone into its session; a microphone gone quiet means the peer vanished
        (see ``ServerConfig.idle_timeout_s``): release it as a disconnect would."""
        try:
            await pump_microphone(track, peer.session, idle_timeout_s=self.config.idle_timeout_s)
        except MicrophoneIdleError as exc:
            if not peer.closed:
                self.counters["sessions_closed_idle"] += 1
                await peer.close(f"{exc}: the peer is taken to have gone")

    async def _connect_deadline(self, peer: Peer) -> None:
        """Release a peer that never connects (it went away between offer and ICE)."""
        await asyncio.sleep(self.config.connect_timeout_s)
        if peer.pc is not None and peer.pc.connectionState != "connected":
            await peer.close(f"not connected within {self.config.connect_timeout_s:g} s")

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        stream: FrameStream | None = None
        options: FrameOptions | None = None
        rate = 16000
        if "session" in q:
            found = self.peers.get(q["session"])
            if found is None:
                raise web.HTTPNotFound(text="no such session (it may have ended)")
            peer = found
        else:
            rate = check_rate(int_param(q, "rate", 16000))
            audio = {"0": 0, "false": 0, "1": 16000, "true": 16000, "16000": 16000, "48000": 48000}.get(
                q.get("audio", "0"), -1)  # fmt: skip
            if audio < 0:
                raise SignalingError("audio must be 0, 1 (16 kHz, the models' copy) or 48000 (full band)")
            options = FrameOptions(motion=flag(q, "motion", True), video=q.get("video", "none") == "jpeg", audio=audio)
            if q.get("video", "none") not in ("none", "jpeg"):
                raise SignalingError("video must be none or jpeg")
            peer = await self._open("websocket", q.get("avatar") or DEFAULT, check_prompt(q.get("prompt", "")),
                                    flag(q, "alpha", False))  # fmt: skip
        ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=2**20)
        try:
            await ws.prepare(request)
        except Exception:
            if options is not None:
                await peer.close("WebSocket handshake failed")
            raise
        peer.sockets.add(ws)
        if options is not None:
            stream = FrameStream(ws, options)
            peer.media.sinks.append(stream)
            peer.spawn(stream.run(), "ws-frames")
        ticker = asyncio.create_task(self._stats_ticker(peer, ws), name=f"posetalk-stats-{peer.session.id}")
        try:
            await ws.send_json({"type": "ready", "session": peer.key, "fps": 25, "sample_rate": 16000,
                                "latency_ms": self.engine.latency_ms + self.config.margin_ms})  # fmt: skip
            async for msg in ws:
                await self._ws_message(peer, ws, msg, rate)
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            peer.sockets.discard(ws)
            if stream is not None:
                await peer.close("WebSocket closed")
        return ws

    async def _ws_message(self, peer: Peer, ws: web.WebSocketResponse, msg: Any, rate: int) -> None:
        try:
            if msg.type == WSMsgType.TEXT:
                reply = peer.control(msg.data)
                if reply is not None and reply["type"] == "stats":
                    reply = self.stats(peer)
                if reply is not None:
                    await ws.send_json(reply)
            elif msg.type == WSMsgType.BINARY:
                peer.push_pcm(msg.data, rate)
        except SignalingError as exc:
            self.counters["ws_bad_messages"] += 1
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json({"type": "error", "error": str(exc)})

    async def _stats_ticker(self, peer: Peer, ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not ws.closed and not peer.closed:
                await asyncio.sleep(self.config.stats_interval_s)
                await ws.send_json(self.stats(peer))


@contextlib.asynccontextmanager
async def running_server(config: ServerConfig, engine: Engine | None = None,
                         engine_config: EngineConfig | None = None) -> AsyncIterator[Server]:  # fmt: skip
    server = Server(config, engine, engine_config)
    try:
        await server.start()
        yield server
    finally:
        await server.close()


async def serve(config: ServerConfig, engine_config: EngineConfig | None = None,
                on_ready: Callable[[Server], None] | None = None) -> None:  # fmt: skip
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with running_server(config, engine_config=engine_config) as server:
        if on_ready is not None:
            on_ready(server)
        await stop.wait()


__all__ = ["Server", "ServerConfig", "running_server", "serve"]
