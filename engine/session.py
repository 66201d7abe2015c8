"""A live session: audio and control in, frames with their audio out.

The API has the shape voice-agent frameworks use for avatar outputs::

    session = await engine.open_session(avatar, prompt="calm, nods now and then")
    session.push_audio(pcm, 48000)        # int16 or float32, any rate, as it arrives
    session.flush()                       # end of the utterance: show all of it, then listen
    session.interrupt()                   # barge-in: drop what is buffered, fall silent now
    session.set_prompt("energetic")       # head style, from the next hop (8 frames) after encoding
    session.push_words([("hello", 0.0, 0.4), ("there", 0.45, 0.8)])  # timed words of the audio
                                          # pushed next (s from its first sample): lips from them
    session.push_text("Hello there.")     # or the words alone: aligned once their audio is in
    async for out in session.frames():    # 25 fps, in real time, forever (until closed)
        out.video, out.audio, out.pts, out.end_of_speech

Every method but ``frames`` and ``close`` is synchronous, cheap, and must be called on the
engine's event loop (from another thread use ``loop.call_soon_threadsafe``): they only buffer
or flag, and the scheduler acts on them at its next tick, control before data."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from posetalk.engine.audio_input import WIDE_FRAME, AudioInput
from posetalk.engine.clock import FRAME, SAMPLE_RATE, Clock
from posetalk.engine.errors import SessionClosedError
from posetalk.engine.pipeline import SessionPipeline
from posetalk.engine.stats import Stats
from posetalk.engine.words import Aligner
from posetalk.models.errors import InputError
from posetalk.models.motion import words as W

if TYPE_CHECKING:
    from posetalk.models.render import Avatar, Renderer

log = logging.getLogger(__name__)


def _words(words: object) -> list[W.Word]:
    """``push_words``'s argument as checked Words (InputError otherwise)."""
    if not isinstance(words, (list, tuple)) or not words:
        raise InputError("words must be a non-empty list of (word, start_s, end_s)")
    out = []
    for w in words:
        if isinstance(w, W.Word):
            out.append(w)
            continue
        try:
            text, start, end = w  # type: ignore[misc]
            out.append(W.Word(str(text), float(start), float(end)))
        except (TypeError, ValueError) as e:
            raise InputError(f"each word must be (word, start_s, end_s), got {w!r}") from e
    W.check_words(out)
    return out


@dataclass(frozen=True)
class Output:
    """One frame of a session's output.

    pts: the frame's first audio sample, counted at 16 kHz from the session's start (frame n has
        pts n * 640; a gap in pts means frames were dropped, see the overflow policies).
    video: (H, W, 3) uint8 RGB, or None for a session without an avatar (motion only).
    audio: (640,) float32 at 16 kHz, [-1, 1]: exactly the input samples of this frame (zeros where
        no audio was pushed), so playing ``audio`` with ``video`` is in sync by construction.
    end_of_speech: True on the first frame after speech ended (VAD hangover out, a flushed
        utterance shown in full, or an interrupt).
    speaking: the voice-activity gate's state for this frame (False: listening).
    expression: (21,) the ARKit blendshape weights rendered (models.face.params order and names).
    pose (6,), gaze (2,): head motion relative to the portrait's own (radians; tx, ty, scale).
    head_source: what made the head motion ("procedural:calm", "pose model:'nods'").
    lips: what made the mouth: "audio", "text" (known words mixed in), "audio (text disagrees)".
    wide: (1920,) float32 at 48 kHz: the same 40 ms of input at full band (``audio`` is the
        models' 16 kHz copy), for listeners: what the WebRTC track and recordings play.
    repeated: the renderer was late for this frame: ``video`` is the previous frame's picture.
    due: the engine clock's time at which the frame was due."""

    pts: int
    video: np.ndarray | None
    audio: np.ndarray
    end_of_speech: bool
    speaking: bool
    expression: np.ndarray
    pose: np.ndarray
    gaze: np.ndarray
    head_source: str
    repeated: bool
    due: float
    lips: str = "audio"
    wide: np.ndarray = field(default_factory=lambda: np.zeros(WIDE_FRAME, np.float32))

    sample_rate = SAMPLE_RATE  # of ``audio`` and of ``pts``

    @property
    def index(self) -> int:
        """Frame number in the session."""
        return self.pts // FRAME


class OutputQueue:
    """A session's outgoing frames. Bounded; overflow policy DROP_OLDEST (counted in
    ``dropped``): a consumer that falls behind gets the newest frames, never a growing lag."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"output queue size must be ≥ 1, got {maxsize}")
        self.maxsize = maxsize
        self.items: deque[Output] = deque()
        self.dropped = 0
        self.closed = False
        self._ready = asyncio.Event()

    def put(self, item: Output) -> None:
        if len(self.items) >= self.maxsize:
            self.items.popleft()
            self.dropped += 1
        self.items.append(item)
        self._ready.set()

    def clear(self) -> int:
        n = len(self.items)
        self.items.clear()
        return n

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def get(self) -> Output | None:
        """The oldest frame, waiting for one; None once closed and empty."""
        while not self.items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self.items.popleft()


@dataclass(frozen=True)
class SessionStats:
    """Counters of one session (samples are 16 kHz)."""

    frames: int  # frames published
    repeated: int  # frames published with the previous picture (renderer late)
    video_dropped: int  # frames dropped from the output queue (consumer behind), or discarded by interrupt
    input_dropped: int  # samples dropped from the input ring (pushed too far ahead)
    input_discarded: int  # samples discarded by interrupt()
    buffered_s: float  # audio pushed and not yet shown


class Session:
    """Created by ``Engine.open_session``; see the module docstring for the API."""

    def __init__(
        self, session_id: str, avatar: Avatar | None, renderer: Renderer | None, pipeline: SessionPipeline,
        prompt: str, clock: Clock, first_tick: int, input_buffer_s: float, output_queue: int,
        on_close: Callable[[Session], Awaitable[None]], stats: Stats | None = None, aligner: Aligner | None = None,
    ) -> None:  # fmt: skip
        self.id = session_id
        self.avatar = avatar
        self.renderer = renderer
        self.pipeline = pipeline
        self.input = AudioInput(input_buffer_s)
        self.output = OutputQueue(output_queue)
        self.first_tick = first_tick  # the engine tick that shows frame 0
        self.slots_taken = 0
        self.frames_out = 0
        self.repeated = 0
        self.epoch = 0  # bumped by interrupt(): work started before it is not shown
        self.pending_prompt: str | None = None
        self.pending_interrupt = False
        # Until the first frame is rendered, a repeat shows the portrait as it is.
        self.last_image: np.ndarray | None = avatar.image if avatar is not None else None
        self._stats = stats
        self._prompt = prompt
        self._clock = clock
        self._on_close = on_close
        self._closed = False
        self._pending_text: tuple[int, str] | None = None  # push_text waiting for its audio
        self._utterance: int | None = None  # input position where the utterance being pushed began
        self._jobs: list[asyncio.Future[None]] = []  # alignments and prompt encodings under way
        self._prompt_serial = 0
        self._aligner = aligner or Aligner()  # the engine passes its own; a lone session gets one
        self.text_errors: list[str] = []  # why pushed texts were not aligned

    def _spawn(self, job: Awaitable[None]) -> None:
        """Run ``job`` beside the engine; ``settled`` waits for it (finished ones are let go)."""
        self._jobs = [j for j in self._jobs if not j.done()]
        self._jobs.append(asyncio.ensure_future(job))

    async def settled(self) -> None:
        """Wait for the alignments and prompt encodings started so far (for tests and offline
        drivers)."""
        pending, self._jobs = self._jobs, []
        await asyncio.gather(*pending)

    @property
    def prompt(self) -> str:
        return self._prompt

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stats(self) -> SessionStats:
        return SessionStats(self.frames_out, self.repeated, self.output.dropped, self.input.dropped,
                            self.input.discarded, self.input.buffered / SAMPLE_RATE)  # fmt: skip

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError(f"session {self.id} is closed")

    def push_audio(self, pcm: object, sample_rate: int, *, channels: int = 1) -> None:
        """Queue speech: a NumPy array of int16 or float32 samples, (samples,) or (samples,
        channels), or int16 bytes interleaved with ``channels``; any rate from 8 to 192 kHz
        (resampled to 16 kHz). Raises AudioInputError for unusable PCM (nothing is queued then)."""
        self._check_open()
        t0 = time.perf_counter()
        if self._utterance is None:
            self._utterance = self.input.ring.written
        self.input.push(pcm, sample_rate, self._clock.now(), channels)
        if self._stats is not None:
            self._stats.record("input", time.perf_counter() - t0)

    def flush(self) -> None:
        """The utterance is complete: what is buffered is shown to its end (no waiting for more
        audio), then the session listens; the frame after it has ``end_of_speech``."""
        self._check_open()
        self.input.flush(self._clock.now())
        self._utterance = None
        self._align_pending()

    def push_words(self, words: object, *, in_utterance: bool = False) -> None:
        """The words of the audio pushed next, timed: ``[(word, start_s, end_s), ...]`` (or
        ``Word``s), seconds from that audio's first sample, as TTS services report them. The
        mouth takes their shapes from the first frame they cover; once their audio is complete
        they are aligned like ``push_text``, and stretches the audio does not say go back to
        audio-only lips.

        ``in_utterance``: the times count from the first sample of the utterance being pushed
        (since the last ``flush`` or ``interrupt``) instead, for words that come while their
        audio is already streaming in, as word-timestamp TTS services send them; pushed again,
        they replace those pushed before for the same utterance (send all of its words so far
        each time). Raises InputError for unusable words (nothing changes then)."""
        self._check_open()
        ws = _words(words)
        origin = self.input.ring.written
        if in_utterance and self._utterance is not None:
            origin = self._utterance
        self._aligner.warm()
        phones = W.phones_from_words(ws, ws[-1].end)
        if self._pending_text is None or self._pending_text[0] != origin:
            self._align_pending()
        self.pipeline.words.add(origin, phones)
        self._pending_text = (origin, " ".join(w.text for w in ws))  # checked once heard

    def push_text(self, text: object) -> None:
        """The words of the audio pushed next, untimed (UTF-8 ``str`` or ``bytes``): aligned to
        that audio once it is complete (at ``flush()`` or the next ``push_text`` /
        ``push_words``); frames shown before the alignment lands keep audio-only lips, so push
        whole sentences ahead of playback (alignment and its confidence take about 0.2-0.3 s per
        second of speech, in the engine's aligner process).
        Raises InputError for empty or undecodable text."""
        self._check_open()
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"text is not UTF-8 ({e.reason} at byte {e.start})") from e
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InputError("text is empty")
        self._aligner.warm()
        self._align_pending()
        self._pending_text = (self.input.ring.written, text)

    def _align_pending(self) -> None:
        """Align the pushed text whose audio is now complete (still in the input ring, shown
        or not), in the engine's aligner process."""
        if self._pending_text is None:
            return
        (origin, text), self._pending_text = self._pending_text, None
        ring = self.input.ring
        if ring.written <= origin:
            return
        audio = ring.peek(origin, ring.written - origin)

        async def run() -> None:
            try:
                phones, trusted = await self._aligner.align(audio, text)
                self.pipeline.words.add(origin, phones, trusted)
            except Exception as e:  # the lips stay audio-only; the session goes on
                log.warning("session %s: text not aligned: %s", self.id, e)
                self.text_errors.append(str(e))

        self._spawn(run())

    def interrupt(self) -> None:
        """Stop speaking now: buffered audio is discarded, frames not yet taken from ``frames()``
        are dropped, and from the next tick on (40 ms) frames are silent with the mouth closed."""
        self._check_open()
        self.input.clear()
        self._pending_text = None
        self._utterance = None
        self.output.dropped += self.output.clear()
        self.epoch += 1
        self.pending_interrupt = True

    def set_prompt(self, text: str) -> None:
        """A new head-motion prompt; it takes effect at the first pose hop after it is encoded
        (the sentence encoder runs in a thread, never inside the engine's tick; a later prompt
        set meanwhile wins)."""
        self._check_open()
        if not isinstance(text, str):
            raise TypeError(f"prompt must be a string, got {type(text).__name__}")
        self._prompt = text
        self._prompt_serial += 1
        serial, head = self._prompt_serial, self.pipeline.head

        async def encode() -> None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, head.prepare_prompt, text)
            except Exception as e:  # the head encodes it in the tick then, as before
                log.warning("session %s: prompt not encoded ahead: %s", self.id, e)
            if serial == self._prompt_serial and not self._closed:
                self.pending_prompt = text

        self._spawn(encode())

    async def frames(self) -> AsyncIterator[Output]:
        """Frames as they fall due, 25 a second, until the session closes. One consumer."""
        while True:
            item = await self.output.get()
            if item is None:
                return
            yield item

    def drain(self) -> list[Output]:
        """The frames queued now, without waiting (for polling consumers and tests)."""
        items = list(self.output.items)
        self.output.items.clear()
        return items

    async def close(self) -> None:
        """Leave the engine: its frames() ends, and everything it held is released."""
        if self._closed:
            return
        self._closed = True
        self.output.close()
        await self._on_close(self)
        self.renderer = None
        self.last_image = None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
