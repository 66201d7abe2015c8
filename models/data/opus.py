"""An Opus round trip through PyAV (libopus): what a WebRTC call does to the audio, time-aligned.

16 kHz → 48 kHz (zero-phase polyphase resampling, no delay) → libopus encoder (VoIP mode, 20 ms
frames, the asked-for bitrate) → libopus decoder → 16 kHz. The decoder is fed bare packets, as a
WebRTC receiver is (no OpusHead), so its output lags the input by the encoder's algorithmic delay
(the "pre-skip": 2.5 ms look-ahead + 4 ms SILK delay compensation = 312 samples at 48 kHz in
libopus). That lag is *measured* once per bitrate by sending a probe through the same chain and
cross-correlating, then cut off, so output sample i lines up with input sample i.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import av
import numpy as np
from posetalk.models.data.phones import SAMPLE_RATE
from scipy import signal

OPUS_RATE = 48_000
FRAME = OPUS_RATE // 50  # 20 ms
UP = OPUS_RATE // SAMPLE_RATE
MAX_DELAY = OPUS_RATE // 20  # 50 ms: the most we search for (libopus needs 6.5 ms)
BITRATE_RANGE = (12_000, 64_000)


def _codec_pass(x48: np.ndarray, bitrate: int) -> tuple[np.ndarray, int]:
    """Encode float ``x48`` (48 kHz mono) and decode it again. Returns the decoded samples (as many as
    came out, delay included) and the pre-skip the encoder wrote in its OpusHead (for the record)."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = OPUS_RATE
    enc.layout = "mono"
    enc.format = "flt"
    enc.bit_rate = int(bitrate)
    enc.options = {"application": "voip", "frame_duration": "20", "vbr": "on"}
    enc.open()
    dec = av.CodecContext.create("libopus", "r")
    dec.sample_rate = OPUS_RATE
    dec.layout = "mono"
    # Whole frames, then two frames of silence so that the delayed tail of the input comes out too.
    x = np.pad(np.clip(x48, -1, 1).astype(np.float32), (0, (-len(x48)) % FRAME + 2 * FRAME))
    out: list[np.ndarray] = []
    packets = []
    for start in range(0, len(x), FRAME):
        frame = av.AudioFrame.from_ndarray(x[None, start : start + FRAME], format="flt", layout="mono")
        frame.sample_rate = OPUS_RATE
        frame.pts = start
        frame.time_base = Fraction(1, OPUS_RATE)
        packets += enc.encode(frame)
    packets += enc.encode(None)
    for packet in packets:
        for decoded in dec.decode(packet):
            out.append(_to_float(decoded.to_ndarray()))
    for decoded in dec.decode(None):
        out.append(_to_float(decoded.to_ndarray()))
    head = bytes(enc.extradata or b"")
    pre_skip = int.from_bytes(head[10:12], "little") if head.startswith(b"OpusHead") else -1
    return (np.concatenate(out) if out else np.zeros(0, np.float32)), pre_skip


def _to_float(a: np.ndarray) -> np.ndarray:
    a = a.reshape(-1)
    return a.astype(np.float32) / 32768 if a.dtype == np.int16 else a.astype(np.float32)


def _probe() -> np.ndarray:
    """0.6 s at 48 kHz: speech-band chirps and decaying bursts at uneven spacing, so that the
    cross-correlation has one clear peak (no periodicity that a lag could hide behind)."""
    rng = np.random.default_rng(1234)
    x = np.zeros(int(0.6 * OPUS_RATE))
    t = np.arange(int(0.04 * OPUS_RATE)) / OPUS_RATE
    chirp = signal.chirp(t, 200, t[-1], 3500) * np.hanning(len(t))
    for i, start in enumerate((0.03, 0.11, 0.26, 0.37, 0.52)):
        pos = int(start * OPUS_RATE)
        if i % 2:
            burst = rng.standard_normal(len(t)) * np.exp(-t / 0.008)
            x[pos : pos + len(t)] += 0.4 * signal.sosfilt(
                signal.butter(2, [200, 4000], "band", fs=OPUS_RATE, output="sos"), burst
            )
        else:
            x[pos : pos + len(t)] += 0.4 * chirp
    return x


@functools.lru_cache(maxsize=64)
def codec_delay(bitrate: int) -> tuple[int, int]:
    """(measured lag, OpusHead pre-skip) in 48 kHz samples for the chain at ``bitrate``."""
    probe = _probe()
    decoded, pre_skip = _codec_pass(probe, bitrate)
    y = np.pad(decoded, (0, max(0, len(probe) + MAX_DELAY - len(decoded))))
    corr = signal.correlate(y[: len(probe) + MAX_DELAY], probe, mode="valid", method="fft")  # lags 0…MAX_DELAY
    return int(np.argmax(corr)), pre_skip


def opus_roundtrip(audio: np.ndarray, rng: np.random.Generator, bitrate: int | None = None) -> np.ndarray:
    """``audio`` (16 kHz mono float) after Opus at ``bitrate`` bit/s (default: log-uniform 12–64 kbps from
    ``rng``), the codec delay removed: same length, dtype and alignment as the input."""
    x = np.asarray(audio)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected 1-D float audio, got {x.dtype} of shape {x.shape}")
    if bitrate is None:
        bitrate = pick_bitrate(rng)
    if x.size == 0:
        return x.copy()
    x48 = signal.resample_poly(x.astype(np.float64), UP, 1)
    lag, _ = codec_delay(int(bitrate))
    decoded, _ = _codec_pass(x48, int(bitrate))
    y48 = np.pad(decoded[lag:], (0, max(0, len(x48) - len(decoded) + lag)))[: len(x48)]
    y = signal.resample_poly(y48.astype(np.float64), 1, UP)[: x.size]
    return np.clip(y, -1, 1).astype(x.dtype)


def pick_bitrate(rng: np.random.Generator) -> int:
    """A bitrate, log-uniform over :data:`BITRATE_RANGE`, rounded to 1 kbps."""
    lo, hi = np.log(BITRATE_RANGE[0]), np.log(BITRATE_RANGE[1])
    return int(round(np.exp(rng.uniform(lo, hi)) / 1000)) * 1000
