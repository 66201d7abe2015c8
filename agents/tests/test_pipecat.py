"""PosetalkVideoService in a real pipecat Pipeline run by its own PipelineWorker and WorkerRunner,
against a real `posetalk serve`: TTS audio in, the avatar's pictures at 25 fps out with that
audio in step; an interruption empties the output within 100 ms; EndFrame releases the session."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from conftest import released, sessions, speech
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from posetalk_agents.pipecat import PosetalkVideoService


class Sink(FrameProcessor):
    """The transport's place: records what reaches it, and when."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, (OutputImageRawFrame, OutputAudioRawFrame, InterruptionFrame)):
            self.got.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)


def tts_reply(seconds: float, rate: int = 24000, pcm: np.ndarray | None = None, text: str = "") -> list[Frame]:
    pcm = speech(seconds, rate) if pcm is None else pcm
    chunks = [TTSAudioRawFrame(audio=pcm[i : i + rate // 50].tobytes(), sample_rate=rate, num_channels=1)
              for i in range(0, len(pcm), rate // 50)]  # fmt: skip
    words = [TTSTextFrame(text, "word")] if text else []
    return [TTSStartedFrame(), *words, *chunks, TTSStoppedFrame()]


def run_pipeline(server_url: str, script) -> tuple[Sink, PosetalkVideoService]:  # type: ignore[no-untyped-def]
    sink = Sink()
    avatar = PosetalkVideoService(server_url, prompt="calm")
    task = PipelineWorker(Pipeline([avatar, sink]), idle_timeout_secs=None, check_dangling_tasks=False)

    async def main() -> None:
        async def drive() -> None:
            while avatar.client is None:  # the StartFrame opens the session
                await asyncio.sleep(0.05)
            await script(task, avatar, sink)
            await task.queue_frame(EndFrame())

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(task)
        await asyncio.gather(runner.run(), drive())

    asyncio.run(main())
    return sink, avatar


def test_tts_audio_comes_back_with_the_avatar_in_step(server_url: str) -> None:
    held: dict[str, int] = {}

    async def script(task, avatar, sink) -> None:  # type: ignore[no-untyped-def]
        held["sessions"] = sessions(server_url)
        await task.queue_frames(tts_reply(2.0))
        await asyncio.sleep(4.0)

    sink, _ = run_pipeline(server_url, script)
    images = [(t, f) for t, f in sink.got if isinstance(f, OutputImageRawFrame)]
    assert held["sessions"] == 1 and len(images) >= 80
    assert images[0][1].size == (160, 160) and len(images[0][1].image) == 160 * 160 * 3
    rate = (len(images) - 1) / (images[-1][0] - images[0][0])
    assert 24.0 < rate < 26.5, rate
    # The audio comes back right after the picture it belongs to, 40 ms of it each time.
    kinds = [type(f).__name__ for _, f in sink.got]
    audio = [f for _, f in sink.got if isinstance(f, OutputAudioRawFrame)]
    assert audio and all(f.sample_rate == 48000 and len(f.audio) == 1920 * 2 for f in audio)
    assert all(kinds[i - 1] == "OutputImageRawFrame" for i, k in enumerate(kinds) if k == "OutputAudioRawFrame")
    heard = np.concatenate([np.frombuffer(f.audio, "<i2") for f in audio]).astype(np.float32)
    assert np.sqrt((heard**2).mean()) > 1000  # the reply, not silence
    assert 45 <= len(audio) <= 60  # its 2 s (50 frames), from its first sound to its end
    assert released(server_url)  # EndFrame closed the session


def test_an_interruption_empties_the_output_within_100_ms(server_url: str) -> None:
    marks: dict[str, float] = {}

    async def script(task, avatar, sink) -> None:  # type: ignore[no-untyped-def]
        await task.queue_frames(tts_reply(6.0))
        await asyncio.sleep(2.0)
        marks["t"] = time.monotonic()
        await task.queue_frame(InterruptionFrame())
        await asyncio.sleep(1.0)

    sink, _ = run_pipeline(server_url, script)
    after = [(t, f) for t, f in sink.got if t > marks["t"] and isinstance(f, OutputAudioRawFrame)]
    late = [t - marks["t"] for t, f in after if np.frombuffer(f.audio, "<i2").any()]
    assert not late or max(late) < 0.1, late  # no reply audio later than 100 ms after it
    assert any(isinstance(f, InterruptionFrame) for _, f in sink.got)  # passed on downstream
    assert released(server_url)


def test_tts_text_reaches_the_avatar_as_known_words(server_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A TTS text frame ahead of its audio (no timestamps): once aligned, the avatar's mouth takes
    the words."""
    import subprocess
    import wave

    text = "Maybe Bob will bring the big map back by Monday, Pam."
    wav = tmp_path / "said.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True)  # scripts/setup installs it
    with wave.open(str(wav)) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")

    marks: dict[str, float] = {}

    async def script(task, avatar, sink) -> None:  # type: ignore[no-untyped-def]
        # The first reply of the session: the server started its aligner with itself.
        marks["t"] = time.monotonic()
        await task.queue_frames(tts_reply(0, rate, np.concatenate([pcm, pcm]), f"{text} {text}"))
        await asyncio.sleep(2 * len(pcm) / rate + 1.5)

    sink, _ = run_pipeline(server_url, script)
    shown = [f.metadata["posetalk"] for t, f in sink.got if t > marks["t"] and isinstance(f, OutputImageRawFrame)]
    lips = [m["lips"] for m in shown if m["speaking"]]
    # The reply's audio all came at once: its alignment (~0.5 s, more on a busy machine) lands
    # while its first frames show; the second half of the reply shows the words.
    late = lips[len(lips) // 2 :]
    assert len(lips) > 80 and late.count("text") > 0.7 * len(late), lips
    assert released(server_url)


def said_word_by_word(words: list[str], tmp_path) -> tuple[np.ndarray, int, list[tuple[str, float]]]:  # type: ignore[no-untyped-def]
    """Each word spoken alone by espeak-ng and joined with 50 ms gaps: speech whose word start
    times are known exactly."""
    import subprocess
    import wave

    pieces, starts, t, rate = [], [], 0.0, 22050
    for i, word in enumerate(words):
        wav = tmp_path / f"w{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), word], check=True)
        with wave.open(str(wav)) as w:
            rate, x = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
        loud = np.flatnonzero(np.abs(x) > 300)
        x = x[loud[0] : loud[-1] + 1]
        starts.append((word, t))
        pieces += [x, np.zeros(rate // 20, np.int16)]
        t += (len(x) + rate // 20) / rate
    return np.concatenate(pieces), rate, starts


def test_timestamped_tts_words_shape_the_mouth_as_they_come(server_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A TTS service with word timestamps (pipecat stamps each word's TTSTextFrame with its play
    time, after the audio it starts in): the reply's words reach the server as timed words while
    its audio streams in, and its frames show them from the first reply of the session on."""
    pcm, rate, starts = said_word_by_word(
        ["maybe", "bob", "will", "bring", "the", "big", "map", "back", "by", "Monday"], tmp_path
    )
    marks: dict[str, float] = {}

    async def script(task, avatar, sink) -> None:  # type: ignore[no-untyped-def]
        marks["t"] = time.monotonic()
        base = avatar.get_clock().get_time()  # as the TTS service's clock when its first audio came
        frames: list[Frame] = [TTSStartedFrame()]
        pending, chunk = list(starts), rate // 50
        for i in range(0, len(pcm), chunk):
            frames.append(TTSAudioRawFrame(audio=pcm[i : i + chunk].tobytes(), sample_rate=rate, num_channels=1))
            while pending and pending[0][1] * rate < i + chunk:  # a word's frame follows the audio it starts in
                word, start = pending.pop(0)
                text = TTSTextFrame(word, "word")
                text.pts = base + int(start * 1e9)
                frames.append(text)
        await task.queue_frames([*frames, TTSStoppedFrame()])
        await asyncio.sleep(len(pcm) / rate + 1.5)

    sink, _ = run_pipeline(server_url, script)
    shown = [f.metadata["posetalk"] for t, f in sink.got if t > marks["t"] and isinstance(f, OutputImageRawFrame)]
    lips = [m["lips"] for m in shown if m["speaking"]]
    assert len(lips) > 40 and lips.count("text") > 0.8 * len(lips), lips
    assert released(server_url)
