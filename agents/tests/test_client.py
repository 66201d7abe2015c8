"""PosetalkClient against a real `posetalk serve`: frames at 25 fps with the pushed speech in
them, in step; an interruption empties the output at once; close releases the session; bad use
gets a clear error."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from conftest import released, sessions, speech
from posetalk_agents import PosetalkClient, PosetalkError


def test_frames_carry_the_speech_in_step(server_url: str) -> None:
    pcm = speech(2.0, 24000)

    async def run() -> list:
        async with PosetalkClient(server_url, prompt="calm", input_rate=24000) as avatar:
            assert sessions(server_url) == 1
            for i in range(0, len(pcm), 480):  # 20 ms chunks, as a TTS streams them
                avatar.push_audio(pcm[i : i + 480].tobytes(), 24000)
            avatar.flush()
            got = []
            async for f in avatar.frames():
                got.append((time.monotonic(), f))
                if len(got) >= 90:
                    break
            return got

    got = asyncio.run(run())
    frames = [f for _, f in got]
    assert [f.index for f in frames] == list(range(frames[0].index, frames[0].index + len(frames)))
    assert all(f.image.shape == (160, 160, 3) and f.audio.shape == (1920,) for f in frames)
    span = got[-1][0] - got[0][0]
    assert 24.0 < (len(got) - 1) / span < 26.5  # real time, 25 a second
    heard = np.concatenate([f.audio for f in frames]).astype(np.float32)
    sent = np.repeat(pcm.astype(np.float32), 2)  # 24 -> 48 kHz, near enough to find it
    lag = int(np.argmax(np.correlate(heard[::4], sent[::4], "full"))) - (len(sent[::4]) - 1)
    k = max(0, lag * 4)
    assert np.corrcoef(heard[k : k + len(sent)][: len(sent)], sent[: len(heard) - k])[0, 1] > 0.9
    speaking = [f for f in frames if f.audio.any()]
    assert len(speaking) >= 25 and max(f.expression["jawOpen"] for f in speaking) > 0.05
    assert released(server_url)


def test_an_interruption_empties_the_output_within_100_ms(server_url: str) -> None:
    pcm = speech(6.0, 16000)

    async def run() -> tuple[float, int]:
        async with PosetalkClient(server_url) as avatar:
            avatar.push_audio(pcm.tobytes())
            avatar.flush()
            spoken = 0
            async for f in avatar.frames():
                spoken += bool(f.audio.any())
                if spoken >= 25:
                    break
            t0 = time.monotonic()
            avatar.interrupt()
            async for f in avatar.frames():
                if not f.audio.any():
                    return time.monotonic() - t0, f.index
            return float("inf"), -1

    silent_after, _ = asyncio.run(run())
    assert silent_after < 0.1, silent_after


def test_bad_use_gets_a_clear_error(server_url: str) -> None:
    async def run() -> None:
        avatar = PosetalkClient(server_url)
        with pytest.raises(PosetalkError, match="not open"):
            avatar.push_audio(b"\x00\x00")
        await avatar.connect()
        await avatar.close()
        with pytest.raises(PosetalkError, match="not open"):
            avatar.flush()
        with pytest.raises(PosetalkError, match="could not open"):
            await PosetalkClient(server_url, avatar="no-such-portrait").connect()
        async with PosetalkClient(server_url) as open_one:
            for bad, message in (({"sample_rate": 500}, "8000..192000"), ({"channels": 0}, "channels"),
                                 ({"channels": 2, "pcm": b"\x00\x00" * 3}, "whole frames")):  # fmt: skip
                with pytest.raises(PosetalkError, match=message):
                    open_one.push_audio(bad.pop("pcm", b"\x00\x00" * 4), **bad)
            stereo = np.zeros((480, 2), np.int16).reshape(-1)  # interleaved stereo is mixed down
            open_one.push_audio(stereo, 24000, channels=2)

    asyncio.run(run())


def test_alpha_frames_are_the_person_on_a_transparent_background(server_url: str) -> None:
    async def run() -> np.ndarray:
        async with PosetalkClient(server_url, alpha=True) as avatar:
            avatar.push_audio(speech(0.5, 16000).tobytes(), 16000)
            async for f in avatar.frames():
                return f.image
        raise AssertionError("no frame")

    image = asyncio.run(run())
    assert image.shape == (160, 160, 4)
    assert image[:12, :12, 3].mean() < 10 and image[60:100, 60:100, 3].mean() > 245  # background / face
    assert released(server_url)
