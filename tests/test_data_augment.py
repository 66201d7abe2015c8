"""Acoustic augmentation: lengths, time alignment, SNR, pitch, bands, determinism, the chain."""

from __future__ import annotations

import json

import numpy as np
import pytest
from posetalk.models.data import augment as A
from posetalk.models.data import noise as N
from posetalk.models.data import opus as O
from posetalk.models.data.phones import SAMPLE_RATE as SR
from posetalk.models.data.phones import Phone, check_timings
from scipy import signal

MS = SR // 1000  # samples per millisecond

# The length-keeping transforms as f(audio, rng), their settings pinned (at the hard ends of the ranges
# where there is one: the longest room, the loudest gain, ±2 semitones, the lowest and highest bitrate).
TRANSFORMS = {
    **{f"noise:{kind}": (lambda x, r, k=kind: A.add_noise(x, r, 20.0, k)) for kind in N.NOISE_KINDS},
    "reverb": lambda x, r: A.reverb(x, r, 0.9),
    "gain": lambda x, r: A.gain(x, r, 6.0),
    "pitch_shift:+2": lambda x, r: A.pitch_shift(x, r, 2.0),
    "pitch_shift:-2": lambda x, r: A.pitch_shift(x, r, -2.0),
    "telephone": lambda x, r: A.telephone(x, r, mulaw=True),
    "opus:12k": lambda x, r: A.opus_roundtrip(x, r, 12_000),
    "opus:64k": lambda x, r: A.opus_roundtrip(x, r, 64_000),
}
WAVEFORM_KEEPING = [n for n in TRANSFORMS if not n.startswith("pitch_shift")]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return A.speech_like(np.random.default_rng(7), 1.5)


@pytest.fixture(scope="module")
def onset_signal() -> tuple[np.ndarray, list[int]]:
    """Silence, two vowels that start within 2 ms, a click: the onsets' sample positions."""
    x = np.zeros(int(2.4 * SR), np.float32)
    onsets = [int(0.4 * SR), int(1.2 * SR), int(2.0 * SR)]
    for pos, f0 in zip(onsets[:2], (110.0, 210.0), strict=True):
        v = A.vowel(f0, 0.3, A.VOWEL_FORMANTS["AA"]) * 0.3
        v[: 2 * MS] *= np.linspace(0, 1, 2 * MS)
        v[-10 * MS :] *= np.linspace(1, 0, 10 * MS)
        x[pos : pos + len(v)] = v
    x[onsets[2]] = 0.5
    return x, onsets


def envelope(x: np.ndarray, ms: float = 20) -> np.ndarray:
    """RMS under a Hann window of ``ms`` (20 ms: smooth over pitch periods, sharp enough for syllables)."""
    w = np.hanning(int(ms * MS) + 2)[1:-1]
    return np.sqrt(np.maximum(signal.fftconvolve(np.asarray(x, float) ** 2, w / w.sum(), mode="same"), 0))


def lag(reference: np.ndarray, other: np.ndarray, max_lag: int = 25 * MS) -> int:
    """Where ``other`` best matches ``reference`` (samples; positive: ``other`` is later)."""
    a, b = reference - reference.mean(), other - other.mean()
    corr = signal.correlate(b, a, mode="full", method="fft")[len(a) - 1 - max_lag : len(a) + max_lag]
    return int(np.argmax(corr)) - max_lag


def find_onsets(x: np.ndarray, near: list[int], fraction: float = 0.3) -> list[int]:
    """First sample around each of ``near`` where the 2 ms envelope climbs ``fraction`` of the way from the
    floor before it (its median over 50…12 ms earlier) to the peak that follows."""
    env = envelope(x, 2)
    found = []
    for p in near:
        floor = np.median(env[p - 50 * MS : p - 12 * MS])
        seg = env[p - 12 * MS : p + 100 * MS]
        found.append(p - 12 * MS + int(np.argmax(seg > floor + fraction * (seg.max() - floor))))
    return found


def fundamental(x: np.ndarray) -> float:
    """f0 of a steady voiced sound: autocorrelation peak in 60–400 Hz, parabolic interpolation."""
    s = x[len(x) // 4 : 3 * len(x) // 4].astype(float)
    ac = signal.correlate(s, s, mode="full", method="fft")[len(s) - 1 :]
    lo, hi = SR // 400, SR // 60
    k = lo + int(np.argmax(ac[lo:hi]))
    y0, y1, y2 = ac[k - 1 : k + 2]
    return SR / (k + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2))


def measured_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Active speech power (20 ms frames within 40 dB of the loudest) over whole-signal noise power;
    the noise is what is left after removing the best-fitting multiple of the clean speech (add_noise
    scales both down together when the mix would clip)."""
    c, y = clean.astype(float), noisy.astype(float)
    scale = (y @ c) / (c @ c)
    frames = np.pad(c, (0, (-len(c)) % 320)).reshape(-1, 320)
    power = (frames**2).mean(axis=1)
    speech_power = power[power >= power.max() * 1e-4].mean() * scale**2
    return float(10 * np.log10(speech_power / np.mean((y - scale * c) ** 2)))


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_length_and_dtype_are_kept(name: str, dtype: type, speech: np.ndarray) -> None:
    x = speech[:12_345].astype(dtype)  # an odd length: no whole number of codec frames or hops
    y = TRANSFORMS[name](x, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == x.dtype and np.all(np.isfinite(y))


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_alignment_is_kept(name: str, speech: np.ndarray) -> None:
    y = TRANSFORMS[name](speech, np.random.default_rng(1))
    if name in WAVEFORM_KEEPING:
        assert abs(lag(speech, y)) <= MS, "waveform cross-correlation peak moved"
    if name != "reverb":  # a room's tail drags the envelope later; its direct path is checked above
        assert abs(lag(envelope(speech), envelope(y))) <= MS, "envelope cross-correlation peak moved"


@pytest.mark.parametrize("name", [n for n in TRANSFORMS if n != "noise:keyboard"])  # clicks are onsets too
def test_onsets_stay_in_place(name: str, onset_signal: tuple[np.ndarray, list[int]]) -> None:
    x, positions = onset_signal
    rng = np.random.default_rng(2)
    before = find_onsets(x, positions)
    # Additive noise cannot move an onset, but at 20 dB a babble burst can look like one: use 30 dB here.
    y = A.add_noise(x, rng, 30.0, name[6:]) if name.startswith("noise:") else TRANSFORMS[name](x, rng)
    after = find_onsets(y, positions)
    assert np.all(np.abs(np.subtract(after, before)) <= 2 * MS), (before, after)


@pytest.mark.parametrize("kind", N.NOISE_KINDS)
@pytest.mark.parametrize("snr", [5.0, 17.5, 30.0])
def test_noise_is_mixed_at_the_requested_snr(kind: str, snr: float, speech: np.ndarray) -> None:
    y = A.add_noise(speech, np.random.default_rng(3), snr, kind)
    assert measured_snr(speech, y) == pytest.approx(snr, abs=1.0)
    assert np.abs(y).max() <= 1.0


def test_babble_from_a_speech_pool(speech: np.ndarray) -> None:
    pool = [A.speech_like(np.random.default_rng(s), 0.7) for s in range(20, 24)]
    y = A.add_noise(speech, np.random.default_rng(4), 10.0, "babble", speech_pool=pool)
    assert measured_snr(speech, y) == pytest.approx(10.0, abs=1.0)
    noise = N.babble(len(speech), np.random.default_rng(4), pool)
    assert np.std(noise) == pytest.approx(1.0)
    # 3–6 talkers overlap: the babble is seldom quiet, although each utterance has its pauses.
    assert np.mean(envelope(noise, 20) < 0.1) < 0.05


def test_noise_rejects_unknown_kinds(speech: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown noise kind"):
        A.add_noise(speech, np.random.default_rng(0), 10.0, "jackhammer")


@pytest.mark.parametrize("factor", [0.9, 0.97, 1.0, 1.1])
def test_speed_changes_length_and_rescales_phones(factor: float, onset_signal: tuple[np.ndarray, list[int]]) -> None:
    x, positions = onset_signal
    duration = len(x) / SR
    cuts = [0.0, *(p / SR for p in positions), duration]
    labels = ["sil", "AA", "sil", "T"]
    phones = [Phone(lab, a, b) for lab, a, b in zip(labels, cuts[:-1], cuts[1:], strict=True)]
    y, new_phones = A.speed(x, phones, factor)
    assert len(y) == round(len(x) / factor) and y.dtype == x.dtype
    check_timings(new_phones, len(y) / SR, tolerance=1e-9)
    assert [p.label for p in new_phones] == labels
    scaled = [round(p * len(y) / len(x)) for p in positions]
    expected = np.array(find_onsets(x, positions)) * len(y) / len(x)
    assert np.all(np.abs(find_onsets(y, scaled) - expected) <= 2 * MS)
    for phone, onset in zip(new_phones[1:], scaled, strict=True):  # each phone still starts at its onset
        assert abs(phone.start * SR - onset) <= 1


@pytest.mark.parametrize("semitones", [-2.0, -0.6, 1.3, 2.0])
@pytest.mark.parametrize("f0", [95.0, 180.0])
def test_pitch_shift_moves_the_fundamental_and_keeps_duration(semitones: float, f0: float) -> None:
    x = (A.vowel(f0, 0.8, A.VOWEL_FORMANTS["EH"]) * 0.3).astype(np.float32)
    y = A.pitch_shift(x, np.random.default_rng(0), semitones)
    assert len(y) == len(x)
    assert 12 * np.log2(fundamental(y) / fundamental(x)) == pytest.approx(semitones, abs=0.3)
    # Still one clean period after another: no doubled or dropped pulses at the WSOLA joins.
    s = y[len(y) // 4 : 3 * len(y) // 4].astype(float)
    period = round(SR / fundamental(y))
    assert np.corrcoef(s[:-period], s[period:])[0, 1] > 0.9


def band_gain_db(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """How much louder ``y`` is than ``x`` between ``lo`` and ``hi`` Hz (Welch spectra)."""
    f, p_in = signal.welch(x, SR, nperseg=1024)
    _, p_out = signal.welch(y, SR, nperseg=1024)
    sel = (f >= lo) & (f < hi)
    return float(10 * np.log10(p_out[sel].sum() / p_in[sel].sum()))


def test_telephone_keeps_only_the_telephone_band() -> None:
    x = (np.random.default_rng(5).standard_normal(SR * 2) * 0.1).astype(np.float32)
    for mulaw in (False, True):
        y = A.telephone(x, np.random.default_rng(0), mulaw=mulaw)
        assert abs(band_gain_db(x, y, 500, 3000)) < 1.0
        assert band_gain_db(x, y, 0, 200) < -25 and band_gain_db(x, y, 3900, 8000) < -30
        assert band_gain_db(x, y, 0, 300) < -10 and band_gain_db(x, y, 3400, 8000) < -15


def test_reverb_room_has_direct_path_first_and_the_asked_decay() -> None:
    for seed, rt60 in enumerate((0.2, 0.5, 0.85)):
        ir = A.room_impulse_response(np.random.default_rng(seed), rt60)
        assert ir[0] == 1.0 and np.abs(ir[1:]).max() < 1.0
        # Schroeder backward integral of the tail below 1 kHz: −5 to −25 dB, extrapolated to −60 dB.
        low = signal.sosfiltfilt(signal.butter(4, 1000, "low", fs=SR, output="sos"), ir[int(0.05 * SR) :])
        edc = np.cumsum(low[::-1] ** 2)[::-1]
        edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
        sel = (edc_db < -5) & (edc_db > -25)
        slope = np.polyfit(np.flatnonzero(sel) / SR, edc_db[sel], 1)[0]
        assert -60 / slope == pytest.approx(rt60, rel=0.25)


def test_gain_soft_limits_instead_of_clipping(speech: np.ndarray) -> None:
    hot = speech / np.abs(speech).max() * 0.95
    y = A.gain(hot, np.random.default_rng(0), 6.0)
    assert np.abs(y).max() < 1.0
    quiet = np.abs(hot) * 2 < A.LIMIT_KNEE
    np.testing.assert_allclose(y[quiet], hot[quiet] * 10 ** (6 / 20), rtol=1e-5)
    top = np.sort(np.abs(y))[-20:]
    assert len(np.unique(top)) > 15  # a hard clipper would flatten the peaks to one value
    assert np.all(np.abs(A.gain(speech, np.random.default_rng(0), -12.0)) <= np.abs(speech))


def test_opus_delay_is_measured_and_near_the_pre_skip(speech: np.ndarray) -> None:
    for bitrate in (12_000, 32_000):
        measured, pre_skip = O.codec_delay(bitrate)
        assert 0 < pre_skip < 48 * 20 and abs(measured - pre_skip) <= 8  # libopus: 312 samples = 6.5 ms
    y = A.opus_roundtrip(speech, np.random.default_rng(0), 64_000)
    assert np.corrcoef(speech, y)[0, 1] > 0.9  # high bitrate: close to the input, sample for sample


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_same_seed_same_output(name: str, speech: np.ndarray) -> None:
    a = TRANSFORMS[name](speech, np.random.default_rng(11))
    b = TRANSFORMS[name](speech, np.random.default_rng(11))
    assert np.array_equal(a, b)


def test_different_seeds_draw_different_augmentations(speech: np.ndarray) -> None:
    defaults = {
        "noise": lambda x, r: A.add_noise(x, r, 10.0, "pink"),
        "reverb": A.reverb,
        "gain": A.gain,
        "pitch_shift": A.pitch_shift,
        "telephone": A.telephone,
        "opus": A.opus_roundtrip,
        "augment": lambda x, r: A.augment(x, r)[0],
    }
    for name, fn in defaults.items():
        outputs = [fn(speech, np.random.default_rng(seed)).tobytes() for seed in range(4)]
        assert len(set(outputs)) > 1, name  # telephone only draws μ-law on/off: not every pair differs
    assert not np.array_equal(A.reverb(speech, np.random.default_rng(1)), A.reverb(speech, np.random.default_rng(2)))


def test_augment_describes_what_it_did(speech: np.ndarray) -> None:
    seen = set()
    for seed in range(6):
        y, desc = A.augment(speech, np.random.default_rng(seed))
        assert y.shape == speech.shape and y.dtype == speech.dtype
        assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
        json.dumps(desc)
        assert set(desc["applied"]) <= set(A.DEFAULT_P)
        seen.update(desc["applied"])
        assert ("noise" in desc["applied"]) == ("snr_db" in desc) and ("reverb" in desc["applied"]) == ("rt60" in desc)
    assert len(seen) >= 3
    y, desc = A.augment(speech, np.random.default_rng(0), p=dict.fromkeys(A.DEFAULT_P, 0.0))
    assert desc == {"applied": []} and np.array_equal(y, speech)
    _, desc = A.augment(speech, np.random.default_rng(0), p={**dict.fromkeys(A.DEFAULT_P, 1.0), "telephone": 0.0})
    assert desc["applied"] == ["pitch_shift", "reverb", "noise", "gain", "opus"]
    assert {"semitones", "rt60", "noise", "snr_db", "gain_db", "bitrate"} <= set(desc)


def test_augment_output_is_safe_for_hot_and_broken_input(speech: np.ndarray) -> None:
    hot = speech / np.abs(speech).max()
    hot[100] = np.nan
    hot[200] = np.inf
    for seed in range(3):
        y, _ = A.augment(hot, np.random.default_rng(seed), p={"gain": 1.0, "noise": 1.0})
        assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
    with pytest.raises(ValueError, match="unknown"):
        A.augment(speech, np.random.default_rng(0), p={"flanger": 1.0})


def test_bench_reports_every_augmentation(capsys: pytest.CaptureFixture[str]) -> None:
    result = A.bench_augment(seconds=0.3, repeats=1)
    assert {"reverb", "gain", "pitch_shift", "speed", "telephone", "opus"} <= set(result)
    assert all(v > 0 for v in result.values()) and "real time" in capsys.readouterr().out
