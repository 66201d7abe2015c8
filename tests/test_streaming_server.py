"""The server's answers to every kind of bad input, its limits and its plain endpoints: a token
everywhere (and none at all refused off loopback), 400 for malformed JSON/SDP/parameters, 404 for
unknown avatars and sessions, 413 for uploads past the limits, 422 for a portrait without a face,
503 at the session limit; the WebSocket PCM session and its control messages; /metrics; /healthz;
the page; a peer that never connects is released, and so is one whose microphone stops (it vanished)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from posetalk.models.face.params import BLENDSHAPE_NAMES
from posetalk.streaming.avatars import UploadLimits
from posetalk.streaming.errors import ServerConfigError
from posetalk.streaming.inputs import FileAudioTrack
from posetalk.streaming.peers import AUDIO_TAG, VIDEO_TAG
from posetalk.streaming.server import ServerConfig
from posetalk.tests.engine_fixtures import buzz
from posetalk.tests.streaming_fixtures import ServerThread, pcm16, png_bytes, server_thread

TOKEN = "test-token-5f2a"
IDLE_S = 1.5


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    limits = UploadLimits(max_bytes=300_000, max_side=1024)
    # The engine allows 8 sessions; a 1.5 s idle timeout lets a vanished peer be seen in the test's time.
    with server_thread(max_sessions=2, limits=limits, connect_timeout_s=1.0, idle_timeout_s=IDLE_S) as t:
        yield t


@pytest.fixture(scope="module")
def guarded() -> Iterator[ServerThread]:
    with server_thread(token=TOKEN) as t:
        yield t


def arun(coro: Any) -> Any:
    return asyncio.run(coro)


async def fetch(method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(method, url, **kw) as resp:
        body = await resp.read()
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, body


def jpeg_bytes(image: np.ndarray, quality: int = 85) -> bytes:
    return cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


async def webrtc_offer(video: bool = True) -> tuple[Any, str]:
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    if video:
        pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def sessions(t: ServerThread) -> int:
    return int(arun(fetch("GET", t.base + "healthz"))[1]["sessions"])


# -- safety ------------------------------------------------------------------------------------


def test_off_loopback_without_a_token_the_server_refuses_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    for host in ("0.0.0.0", "192.0.2.2", "example.org", "::"):
        with pytest.raises(ServerConfigError, match="without a token"):
            ServerConfig(host=host).check()
    ServerConfig(host="0.0.0.0", token=TOKEN).check()  # with a token it may
    ServerConfig(host="localhost").check()
    with pytest.raises(ServerConfigError, match="at least 8"):
        ServerConfig(token="short").check()
    from posetalk.clients.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "refusing to serve on 0.0.0.0 without a token" in capsys.readouterr().err


ENDPOINTS = [("GET", ""), ("GET", "static/app.js"), ("GET", "healthz"), ("GET", "metrics"), ("GET", "avatars"),
             ("POST", "avatars"), ("GET", "avatars/default.png"), ("POST", "offer"), ("GET", "ws"),
             ("DELETE", "sessions/abc")]  # fmt: skip


def test_every_endpoint_needs_the_token(guarded: ServerThread) -> None:
    base = guarded.base

    async def run() -> None:
        for method, path in ENDPOINTS:
            for headers in ({}, {"Authorization": "Bearer wrong-token-1234"}, {"X-Posetalk-Token": "nope"}):
                status, body = await fetch(method, base + path, headers=headers)
                assert status == 401, (method, path, headers)
                assert "token" in body["error"]
        for method, path in ENDPOINTS[:5] + ENDPOINTS[6:7]:  # the right token, either way
            assert (await fetch(method, base + path, headers={"Authorization": f"Bearer {TOKEN}"}))[0] == 200
            assert (await fetch(method, base + path, params={"token": TOKEN}))[0] == 200

    arun(run())
    assert guarded.url.endswith(f"?token={TOKEN}")


def test_without_a_token_only_loopback_names_are_answered(srv: ServerThread) -> None:
    status, body = arun(fetch("GET", srv.base + "healthz", headers={"Host": "evil.example:80"}))
    assert status == 403 and "127.0.0.1" in body["error"]


# -- offers ------------------------------------------------------------------------------------


def test_malformed_offers_get_400_with_a_reason(srv: ServerThread) -> None:
    async def run() -> list[tuple[int, str]]:
        pc, good = await webrtc_offer()
        pc_audio, audio_only = await webrtc_offer(video=False)
        await pc.close()
        await pc_audio.close()
        url = srv.base + "offer"
        cases: list[dict[str, Any]] = [
            {"data": b"{not json"},
            {"data": b"[1, 2]"},
            {"json": {"type": "offer"}},
            {"json": {"sdp": good, "type": "answer"}},
            {"json": {"sdp": "hello", "type": "offer"}},
            {"json": {"sdp": "v=0\r\nm=video banana\r\n", "type": "offer"}},
            {"json": {"sdp": audio_only, "type": "offer"}},
            {"json": {"sdp": good, "type": "offer", "prompt": 7}},
            {"json": {"sdp": good, "type": "offer", "prompt": "x" * 600}},
            {"json": {"sdp": good, "type": "offer", "avatar": ["a"]}},
            {"json": {"sdp": good, "type": "offer", "alpha": "yes"}},
        ]  # fmt: skip
        return [((r := await fetch("POST", url, **kw))[0], r[1]["error"]) for kw in cases]

    answers = arun(run())
    assert [s for s, _ in answers] == [400] * 11
    reasons = " | ".join(e for _, e in answers)
    for words in (
        "invalid JSON",
        "JSON object",
        '"type": "offer"',
        "v=0",
        "must receive video",
        "prompt is 600",
        "alpha must be true or false",
    ):
        assert words in reasons
    assert sessions(srv) == 0  # nothing was left open


def test_unknown_avatars_and_sessions_are_404(srv: ServerThread) -> None:
    async def run() -> list[tuple[int, Any]]:
        pc, sdp = await webrtc_offer()
        await pc.close()
        return [
            await fetch("POST", srv.base + "offer", json={"sdp": sdp, "type": "offer", "avatar": "nobody"}),
            await fetch("GET", srv.base + "avatars/nobody.png"),
            await fetch("GET", srv.base + "ws", params={"avatar": "nobody"}),
            await fetch("GET", srv.base + "ws", params={"session": "nosuchsession"}),
            await fetch("DELETE", srv.base + "sessions/nosuchsession"),
            await fetch("POST", srv.base + "watch", json={"sdp": sdp, "type": "offer", "session": "nosuchsession"}),
            await fetch("POST", srv.base + "watch", json={"sdp": sdp, "type": "offer"}),  # nothing running
        ]

    answers = arun(run())
    assert [s for s, _ in answers] == [404] * 7
    assert "no session is running" in answers[-1][1]["error"]
    assert "no avatar 'nobody'" in answers[0][1]["error"]
    assert sessions(srv) == 0


def test_a_peer_that_never_connects_is_released(srv: ServerThread) -> None:
    async def run() -> str:
        pc, sdp = await webrtc_offer()  # offered, answered, but the answer is never applied
        status, body = await fetch("POST", srv.base + "offer", json={"sdp": sdp, "type": "offer"})
        await pc.close()
        assert status == 200 and body["type"] == "answer" and "a=candidate" in body["sdp"]
        assert all("127.0.0.1" in line for line in body["sdp"].splitlines() if line.startswith("a=candidate"))
        return str(body["session"])

    key = arun(run())
    assert sessions(srv) == 1
    deadline = time.monotonic() + 10
    while sessions(srv) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sessions(srv) == 0  # connect timeout 1 s
    assert srv.server is not None and key not in srv.server.peers


class VanishingMicrophone(FileAudioTrack):
    """Sends speech until ``vanish()``, then nothing more and no goodbye: what the server sees of
    a browser whose network went away (its peer connection stays open on this side)."""

    def __init__(self) -> None:
        super().__init__(buzz(60.0), lead_s=0.0)
        self.gone = False
        self.last_sent = 0.0  # time.monotonic() of the last frame handed to the sender
        self._never = asyncio.Event()

    def vanish(self) -> None:
        self.gone = True

    async def recv(self) -> Any:
        if self.gone:
            await self._never.wait()
        frame = await super().recv()
        self.last_sent = time.monotonic()
        return frame


def test_a_peer_whose_microphone_stops_is_released_after_the_idle_timeout(srv: ServerThread) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    assert srv.server is not None
    server = srv.server
    idle_before = server.counters["sessions_closed_idle"]
    heard: dict[str, int] = {}
    server.taps.append(lambda key, out: heard.update({key: heard.get(key, 0) + 1}) if abs(out.audio).max() > 0.01
                       else None)  # fmt: skip

    async def run() -> tuple[str, float, str]:
        pc = RTCPeerConnection()  # this side never hangs up (until the end of the test)
        mic = VanishingMicrophone()
        pc.addTrack(mic)
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        status, body = await fetch("POST", srv.base + "offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
        assert status == 200, body
        key = str(body["session"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))
        try:
            deadline = time.monotonic() + 30
            while heard.get(key, 0) < 5:  # the server hears the speech: the microphone is pumped
                assert time.monotonic() < deadline, "the server never heard the microphone"
                await asyncio.sleep(0.02)
            peer = server.peers[key]
            mic.vanish()
            await asyncio.sleep(0.1)  # a frame the sender had already asked for goes out
            while key in server.peers and time.monotonic() - mic.last_sent < 20:
                await asyncio.sleep(0.02)
            released_s = time.monotonic() - mic.last_sent
        finally:
            await pc.close()
        return key, released_s, peer.close_reason

    try:
        key, released_s, reason = arun(run())
    finally:
        server.taps.clear()
    print({"released_after_last_packet_s": round(released_s, 2)})
    assert key not in server.peers and sessions(srv) == 0
    assert IDLE_S - 0.1 <= released_s < IDLE_S + 2.0  # ICE consent would have taken ~30 s
    assert server.counters["sessions_closed_idle"] == idle_before + 1
    status, text = arun(fetch("GET", srv.base + "metrics"))
    assert f'posetalk_server_events_total{{event="sessions_closed_idle"}} {idle_before + 1}' in text.decode()
    assert reason.startswith(f"no microphone audio for {IDLE_S:g} s"), reason


# -- portraits ---------------------------------------------------------------------------------


def test_uploads_prepare_once_and_refuse_what_they_cannot_use(srv: ServerThread, astronaut: np.ndarray) -> None:
    face = jpeg_bytes(astronaut)
    blank = np.tile(np.linspace(40, 220, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    tall = np.zeros((1100, 20, 3), np.uint8)  # tiny file, too many rows

    async def run() -> list[tuple[int, Any]]:
        url = srv.base + "avatars"
        jpeg = {"Content-Type": "image/jpeg"}
        out = [await fetch("POST", url, data=face, headers=jpeg), await fetch("POST", url, data=face, headers=jpeg)]
        form = aiohttp.FormData()
        form.add_field("image", face, filename="me.jpg", content_type="image/jpeg")
        out.append(await fetch("POST", url, data=form))
        out += [
            await fetch("POST", url, data=png_bytes(blank)),
            await fetch("POST", url, data=b"this is not an image"),
            await fetch("POST", url, data=b""),
            await fetch("POST", url, data=np.random.default_rng(0).bytes(400_000)),
            await fetch("POST", url, data=png_bytes(tall)),
        ]
        out.append(await fetch("GET", srv.base + f"avatars/{out[0][1]['id']}.png"))
        out.append(await fetch("GET", srv.base + "avatars"))
        return out

    (s1, a), (s2, b), (s3, c), (s_blank, blank_r), (s_junk, junk), (s_empty, _), (s_big, big), (s_tall, tall_r), \
        (s_png, png), (s_list, listing) = arun(run())  # fmt: skip
    assert (s1, s2, s3) == (201, 201, 201) and a["id"] == b["id"] == c["id"]  # prepared once
    assert s_blank == 422 and "no face" in blank_r["error"]
    assert s_junk == 400 and "not a readable image" in junk["error"]
    assert s_empty == 400
    assert s_big == 413 and "300000 bytes" in big["error"]
    assert s_tall == 413 and "20×1100 px" in tall_r["error"] and "1024 px" in tall_r["error"]
    assert s_png == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert a["id"] in listing["avatars"] and "default" in listing["avatars"]


# -- sessions over WebSocket -------------------------------------------------------------------


def test_the_session_limit_refuses_clearly(srv: ServerThread) -> None:
    async def run() -> tuple[int, Any, int, Any, int]:
        async with aiohttp.ClientSession() as http:
            a = await http.ws_connect(srv.base + "ws")
            b = await http.ws_connect(srv.base + "ws")
            assert (await a.receive_json())["type"] == "ready" and (await b.receive_json())["type"] == "ready"
            status, refused = await fetch("GET", srv.base + "ws")
            pc, sdp = await webrtc_offer()
            await pc.close()
            s_offer, refused_offer = await fetch("POST", srv.base + "offer", json={"sdp": sdp, "type": "offer"})
            await a.close()
            for _ in range(50):  # the freed place can be taken again (once the close went through)
                try:
                    c = await http.ws_connect(srv.base + "ws")
                    break
                except aiohttp.WSServerHandshakeError:
                    await asyncio.sleep(0.05)
            again = (await c.receive_json())["type"] == "ready"
            await b.close()
            await c.close()
            return status, refused, s_offer, refused_offer, int(again)

    status, refused, s_offer, refused_offer, again = arun(run())
    assert status == 503 and s_offer == 503
    assert refused["error"] == "session limit reached: 2 sessions are running; try again when one ends"
    assert refused_offer["error"] == refused["error"] and again
    time.sleep(0.3)
    assert sessions(srv) == 0


def test_a_websocket_session_streams_motion_pictures_and_sound(srv: ServerThread) -> None:
    speech = buzz(1.5)

    async def run() -> dict[str, Any]:
        got: dict[str, Any] = {"frames": [], "jpeg": [], "pcm": [], "errors": [], "replies": []}
        params = {"rate": "16000", "video": "jpeg", "audio": "1", "prompt": "calm"}
        async with aiohttp.ClientSession() as http, http.ws_connect(srv.base + "ws", params=params) as ws:
            ready = await ws.receive_json()
            assert ready["type"] == "ready" and ready["fps"] == 25 and ready["latency_ms"] > 0
            got["session"] = ready["session"]
            for i in range(0, len(speech), 320):
                await ws.send_bytes(pcm16(speech[i : i + 320]))
            await ws.send_str(json.dumps({"type": "flush"}))
            await ws.send_str(json.dumps({"type": "prompt", "text": "nods"}))
            await ws.send_str(json.dumps({"type": "stats"}))
            await ws.send_str("{broken")
            await ws.send_str(json.dumps({"type": "dance"}))
            await ws.send_str(json.dumps({"type": "prompt", "text": 5}))
            await ws.send_bytes(b"\x01\x02\x03")  # not whole int16 samples
            await ws.send_str(json.dumps({"type": "ping"}))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (len(got["frames"]) < 60 or len(got["replies"]) < 3):
                msg = await ws.receive(timeout=5)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    (got["jpeg"] if msg.data[:1] == VIDEO_TAG else got["pcm"]).append(msg.data)
                    continue
                data = json.loads(msg.data)
                key = {"frame": "frames", "error": "errors"}.get(data["type"], "replies")
                got[key].append(data)
            assert srv.server is not None and len(srv.server.peers) == 1
        return got

    got = arun(run())
    frames = got["frames"]
    assert [f["pts"] for f in frames] == [frames[0]["pts"] + 640 * i for i in range(len(frames))]
    assert set(frames[0]["expression"]) == set(BLENDSHAPE_NAMES) and len(frames[0]["pose"]) == 6
    assert any(f["speaking"] for f in frames) and max(f["expression"]["jawOpen"] for f in frames) > 0.05
    image = cv2.imdecode(np.frombuffer(got["jpeg"][0][1:], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (160, 160, 3)
    assert all(p[:1] == AUDIO_TAG and len(p) == 1 + 1280 for p in got["pcm"])
    kinds = [r["type"] for r in got["replies"]]
    assert {"prompt", "stats", "pong"} <= set(kinds)
    stats = next(r for r in got["replies"] if r["type"] == "stats")
    assert stats["transport"] == "websocket" and stats["latency_ms"] > 0 and "send_fps" in stats
    errors = " | ".join(e["error"] for e in got["errors"])
    assert "invalid JSON" in errors and "unknown message type 'dance'" in errors
    assert "prompt must be a string" in errors and "whole int16 samples" in errors
    assert any(f["head"] == "procedural:nodding" for f in frames)  # the prompt reached the head
    time.sleep(0.3)
    assert sessions(srv) == 0  # closing the socket ended the session


def test_bad_websocket_parameters_are_400(srv: ServerThread) -> None:
    async def run() -> list[int]:
        base = srv.base + "ws"
        bad = ({"rate": "fast"}, {"rate": "7"}, {"video": "gif"}, {"audio": "maybe"}, {"alpha": "2"})
        return [(await fetch("GET", base, params=p))[0] for p in bad]

    assert arun(run()) == [400] * 5


def test_an_alpha_session_sends_the_matte_beside_the_picture(srv: ServerThread) -> None:
    """alpha=1: each JPEG is the colour (left) and the person matte as grey (right): ~0 around the
    person, ~255 on the face."""

    async def run() -> list[bytes]:
        pictures: list[bytes] = []
        params = {"video": "jpeg", "motion": "0", "alpha": "1"}
        async with aiohttp.ClientSession() as http, http.ws_connect(srv.base + "ws", params=params) as ws:
            assert (await ws.receive_json())["type"] == "ready"
            await ws.send_bytes(pcm16(buzz(0.5)))
            while len(pictures) < 5:
                msg = await ws.receive(timeout=10)
                if msg.type == aiohttp.WSMsgType.BINARY and msg.data[:1] == VIDEO_TAG:
                    pictures.append(msg.data[1:])
        return pictures

    image = cv2.imdecode(np.frombuffer(arun(run())[-1], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert image.shape == (160, 320, 3)
    matte = image[:, 160:, 1].astype(float)
    assert matte[:12, :12].mean() < 10 and matte[:12, -12:].mean() < 10  # the top corners: background
    assert matte[60:100, 60:100].mean() > 245  # the face
    colour = image[:, :160]
    assert colour[60:100, 60:100].std() > 10  # a face there, not a flat fill


# -- plain endpoints ---------------------------------------------------------------------------


def test_metrics_healthz_and_the_page(srv: ServerThread) -> None:
    async def run() -> list[tuple[int, Any]]:
        return [await fetch("GET", srv.base + p) for p in ("metrics", "healthz", "", "static/app.js", "static/x.js")]

    (s_m, metrics), (s_h, health), (s_p, page), (s_js, js), (s_x, _) = arun(run())
    assert s_m == 200
    text = metrics.decode()
    for family in ("posetalk_sessions{transport=\"webrtc\"}", "posetalk_sessions_max 2",
                   "# TYPE posetalk_stage_seconds gauge", "posetalk_pipeline_latency_seconds 0.14",
                   "posetalk_server_events_total", "posetalk_avatars"):  # fmt: skip
        assert family in text
    assert s_h == 200 and health["status"] == "ok" and health["max_sessions"] == 2
    assert s_p == 200 and b"<video" in page and b"static/app.js" in page
    assert s_js == 200 and b"RTCPeerConnection" in js
    assert s_x == 404


def test_an_interrupt_silences_the_stream_at_once(srv: ServerThread) -> None:
    speech = buzz(4.0)

    async def run() -> tuple[list[dict[str, Any]], list[bytes]]:
        after: list[dict[str, Any]] = []
        sound: list[bytes] = []
        async with aiohttp.ClientSession() as http, http.ws_connect(srv.base + "ws", params={"audio": "1"}) as ws:
            assert (await ws.receive_json())["type"] == "ready"
            await ws.send_bytes(pcm16(speech))
            speaking = 0
            while speaking < 5:  # mid-speech
                msg = await ws.receive(timeout=10)
                if msg.type == aiohttp.WSMsgType.TEXT and (data := json.loads(msg.data))["type"] == "frame":
                    speaking += data["speaking"]
            await ws.send_str(json.dumps({"type": "interrupt"}))
            while len(after) < 25:
                msg = await ws.receive(timeout=10)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    sound.append(msg.data)
                elif (data := json.loads(msg.data))["type"] == "frame":
                    after.append(data)
        return after, sound

    after, sound = arun(run())
    first_silent = next(i for i, f in enumerate(after) if not f["speaking"])
    assert first_silent <= 3  # at most the frames already on their way
    assert not any(f["speaking"] for f in after[first_silent:])
    assert sum(f["end_of_speech"] for f in after) == 1
    quiet = [np.frombuffer(p[1:], "<i2") for p in sound[first_silent + 1 :]]
    assert quiet and max(int(np.abs(q).max()) for q in quiet) == 0  # the rest of the speech is gone


def test_a_websocket_session_can_send_back_the_full_band(srv: ServerThread) -> None:
    """audio=48000: each frame's sound as it came in, 1920 samples at 48 kHz; sent at 48 kHz, a
    tone at 12 kHz (above what the models' 16 kHz copy can hold) comes back."""
    t = np.arange(48000) / 48000
    tone = (0.3 * np.sin(2 * np.pi * 12000 * t)).astype(np.float32)

    async def run() -> list[bytes]:
        pcm: list[bytes] = []
        params = {"rate": "48000", "audio": "48000", "motion": "0"}
        async with aiohttp.ClientSession() as http, http.ws_connect(srv.base + "ws", params=params) as ws:
            assert (await ws.receive_json())["type"] == "ready"
            for i in range(0, len(tone), 960):
                await ws.send_bytes(pcm16(tone[i : i + 960]))
            await ws.send_str(json.dumps({"type": "flush"}))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(pcm) < 40:
                msg = await ws.receive(timeout=5)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    pcm.append(msg.data)
        return pcm

    got = arun(run())
    assert all(p[:1] == AUDIO_TAG and len(p) == 1 + 3840 for p in got)
    heard = np.concatenate([np.frombuffer(p[1:], "<i2") for p in got]).astype(np.float32) / 32767
    assert np.sqrt((heard**2).mean()) > 0.1  # the tone, at about its level (0.21 RMS when all of it is in)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        arun(_ws_connect(srv, {"audio": "44100"}))


async def _ws_connect(srv: ServerThread, params: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(srv.base + "ws", params=params):
        pass
