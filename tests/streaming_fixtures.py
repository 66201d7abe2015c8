"""Helpers the streaming tests share: a server running in a thread of its own (its own event
loop, as in production, so that tests can use asyncio.run for clients), small images, PCM."""

from __future__ import annotations

import asyncio
import io
import threading
import wave
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from posetalk.engine import EngineConfig
from posetalk.streaming.server import Server, ServerConfig, running_server

T = TypeVar("T")

# Small pictures keep the tests fast; the procedural head needs no pose-model weights; media
# stays on 127.0.0.1 (ICE "loopback"): no test sends a packet to any other address.
# The aligner process starts with the first words a test sends, not with every test server.
TEST_CONFIG = dict(port=0, size=160, ice="loopback", warm_aligner=False)
TEST_ENGINE = dict(head="procedural")


class ServerThread:
    """A ``Server`` on an event loop in a background thread."""

    def __init__(self, config: ServerConfig, engine_config: EngineConfig) -> None:
        self.config = config
        self.engine_config = engine_config
        self.server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="test-server", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with running_server(self.config, engine_config=self.engine_config) as server:
                self.server = server
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test thread by start()
            self.error = exc
            self._ready.set()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(120)
        if self.error is not None:
            raise self.error
        assert self.server is not None
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def overlay(self) -> str:
        assert self.server is not None
        return self.server.overlay_url

    @property
    def base(self) -> str:
        return self.url.split("?")[0]

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run ``fn()`` on the server's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(_call(fn), self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


@contextmanager
def server_thread(engine: dict[str, Any] | None = None, **config: Any) -> Iterator[ServerThread]:
    t = ServerThread(ServerConfig(**{**TEST_CONFIG, **config}), EngineConfig(**{**TEST_ENGINE, **(engine or {})}))
    t.start()
    try:
        yield t
    finally:
        t.stop()


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
