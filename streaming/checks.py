"""The server's settings and the checks on what clients send: each bad value becomes a
``SignalingError`` (400) or ``ServerConfigError`` with a message that says what was wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiortc.sdp import SessionDescription
from posetalk.streaming import ice, tls
from posetalk.streaming.avatars import UploadLimits
from posetalk.streaming.errors import ServerConfigError, SignalingError


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port (``Server.url`` says which)
    token: str | None = None  # required on every endpoint when set; mandatory off loopback
    size: int = 512  # video side in pixels
    image: str | None = None  # the default portrait (None: the bundled astronaut)
    max_sessions: int = 4
    limits: UploadLimits = field(default_factory=UploadLimits)
    max_avatars: int = 32
    ice: str = "host"  # streaming.ice modes: "host" or "loopback"
    margin_ms: float = 40.0  # send time after a frame's due time (slack for a late engine tick)
    connect_timeout_s: float = 20.0  # a WebRTC peer that has not connected by then is released
    # A connected WebRTC peer whose microphone has sent nothing for this long (after its first
    # packet) is released: a browser sends a packet every 20 ms, silence included, so a gap this
    # long means it vanished; ICE consent checks would notice only after ~30 s.
    idle_timeout_s: float = 10.0
    stats_interval_s: float = 1.0
    cert: str | None = None  # PEM certificate (chain): serve https:// (needs ``key``)
    key: str | None = None  # PEM private key of ``cert``
    self_signed: bool = False  # serve https:// with a self-signed certificate (streaming.tls)
    alpha: bool = False  # every session renders RGBA, for the overlay page (else only those that ask)
    # Start the engine's aligner process (known words) with the server, not with the first words a
    # session sends (~3 s: a voice agent's first reply would get audio-only lips).
    warm_aligner: bool = True

    @property
    def uses_tls(self) -> bool:
        return self.self_signed or self.cert is not None

    def check(self) -> None:
        """ServerConfigError for unsafe or impossible settings."""
        if not ice.is_loopback(self.host) and not self.token:
            raise ServerConfigError(
                f"refusing to serve on {self.host} without a token: anyone who can reach it could use it. "
                "Pass --token (or set POSETALK_TOKEN), or bind to 127.0.0.1"
            )
        if self.token is not None and len(self.token) < 8:
            raise ServerConfigError("the token must be at least 8 characters")
        if not 0 <= self.port <= 65535:
            raise ServerConfigError(f"port must be in 0..65535, got {self.port}")
        if self.ice not in ice.MODES:
            raise ServerConfigError(f"ice must be one of {', '.join(ice.MODES)}, got {self.ice!r}")
        if self.max_sessions < 1 or not 64 <= self.size <= 2048:
            raise ServerConfigError(f"invalid server settings: {self}")
        if not self.idle_timeout_s > 0 or not self.connect_timeout_s > 0:
            raise ServerConfigError("the connect and idle timeouts must be positive seconds")
        self._check_tls()

    def _check_tls(self) -> None:
        if (self.cert is None) != (self.key is None):
            given, missing = ("--cert", "--key") if self.key is None else ("--key", "--cert")
            raise ServerConfigError(f"{given} needs {missing}: https:// takes a PEM certificate and its key")
        if self.self_signed and self.cert is not None:
            raise ServerConfigError("--self-signed makes its own certificate: give it or --cert/--key, not both")
        if self.cert is not None and self.key is not None:
            tls.context(self.cert, self.key)  # a file that is missing, unreadable or not a pair fails here


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def supplied_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("X-Posetalk-Token") or request.query.get("token")


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SignalingError(f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SignalingError("the body must be a JSON object")
    return body


def offer_kinds(sdp: str) -> list[str]:
    """The media kinds of a well-formed offer (SignalingError otherwise)."""
    if not sdp.lstrip().startswith("v=0"):
        raise SignalingError("malformed SDP offer: it must start with v=0")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser fails on bad input with asserts, ValueError, IndexError...
        if isinstance(exc, AssertionError):
            exc = ValueError("a line it could not parse")
        raise SignalingError(f"malformed SDP offer: {exc.__class__.__name__}: {exc}") from None
    if not parsed.media:
        raise SignalingError("malformed SDP offer: no media sections")
    return [m.kind for m in parsed.media]


def int_param(q: Any, name: str, default: int) -> int:
    try:
        return int(q.get(name, default))
    except ValueError:
        raise SignalingError(f"{name} must be an integer, got {q.get(name)!r}") from None


def flag(q: Any, name: str, default: bool) -> bool:
    value = q.get(name)
    if value is None:
        return default
    if value not in ("0", "1", "true", "false"):
        raise SignalingError(f"{name} must be 0 or 1, got {value!r}")
    return value in ("1", "true")
