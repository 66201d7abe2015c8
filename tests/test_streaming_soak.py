"""100 connect/disconnect cycles (95 WebSocket PCM sessions, 5 WebRTC peer connections) leave no
growth: the server's tasks and the process's threads are what they were after warm-up, no session,
peer, media pump or peer connection object survives, and resident memory grows by less than a
bound. The numbers go to artifacts/tests/soak.json."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from posetalk.tests.engine_fixtures import buzz
from posetalk.tests.streaming_fixtures import ServerThread, pcm16, server_thread

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "tests"
CYCLES, WEBRTC_EVERY = 100, 20


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with server_thread(max_sessions=4) as t:
        yield t


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def ws_cycle(http: aiohttp.ClientSession, base: str, speech: bytes) -> None:
    params = {"video": "jpeg", "audio": "1"}
    async with http.ws_connect(base + "ws", params=params) as ws:
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        await ws.send_bytes(speech)
        while True:  # until the first frame's message
            msg = await ws.receive(timeout=10)
            if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "frame":
                return


async def webrtc_cycle(http: aiohttp.ClientSession, base: str) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    pc = RTCPeerConnection()
    got = asyncio.Event()

    async def take(track: Any) -> None:
        for _ in range(3):
            try:
                await track.recv()
            except MediaStreamError:
                return
        got.set()

    tasks: list[asyncio.Task[None]] = []
    pc.on("track", lambda track: tasks.append(asyncio.create_task(take(track))) if track.kind == "video" else None)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(base + "offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as resp:
        answer = await resp.json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    await asyncio.wait_for(got.wait(), 30)
    await pc.close()  # the server sees the peer connection close and releases the session
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def cycles(srv: ServerThread, n: int, webrtc_every: int) -> dict[str, int]:
    speech = pcm16(buzz(0.2))

    async def run() -> dict[str, int]:
        done = {"websocket": 0, "webrtc": 0}
        async with aiohttp.ClientSession() as http:
            for i in range(n):
                if i % webrtc_every == webrtc_every - 1:
                    await webrtc_cycle(http, srv.base)
                    done["webrtc"] += 1
                else:
                    await ws_cycle(http, srv.base, speech)
                    done["websocket"] += 1
        return done

    return dict(asyncio.run(run()))


def settle(srv: ServerThread) -> dict[str, Any]:
    """Wait for the server to release everything, then count what is left."""
    assert srv.server is not None
    deadline = time.monotonic() + 20
    while (srv.server.peers or srv.server.engine.sessions) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let closing tasks (pyee handlers, transports) finish

    async def server_tasks() -> int:
        return len(asyncio.all_tasks())

    tasks = srv.call(server_tasks)
    gc.collect()
    from aiortc import RTCPeerConnection
    from posetalk.engine import Session
    from posetalk.streaming.peers import Peer
    from posetalk.streaming.tracks import SessionMedia

    kinds = (Session, Peer, SessionMedia, RTCPeerConnection)
    alive = {k.__name__: sum(type(o) is k for o in gc.get_objects()) for k in kinds}
    return {"tasks": tasks, "threads": threading.active_count(), "rss_mb": rss_mb(), "alive": alive,
            "peers": len(srv.server.peers), "engine_sessions": len(srv.server.engine.sessions)}  # fmt: skip


def test_a_hundred_connections_leave_nothing_behind(srv: ServerThread) -> None:
    cycles(srv, 10, 5)  # warm up: executors, codecs, caches
    before = settle(srv)
    t0 = time.perf_counter()
    done = cycles(srv, CYCLES, WEBRTC_EVERY)
    seconds = time.perf_counter() - t0
    after = settle(srv)
    report = {"cycles": done, "seconds": round(seconds, 1), "before": before, "after": after,
              "rss_growth_mb": round(after["rss_mb"] - before["rss_mb"], 1)}  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "soak.json").write_text(json.dumps(report, indent=1))
    print(report)
    assert done == {"websocket": 95, "webrtc": 5}
    assert after["peers"] == after["engine_sessions"] == 0
    assert set(after["alive"].values()) == {0}, after["alive"]
    assert after["tasks"] == before["tasks"]
    # Thread pools (asyncio's default executor, the engine's workers) may still start a worker or
    # two on demand after the warm-up; a per-session leak would add one for every cycle.
    assert after["threads"] <= before["threads"] + 2, (before["threads"], after["threads"])
    assert after["rss_mb"] - before["rss_mb"] < 25.0  # a leaked frame buffer per session would be ~60 MB
    assert np.isfinite(after["rss_mb"])


def test_a_peer_that_vanishes_is_released(srv: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A WebRTC client killed mid-call (no goodbye: SIGKILL) is noticed by ICE consent checks
    (RFC 7675; every 5 s, 6 misses in aioice, here shortened) and everything it held is freed."""
    import os
    import signal
    import subprocess
    import sys

    import aioice.ice
    from posetalk.tests.streaming_fixtures import write_wav

    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 2)
    assert srv.server is not None
    before = settle(srv)
    wav = tmp_path / "long.wav"
    write_wav(wav, buzz(20.0))
    cmd = [sys.executable, "-m", "posetalk.clients.cli", "client", "--url", srv.url, "--audio", str(wav),
           "--out", str(tmp_path / "never.mp4")]  # fmt: skip
    client = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(p.media.video_sent >= 10 for p in list(srv.server.peers.values())):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the client never connected")
        os.kill(client.pid, signal.SIGKILL)
        killed = time.monotonic()
        while srv.server.peers and time.monotonic() - killed < 20:
            time.sleep(0.05)
        released_s = time.monotonic() - killed
    finally:
        client.kill()
        client.wait()
    assert not srv.server.peers, "the vanished peer was not released"
    after = settle(srv)
    assert set(after["alive"].values()) == {0} and after["tasks"] == before["tasks"], (before, after)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "vanish.json").write_text(json.dumps({"released_after_s": round(released_s, 2)}))
    print({"released_after_s": released_s})
