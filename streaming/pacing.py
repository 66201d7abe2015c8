"""The pure core of a session's outgoing media: when each packet goes out, what it carries, and
its timestamp. No asyncio, no aiortc: ``tracks`` wires these to the network.

Media time is the engine's: 16 kHz samples from the session's start (``Output.pts``). Wall time
enters in one place, ``Pacer.anchor``: the clock time at which sample 0 plays out, set from the
first frame the engine publishes (its due time, plus ``margin`` of slack for a late tick). From
there every packet's send time is computed from integers:

- video slot k (frame k) goes out at ``anchor + k * 640 / 16000``, RTP timestamp ``k * 3600``
  (90 kHz);
- audio slot j (20 ms) goes out at ``anchor + j * 320 / 16000``, carrying 48 kHz samples
  [960 j, 960 j + 960), RTP timestamp ``960 j``.

So both timestamps are sample counts of the one session clock and cannot drift apart. Both tracks
begin at one frame boundary, ``Pacer.start`` (chosen when the first of them asks for a packet), so
a receiver that measures each stream from its first packet finds them aligned too.

Overflow and lateness policies:
- ``VideoOut`` keeps the newest ``keep`` frames (DROP_OLDEST). A slot whose frame has not arrived
  repeats the newest earlier one (``repeated``); a video sender that falls more than a frame behind
  the clock skips to the current slot (``Pacer.video_slot``): late frames are skipped, never queued.
- ``AudioOut`` keeps ``keep_s`` of 16 kHz audio (DROP_OLDEST) and never skips a sample: audio
  timestamps are continuous. Samples that have not arrived when their packet must go are sent as
  silence (``underrun``) and ignored if they come later."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from posetalk.engine.clock import FRAME, SAMPLE_RATE

VIDEO_CLOCK = 90_000  # RTP clock rate of video
AUDIO_RATE = 48_000  # WebRTC's audio rate (Opus)
UP = AUDIO_RATE // SAMPLE_RATE  # 3: 48 kHz samples per 16 kHz sample
VIDEO_TICKS = FRAME * VIDEO_CLOCK // SAMPLE_RATE  # 3600: 90 kHz ticks per frame
AUDIO_SLOT = 320  # 16 kHz samples per 20 ms audio packet
AUDIO_PACKET = AUDIO_SLOT * UP  # 960 samples at 48 kHz


@dataclass
class Pacer:
    """Where media time meets the clock, shared by a session's video and audio tracks."""

    margin: float = 0.04  # seconds between a frame's due time (engine) and its send time
    anchor: float | None = None  # clock time at which 16 kHz sample 0 goes out
    start: int | None = None  # 16 kHz position where both tracks begin (a frame boundary)

    def on_output(self, pts: int, due: float) -> None:
        """Learn the anchor from the first frame the engine publishes."""
        if self.anchor is None:
            self.anchor = due - pts / SAMPLE_RATE + self.margin

    def time_of(self, pos: int) -> float:
        """Clock time at which 16 kHz position ``pos`` goes out."""
        assert self.anchor is not None, "no frame seen yet"
        return self.anchor + pos / SAMPLE_RATE

    def position(self, t: float) -> float:
        """16 kHz position going out at clock time ``t``."""
        assert self.anchor is not None, "no frame seen yet"
        return (t - self.anchor) * SAMPLE_RATE

    def begin(self, now: float) -> int:
        """The tracks' common start: the first frame boundary at or after ``now`` (decided once)."""
        if self.start is None:
            self.start = max(0, math.ceil(self.position(now) / FRAME - 1e-9)) * FRAME
        return self.start

    def video_slot(self, last: int | None, now: float) -> int:
        """The next video slot: the first one at the start; after that the one after ``last``,
        or the slot playing now when that is later (the sender fell behind: skip, don't queue)."""
        first = self.begin(now) // FRAME
        if last is None:
            return first
        playing = math.floor(self.position(now) / FRAME + 1e-9)
        return max(last + 1, playing, first)

    def audio_slot(self, last: int | None, now: float) -> int:
        """The next audio slot: consecutive from the start, never skipped."""
        return self.begin(now) // AUDIO_SLOT if last is None else last + 1


class VideoOut:
    """The newest frames by index, and what each video slot shows."""

    def __init__(self, keep: int = 8, placeholder: np.ndarray | None = None) -> None:
        self.keep = keep
        self.frames: dict[int, np.ndarray] = {}
        self.last: np.ndarray | None = placeholder  # shown until a frame arrives
        self.shown = -1  # index of the frame ``last`` is
        self.repeated = 0  # slots that repeated an earlier frame
        self.dropped = 0  # frames evicted unshown

    def put(self, index: int, image: np.ndarray | None) -> None:
        if image is None or index <= self.shown:
            return
        self.frames[index] = image
        while len(self.frames) > self.keep:
            self.frames.pop(min(self.frames))
            self.dropped += 1

    def clear(self) -> int:
        """Barge-in: drop the frames not shown yet (slots repeat the last one until new ones
        come); returns how many."""
        n = len(self.frames)
        self.frames.clear()
        return n

    def has(self, index: int) -> bool:
        return index in self.frames or any(k > index for k in self.frames)

    def take(self, slot: int) -> tuple[np.ndarray | None, bool]:
        """The picture for ``slot`` and whether it repeats an earlier one. Frames older than the
        slot are released."""
        image = self.frames.get(slot)
        older = [k for k in self.frames if k < slot]
        if image is None and older:  # the slot's own frame is missing: the newest before it
            image = self.frames[max(older)]
        for k in older:
            del self.frames[k]
        if slot in self.frames:
            del self.frames[slot]
            self.last, self.shown = image, slot
            return image, False
        if image is not None:
            self.last, self.shown = image, max(older)
        self.repeated += 1
        return self.last, True


class AudioOut:
    """48 kHz audio by position in (the frames' full-band ``Output.wide``), 20 ms int16 packets
    out (``packet``): what came in is what is sent, no resampling on the way out."""

    def __init__(self, keep_s: float = 2.0) -> None:
        self.keep = round(keep_s * AUDIO_RATE)
        self.chunks: dict[int, np.ndarray] = {}  # 48 kHz position -> float32 samples
        self.end = 0  # end of the newest chunk
        self.fed: int | None = None  # next 48 kHz position to send
        self.underrun = 0  # 48 kHz samples sent as silence because they came too late

    def put(self, pos: int, samples: np.ndarray) -> None:
        if self.fed is not None and pos + len(samples) <= self.fed:
            return  # too late: its packet went out with silence
        self.chunks[pos] = np.asarray(samples, np.float32)
        self.end = max(self.end, pos + len(samples))
        floor = max(self.end - self.keep, self.fed or 0)  # DROP_OLDEST past keep_s; what was sent is done
        for p in [p for p, c in self.chunks.items() if p + len(c) <= floor]:
            del self.chunks[p]

    def silence_pending(self) -> int:
        """Barge-in: everything not yet sent becomes silence (it stays "arrived", so no packet
        waits for it); returns the samples silenced."""
        floor = self.fed or 0
        n = 0
        for p, c in list(self.chunks.items()):
            keep = max(0, min(len(c), floor - p))
            if keep < len(c):  # a new array: the chunk is the engine's Output.wide, shared with other sinks
                n += len(c) - keep
                self.chunks[p] = np.concatenate([c[:keep], np.zeros(len(c) - keep, np.float32)])
        return n

    def needed(self, slot: int) -> int:
        """The 48 kHz position up to which input must be in to build ``slot`` without silence."""
        return (slot + 1) * AUDIO_PACKET

    def ready(self, slot: int) -> bool:
        """Every sample ``slot`` needs is in (or was given up on)."""
        start = self.fed if self.fed is not None else slot * AUDIO_PACKET
        return self._covered(start, self.needed(slot))

    def _covered(self, a: int, b: int) -> bool:
        pos = a
        while pos < b:
            nxt = [p + len(c) for p, c in self.chunks.items() if p <= pos < p + len(c)]
            if not nxt:
                return False
            pos = max(nxt)
        return True

    def _read(self, a: int, b: int) -> np.ndarray:
        """48 kHz samples [a, b), silence where none arrived."""
        out = np.zeros(b - a, np.float32)
        have = np.zeros(b - a, bool)
        for p, c in self.chunks.items():
            lo, hi = max(a, p), min(b, p + len(c))
            if lo < hi:
                out[lo - a : hi - a] = c[lo - p : hi - p]
                have[lo - a : hi - a] = True
        self.underrun += int((~have).sum())
        return out

    def packet(self, slot: int) -> np.ndarray:
        """48 kHz samples [960 slot, 960 slot + 960) as int16, with silence for whatever has not
        arrived (the caller waits for ``ready`` first, as long as it can). Slots must come in order."""
        first = slot * AUDIO_PACKET
        if self.fed is None:
            self.fed = first
        if first != self.fed:
            raise ValueError(f"audio slots must be consecutive: expected {self.fed // AUDIO_PACKET}, got {slot}")
        samples = self._read(first, first + AUDIO_PACKET)
        self.fed = first + AUDIO_PACKET
        for p in [p for p, c in self.chunks.items() if p + len(c) <= self.fed]:
            del self.chunks[p]
        pcm: np.ndarray = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
        return pcm
