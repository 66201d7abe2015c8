"""posetalk in a pipecat pipeline: place ``PosetalkVideoService`` after the TTS and before the
transport's output.

    pipeline = Pipeline([transport.input(), stt, llm, tts,
                         PosetalkVideoService("http://127.0.0.1:8080", prompt="calm"),
                         transport.output()])

TTS audio goes to the avatar server instead of straight on; what comes back, 25 times a second,
is the avatar's picture (``OutputImageRawFrame``; its ``metadata["posetalk"]`` says the frame's
index, audio position, voice state and what made its mouth) and the same audio (``OutputAudioRawFrame``, 48
kHz mono) in step with it, so the transport plays them together. ``TTSStoppedFrame`` ends a reply
(the server shows it to its end, then the avatar listens); an ``InterruptionFrame`` drops what
the server holds and what is queued here; ``EndFrame`` / ``CancelFrame`` close the session.

``TTSTextFrame``s are the words of the reply: with timestamps (TTS services with word timestamps
stamp each word's frame with its play time, ``pts``: pipecat's clock when the reply's first audio
came, plus the word's start in that audio) they are sent as timed words of the reply as they come,
so the lips take their shapes from the next frame on; without, their text is sent ahead of the
reply's audio where it arrives before it (the server aligns it once the audio is in).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from posetalk_agents.client import OUT_RATE, PosetalkClient


class PosetalkVideoService(FrameProcessor):
    """See the module docstring. ``url``: what `posetalk serve` prints; ``avatar``: a portrait
    id on the server; ``token``: for a server off loopback."""

    def __init__(self, url: str, *, avatar: str | None = None, prompt: str = "", token: str | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self._url, self._avatar, self._prompt, self._token = url, avatar, prompt, token
        self._client: PosetalkClient | None = None
        self._relay: asyncio.Task[None] | None = None
        self._text: list[str] = []  # TTS text of the reply not yet sent ahead
        self._audio_started = False  # this reply's audio has begun reaching the server
        self._timed: list[tuple[str, float]] = []  # the reply's timestamped words: (word, start s)
        self._base: int | None = None  # pipecat's clock (ns) at the reply's first audio: its words' zero
        self._last_pts = 0  # the newest word's pts (a reply's zero is never before it, as in pipecat)

    @property
    def client(self) -> PosetalkClient | None:
        return self._client

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self._start()
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSAudioRawFrame):  # to the avatar: it comes back in step with the picture
            if self._client is not None:
                if not self._audio_started:
                    if self._text:
                        self._client.push_text(" ".join(self._text))
                    self._base = max(self._last_pts, self.get_clock().get_time())
                self._text, self._audio_started = [], True
                self._client.push_audio(frame.audio, frame.sample_rate, frame.num_channels)
        elif isinstance(frame, TTSStartedFrame):
            self._text, self._audio_started, self._timed, self._base = [], False, [], None
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSStoppedFrame):
            if self._client is not None:
                self._client.flush()
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSTextFrame):
            if frame.pts is not None and self._base is not None:
                self._timed_word(frame.text, frame.pts)
            elif not self._audio_started:
                self._text.append(frame.text)
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            if self._client is not None:
                self._client.interrupt()
            await self.push_frame(frame, direction)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    def _timed_word(self, text: str, pts: int) -> None:
        """One timestamped word of the reply: the reply's words so far go to the server, timed
        from the reply's first sample (each word ends where the next begins, or after a
        duration guessed from its letters when there is a pause or it is the last so far)."""
        assert self._base is not None
        self._last_pts = max(self._last_pts, pts)
        word = text.strip()
        if not word or self._client is None:
            return
        self._timed.append((word, max(0.0, (pts - self._base) / 1e9)))
        words = []
        for i, (w, start) in enumerate(self._timed):
            guess = start + 0.1 + 0.08 * len(w)
            end = min(guess, self._timed[i + 1][1]) if i + 1 < len(self._timed) else guess
            words.append((w, start, max(end, start + 0.05)))
        self._client.push_words(words, in_utterance=True)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._stop()

    async def _start(self) -> None:
        if self._client is not None:
            return
        self._client = await PosetalkClient(self._url, avatar=self._avatar, prompt=self._prompt,
                                            token=self._token).connect()  # fmt: skip
        self._relay = self.create_task(self._forward(self._client), name="posetalk-frames")

    async def _stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        relay, self._relay = self._relay, None
        if relay is not None:
            await self.cancel_task(relay)

    async def _forward(self, client: PosetalkClient) -> None:
        """The server's frames downstream: every picture (the avatar listens between replies),
        and during a reply, from its first sound to the frame that ends it, each picture's own
        40 ms of audio right after it (silence while listening would read as the bot talking)."""
        async for f in client.frames():
            h, w = f.image.shape[:2]
            kind = "RGBA" if f.image.shape[2] == 4 else "RGB"
            image = OutputImageRawFrame(image=f.image.tobytes(), size=(w, h), format=kind)
            image.metadata["posetalk"] = {"index": f.index, "pts": f.pts, "speaking": f.speaking, "lips": f.lips}
            await self.push_frame(image)
            if f.in_reply:
                await self.push_frame(OutputAudioRawFrame(audio=f.audio.tobytes(), sample_rate=OUT_RATE,
                                                          num_channels=1))  # fmt: skip
