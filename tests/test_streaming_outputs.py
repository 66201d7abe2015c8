"""The mp4 recorder keeps the timing it is given (missing frames repeat the previous picture,
missing audio is silence, late frames are left out) and fails with an error, not a hang, when no
picture ever came; decoded WebRTC audio frames of any layout become (samples, channels) PCM."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from posetalk.models.render.video import decode_audio, read_mp4
from posetalk.streaming.errors import StreamingError
from posetalk.streaming.outputs import Mp4Writer
from posetalk.streaming.tracks import frame_pcm


def picture(i: int) -> np.ndarray:
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, : 8 * (i % 8) + 8] = 200  # a bar whose width tells the frame
    return img


def test_mp4_writer_keeps_the_timeline(tmp_path: Path) -> None:
    out = tmp_path / "t.mp4"
    w = Mp4Writer(out, 16000)
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(640) / 16000)).astype(np.float32)
    for i in (0, 1, 2, 5, 6, 4):  # 3 and 4 missing, 4 arrives after 6
        w.video(i, picture(i))
    for i in (0, 1, 2, 3, 5, 6):  # frame 4's sound missing
        w.audio(i * 640, tone)
    s = w.close()
    assert (s.frames, s.filled, s.late, s.audio_samples) == (7, 2, 1, 7 * 640)
    frames, fps = read_mp4(out)
    assert fps == 25 and len(frames) == 7
    bar = [int((f[32, :, 0] > 100).sum()) for f in frames]
    assert abs(bar[3] - bar[2]) <= 2 and abs(bar[4] - bar[2]) <= 2 and bar[5] > bar[2] + 16  # repeats of frame 2
    sound, _ = decode_audio(out, 16000)
    rms = [float(np.sqrt((sound[i * 640 + 100 : i * 640 + 540] ** 2).mean())) for i in range(7)]
    assert rms[4] < 0.02 and min(rms[:4] + rms[5:]) > 0.25  # silence exactly where the sound was missing


def test_mp4_writer_without_pictures_fails_instead_of_hanging(tmp_path: Path) -> None:
    w = Mp4Writer(tmp_path / "none.mp4", 16000)
    w.audio(0, np.zeros(640, np.float32))
    result: list[BaseException] = []

    def close() -> None:
        try:
            w.close()
        except StreamingError as exc:
            result.append(exc)

    t = threading.Thread(target=close)
    t.start()
    t.join(10)
    assert not t.is_alive() and "no video frame arrived" in str(result[0])


@pytest.mark.parametrize(("fmt", "layout"), [("s16", "stereo"), ("s16p", "stereo"), ("fltp", "mono"), ("s32", "mono")])
def test_decoded_audio_frames_become_pcm(fmt: str, layout: str) -> None:
    channels = 2 if layout == "stereo" else 1
    n = 480
    planar = fmt.endswith("p")
    kind = {"s16": np.int16, "s16p": np.int16, "fltp": np.float32, "s32": np.int32}[fmt]
    ramp = np.linspace(-0.5, 0.5, n)
    scale = {np.int16: 32767, np.float32: 1.0, np.int32: 2**31 - 1}[kind]
    per_channel = np.stack([ramp * (c + 1) / channels for c in range(channels)])  # (channels, n)
    data = (per_channel * scale).astype(kind)
    array = data if planar else data.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(array, format=fmt, layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = 48000, 0, Fraction(1, 48000)
    pcm, rate = frame_pcm(frame)
    assert rate == 48000 and pcm.shape == (n, channels)
    got = pcm.astype(np.float64) / (32767 if pcm.dtype == np.int16 else 1.0)
    np.testing.assert_allclose(got, per_channel.T, atol=2e-3)
