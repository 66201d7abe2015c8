"""Acoustic augmentation of 16 kHz mono float speech: what lets audio→lip models trained on clean
TTS speech cope with real microphones, rooms and WebRTC.

Every function draws its randomness from the ``numpy.random.Generator`` it is given (same seed,
same output) and, except :func:`speed`, keeps the length, dtype and time alignment of its input:
output sample i belongs to input sample i, no delay is added (filters are zero-phase, the room's
direct path is at lag 0, the Opus delay is measured and removed). The lip targets made from the
clean audio's phone timings therefore stay valid for the augmented audio.

- :func:`add_noise` (noise.py): white, pink, brown, hum, fan, babble, keyboard, music at 5–30 dB SNR
- :func:`reverb`: a synthetic room (early reflections + exponentially decaying tail, RT60 0.15–0.9 s)
- :func:`gain`: −12…+6 dB with a soft limiter instead of clipping
- :func:`pitch_shift`: ±2 semitones, same duration (resampling + WSOLA time-stretch back)
- :func:`telephone`: 300–3400 Hz, through 8 kHz, optionally μ-law
- :func:`opus_roundtrip` (opus.py): libopus at 12–64 kbps, as WebRTC does
- :func:`speed`: 0.9–1.1× by resampling; the only one that changes length, and it rescales the phones
- :func:`augment`: a random chain of the length-keeping ones, and a description of what it did
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction

import numpy as np
from posetalk.models.data.noise import NOISE_KINDS, active_power, add_noise
from posetalk.models.data.opus import opus_roundtrip, pick_bitrate
from posetalk.models.data.phones import SAMPLE_RATE, Phone
from posetalk.models.data.wsola import time_stretch
from scipy import signal

__all__ = [
    "NOISE_KINDS", "DEFAULT_P", "NOISE_WEIGHTS", "add_noise", "reverb", "room_impulse_response", "gain",
    "soft_limit", "pitch_shift", "speed", "telephone", "opus_roundtrip", "augment", "vowel", "speech_like",
    "bench_augment",
]  # fmt: skip

DEFAULT_P = {"pitch_shift": 0.3, "reverb": 0.4, "noise": 0.6, "gain": 0.5, "telephone": 0.1, "opus": 0.3}
NOISE_WEIGHTS = {  # how often augment() picks each kind of noise (relative)
    "white": 1, "pink": 1.5, "brown": 0.5, "hum": 0.7, "fan": 1.2, "babble": 1.5, "keyboard": 0.7, "music": 1,
}  # fmt: skip
LIMIT_KNEE = 0.8  # the soft limiter is linear below this and approaches 1.0 smoothly above it


def _check(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected 1-D float audio, got {x.dtype} of shape {x.shape}")
    return x


def soft_limit(x: np.ndarray, knee: float = LIMIT_KNEE) -> np.ndarray:
    """Identity below ``knee``, above it knee + (1 − knee)·u/(1 + u) with u the overshoot in units of
    1 − knee: slope 1 at the knee, approaching 1 slowly enough that loud peaks keep their shape rather
    than being flattened (a tanh would saturate in float32). Memoryless: no delay."""
    mag = np.abs(x)
    over = mag > knee
    if not over.any():
        return x
    y = x.copy()
    u = (mag[over] - knee) / (1 - knee)
    y[over] = np.sign(x[over]) * (knee + (1 - knee) * u / (1 + u))
    return y


def gain(audio: np.ndarray, rng: np.random.Generator, db: float | None = None) -> np.ndarray:
    """``audio`` times ``db`` decibels (default uniform −12…+6 dB), soft-limited rather than clipped."""
    x = _check(audio)
    if db is None:
        db = rng.uniform(-12, 6)
    return soft_limit(x.astype(np.float64) * 10 ** (db / 20)).astype(x.dtype)


def room_impulse_response(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """A synthetic room: 1.0 at lag 0 (the direct path), 4–12 early reflections in the first 3–40 ms,
    then Gaussian noise decaying by 60 dB in ``rt60`` seconds, faster above 2 kHz (air and walls absorb
    highs), scaled to a direct-to-reverberant ratio of 0–12 dB."""
    n = int(min(1.2 * rt60, 1.2) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail_start = rng.uniform(0.003, 0.012)
    noise = rng.standard_normal(n)
    lows = signal.sosfilt(signal.butter(2, 2000, "low", fs=SAMPLE_RATE, output="sos"), noise)
    highs = noise - lows
    hf_rt60 = rt60 * rng.uniform(0.4, 0.8)
    tail = lows * np.exp(-6.9 * t / rt60) + highs * np.exp(-6.9 * t / hf_rt60)
    tail *= np.clip((t - tail_start) / 0.01, 0, 1)  # fades in after the first reflections
    early = np.zeros(n)
    for delay in rng.uniform(0.003, 0.04, int(rng.integers(4, 13))):
        early[int(delay * SAMPLE_RATE)] += rng.choice([-1, 1]) * rng.uniform(0.15, 0.6) * np.exp(-6.9 * delay / rt60)
    reverberant = early + tail * np.sqrt(np.sum(early**2) + 1e-3) / np.sqrt(np.sum(tail**2))
    drr_db = rng.uniform(0, 12)
    reverberant *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(reverberant**2))
    reverberant[0] = 1.0
    return reverberant


def reverb(audio: np.ndarray, rng: np.random.Generator, rt60: float | None = None) -> np.ndarray:
    """``audio`` in a synthetic room (:func:`room_impulse_response`, RT60 default uniform 0.15–0.9 s),
    cut to the input length with the direct path at lag 0 and rescaled to the input's active level."""
    x = _check(audio)
    if rt60 is None:
        rt60 = rng.uniform(0.15, 0.9)
    if x.size == 0:
        return x.copy()
    ir = room_impulse_response(rng, rt60)
    y = signal.fftconvolve(x.astype(np.float64), ir)[: x.size]
    before, after = active_power(x), active_power(y)
    if after > 0:
        y *= np.sqrt(before / after)
    return _fit_peak(y).astype(x.dtype)


def _fit_peak(y: np.ndarray) -> np.ndarray:
    peak = np.abs(y).max() if y.size else 0.0
    return y / peak if peak > 1 else y


def pitch_shift(audio: np.ndarray, rng: np.random.Generator, semitones: float | None = None) -> np.ndarray:
    """``audio`` with its pitch moved by ``semitones`` (default uniform ±2) and its duration kept: resample
    by 2**(-semitones/12), then a WSOLA time-stretch (wsola.py) back to the input length. The formants
    move with the pitch, as between speakers with longer or shorter vocal tracts (±12 %)."""
    x = _check(audio)
    if semitones is None:
        semitones = rng.uniform(-2, 2)
    if x.size == 0 or semitones == 0:
        return x.copy()
    ratio = Fraction(2 ** (-semitones / 12)).limit_denominator(200)  # new length / old length
    shifted = signal.resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator)
    return _fit_peak(time_stretch(shifted, x.size)).astype(x.dtype)


def speed(audio: np.ndarray, phones: list[Phone], factor: float) -> tuple[np.ndarray, list[Phone]]:
    """``audio`` played ``factor`` times faster (pitch moves with it, as in Kaldi's speed perturbation).
    The new length is round(len(audio) / factor); the phones' times are multiplied by new/old length so
    that they tile the new audio exactly as they tiled the old one."""
    x = _check(audio)
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor {factor} outside 0.5–2")
    n_new = round(x.size / factor)
    if x.size == 0:
        return x.copy(), list(phones)
    ratio = Fraction(n_new, x.size).limit_denominator(1000)
    y = signal.resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator)
    y = np.pad(y, (0, max(0, n_new - len(y))))[:n_new]
    scale = n_new / x.size
    new_phones = [replace(p, start=p.start * scale, end=p.end * scale) for p in phones]
    return _fit_peak(y).astype(x.dtype), new_phones


def _zero_phase(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    return signal.sosfiltfilt(sos, x, padlen=min(x.size - 1, 3 * (2 * len(sos) + 1))) if x.size > 1 else x


def telephone(audio: np.ndarray, rng: np.random.Generator, mulaw: bool | None = None) -> np.ndarray:
    """A narrow-band phone line: 300–3400 Hz band-pass, down to 8 kHz, 8-bit μ-law (default: half the
    time), back to 16 kHz, band-pass again. Zero-phase filters and resampling keep the alignment."""
    x = _check(audio)
    if mulaw is None:
        mulaw = bool(rng.random() < 0.5)
    sos = signal.butter(5, [300, 3400], "band", fs=SAMPLE_RATE, output="sos")
    y = _zero_phase(sos, x.astype(np.float64))
    narrow = signal.resample_poly(y, 1, 2)
    if mulaw:
        mu = 255.0
        code = np.round(np.sign(narrow) * np.log1p(mu * np.minimum(np.abs(narrow), 1)) / np.log1p(mu) * 127)
        narrow = np.sign(code) * np.expm1(np.abs(code) / 127 * np.log1p(mu)) / mu
    y = _zero_phase(sos, signal.resample_poly(narrow, 2, 1)[: x.size])
    return _fit_peak(y).astype(x.dtype)


def augment(
    audio: np.ndarray,
    rng: np.random.Generator,
    *,
    speech_pool: list[np.ndarray] | None = None,
    p: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """A random chain of the length-keeping augmentations, in the order the sound meets them: the
    speaker's pitch, the room, background noise, the microphone's gain, then one channel (telephone or
    Opus). Each step is on with probability ``p[name]`` (defaults :data:`DEFAULT_P`; keys pitch_shift,
    reverb, noise, gain, telephone, opus). Returns the audio (finite, peak ≤ 1, input length and dtype)
    and a JSON-ready description: ``applied`` (step names in order) and each step's parameters."""
    x = _check(audio)
    probs = {**DEFAULT_P, **(p or {})}
    if unknown := set(probs) - set(DEFAULT_P):
        raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; known: {sorted(DEFAULT_P)}")
    on = {name: bool(rng.random() < probs[name]) for name in DEFAULT_P}  # drawn up front: a fixed rng layout
    y = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    desc: dict[str, object] = {"applied": []}

    def did(name: str, **params: object) -> None:
        desc["applied"].append(name)  # type: ignore[attr-defined]
        desc.update(params)

    if on["pitch_shift"]:
        semitones = float(rng.uniform(-2, 2))
        y = pitch_shift(y, rng, semitones)
        did("pitch_shift", semitones=round(semitones, 3))
    if on["reverb"]:
        rt60 = float(rng.uniform(0.15, 0.9))
        y = reverb(y, rng, rt60)
        did("reverb", rt60=round(rt60, 3))
    if on["noise"]:
        kinds = list(NOISE_WEIGHTS)
        weights = np.array([NOISE_WEIGHTS[k] for k in kinds], dtype=float)
        kind = str(rng.choice(kinds, p=weights / weights.sum()))
        snr = float(rng.uniform(5, 30))
        y = add_noise(y, rng, snr, kind, speech_pool=speech_pool)
        did("noise", noise=kind, snr_db=round(snr, 2))
    if on["gain"]:
        db = float(rng.uniform(-12, 6))
        y = gain(y, rng, db)
        did("gain", gain_db=round(db, 2))
    if on["telephone"]:
        mulaw = bool(rng.random() < 0.5)
        y = telephone(y, rng, mulaw)
        did("telephone", mulaw=mulaw)
    elif on["opus"]:
        bitrate = pick_bitrate(rng)
        y = opus_roundtrip(y, rng, bitrate)
        did("opus", bitrate=bitrate)
    y = _fit_peak(np.nan_to_num(y))
    return y.astype(x.dtype), desc


# --- a speech-like signal for tests and benchmarks (the corpus's TTS lives elsewhere) ---

VOWEL_FORMANTS = {  # F1, F2, F3 in Hz (Peterson & Barney averages)
    "AA": (730, 1090, 2440), "IY": (270, 2290, 3010), "UW": (300, 870, 2240), "AE": (660, 1720, 2410),
    "EH": (530, 1840, 2480), "OW": (570, 840, 2410), "ER": (490, 1350, 1690),
}  # fmt: skip


def vowel(
    f0: float, seconds: float, formants: tuple[float, ...] = (730, 1090, 2440), jitter: float = 0.0
) -> np.ndarray:
    """A steady vowel: a glottal pulse train at ``f0`` Hz (−12 dB/octave source) through formant resonators."""
    n = int(seconds * SAMPLE_RATE)
    phase = np.cumsum(np.full(n, f0 / SAMPLE_RATE) * (1 + jitter * np.sin(np.arange(n) * 2 * np.pi * 3 / SAMPLE_RATE)))
    pulses = np.diff(np.floor(phase), prepend=0.0)
    # Two poles at 0.95: the glottal pulse's roll-off; the first difference: radiation at the lips (no DC).
    source = np.diff(signal.lfilter([1.0], [1, -1.9, 0.9025], pulses), prepend=0.0)
    for i, f in enumerate(formants):
        bw = 60 + 40 * i
        r = np.exp(-np.pi * bw / SAMPLE_RATE)
        source = signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SAMPLE_RATE), r * r], source)
    return source / (np.abs(source).max() + 1e-12)


def speech_like(rng: np.random.Generator, seconds: float = 2.0, level: float = 0.3) -> np.ndarray:
    """Synthetic speech for tests and benchmarks: vowels of 0.12–0.35 s around one speaker's pitch, 20 ms
    ramps, pauses between some of them; float32 with peak ``level``."""
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    f0 = rng.uniform(90, 220)
    pos = int(rng.uniform(0.05, 0.2) * SAMPLE_RATE)
    while pos < n:
        dur = rng.uniform(0.12, 0.35)
        seg = vowel(f0 * rng.uniform(0.85, 1.15), dur, VOWEL_FORMANTS[rng.choice(list(VOWEL_FORMANTS))], 0.03)
        ramp = min(len(seg) // 2, int(0.02 * SAMPLE_RATE))
        seg[:ramp] *= np.linspace(0, 1, ramp)
        seg[len(seg) - ramp :] *= np.linspace(1, 0, ramp)
        seg = seg[: n - pos] * rng.uniform(0.5, 1.0)
        out[pos : pos + len(seg)] = seg
        pos += len(seg) + (int(rng.uniform(0.05, 0.3) * SAMPLE_RATE) if rng.random() < 0.4 else 0)
    return (out * level / (np.abs(out).max() + 1e-12)).astype(np.float32)


def bench_augment(seconds: float = 10.0, repeats: int = 5, seed: int = 0) -> dict[str, float]:
    """Each augmentation's speed as a multiple of real time (median of ``repeats`` runs); printed too."""
    rng = np.random.default_rng(seed)
    audio = speech_like(rng, seconds)
    phones = [Phone("sil", 0.0, seconds)]
    cases = {f"noise:{kind}": (lambda k=kind: add_noise(audio, rng, 15.0, k)) for kind in NOISE_KINDS}
    cases |= {
        "reverb": lambda: reverb(audio, rng, 0.6),
        "gain": lambda: gain(audio, rng),
        "pitch_shift": lambda: pitch_shift(audio, rng, 1.5),
        "speed": lambda: speed(audio, phones, 1.07),
        "telephone": lambda: telephone(audio, rng, True),
        "opus": lambda: opus_roundtrip(audio, rng, 24_000),
        "augment(all on)": lambda: augment(audio, rng, p={**dict.fromkeys(DEFAULT_P, 1.0), "telephone": 0.0}),
    }
    result = {}
    for name, run in cases.items():
        run()  # warm-up (filter design caches, the Opus delay probe)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        result[name] = seconds / float(np.median(times))
        print(f"{name:18s} {result[name]:8.1f}× real time")
    return result
