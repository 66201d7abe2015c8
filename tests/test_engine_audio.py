"""The engine's audio input, synchronously: PCM checks with clear errors, streaming resampling
equal to whole-signal resampling, the bounded ring's drop-oldest policy, and frame slots."""

from __future__ import annotations

import numpy as np
import pytest
from posetalk.engine.audio_input import AudioInput, AudioRing, check_rate, to_mono
from posetalk.engine.clock import FRAME
from posetalk.engine.resample import StreamingResampler
from posetalk.models.errors import AudioInputError, InputError
from scipy.signal import resample_poly


def chunks(x: np.ndarray, rng: np.random.Generator, most: int = 1500) -> list[np.ndarray]:
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, most))
        out.append(x[i : i + n])
        i += n
    return out


@pytest.mark.parametrize("rate_in, rate_out", [(48000, 16000), (44100, 16000), (8000, 16000), (22050, 16000),
                                               (96000, 16000), (16000, 48000)])  # fmt: skip
def test_streaming_resampler_equals_whole_signal_resampling(rate_in: int, rate_out: int) -> None:
    rng = np.random.default_rng(rate_in)
    x = (0.3 * rng.standard_normal(rate_in // 2 + 77)).astype(np.float32)
    r = StreamingResampler(rate_in, rate_out)
    got = np.concatenate([r.push(c) for c in chunks(x, rng)] + [r.flush()])
    g = np.gcd(rate_in, rate_out)
    want = resample_poly(x, rate_out // g, rate_in // g)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_resampler_emits_as_soon_as_the_filter_has_its_input_and_starts_afresh_after_flush() -> None:
    r = StreamingResampler(48000, 16000)
    x = np.ones(4800, np.float32)
    out = r.push(x)
    assert 1600 - len(out) <= 11  # at most the filter's half-length (30 input samples) held back
    tail = r.flush()
    assert len(out) + len(tail) == 1600
    assert r.received == 0 and len(r.push(np.zeros(0, np.float32))) == 0
    same = StreamingResampler(16000, 16000)
    np.testing.assert_array_equal(same.push(x), x)
    assert len(same.flush()) == 0


def test_pcm_forms_convert_to_mono_float() -> None:
    i16 = np.array([0, 16384, -32768, 32767], np.int16)
    np.testing.assert_allclose(to_mono(i16), [0, 0.5, -1, 32767 / 32768])
    np.testing.assert_allclose(to_mono(i16.tobytes()), to_mono(i16))
    stereo = np.array([[0.2, 0.4], [-0.2, 0.0]], np.float32)
    np.testing.assert_allclose(to_mono(stereo), [0.3, -0.1], atol=1e-7)
    np.testing.assert_allclose(to_mono(stereo.reshape(-1), channels=2), [0.3, -0.1], atol=1e-7)
    interleaved = np.array([[1000, 3000], [-1000, -3000]], np.int16).tobytes()
    np.testing.assert_allclose(to_mono(interleaved, channels=2), [2000 / 32768, -2000 / 32768])
    assert to_mono(np.zeros(0, np.float64)).dtype == np.float32


@pytest.mark.parametrize(
    "pcm, channels, words",
    [
        (np.zeros(10, np.int32), 1, "int16 or float32"),
        (np.zeros(10, np.uint8), 1, "int16 or float32"),
        ([0.0, 0.1], 1, "NumPy array"),
        (np.zeros((2, 3, 4), np.float32), 1, "(samples,) or (samples, channels)"),
        (np.zeros((2, 1600), np.float32), 1, "(channels, samples)"),
        (np.zeros((100, 3), np.float32), 2, "1..8 channels"),
        (np.array([0.0, np.nan], np.float32), 1, "NaN"),
        (np.array([0.0, np.inf], np.float32), 1, "NaN or infinite"),
        (np.array([0.0, 12000.0], np.float32), 1, "[-1, 1] scale"),
        (b"\x00\x01\x02", 1, "whole int16 samples"),
        (np.zeros(7, np.int16), 2, "do not split into 2 channels"),
        (np.zeros(8, np.int16), 0, "channels must be"),
    ],
)
def test_malformed_pcm_gets_a_clear_error(pcm: object, channels: int, words: str) -> None:
    with pytest.raises(AudioInputError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        to_mono(pcm, channels)


@pytest.mark.parametrize("rate", [0, -16000, 7999, 192001, 16000.5, "16000", None, True, float("nan")])
def test_bad_sample_rates_get_a_clear_error(rate: object) -> None:
    with pytest.raises(AudioInputError, match="sample_rate"):
        check_rate(rate)
    assert issubclass(AudioInputError, InputError)  # the CLI and server turn it into one line / a 400


def test_good_sample_rates_pass() -> None:
    assert [check_rate(r) for r in (8000, 16000, 44100.0, np.int64(48000), 192000)] == [
        8000,
        16000,
        44100,
        48000,
        192000,
    ]


def test_ring_keeps_order_across_the_wrap_and_drops_the_oldest_on_overflow() -> None:
    ring = AudioRing(1000)
    data = np.arange(5000, dtype=np.float32)
    ring.write(data[:700])
    np.testing.assert_array_equal(ring.read(600), data[:600])
    ring.write(data[700:1500])  # wraps: 900 held
    assert ring.available == 900 and ring.dropped == 0
    np.testing.assert_array_equal(ring.read(900), data[600:1500])
    ring.write(data[1500:2300])
    ring.write(data[2300:2700])  # 1200 > 1000: the 200 oldest go
    assert ring.dropped == 200 and ring.available == 1000
    np.testing.assert_array_equal(ring.read(1000), data[1700:2700])
    ring.write(data[:2500])  # one write larger than the ring: only its newest 1000 stay
    assert ring.dropped == 1700
    np.testing.assert_array_equal(ring.read(1000), data[1500:2500])
    assert ring.start == ring.written == 5200
    with pytest.raises(ValueError):
        ring.read(1)
    ring.write(data[:10])
    assert ring.clear() == 10 and ring.available == 0


def test_slots_are_whole_frames_in_order_and_partial_frames_wait() -> None:
    inp = AudioInput(capacity_s=1.0)
    x = np.linspace(-0.5, 0.5, 3 * FRAME + 100, dtype=np.float32)
    inp.push(x[:1000], 16000, now=1.0)
    inp.push(x[1000:], 16000, now=2.0)
    a, b, c = inp.take_slot(), inp.take_slot(), inp.take_slot()
    np.testing.assert_array_equal(np.concatenate([a.audio, b.audio, c.audio]), x[: 3 * FRAME])
    assert (a.real, a.arrival, b.arrival, c.arrival) == (True, 1.0, 2.0, 2.0)  # b's last sample came at 2.0
    d = inp.take_slot()  # 100 samples buffered: not a frame yet, silence now, they wait
    assert not d.real and not d.audio.any() and d.arrival is None and inp.buffered == 100
    inp.push(x[:FRAME], 16000, now=3.0)
    e = inp.take_slot()
    np.testing.assert_array_equal(e.audio, np.concatenate([x[3 * FRAME :], x[: FRAME - 100]]))


def test_flush_pads_to_a_frame_and_marks_the_slot_after_the_utterance() -> None:
    inp = AudioInput()
    inp.push(np.full(48000 // 25 + 480, 0.25, np.float32), 48000, now=0.0)  # 1.25 frames at 48 kHz
    inp.flush(now=0.1)
    assert inp.buffered == 2 * FRAME  # the resampler's tail in, padded with silence to whole frames
    first, second, after = inp.take_slot(), inp.take_slot(), inp.take_slot()
    assert first.real and second.real and not after.real
    assert not first.after_utterance and not second.after_utterance and after.after_utterance
    assert second.audio[FRAME // 4 + 10 :].max() == 0.0  # padding
    assert not inp.take_slot().after_utterance
    inp.flush(now=0.2)  # a flush with nothing buffered still ends an utterance: the next slot says so
    assert inp.take_slot().after_utterance


def test_a_change_of_rate_finishes_the_previous_stream() -> None:
    inp = AudioInput()
    inp.push(np.ones(4800, np.float32) * 0.1, 48000, now=0.0)
    inp.push(np.ones(1600, np.float32) * 0.1, 16000, now=0.0)
    assert inp.buffered == 1600 + 1600  # 100 ms at 48 kHz fully out (its tail flushed) + 100 ms at 16 kHz


def test_clear_discards_what_is_buffered_and_overflow_is_counted() -> None:
    inp = AudioInput(capacity_s=0.1)
    inp.push(np.zeros(1600 + 640, np.int16), 16000, now=0.0)
    assert inp.dropped == 640 and inp.buffered == 1600
    inp.clear()
    assert inp.discarded == 1600 and inp.buffered == 0
    assert not inp.take_slot().real
