"""A session's media on the network: one consumer of ``Session.frames()`` that fans each frame out
to the WebRTC tracks and to any number of sinks, and the aiortc tracks that pace themselves.

``SessionMedia`` runs the pump (the session's single consumer) and holds the pure cores of
``pacing``: a ``Pacer`` shared by both tracks, ``VideoOut`` and ``AudioOut``. ``SessionVideoTrack``
and ``SessionAudioTrack`` are pulled by aiortc's senders: each ``recv()`` computes its slot from
the clock, sleeps until the slot's time, waits at most ``grace`` more for the slot's media, and
returns it stamped with the slot's sample count (see ``pacing`` for the policies). The pacing
clock is the engine's, so the tracks and the engine agree on time.

``pump_microphone`` is the other direction: a remote audio track (a browser's microphone) into
``Session.push_audio`` at whatever rate and layout it arrives (the session resamples to 16 kHz);
it also notices a microphone that has stopped (``MicrophoneIdleError``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from posetalk.engine import Output, Session
from posetalk.engine.clock import FRAME, Clock
from posetalk.models.errors import PosetalkError
from posetalk.streaming.errors import StreamingError
from posetalk.streaming.pacing import (
    AUDIO_PACKET,
    AUDIO_RATE,
    AUDIO_SLOT,
    UP,
    VIDEO_CLOCK,
    VIDEO_TICKS,
    AudioOut,
    Pacer,
    VideoOut,
)

if TYPE_CHECKING:
    from aiortc.mediastreams import MediaStreamTrack as RemoteTrack

log = logging.getLogger(__name__)

Sink = Callable[[Output], None]
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK)
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)


class SessionMedia:
    """The one consumer of a session's frames: feeds the tracks' buffers and every sink.

    ``margin``: seconds between a frame's due time and its send time (slack for a late tick).
    ``grace``: how much longer the video track waits for a late frame before it repeats the
    previous picture; ``audio_grace``: how long the audio track waits for late audio before it
    sends silence (longer: a gap in the sound is far more noticeable than a repeated picture, and
    the receiver's jitter buffer absorbs a late packet)."""

    def __init__(self, session: Session, clock: Clock, *, margin: float = 0.04, grace: float = 0.04,
                 audio_grace: float = 0.12) -> None:  # fmt: skip
        self.session = session
        self.clock = clock
        self.grace = grace
        self.audio_grace = audio_grace
        self.pacer = Pacer(margin)
        placeholder = session.avatar.image if session.avatar is not None else None
        self.video = VideoOut(placeholder=placeholder)
        self.audio = AudioOut()
        self.sinks: list[Sink] = []
        self.frames_in = 0
        self.video_sent = 0
        self.video_skipped = 0
        self.audio_sent = 0
        self.last_output: Output | None = None
        self._sent_times: deque[float] = deque(maxlen=50)
        self._changed = asyncio.Event()
        self._ended = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Consume the session's frames (the session's own media; a viewer's is fed as a sink)."""
        if self._task is None:
            self._task = asyncio.create_task(self._pump(), name=f"posetalk-media-{self.session.id}")

    async def _pump(self) -> None:
        try:
            async for out in self.session.frames():
                self.put(out)
        finally:
            self._ended = True
            self._notify()

    def put(self, out: Output) -> None:
        """One published frame (the pump calls this; tests may call it by hand)."""
        self.frames_in += 1
        self.last_output = out
        self.pacer.on_output(out.pts, out.due)
        self.video.put(out.index, out.video)
        self.audio.put(out.pts * UP, out.wide)  # full band, as it came in
        for sink in list(self.sinks):
            try:
                sink(out)
            except Exception:  # one broken sink must not stop the others or the tracks
                log.exception("session %s: a sink failed; removing it", self.session.id)
                self.sinks.remove(sink)
        self._notify()

    def __call__(self, out: Output) -> None:
        """As a sink of another ``SessionMedia`` (a viewer of the same session): its frames."""
        self.put(out)

    def clear(self) -> None:
        """As a sink: the session was interrupted."""
        self.interrupt()

    def interrupt(self) -> None:
        """Barge-in, after ``Session.interrupt``: what the engine already published but has not
        gone out yet is dropped too (pictures repeat the last one shown, pending sound becomes
        silence), and every sink with a ``clear()`` method drops what it holds."""
        self.video.clear()
        self.audio.silence_pending()
        for sink in self.sinks:
            clear = getattr(sink, "clear", None)
            if callable(clear):
                clear()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, ready: Callable[[], bool], deadline: float | None) -> None:
        """Until ``ready()``, the media ends, or the clock passes ``deadline`` (None: no limit)."""
        while not ready() and not self._ended:
            event = self._changed
            if deadline is None:
                await event.wait()
                continue
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def slot_in(self, track: MediaStreamTrack, due: float, has: Callable[[], bool], grace: float) -> None:
        """Sleep until ``due``, then wait up to ``grace`` more for ``has()``; when the media has
        ended without it, stop ``track`` and raise MediaStreamError (the end of the stream)."""
        await self.clock.sleep_until(due)
        await self.wait(has, due + grace)
        if self._ended and not has():
            track.stop()
            raise MediaStreamError

    async def ready(self) -> None:
        """Until the first frame is in (the pacer's anchor is known); MediaStreamError if the
        session ends first."""
        await self.wait(lambda: self.pacer.anchor is not None, None)
        if self.pacer.anchor is None:
            raise MediaStreamError

    def sent_video(self, skipped: int) -> None:
        self.video_sent += 1
        self.video_skipped += skipped
        self._sent_times.append(time.monotonic())

    @property
    def send_fps(self) -> float:
        """Video frames sent per second, over the last 50."""
        t = self._sent_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 2 and t[-1] > t[0] else 0.0

    async def close(self) -> None:
        """Stop the pump (the session itself is closed by its owner)."""
        self._ended = True
        self._notify()
        self.sinks.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def pack_matte(rgba: np.ndarray) -> np.ndarray:
    """An RGBA frame (h, w, 4) as an opaque (h, 2w, 3) picture a video codec carries: the colour on
    the left, the matte as grey on the right (the overlay page puts them back together)."""
    h, w = rgba.shape[:2]
    out = np.empty((h, 2 * w, 3), np.uint8)
    out[:, :w] = rgba[..., :3]
    out[:, w:] = rgba[..., 3:4]
    return out


def flatten(rgba: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """An RGBA frame composited over the portrait's background plate: the picture a session without
    alpha shows."""
    import cv2

    a = rgba[..., 3].astype(np.float32) * (1 / 255)
    mixed: np.ndarray = cv2.blendLinear(np.ascontiguousarray(rgba[..., :3]), plate, a, 1 - a)
    return mixed


class SessionVideoTrack(MediaStreamTrack):
    """The avatar's video, 25 fps, RTP timestamp 3600 per frame of the session.

    A session that renders RGBA (opened with alpha) sends ``pack_matte`` pictures to a track made
    with ``matte=True`` (the overlay page's) and pictures flattened over the portrait's background
    to the others (the ordinary page looks the same either way)."""

    kind = "video"

    def __init__(self, media: SessionMedia, *, matte: bool = False) -> None:
        super().__init__()
        self._media = media
        self._matte = matte
        self._slot: int | None = None
        self._black: np.ndarray | None = None

    async def recv(self) -> av.VideoFrame:
        m = self._media
        if self.readyState != "live":
            raise MediaStreamError
        await m.ready()
        slot = m.pacer.video_slot(self._slot, m.clock.now())
        skipped = 0 if self._slot is None else slot - self._slot - 1
        await m.slot_in(self, m.pacer.time_of(slot * FRAME), lambda: m.video.has(slot), m.grace)
        image, _ = m.video.take(slot)
        if image is None:  # a session without a portrait: black frames keep the stream valid
            size = m.session.avatar.image.shape[0] if m.session.avatar is not None else 64
            self._black = self._black if self._black is not None else np.zeros((size, size, 3), np.uint8)
            image = self._black
        elif image.shape[2] == 4:
            avatar = m.session.avatar
            image = pack_matte(image) if self._matte or avatar is None else flatten(image, avatar.plate)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = slot * VIDEO_TICKS
        frame.time_base = VIDEO_TIME_BASE
        self._slot = slot
        m.sent_video(skipped)
        return frame


class SessionAudioTrack(MediaStreamTrack):
    """The session's delayed audio (the samples each frame was made from), 48 kHz mono int16 in
    20 ms frames; the timestamp is the 48 kHz sample count of the session."""

    kind = "audio"

    def __init__(self, media: SessionMedia) -> None:
        super().__init__()
        self._media = media
        self._slot: int | None = None

    async def recv(self) -> av.AudioFrame:
        m = self._media
        if self.readyState != "live":
            raise MediaStreamError
        await m.ready()
        slot = m.pacer.audio_slot(self._slot, m.clock.now())
        await m.slot_in(self, m.pacer.time_of(slot * AUDIO_SLOT), lambda: m.audio.ready(slot), m.audio_grace)
        pcm = m.audio.packet(slot)
        # Stereo with the same samples in both channels: aiortc's Opus encoder is stereo, and its
        # mono-to-stereo conversion pans at -3 dB (half the energy reached the listener).
        frame = av.AudioFrame.from_ndarray(np.repeat(pcm, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = slot * AUDIO_PACKET
        frame.time_base = AUDIO_TIME_BASE
        self._slot = slot
        m.audio_sent += 1
        return frame


def frame_pcm(frame: av.AudioFrame) -> tuple[np.ndarray, int]:
    """A decoded audio frame as (samples, channels) int16 or float32, and its rate."""
    channels = len(frame.layout.channels)
    name = frame.format.name
    if name not in ("s16", "s16p", "flt", "fltp"):  # other sample formats: convert to s16
        frame = av.AudioResampler(format="s16", layout=frame.layout.name, rate=frame.sample_rate).resample(frame)[0]
        name = "s16"
    a: np.ndarray = frame.to_ndarray()
    pcm = a.T if frame.format.is_planar else a.reshape(-1, channels)
    return np.ascontiguousarray(pcm), int(frame.sample_rate)


class MicrophoneIdleError(StreamingError):
    """A remote microphone that had been sending delivered nothing for the idle timeout.

    (Beside the pump rather than in models/errors.py: only the server, which asks for the
    timeout, ever sees it.)"""


async def pump_microphone(track: RemoteTrack, session: Session, idle_timeout_s: float | None = None) -> int:
    """Push a remote audio track into ``session`` until the track or the session ends; returns
    the number of frames pushed.

    With ``idle_timeout_s``: MicrophoneIdleError once no frame has come for that long after the
    first one. A connected browser's microphone sends a packet every 20 ms, silence included, so
    such a gap means the peer has gone (network lost, lid shut) long before ICE consent checks
    notice (~30 s). Before the first frame the wait is unbounded: connecting has its own limit."""
    n = 0
    loop = asyncio.get_running_loop()
    quiet = asyncio.timeout(None)  # rescheduled at every frame
    try:
        async with quiet:
            while not session.closed:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    break
                if idle_timeout_s is not None:
                    quiet.reschedule(loop.time() + idle_timeout_s)
                if not isinstance(frame, av.AudioFrame):
                    continue
                pcm, rate = frame_pcm(frame)
                try:
                    session.push_audio(pcm, rate)
                except PosetalkError as exc:  # closed meanwhile, or unusable audio: stop listening
                    log.info("session %s: microphone stopped: %s", session.id, exc)
                    break
                n += 1
    except TimeoutError:
        if quiet.expired():
            raise MicrophoneIdleError(f"no microphone audio for {idle_timeout_s:g} s (after {n} frames)") from None
        raise
    return n


def media_stats(media: SessionMedia) -> dict[str, Any]:
    """The figures a client shows for one session's outgoing media."""
    s = media.session.stats
    last = media.last_output
    return {
        "frames": s.frames,
        "send_fps": round(media.send_fps, 2),
        "video_sent": media.video_sent,
        "video_repeated": media.video.repeated,
        "video_skipped": media.video_skipped,
        "audio_packets": media.audio_sent,
        "audio_underrun_ms": round(media.audio.underrun / 48.0, 1),
        "engine_repeated": s.repeated,
        "input_dropped": s.input_dropped,
        "buffered_s": round(s.buffered_s, 3),
        "speaking": bool(last.speaking) if last is not None else False,
        "head": last.head_source if last is not None else "",
        "margin_ms": round(media.pacer.margin * 1000),
    }


__all__ = ["MicrophoneIdleError", "SessionAudioTrack", "SessionMedia", "SessionVideoTrack", "Sink", "flatten",
           "frame_pcm", "media_stats", "pack_matte", "pump_microphone"]  # fmt: skip
