"""Audio in: any file PyAV (FFmpeg) can read, or PCM in memory, to the model's 16 kHz mono float32.

Downmixing is the plain mean of the channels; resampling is scipy's polyphase ``resample_poly``
(a linear-phase filter with its delay compensated, so the output is aligned with the input: sample
i at 16 kHz is the sound at time i / 16000 s). Encoder priming (mp3, AAC, Opus) is dropped by the
decoders; the first decoded sample is sample 0, whatever time stamp the container gives it.

``models.render.video.decode_audio`` reads video sound tracks for the corpus; it downmixes with
FFmpeg's resampler instead (stereo -> mono as (L + R) / sqrt(2), 3 dB above this mean for the same
sound on both channels) and keeps the track's start time, which video alignment needs.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.errors import AudioFileError
from posetalk.models.rates import SAMPLE_RATE

MAX_CHANNELS = 64  # more "channels" than this in (N, C) PCM is taken for a (C, N) mix-up


def _pcm_to_float(a: np.ndarray) -> np.ndarray:
    """Integer PCM to float32 on the [-1, 1) scale (uint8 is offset by 128); float stays as it is."""
    if a.dtype == np.uint8:
        return (a.astype(np.float32) - 128.0) / 128.0
    if a.dtype.kind in "iu":
        return (a.astype(np.float64) / (float(np.iinfo(a.dtype).max) + 1.0)).astype(np.float32)
    if a.dtype.kind == "f":
        return a.astype(np.float32, copy=False)
    raise TypeError(f"audio samples must be integer PCM or float, got {a.dtype}")


def _rate_ratio(sample_rate: float) -> tuple[int, int]:
    """(up, down), in lowest terms, taking ``sample_rate`` to 16 kHz."""
    try:
        rate = Fraction(sample_rate)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"sample rate must be a positive whole number of Hz, got {sample_rate!r}") from exc
    if rate <= 0 or rate.denominator != 1:
        raise ValueError(f"sample rate must be a positive whole number of Hz, got {sample_rate!r}")
    g = gcd(SAMPLE_RATE, rate.numerator)
    return SAMPLE_RATE // g, rate.numerator // g


def _resample(mono: np.ndarray, sample_rate: float) -> np.ndarray:
    up, down = _rate_ratio(sample_rate)
    if up == down or len(mono) == 0:
        return np.ascontiguousarray(mono, np.float32)
    from scipy.signal import resample_poly

    return np.ascontiguousarray(resample_poly(mono.astype(np.float32, copy=False), up, down), np.float32)


def to_16k(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """PCM in memory -> 16 kHz mono float32.

    ``audio``: (N,) mono or (N, C) channels last; int16 (or any integer PCM, uint8 offset by 128)
    scaled to [-1, 1), float taken as it is. Channels are averaged; the rate is converted with an
    aligned polyphase filter (output length ceil(N * 16000 / sample_rate)).
    Raises ValueError for a non-positive or fractional ``sample_rate`` or a bad shape.
    """
    _rate_ratio(sample_rate)  # validates the rate first, even for empty audio
    a = np.asarray(audio)
    if a.ndim == 2:
        if not 0 < a.shape[1] <= MAX_CHANNELS:
            raise ValueError(f"audio must be (samples, channels) with 1-{MAX_CHANNELS} channels; got {a.shape}")
        mono = _pcm_to_float(a).mean(axis=1, dtype=np.float64).astype(np.float32)
    elif a.ndim == 1:
        mono = _pcm_to_float(a).copy()
    else:
        raise ValueError(f"audio must be (samples,) or (samples, channels); got shape {a.shape}")
    return _resample(mono, sample_rate)


def _frame_mono(frame: Any) -> np.ndarray:
    """One decoded PyAV audio frame as mono float32: the mean of its channels."""
    a = frame.to_ndarray()
    channels = len(frame.layout.channels) or 1
    if not frame.format.is_planar:  # packed: (1, n * C), interleaved
        a = a.reshape(-1, channels).T
    mono: np.ndarray = _pcm_to_float(a).mean(axis=0, dtype=np.float64).astype(np.float32)
    return mono


def load_audio(path: str | Path) -> np.ndarray:
    """The first audio stream of ``path`` (wav, mp3, flac, ogg/opus, m4a, an mp4/webm/mov's sound
    track: anything FFmpeg reads) as 16 kHz mono float32, any rate and channel count (see the
    module docstring for how it is downmixed, resampled and aligned).

    Raises AudioFileError, naming the file, when it is missing, cannot be decoded, has no audio
    stream, or holds no samples.
    """
    import av

    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{path}: no such file")
    if not p.is_file():
        raise AudioFileError(f"{path}: not a file")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise AudioFileError(f"{path}: not a readable audio file ({exc.__class__.__name__})") from exc
    runs: list[tuple[int, list[np.ndarray]]] = []  # consecutive frames at one sample rate
    with container:
        if not container.streams.audio:
            raise AudioFileError(f"{path}: no audio stream in the file")
        stream = container.streams.audio[0]
        try:
            for frame in container.decode(stream):
                if frame.samples == 0:
                    continue
                if not runs or runs[-1][0] != frame.sample_rate:
                    runs.append((frame.sample_rate, []))
                runs[-1][1].append(_frame_mono(frame))
        except (av.error.FFmpegError, OSError) as exc:
            raise AudioFileError(f"{path}: the audio cannot be decoded ({exc.__class__.__name__})") from exc
        stated = None
        if stream.duration is not None and stream.time_base is not None:
            stated = round(float(stream.duration * stream.time_base) * SAMPLE_RATE)
    parts = [_resample(np.concatenate(frames), rate) for rate, frames in runs]
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if stated is not None and 0 < stated < len(samples):  # encoder padding the decoder kept
        samples = samples[:stated]
    if len(samples) == 0:
        raise AudioFileError(f"{path}: the audio stream is empty")
    return samples
