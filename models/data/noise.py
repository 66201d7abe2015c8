"""Background noises for acoustic augmentation, and mixing them into speech at a requested SNR.

Every generator returns ``n`` samples of zero-mean float64 noise at unit RMS, drawn only from the
``numpy.random.Generator`` it is given. :func:`add_noise` mixes one kind into 16 kHz speech.

SNR convention (ITU-T P.56 in spirit): the speech level is its mean power over its *active*
part, the 20 ms frames whose power is within 40 dB of the loudest frame (pauses do not dilute
it); the noise level is the noise's mean power over the *whole* signal (noise is a property of
the room, present in pauses too; sparse noises such as keyboard clicks are measured the same way).
"""

from __future__ import annotations

import numpy as np
from posetalk.models.data.phones import SAMPLE_RATE
from scipy import signal

NOISE_KINDS = ("white", "pink", "brown", "hum", "fan", "babble", "keyboard", "music")
ACTIVE_FRAME = 320  # 20 ms at 16 kHz
ACTIVE_RANGE_DB = 40.0  # frames this far below the loudest one count as pauses
NOMINAL_SPEECH_POWER = 0.05**2  # −26 dBFS, stands in for the level of a silent input


def active_power(audio: np.ndarray, frame: int = ACTIVE_FRAME, range_db: float = ACTIVE_RANGE_DB) -> float:
    """Mean power of the active part of ``audio`` (frames within ``range_db`` of the loudest); 0 if silent."""
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0:
        return 0.0
    pad = (-x.size) % frame
    frames = np.pad(x, (0, pad)).reshape(-1, frame)
    power = (frames**2).sum(axis=1) / np.r_[np.full(len(frames) - 1, frame), frame - pad]
    top = power.max()
    if top <= 0:
        return 0.0
    active = power >= top * 10 ** (-range_db / 10)
    return float(power[active].mean())


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 0 else x


def _coloured(n: int, rng: np.random.Generator, exponent: float, f_floor: float = 20.0) -> np.ndarray:
    """Gaussian noise with power ∝ 1/f**exponent above ``f_floor`` (flat below it: no DC drift)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec *= np.maximum(f, f_floor) ** (-exponent / 2)
    return _unit(np.fft.irfft(spec, n))


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.standard_normal(n))


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    return _coloured(n, rng, 1.0)


def brown(n: int, rng: np.random.Generator) -> np.ndarray:
    return _coloured(n, rng, 2.0)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz (a little off nominal) and its harmonics, odd ones stronger (transformer
    buzz), with a slow amplitude wobble and a faint hiss under it."""
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.choice([50.0, 60.0]) * (1 + rng.uniform(-0.004, 0.004))
    out = np.zeros(n)
    for h in range(1, int(rng.integers(6, 16))):
        amp = rng.uniform(0.3, 1.0) * h ** -rng.uniform(0.5, 1.5) * (1.0 if h % 2 else rng.uniform(0.1, 0.6))
        out += amp * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    out *= 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi))
    return _unit(_unit(out) + 0.03 * rng.standard_normal(n))


CONTROL_RATE = 200  # Hz: loudness curves are drawn this coarsely, then interpolated


def _control_to_audio(curve: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.arange(n) * CONTROL_RATE / SAMPLE_RATE, np.arange(len(curve)), curve)


def _slow_wander(n: int, rng: np.random.Generator, cutoff_hz: float) -> np.ndarray:
    """A smooth random curve with unit RMS and content below ``cutoff_hz`` (band-limited noise)."""
    m = n * CONTROL_RATE // SAMPLE_RATE + 2
    spec = np.fft.rfft(rng.standard_normal(m))
    spec[np.fft.rfftfreq(m, 1 / CONTROL_RATE) > cutoff_hz] = 0
    return _control_to_audio(_unit(np.fft.irfft(spec, m)), n)


def fan(n: int, rng: np.random.Generator) -> np.ndarray:
    """Fan / HVAC: low-passed noise, slowly modulated, sometimes with a blade-pass tone."""
    sos = signal.butter(int(rng.integers(1, 4)), rng.uniform(150, 1200), "low", fs=SAMPLE_RATE, output="sos")
    out = _unit(signal.sosfilt(sos, rng.standard_normal(n)))
    t = np.arange(n) / SAMPLE_RATE
    if rng.random() < 0.5:
        blade = rng.uniform(25, 120)
        out += rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * blade * t + rng.uniform(0, 2 * np.pi)) * np.sqrt(2)
    depth = rng.uniform(0.05, 0.3)
    mod = 1 + depth * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t + rng.uniform(0, 2 * np.pi))
    return _unit(out * mod * (1 + 0.5 * depth * _slow_wander(n, rng, 2.0)))


def _syllabic_envelope(n: int, rng: np.random.Generator) -> np.ndarray:
    """One talker's loudness over time: syllables at ~3–6 Hz in phrases of 0.5–2.5 s with pauses."""
    env = np.exp(1.2 * _slow_wander(n, rng, rng.uniform(3.0, 6.0)))
    m = n * CONTROL_RATE // SAMPLE_RATE + 2
    gate = np.zeros(m)
    pos = -int(rng.uniform(0, 1.0) * CONTROL_RATE)  # start mid-phrase sometimes
    while pos < m:
        length = int(rng.uniform(0.5, 2.5) * CONTROL_RATE)
        gate[max(pos, 0) : max(pos + length, 0)] = 1
        pos += length + int(rng.uniform(0.1, 0.6) * CONTROL_RATE)
    ramp = np.hanning(int(0.04 * CONTROL_RATE) + 2)
    gate = np.convolve(gate, ramp / ramp.sum(), mode="same")
    return env * _control_to_audio(gate, n)


def _talker(n: int, rng: np.random.Generator) -> np.ndarray:
    """Speech-shaped noise (long-term speech spectrum: −6 dB/oct above ~500 Hz, little below 100 Hz)
    under a syllabic envelope."""
    sos = signal.butter(2, [rng.uniform(80, 150), rng.uniform(4000, 6000)], "band", fs=SAMPLE_RATE, output="sos")
    tilt = signal.butter(1, rng.uniform(400, 800), "low", fs=SAMPLE_RATE, output="sos")
    shaped = signal.sosfilt(sos, rng.standard_normal(n))
    shaped = signal.sosfilt(tilt, shaped) + 0.15 * shaped
    return _unit(shaped) * _syllabic_envelope(n, rng)


def _trim_silence(x: np.ndarray, frame: int = ACTIVE_FRAME) -> np.ndarray:
    """``x`` without its leading and trailing pauses (frames 40 dB below the loudest)."""
    power = np.convolve(x**2, np.ones(frame) / frame, mode="same")
    loud = np.flatnonzero(power >= power.max() * 10 ** (-ACTIVE_RANGE_DB / 10))
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def babble(n: int, rng: np.random.Generator, speech_pool: list[np.ndarray] | None = None) -> np.ndarray:
    """3–6 overlapping talkers: utterances from ``speech_pool`` (random start, looped to length, each at
    a random level within ±3 dB) or, without a pool, speech-shaped modulated noise."""
    pool = [np.asarray(p, dtype=np.float64) for p in speech_pool or [] if len(p) > 0 and np.any(p)]
    out = np.zeros(n)
    for _ in range(int(rng.integers(3, 7))):
        if pool:
            utt = _trim_silence(pool[int(rng.integers(len(pool)))])
            utt = np.concatenate([utt, np.zeros(int(rng.uniform(0.05, 0.25) * SAMPLE_RATE))])
            reps = -(-(n + len(utt)) // len(utt))
            talker = np.tile(utt, reps)[int(rng.integers(len(utt))) :][:n]
            level = active_power(talker)
            talker = talker / np.sqrt(level) if level > 0 else talker
        else:
            talker = _talker(n, rng)
        out += talker * 10 ** (rng.uniform(-3, 3) / 20)
    return _unit(out)


def keyboard(n: int, rng: np.random.Generator) -> np.ndarray:
    """Typing / clicks: sparse 3–12 ms transients (press, sometimes a softer release) at 2–9 per second."""
    out = np.zeros(n)
    count = rng.poisson(rng.uniform(2, 9) * n / SAMPLE_RATE)
    for pos in np.sort(rng.integers(0, max(n, 1), count)):
        for p, level in ((pos, 1.0), (pos + int(rng.uniform(0.06, 0.15) * SAMPLE_RATE), rng.uniform(0.2, 0.5))):
            if p >= n or (level < 1 and rng.random() < 0.5):
                continue
            length = int(rng.uniform(0.003, 0.012) * SAMPLE_RATE)
            tau = rng.uniform(0.0008, 0.003) * SAMPLE_RATE
            click = rng.standard_normal(length) * np.exp(-np.arange(length) / tau)
            click = click * level * rng.lognormal(0, 0.4)
            seg = out[p : p + length]
            seg += click[: len(seg)]
    if not out.any():  # so short that no key was hit: one click in the middle
        out[n // 2] = 1.0
    sos = signal.butter(2, [rng.uniform(300, 1000), rng.uniform(5000, 7500)], "band", fs=SAMPLE_RATE, output="sos")
    return _unit(signal.sosfilt(sos, out))


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Music-like: 2–4 voices of sustained harmonic notes (0.25–1.2 s) on a pentatonic scale, with vibrato."""
    t = np.arange(n) / SAMPLE_RATE
    root = rng.uniform(45, 57)  # MIDI note of the key
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21, 24])
    out = np.zeros(n)
    for voice in range(int(rng.integers(2, 5))):
        midi = np.empty(n)
        env = np.empty(n)
        pos = 0
        while pos < n:
            length = min(int(rng.uniform(0.25, 1.2) * SAMPLE_RATE), n - pos)
            midi[pos : pos + length] = root + 12 * (voice // 2) + rng.choice(scale)
            k = np.arange(length) / SAMPLE_RATE
            attack, release = rng.uniform(0.01, 0.05), 0.03
            env[pos : pos + length] = np.minimum(1, k / attack) * np.clip((length / SAMPLE_RATE - k) / release, 0, 1)
            env[pos : pos + length] *= np.exp(-k * rng.uniform(0, 2))  # some notes decay like a plucked string
            pos += length
        vib_cents = rng.uniform(10, 40) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t + rng.uniform(0, 2 * np.pi))
        freq = 440 * 2 ** ((midi - 69 + vib_cents / 100) / 12)
        rotor = np.exp(2j * np.pi * np.cumsum(freq) / SAMPLE_RATE)  # harmonic h is rotor**h
        bright = rng.uniform(0.8, 2.0)
        partial = rotor.copy()
        tone = np.zeros(n)
        for h in range(1, 8):
            if freq.max() * h < 0.45 * SAMPLE_RATE:
                weight = h**-bright * rng.uniform(0.5, 1.0) * np.exp(1j * rng.uniform(0, 2 * np.pi))
                tone += (partial * weight).imag
            partial *= rotor
        out += env * tone
    return _unit(out)


_GENERATORS = {
    "white": white,
    "pink": pink,
    "brown": brown,
    "hum": hum,
    "fan": fan,
    "keyboard": keyboard,
    "music": music,
}


def make_noise(n: int, rng: np.random.Generator, kind: str, speech_pool: list[np.ndarray] | None = None) -> np.ndarray:
    """``n`` samples of unit-RMS noise of ``kind`` (one of :data:`NOISE_KINDS`)."""
    if kind == "babble":
        return babble(n, rng, speech_pool)
    if kind not in _GENERATORS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    return _GENERATORS[kind](n, rng)


def add_noise(
    audio: np.ndarray,
    rng: np.random.Generator,
    snr_db: float,
    kind: str,
    *,
    speech_pool: list[np.ndarray] | None = None,
) -> np.ndarray:
    """``audio`` plus noise of ``kind`` at ``snr_db`` (active speech power over whole-signal noise power,
    see the module docstring). Length, dtype and alignment are kept; if the mix would peak above 1, speech
    and noise are scaled down together (the SNR stays). A silent input gets noise at −26 dBFS − SNR."""
    x = np.asarray(audio)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected 1-D float audio, got {x.dtype} of shape {x.shape}")
    if x.size == 0:
        return x.copy()
    speech = x.astype(np.float64)
    level = active_power(speech) or NOMINAL_SPEECH_POWER
    noise = make_noise(x.size, rng, kind, speech_pool)
    mix = speech + noise * np.sqrt(level * 10 ** (-snr_db / 10))
    peak = np.abs(mix).max()
    if peak > 1:
        mix /= peak
    return mix.astype(x.dtype)
