"""The audio front end: causal log-mel (whole, batched torch, streamed), file loading and resampling."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from posetalk.models.audio.io import load_audio, to_16k
from posetalk.models.audio.mel import (
    HOP,
    LOG_FLOOR,
    MELS_PER_FRAME,
    N_MELS,
    WIN,
    StreamingMel,
    bench_mel,
    log_mel,
    mel_centres,
    mel_filterbank,
)
from posetalk.models.data.phones import FPS, SAMPLE_RATE
from posetalk.models.errors import AudioFileError
from scipy.signal import correlate

SILENCE = np.float32(np.log(LOG_FLOOR))


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise and tones under a syllable-rate envelope, with a silent gap: 16 kHz float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    x = 0.05 * rng.standard_normal(n) + sum(0.1 * np.sin(2 * np.pi * f * t + p) for f, p in [(220, 0), (1330, 1)])
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    x[n // 3 : n // 3 + 2000] = 0
    out: np.ndarray = x.astype(np.float32)
    return out


# --- log-mel ---------------------------------------------------------------------------------


def test_constants_and_filterbank() -> None:
    assert (N_MELS, HOP, WIN, MELS_PER_FRAME) == (80, 160, 400, 4)
    assert SAMPLE_RATE // FPS == MELS_PER_FRAME * HOP
    fb = mel_filterbank()
    assert fb.shape == (80, 257) and (fb >= 0).all()
    assert ((fb > 0).sum(1) >= 2).all()  # no empty filter
    c = mel_centres()
    assert (np.diff(c) > 0).all() and c[0] > 20 and c[-1] < 7600


@pytest.mark.parametrize("n", [0, 1, 159, 160, 161, 319, 320, 16_000, 16_001])
def test_frame_count(n: int) -> None:
    x = np.zeros(n, np.float32)
    assert log_mel(x).shape == (80, n // 160)
    assert log_mel(torch.from_numpy(x)).shape == (80, n // 160)
    assert log_mel(torch.zeros(2, 3, n)).shape == (2, 3, 80, n // 160)


def test_silence_is_the_floor() -> None:
    m = log_mel(np.zeros(8000, np.float32))
    assert m.dtype == np.float32 and (m == SILENCE).all()
    assert torch.equal(log_mel(torch.zeros(8000)), torch.full((80, 50), float(SILENCE)))


def test_tone_peaks_in_the_nearest_band() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    m = log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    nearest = int(np.argmin(np.abs(mel_centres() - 1000)))
    assert (m.argmax(0) == nearest).all()
    assert (m[:, 3:].max(0) - np.median(m[:, 3:], 0) > 5).all()  # a clear peak, not a flat spectrum


def test_numpy_matches_torch_batched() -> None:
    batch = np.stack([[speechlike(1.03, seed=3 * i + j) for j in range(3)] for i in range(2)])  # (2, 3, N)
    ref = log_mel(batch)
    assert ref.shape == (2, 3, 80, batch.shape[-1] // 160) and ref.dtype == np.float32
    for i in range(2):
        assert np.array_equal(ref[i, 1], log_mel(batch[i, 1]))
    out = log_mel(torch.from_numpy(batch))
    assert out.dtype == torch.float32 and out.device == torch.device("cpu")
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(log_mel(torch.from_numpy(batch[1, 2])).numpy(), ref[1, 2], rtol=0, atol=1e-4)
    assert (ref > SILENCE).mean() > 0.8  # the comparison is not floor against floor


def test_torch_is_differentiable() -> None:
    x = torch.from_numpy(speechlike(0.2)).requires_grad_()
    log_mel(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_numpy() -> None:
    x = np.stack([speechlike(2.0, seed=s) for s in range(4)])
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True  # must not reach the mel projection
    try:
        with torch.autocast("cuda", dtype=torch.float16):
            out = log_mel(torch.from_numpy(x).cuda())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    assert out.device.type == "cuda" and out.dtype == torch.float32
    np.testing.assert_allclose(out.cpu().numpy(), log_mel(x), rtol=0, atol=1e-4)


@pytest.mark.parametrize("k", [0, 1, 2, 7, 50, 98])
def test_causal(k: int) -> None:
    x = speechlike(1.0)
    y = x.copy()
    y[(k + 1) * HOP :] = np.random.default_rng(k).uniform(-1, 1, len(y) - (k + 1) * HOP)
    a, b = log_mel(x), log_mel(y)
    np.testing.assert_array_equal(a[:, : k + 1], b[:, : k + 1])
    assert not np.allclose(a[:, k + 1], b[:, k + 1])  # the next frame does see the change
    ta, tb = log_mel(torch.from_numpy(x)), log_mel(torch.from_numpy(y))
    assert torch.equal(ta[:, : k + 1], tb[:, : k + 1])


def test_frame_window_position() -> None:
    """Frame k covers samples [k*160 - 240, k*160 + 160): a click at sample s shows in frames
    s // 160 ... (s + 240) // 160 and nowhere else (clicks placed >= 20 samples inside every window
    that holds them, where the Hann taper lets them through)."""
    for s in (0, 20, 1000, 1239, 1241, 1560):
        x = np.zeros(4000, np.float32)
        x[s] = 10.0
        loud = np.nonzero((log_mel(x) > SILENCE).any(0))[0]
        assert list(loud) == list(range(s // 160, (s + 240) // 160 + 1)), s


def _push_all(stream: StreamingMel, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, i = [], 0
    for n in sizes:
        m = stream.push(x[i : i + n])
        assert m.shape[0] == 80 and m.dtype == np.float32
        out.append(m)
        i += n
    out.append(stream.push(x[i:]))
    return np.concatenate(out, 1)


def test_streaming_equals_whole() -> None:
    x = speechlike(2.317)
    whole = log_mel(x)
    rng = np.random.default_rng(0)
    random_sizes = [int(rng.choice([0, 1, 2, 159, 160, 161, 320, int(rng.integers(0, 3000))])) for _ in range(200)]
    stream = StreamingMel()
    for sizes in ([320] * 200, random_sizes, [1] * 5000, [0, 0, 7] * 10, [len(x)]):
        stream.reset()
        assert stream.frames_out == 0
        got = _push_all(stream, x, sizes)
        assert got.shape == whole.shape and stream.frames_out == whole.shape[1]
        np.testing.assert_allclose(got, whole, rtol=0, atol=1e-5)


def test_streaming_frames_come_when_their_hop_ends() -> None:
    stream = StreamingMel()
    assert stream.push(np.zeros(0, np.float32)).shape == (80, 0)
    assert stream.push(np.zeros(159, np.float32)).shape == (80, 0)
    assert stream.push(np.zeros(1, np.float32)).shape == (80, 1)  # sample 159 completes frame 0
    assert stream.push(np.zeros(640, np.float32)).shape == (80, 4)  # one video frame: 4 mel frames
    assert stream.frames_out == 5


def test_integer_samples_are_refused() -> None:
    with pytest.raises(TypeError):
        log_mel(np.zeros(320, np.int16))
    with pytest.raises(TypeError):
        StreamingMel().push(np.zeros(320, np.int16))
    with pytest.raises(ValueError):
        StreamingMel().push(np.zeros((2, 320), np.float32))


def test_bench_runs() -> None:
    r = bench_mel(seconds=0.5, batch=2, clip_s=0.5, repeats=1)
    assert r["stream_push_us"] > 0 and r["torch_cpu1_x_realtime"] > 0 and r["numpy_x_realtime"] > 0


# --- loading and resampling -------------------------------------------------------------------

PARTIALS = [(187.0, 0.2, 0.3), (431.0, 0.15, 1.1), (977.0, 0.1, 2.0), (2113.0, 0.06, 0.4), (3271.0, 0.04, 2.9)]
DURATION = 1.3


def _sound(rate: int, which: int = 0) -> np.ndarray:
    """A band-limited sound (< 3.4 kHz, so every rate here carries it) sampled at ``rate``:
    inharmonic partials under smooth bursts, so cross-correlation has one clear peak."""
    t = np.arange(round(DURATION * rate)) / rate
    env = np.exp(-0.5 * ((t - 0.35) / 0.08) ** 2) + 0.7 * np.exp(-0.5 * ((t - 0.9) / 0.12) ** 2)
    parts = PARTIALS if which == 0 else [(f * 1.03, a, p + 1) for f, a, p in PARTIALS]
    return (env * sum(a * np.sin(2 * np.pi * f * t + p) for f, a, p in parts)).astype(np.float32)


def _stereo(rate: int) -> np.ndarray:
    """(N, 2) whose channel mean is _sound(rate): left s + d, right s - d."""
    s, d = _sound(rate), 0.5 * _sound(rate, 1)
    return np.stack([s + d, s - d], 1)


def _write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    ints = np.clip(np.round(pcm * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())
    return path


def _write_av(path: Path, pcm: np.ndarray, rate: int, codec: str) -> Path:
    import av

    stereo = pcm.ndim == 2
    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream(codec, rate=rate, layout="stereo" if stereo else "mono")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm.reshape(1, -1)), format="flt", layout="stereo" if stereo else "mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _check_aligned(audio: np.ndarray, min_corr: float) -> None:
    ref = _sound(SAMPLE_RATE).astype(np.float64)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - len(ref)) <= 0.010 * SAMPLE_RATE  # duration within 10 ms
    n = min(len(audio), len(ref))
    a = audio[:n].astype(np.float64)
    cc = correlate(a, ref[:n], mode="full", method="fft")
    lag = int(np.argmax(cc)) - (n - 1)
    assert abs(lag) <= SAMPLE_RATE // 1000, f"lag {lag} samples"  # within 1 ms
    corr = float(a @ ref[:n] / np.sqrt((a @ a) * (ref[:n] @ ref[:n])))
    assert corr > min_corr, corr
    assert 0.8 < np.sqrt((a @ a) / (ref[:n] @ ref[:n])) < 1.25  # level kept (a mean downmix)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("stereo", [False, True])
def test_load_wav(tmp_path: Path, rate: int, stereo: bool) -> None:
    pcm = _stereo(rate) if stereo else _sound(rate)
    audio = load_audio(_write_wav(tmp_path / f"s{rate}.wav", pcm, rate))
    _check_aligned(audio, 0.999)
    np.testing.assert_allclose(audio, to_16k((pcm * 32767).astype(np.int16), rate), atol=2e-4)


@pytest.mark.parametrize(
    ("codec", "name", "rate", "min_corr"),
    [
        ("libmp3lame", "s.mp3", 44100, 0.95),
        ("libmp3lame", "s.mp3", 22050, 0.95),
        ("flac", "s.flac", 22050, 0.999),
        ("libopus", "s.ogg", 48000, 0.95),
        ("libopus", "s.webm", 48000, 0.95),
        ("aac", "s.m4a", 48000, 0.95),
        ("aac", "s.mp4", 8000, 0.9),
    ],
)
def test_load_compressed(tmp_path: Path, codec: str, name: str, rate: int, min_corr: float) -> None:
    import av

    try:
        path = _write_av(tmp_path / name, _stereo(rate), rate, codec)
    except (av.error.FFmpegError, ValueError) as exc:  # an FFmpeg build without this encoder
        pytest.skip(f"cannot write {name} with {codec} here: {exc}")
    _check_aligned(load_audio(path), min_corr)


def test_load_video_sound_track(tmp_path: Path) -> None:
    from posetalk.models.render.video import write_mp4

    path = tmp_path / "talk.mp4"
    write_mp4(path, [np.zeros((64, 64, 3), np.uint8)] * round(DURATION * FPS), audio=_sound(SAMPLE_RATE))
    _check_aligned(load_audio(path), 0.95)


def test_to_16k() -> None:
    s48 = _sound(48000)
    out = to_16k(s48, 48000)
    assert out.dtype == np.float32 and len(out) == len(s48) // 3
    _check_aligned(out, 0.999)
    ints = np.round(_stereo(48000) * 32767).astype(np.int16)
    np.testing.assert_allclose(to_16k(ints, 48000), out, atol=2e-4)
    np.testing.assert_allclose(to_16k(ints.astype(np.float32) / 32768, 48000.0), to_16k(ints, 48000), atol=1e-6)
    same = _sound(SAMPLE_RATE)
    np.testing.assert_array_equal(to_16k(same, SAMPLE_RATE), same)
    assert len(to_16k(np.zeros(441, np.float32), 44100)) == 160
    assert to_16k(np.zeros(0, np.int16), 8000).shape == (0,)
    for bad_rate in (0, -16000, 44100.5):
        with pytest.raises(ValueError):
            to_16k(same, bad_rate)
    with pytest.raises(ValueError):
        to_16k(np.zeros((2, 48000), np.float32), 48000)  # channels first


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    from posetalk.models.render.video import write_mp4

    text = tmp_path / "notes.wav"
    text.write_text("hello, I am text and not a sound\n" * 20)
    noise = tmp_path / "noise.mp3"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    nothing = tmp_path / "nothing.ogg"
    nothing.write_bytes(b"")
    silent_video = tmp_path / "silent-video.mp4"
    write_mp4(silent_video, [np.zeros((32, 32, 3), np.uint8)] * 3)
    empty = _write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    return {
        "missing": tmp_path / "missing.wav",
        "folder": tmp_path,
        "text": text,
        "noise": noise,
        "zero bytes": nothing,
        "no audio stream": silent_video,
        "empty": empty,
    }


def test_bad_files(tmp_path: Path) -> None:
    messages = {}
    for what, path in _bad_files(tmp_path).items():
        with pytest.raises(AudioFileError) as info:
            load_audio(path)
        messages[what] = str(info.value)
        assert path.name in messages[what] and "\n" not in messages[what], (what, messages[what])
    assert "no such file" in messages["missing"]
    assert "no audio stream" in messages["no audio stream"]
    assert "empty" in messages["empty"]
    assert "not a readable audio file" in messages["text"]
