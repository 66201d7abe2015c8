"""A session's audio input: PCM in any common form and rate -> a bounded 16 kHz ring (what the
models hear) and a 48 kHz ring beside it (what listeners hear: the input at full band) -> one
video frame's worth (640 and 1920 samples, the same 40 ms) at a time for the scheduler.

- ``to_mono`` checks and converts what callers push: int16 or float32 (float64 too) arrays,
  (samples,) or (samples, channels), or int16 bytes interleaved with ``channels`` (what voice-agent
  frameworks and WebRTC stacks hand around). Every problem is an ``AudioInputError`` that says
  what was wrong.
- ``AudioRing`` is the bounded buffer. Overflow policy: DROP_OLDEST, counted in ``dropped``. A
  push never blocks (it is called on the event loop, where blocking would stall every session);
  a producer that pushes far ahead of real time (a TTS engine) loses its oldest audio only past
  the capacity, ``Engine``'s ``input_buffer_s``, and can watch ``AudioInput.buffered``.
- ``AudioInput`` resamples each rate with its own ``StreamingResampler`` (a change of rate ends
  the previous stream), remembers when each chunk arrived (the latency statistics measure from
  there), and hands out ``Slot``s: a full frame of input, or silence when less than a frame is
  buffered (a partial frame waits for the rest, so late audio is delayed, never cut).

Not thread-safe: the engine calls it from its event loop only."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from posetalk.engine.clock import FRAME, SAMPLE_RATE
from posetalk.engine.resample import MAX_RATE, MIN_RATE, StreamingResampler
from posetalk.models.errors import AudioInputError

MAX_CHANNELS = 8
WIDE_RATE = 48_000  # what listeners get: the input at full band (WebRTC's rate)
WIDE = WIDE_RATE // SAMPLE_RATE  # 3
WIDE_FRAME = FRAME * WIDE  # 1920 samples a frame
FLOAT_PEAK_LIMIT = 8.0  # float PCM is on the [-1, 1] scale; far beyond it is int16 data in a float array
DROP_OLDEST = "drop-oldest"


def check_rate(sample_rate: object) -> int:
    """``sample_rate`` as an int, or AudioInputError unless it is a whole number of Hz in range."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float)):
        raise AudioInputError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}")
    rate = float(sample_rate)
    if not (np.isfinite(rate) and rate == int(rate) and MIN_RATE <= rate <= MAX_RATE):
        raise AudioInputError(
            f"sample_rate must be a whole number of Hz in {MIN_RATE}..{MAX_RATE}, got {sample_rate!r}"
        )
    return int(sample_rate)


def to_mono(pcm: object, channels: int = 1) -> np.ndarray:
    """PCM -> mono float32 on the [-1, 1] scale (channels averaged).

    ``pcm``: a NumPy array of int16 (scaled by 1/32768) or float32/float64 samples, shaped
    (samples,) or (samples, channels); a 1-D array or bytes-like object with ``channels`` > 1 is
    taken as interleaved; bytes are int16 little-endian."""
    if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
        raise AudioInputError(f"channels must be 1..{MAX_CHANNELS}, got {channels!r}")
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        raw = bytes(pcm)
        if len(raw) % (2 * channels):
            raise AudioInputError(
                f"PCM bytes must be whole int16 samples for {channels} channel(s): got {len(raw)} bytes"
            )
        a = np.frombuffer(raw, "<i2")
    elif isinstance(pcm, np.ndarray):
        a = pcm
    else:
        raise AudioInputError(f"PCM must be a NumPy array or int16 bytes, got {type(pcm).__name__}")
    if a.dtype == np.int16:
        samples = a.astype(np.float32) / 32768.0
    elif a.dtype in (np.float32, np.float64):
        samples = a.astype(np.float32)
        if not np.isfinite(samples).all():
            raise AudioInputError("PCM contains NaN or infinite samples")
        peak = float(np.abs(samples).max()) if samples.size else 0.0
        if peak > FLOAT_PEAK_LIMIT:
            raise AudioInputError(f"float PCM must be on the [-1, 1] scale, got a peak of {peak:g} (int16 values "
                                  "belong in an int16 array)")  # fmt: skip
    else:
        raise AudioInputError(f"PCM samples must be int16 or float32 (float64 accepted), got {a.dtype}")
    if samples.ndim == 1 and channels == 1:
        return np.ascontiguousarray(samples)  # already mono (the common case: skip the channel mean)
    if samples.ndim == 1:
        if len(samples) % channels:
            raise AudioInputError(f"{len(samples)} interleaved samples do not split into {channels} channels")
        samples = samples.reshape(-1, channels)
    elif samples.ndim == 2:
        n, c = samples.shape
        if c > MAX_CHANNELS and n <= MAX_CHANNELS:
            raise AudioInputError(
                f"PCM shaped {samples.shape} looks like (channels, samples); pass (samples, channels)"
            )
        if not 1 <= c <= MAX_CHANNELS or (channels != 1 and c != channels):
            raise AudioInputError(
                f"PCM must be (samples, channels) with 1..{MAX_CHANNELS} channels, got {samples.shape}"
            )
    else:
        raise AudioInputError(f"PCM must be (samples,) or (samples, channels), got shape {samples.shape}")
    return np.ascontiguousarray(samples.mean(axis=1, dtype=np.float64), np.float32)


class AudioRing:
    """A fixed-capacity FIFO of float32 samples. Writing past the capacity drops the oldest samples
    (counted in ``dropped``). Positions count every sample ever written (``written``) and every
    sample gone from the front by reading or dropping (``start``)."""

    def __init__(self, capacity: int) -> None:
        if capacity < FRAME:
            raise ValueError(f"capacity must hold at least one frame ({FRAME} samples), got {capacity}")
        self.data = np.zeros(capacity, np.float32)
        self.capacity = capacity
        self.start = 0  # position of the oldest sample held
        self.written = 0  # position after the newest
        self.dropped = 0

    @property
    def available(self) -> int:
        return self.written - self.start

    def write(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32).reshape(-1)
        if len(x) > self.capacity:  # only the newest capacity samples can stay
            self.dropped += len(x) - self.capacity
            self.start += len(x) - self.capacity
            self.written += len(x) - self.capacity
            x = x[-self.capacity :]
        over = self.available + len(x) - self.capacity
        if over > 0:
            self.dropped += over
            self.start += over
        i = self.written % self.capacity
        first = min(len(x), self.capacity - i)
        self.data[i : i + first] = x[:first]
        self.data[: len(x) - first] = x[first:]
        self.written += len(x)

    def read(self, n: int) -> np.ndarray:
        """The ``n`` oldest samples, removed (ValueError if fewer are held)."""
        if not 0 <= n <= self.available:
            raise ValueError(f"cannot read {n} samples: {self.available} held")
        i = self.start % self.capacity
        out = np.take(self.data, np.arange(i, i + n), mode="wrap")
        self.start += n
        return out

    def clear(self) -> int:
        """Empty the ring; returns how many samples were discarded."""
        n = self.available
        self.start = self.written
        return n

    def seek(self, pos: int) -> None:
        """Make ``pos`` the next position written: silence up to it, or the newest samples
        beyond it forgotten."""
        if pos > self.written:
            self.write(np.zeros(pos - self.written, np.float32))
        self.written = max(self.start, pos)

    def peek(self, pos: int, n: int, since: int | None = None) -> np.ndarray:
        """Samples [pos, pos + n) still in the buffer, read or not (or only from ``since`` on),
        silence where there are none; nothing is removed."""
        out = np.zeros(n, np.float32)
        lo = max(pos, self.written - self.capacity, since if since is not None else 0)
        hi = min(pos + n, self.written)
        if hi > lo:
            out[lo - pos : hi - pos] = np.take(self.data, np.arange(lo, hi) % self.capacity)
        return out

    def read_at(self, pos: int, n: int) -> np.ndarray:
        """Samples [pos, pos + n), silence where none are held; everything before pos + n is
        then gone."""
        out = self.peek(pos, n, since=self.start)
        self.start = min(max(self.start, pos + n), self.written)
        return out


@dataclass(frozen=True)
class Slot:
    """One frame's input: ``audio`` (640,) float32 at 16 kHz; ``real`` False for silence put in
    because no full frame was buffered; ``arrival`` the clock time the chunk completing it was
    pushed (None for silence); ``after_utterance`` True on the first slot after a flushed
    utterance's last sample; ``position`` where its audio starts among all the 16 kHz samples
    ever pushed (-1 for silence put in): known words are placed on that timeline; ``wide`` the
    same 40 ms as it came in, at 48 kHz: what listeners hear (the models hear ``audio``)."""

    audio: np.ndarray
    real: bool
    arrival: float | None
    after_utterance: bool = False
    position: int = -1
    wide: np.ndarray = field(default_factory=lambda: np.zeros(WIDE_FRAME, np.float32))  # 48 kHz, full band


class AudioInput:
    """push/flush/clear on the event loop; ``take_slot`` once per frame from the scheduler."""

    def __init__(self, capacity_s: float = 60.0) -> None:
        self.ring = AudioRing(max(FRAME, int(capacity_s * SAMPLE_RATE)))
        self.resampler: StreamingResampler | None = None
        # The same audio at 48 kHz, sample 3p the same instant as 16 kHz sample p: each stream
        # (a rate, until flush or a change of rate) starts both rings at matching positions.
        self.wide = AudioRing(self.ring.capacity * WIDE)
        self.wide_resampler: StreamingResampler | None = None
        self.arrivals: deque[tuple[int, float]] = deque()  # (end position of a push, its clock time)
        self.utterance_ends: deque[int] = deque()  # ring positions where flushed utterances end
        self.discarded = 0  # samples cleared by interrupt()

    @property
    def buffered(self) -> int:
        """16 kHz samples waiting to be shown."""
        return self.ring.available

    @property
    def dropped(self) -> int:
        return self.ring.dropped

    def push(self, pcm: object, sample_rate: object, now: float, channels: int = 1) -> int:
        """Convert, resample to 16 kHz and buffer; returns the 16 kHz samples added now (a
        resampler holds back a fraction of a millisecond until flush or more audio)."""
        rate = check_rate(sample_rate)
        mono = to_mono(pcm, channels)
        if self.resampler is None or self.resampler.rate_in != rate:
            if self.resampler is not None:  # a new rate: finish the old stream first
                self._finish(now)
            self.resampler = StreamingResampler(rate, SAMPLE_RATE)
            self.wide_resampler = StreamingResampler(rate, WIDE_RATE)
            self.wide.seek(self.ring.written * WIDE)
        assert self.wide_resampler is not None
        self.wide.write(self.wide_resampler.push(mono))
        return self._write(self.resampler.push(mono), now)

    def _finish(self, now: float) -> None:
        """End the current stream: both resamplers' tails written."""
        if self.resampler is not None and self.wide_resampler is not None:
            self.wide.write(self.wide_resampler.flush())
            self._write(self.resampler.flush(), now)
        self.resampler = self.wide_resampler = None

    def flush(self, now: float) -> None:
        """End the utterance: emit the resampler's tail and pad with silence to a whole frame, so
        nothing waits for audio that is not coming. The slot after it is ``after_utterance``."""
        self._finish(now)
        partial = self.ring.available % FRAME
        if partial:
            self._write(np.zeros(FRAME - partial, np.float32), now)
        if not self.utterance_ends or self.utterance_ends[-1] != self.ring.written:
            self.utterance_ends.append(self.ring.written)

    def clear(self) -> None:
        """Discard everything buffered (interrupt)."""
        self.discarded += self.ring.clear()
        self.wide.clear()
        self.resampler = self.wide_resampler = None  # the next push starts a stream afresh
        self.arrivals.clear()
        self.utterance_ends.clear()

    def take_slot(self) -> Slot:
        """The next frame of input, or silence when less than a frame is buffered."""
        after = bool(self.utterance_ends) and self.ring.start >= self.utterance_ends[0]
        if after:
            self.utterance_ends.popleft()
        if self.ring.available < FRAME:
            return Slot(np.zeros(FRAME, np.float32), False, None, after)
        end = self.ring.start + FRAME
        while self.arrivals and self.arrivals[0][0] < end:
            self.arrivals.popleft()
        arrival = self.arrivals[0][1] if self.arrivals else None
        position = self.ring.start
        wide = self.wide.read_at(position * WIDE, WIDE_FRAME)
        return Slot(self.ring.read(FRAME), True, arrival, after, position, wide)

    def _write(self, x: np.ndarray, now: float) -> int:
        if len(x):
            self.ring.write(x)
            self.arrivals.append((self.ring.written, now))
            while self.arrivals and self.arrivals[0][0] <= self.ring.start:  # dropped on overflow
                self.arrivals.popleft()
        return len(x)
