"""posetalk as a LiveKit Agents avatar: ``PosetalkVideoGenerator`` implements
``livekit.agents.voice.avatar.VideoGenerator`` for an avatar worker's ``AvatarRunner``.

    generator = PosetalkVideoGenerator("http://127.0.0.1:8080", prompt="calm")
    await generator.connect()
    runner = AvatarRunner(room, audio_recv=DataStreamAudioReceiver(room), video_gen=generator,
                          options=AvatarOptions(video_width=512, video_height=512, video_fps=25,
                                                audio_sample_rate=48000, audio_channels=1))

The agent's speech (``push_audio``) goes to the avatar server; out come, 25 times a second, the
avatar's picture (``rtc.VideoFrame``, RGB24) and, during a reply, that frame's 40 ms of it
(``rtc.AudioFrame``, 48 kHz mono), and ``AudioSegmentEnd`` once a reply has been shown to its end.
``clear_buffer`` drops what the server holds and what is queued here."""

from __future__ import annotations

from collections.abc import AsyncIterator

from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, VideoGenerator

from posetalk_agents.client import FRAME_SAMPLES, OUT_RATE, PosetalkClient


class PosetalkVideoGenerator(VideoGenerator):
    """See the module docstring. ``url``: what `posetalk serve` prints; ``avatar``: a portrait
    id on the server; ``token``: for a server off loopback."""

    def __init__(self, url: str, *, avatar: str | None = None, prompt: str = "", token: str | None = None) -> None:
        self.client = PosetalkClient(url, avatar=avatar, prompt=prompt, token=token)
        self._segments = 0  # replies ended (AudioSegmentEnd pushed) and not yet marked downstream

    async def connect(self) -> PosetalkVideoGenerator:
        await self.client.connect()
        return self

    async def aclose(self) -> None:
        """End the session on the server."""
        await self.client.close()

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        if isinstance(frame, AudioSegmentEnd):
            self._segments += 1
            self.client.flush()
            return
        self.client.push_audio(bytes(frame.data), frame.sample_rate, frame.num_channels)

    def clear_buffer(self) -> None:
        self._segments = 0
        self.client.interrupt()

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        async for f in self.client.frames():
            h, w = f.image.shape[:2]
            kind = rtc.VideoBufferType.RGBA if f.image.shape[2] == 4 else rtc.VideoBufferType.RGB24
            yield rtc.VideoFrame(w, h, kind, f.image.tobytes())
            if f.in_reply:
                yield rtc.AudioFrame(f.audio.tobytes(), OUT_RATE, 1, FRAME_SAMPLES)
            if f.reply_ended and self._segments:
                self._segments -= 1
                yield AudioSegmentEnd()
