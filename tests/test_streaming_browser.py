"""A real browser: Debian's Chromium, headless, with a fake microphone playing a TTS sentence,
loads the served page, starts a call, and receives advancing video frames from the avatar; the
server hears the microphone (speech frames). A screenshot of the page is kept as a test artifact
(artifacts/tests/browser_client.png). Driven over the DevTools protocol (aiohttp's WebSocket
client); skipped only when no Chromium is installed (scripts/setup installs it)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from posetalk.engine import Output
from posetalk.tests.streaming_fixtures import ServerThread, server_thread, write_wav

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "tests"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with server_thread() as t:
        yield t


class DevTools:
    """Just enough of the Chrome DevTools protocol: commands on one page target."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my = self.next_id
        await self.ws.send_json({"id": my, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=30)
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg["result"])

    async def js(self, expression: str) -> Any:
        r = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                            userGesture=True)  # fmt: skip
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")


async def launch(url: str, wav: Path, profile: Path) -> tuple[asyncio.subprocess.Process, str]:
    assert CHROMIUM is not None
    args = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=900,900",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        # media on 127.0.0.1 only (the test server's ICE mode), real addresses instead of mDNS names
        "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0", url,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode(errors="replace")
        if found := re.search(r"DevTools listening on ws://[\d.]+:(\d+)/", line):
            return proc, found.group(1)
        if not line and proc.returncode is not None:
            break
    proc.kill()
    raise RuntimeError("chromium did not start its DevTools endpoint")


@contextlib.asynccontextmanager
async def open_page(url: str, base: str, wav: Path, profile: Path, ready: str) -> AsyncIterator[DevTools]:
    """Chromium showing ``url``, driven over DevTools, once the page has loaded and the script
    object ``ready`` exists; the browser is stopped on the way out."""
    proc, port = await launch(url, wav, profile)
    try:
        async with aiohttp.ClientSession() as http:
            page = None
            for _ in range(100):
                async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json()
                page = next((t for t in targets if t["type"] == "page" and t["url"].startswith(base)), None)
                if page:
                    break
                await asyncio.sleep(0.1)
            assert page is not None, "the page did not open"
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=2**26) as ws:
                cdp = DevTools(ws)
                for _ in range(200):
                    if await cdp.js(f"document.readyState === 'complete' && typeof {ready} === 'object'"):
                        break
                    await asyncio.sleep(0.1)
                yield cdp
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def upload(cdp: DevTools, path: Path) -> dict[str, Any]:
    """Choose ``path`` in the page's file input, as a person would, and wait for the outcome."""
    await cdp.js("document.getElementById('error').textContent = ''")
    doc = await cdp.call("DOM.getDocument")
    node = await cdp.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#upload")
    await cdp.call("DOM.setFileInputFiles", files=[str(path)], nodeId=node["nodeId"])
    state: dict[str, Any] = {}
    for _ in range(150):
        await asyncio.sleep(0.1)
        state = await cdp.js(UPLOAD_STATE_JS)
        if state["error"] or state["status"] == "ready":
            break
    return state


UPLOAD_STATE_JS = """(() => ({
  error: document.getElementById('error').textContent,
  status: document.getElementById('upload-status').textContent,
  thumbnails: document.querySelectorAll('#avatars img').length,
  chosen: (document.querySelector('#avatars img.chosen') || {}).alt || '',
}))()"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (scripts/setup installs Debian's chromium)")
def test_the_page_in_headless_chromium_receives_the_avatar(srv: ServerThread, spoken: np.ndarray,
                                                           astronaut: np.ndarray, tmp_path: Path) -> None:  # fmt: skip
    wav = tmp_path / "mic.wav"
    write_wav(wav, np.concatenate([spoken, np.zeros(8000, np.float32)]))
    published: list[Output] = []
    assert srv.server is not None
    srv.server.taps.append(lambda key, out: published.append(out))

    blank, face = tmp_path / "blank.png", tmp_path / "face.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    cv2.imwrite(str(face), astronaut[..., ::-1])

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any], bytes, list[dict[str, Any]]]:
        async with open_page(srv.url, srv.base, wav, tmp_path / "profile", "window.posetalk") as cdp:
            await cdp.js("window.posetalk.start()")
            snaps = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                snaps.append(await cdp.js("window.posetalk.snapshot()"))
                if snaps[-1]["framesDecoded"] >= 100 and snaps[-1]["server"]:
                    break
            await cdp.js(SET_PROMPT_JS)  # typed into the page's prompt box and submitted
            await asyncio.sleep(1.5)
            snaps.append(await cdp.js("window.posetalk.snapshot()"))
            picture = await cdp.js(PICTURE_JS)
            shot = await cdp.call("Page.captureScreenshot", format="png")
            await cdp.js("window.posetalk.stop()")
            uploads = [await upload(cdp, path) for path in (blank, face)]  # through the file input
            return snaps, picture, base64.b64decode(shot["data"]), uploads

    snaps, picture, png, uploads = asyncio.run(run())
    srv.server.taps.clear()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "browser_client.png").write_bytes(png)
    (tmp_path / "browser_client.png").write_bytes(png)

    last = snaps[-1]
    assert last["error"] == "" and last["connection"] == "connected", last
    assert last["framesDecoded"] >= 100, last  # four seconds of frames and more
    before = snaps[-2]
    assert last["framesDecoded"] - before["framesDecoded"] >= 15  # still advancing: ~25 in the last second
    assert last["currentTime"] > before["currentTime"] + 0.5
    assert (last["videoWidth"], last["videoHeight"]) == (160, 160)
    assert picture["mean"] > 40 and picture["std"] > 20  # a picture, not a black or flat frame
    assert last["shown"]["fps"] not in ("", "–") and last["shown"]["latency"].endswith("ms")
    assert last["server"]["transport"] == "webrtc" and last["server"]["video_sent"] > 50
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert any(o.speaking for o in published)  # the fake microphone's speech reached the session
    assert last["server"]["prompt"] == "nods slowly" and published[-1].head_source == "procedural:nodding"
    refused, accepted = uploads
    assert "upload refused" in refused["error"] and "no face" in refused["error"]
    assert accepted["thumbnails"] == 2 and accepted["chosen"] not in ("", "default")
    deadline = time.monotonic() + 10
    while srv.server.peers and time.monotonic() < deadline:  # stop() hung up: the session goes
        time.sleep(0.1)
    assert not srv.server.peers


SET_PROMPT_JS = """(() => {
  document.getElementById('prompt').value = 'nods slowly';
  document.querySelector('#prompt-form button').click();
})()"""

PICTURE_JS = """(() => {
  const v = document.getElementById('avatar');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let s = 0, s2 = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i + 1] + d[i + 2]) / 3; s += y; s2 += y * y; n++; }
  const mean = s / n;
  return { mean, std: Math.sqrt(s2 / n - mean * mean) };
})()"""


CHECKERBOARD_JS = """(() => {
  // What OBS puts under a Browser Source: here a black-and-white checkerboard behind the page.
  document.documentElement.style.background = 'repeating-conic-gradient(#000 0 25%, #fff 0 50%) 0 0 / 24px 24px';
  const c = document.getElementById('overlay');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const alpha = (x0, y0, x1, y1) => {
    let s = 0, n = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) { s += d[(y * c.width + x) * 4 + 3]; n++; }
    return s / n;
  };
  const w = c.width, h = c.height, k = Math.round(w / 14);
  return { corners: [alpha(0, 0, k, k), alpha(w - k, 0, w, k)],
           face: alpha(Math.round(0.4 * w), Math.round(0.4 * h), Math.round(0.6 * w), Math.round(0.6 * h)) };
})()"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (scripts/setup installs Debian's chromium)")
def test_the_overlay_page_shows_the_scene_around_the_avatar(srv: ServerThread, spoken: np.ndarray,
                                                            tmp_path: Path) -> None:  # fmt: skip
    """/overlay, as OBS's Browser Source loads it, watches the newest session (here a voice agent's
    WebSocket session with alpha=1); over a checkerboard the screenshot shows the checkerboard
    around the person and the face in the middle."""
    wav = tmp_path / "silence.wav"
    write_wav(wav, np.zeros(16000, np.float32))
    speech = np.concatenate([spoken, spoken])

    async def agent(http: aiohttp.ClientSession, started: asyncio.Event) -> None:
        async with http.ws_connect(srv.base + "ws", params={"alpha": "1", "motion": "0"}) as ws:
            assert (await ws.receive_json())["type"] == "ready"
            started.set()
            t0 = time.monotonic()
            for i in range(0, len(speech), 320):  # in real time, as a voice agent's TTS arrives
                await ws.send_bytes((np.clip(speech[i : i + 320], -1, 1) * 32767).astype("<i2").tobytes())
                await asyncio.sleep(max(0.0, t0 + (i + 320) / 16000 - time.monotonic()))

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any], bytes, dict[str, Any]]:
        async with aiohttp.ClientSession() as http, open_page(srv.overlay, srv.base, wav, tmp_path / "profile",
                                                              "window.posetalkOverlay") as cdp:  # fmt: skip
            snaps = [await cdp.js("window.posetalkOverlay.snapshot()")]  # nothing to watch yet
            started = asyncio.Event()
            talking = asyncio.create_task(agent(http, started))
            await started.wait()
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and snaps[-1]["drawn"] < 75:
                await asyncio.sleep(0.5)
                snaps.append(await cdp.js("window.posetalkOverlay.snapshot()"))
            measured = await cdp.js(CHECKERBOARD_JS)
            await asyncio.sleep(0.3)
            shot = await cdp.call("Page.captureScreenshot", format="png")
            talking.cancel()
            await asyncio.gather(talking, return_exceptions=True)
            await asyncio.sleep(2.5)  # the session ended with its socket: the page goes back to waiting
            after = await cdp.js("window.posetalkOverlay.snapshot()")
            return snaps, measured, base64.b64decode(shot["data"]), after

    snaps, measured, png, after = asyncio.run(run())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "overlay_page.png").write_bytes(png)
    first, last = snaps[0], snaps[-1]
    assert first["session"] is None and first["drawn"] == 0
    assert last["error"] == "" and last["alpha"] is True and last["drawn"] >= 75, last
    assert (last["width"], last["height"], last["videoWidth"]) == (160, 160, 320)  # packed in, unpacked out
    assert max(measured["corners"]) < 10 and measured["face"] > 245, measured
    shot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(float)
    h, w = shot.shape[:2]
    corner = shot[: h // 12, : w // 12].mean(2)
    assert (corner < 30).mean() > 0.3 and (corner > 225).mean() > 0.3  # the checkerboard shows through
    face = shot[int(0.42 * h) : int(0.58 * h), int(0.42 * w) : int(0.58 * w)].mean(2)
    assert ((face < 30) | (face > 225)).mean() < 0.2  # the face covers it
    assert after["session"] is None and after["connection"] == "none"
    assert srv.server is not None and not srv.server.peers
