"""PosetalkVideoGenerator with the real livekit-agents classes (VideoGenerator, rtc.AudioFrame,
AudioSegmentEnd) against a real `posetalk serve`: pictures at 25 fps with the reply's audio in
step, the end of a segment marked, clear_buffer empties the output within 100 ms. (No LiveKit
server can be installed here: AvatarRunner in a room is not run.)"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from conftest import released, speech
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, VideoGenerator
from posetalk_agents import PosetalkError
from posetalk_agents.livekit import PosetalkVideoGenerator


async def push_reply(gen: PosetalkVideoGenerator, seconds: float, rate: int = 24000) -> None:
    pcm = speech(seconds, rate)
    for i in range(0, len(pcm), rate // 50):
        chunk = pcm[i : i + rate // 50]
        await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), rate, 1, len(chunk)))
    await gen.push_audio(AudioSegmentEnd())


def test_a_reply_comes_back_in_step_and_its_end_is_marked(server_url: str) -> None:
    async def run() -> list[tuple[float, object]]:
        gen = await PosetalkVideoGenerator(server_url, prompt="calm").connect()
        assert isinstance(gen, VideoGenerator)
        await push_reply(gen, 2.0)
        got: list[tuple[float, object]] = []
        async for item in gen:
            got.append((time.monotonic(), item))
            if isinstance(item, AudioSegmentEnd) or len(got) > 400:
                break
        for _ in range(10):  # listening afterwards: pictures go on
            got.append((time.monotonic(), await gen.__aiter__().__anext__()))
        await gen.aclose()
        return got

    got = asyncio.run(run())
    video = [(t, x) for t, x in got if isinstance(x, rtc.VideoFrame)]
    audio = [x for _, x in got if isinstance(x, rtc.AudioFrame)]
    assert isinstance(got[-11][1], AudioSegmentEnd)  # the reply's end, once, after its last audio
    assert video[0][1].width == 160 and video[0][1].type == rtc.VideoBufferType.RGB24
    rate = (len(video) - 1) / (video[-1][0] - video[0][0])
    assert 24.0 < rate < 26.5, rate
    assert all(a.sample_rate == 48000 and a.samples_per_channel == 1920 for a in audio)
    assert 45 <= len(audio) <= 60  # the 2 s reply, 40 ms with each picture
    kinds = [type(x).__name__ for _, x in got]
    assert all(kinds[i - 1] == "VideoFrame" for i, k in enumerate(kinds) if k == "AudioFrame")
    heard = np.concatenate([np.frombuffer(bytes(a.data), "<i2") for a in audio]).astype(np.float32)
    assert np.sqrt((heard**2).mean()) > 1000
    assert released(server_url)


def test_clear_buffer_empties_the_output_within_100_ms(server_url: str) -> None:
    async def run() -> list[float]:
        gen = await PosetalkVideoGenerator(server_url).connect()
        await push_reply(gen, 6.0)
        spoken, late, t0 = 0, [], None
        async for item in gen:
            if isinstance(item, rtc.AudioFrame) and np.frombuffer(bytes(item.data), "<i2").any():
                if t0 is None:
                    spoken += 1
                    if spoken == 25:
                        t0 = time.monotonic()
                        gen.clear_buffer()
                else:
                    late.append(time.monotonic() - t0)
            if t0 is not None and time.monotonic() - t0 > 1.0:
                break
        await gen.aclose()
        with pytest.raises(PosetalkError, match="not open"):  # used after close: a clear error
            await gen.push_audio(rtc.AudioFrame(b"\x00\x00" * 480, 24000, 1, 480))
        return late

    late = asyncio.run(run())
    assert not late or max(late) < 0.1, late
