"""WebRTC end to end on loopback: the Python client sends a TTS sentence as its microphone, the
server animates it, the client records what comes back to an mp4. From the received streams:

- frame rate by the RTP timestamps (not wall time): 25 fps, 3600 ticks per frame;
- A/V offset: where the received video sits on the session's frame sequence (matched by picture
  content) against where the received audio sits on the session's sound (matched by waveform),
  both relative to the frames the engine published: within ±40 ms;
- the mouth opening re-tracked from the received video follows the sent speech's loudness.

The measured numbers go to artifacts/tests/webrtc_loopback.json."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from posetalk.engine import Output
from posetalk.models.face import topology as T
from posetalk.models.face.tracker import track
from posetalk.models.render.video import decode_audio, read_mp4
from posetalk.tests.streaming_fixtures import ServerThread, server_thread
from scipy.ndimage import uniform_filter1d
from scipy.signal import correlate

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "tests"
SIZE = 224  # small for the CPU; at 160 the mouth is ~15 px wide and VP8 blurs its cavity away


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with server_thread(size=SIZE) as t:
        yield t


INNER_LIP_PAIRS = [(13, 14), (82, 87), (312, 317), (81, 178), (311, 402)]  # upper, lower (mesh indices)


def lip_gap(rgb: np.ndarray) -> float:
    """Inner-lip gap over face width, from mediapipe's face mesh on the frame upscaled 3x (the
    test renders small): the mean over five pairs of inner-lip points across the mouth, since on
    a mouth 15 pixels wide one pair moves with the codec's noise."""
    big = cv2.resize(rgb, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    face = track(big)
    if face is None:
        return float("nan")
    lm = face.landmarks
    width = np.linalg.norm(lm[T.CHEEK_RIGHT, :2] - lm[T.CHEEK_LEFT, :2])
    return float(np.mean([np.linalg.norm(lm[a, :2] - lm[b, :2]) for a, b in INNER_LIP_PAIRS]) / width)


def best_lag(a: np.ndarray, b: np.ndarray) -> int:
    """k such that a[i] best matches b[i + k] (cross-correlation of whole signals)."""
    c = correlate(b, a, mode="full", method="fft")
    return int(np.argmax(c)) - (len(a) - 1)


def frame_offset(received: np.ndarray, published: np.ndarray) -> tuple[int, float, float]:
    """d such that received frame i shows published frame i + d, matched by the correlation of
    frame-to-frame changes (codec noise barely changes between frames, motion does); the best
    correlation and the runner-up."""
    rd = np.diff(received.astype(np.float32), axis=0).reshape(len(received) - 1, -1)
    pd = np.diff(published.astype(np.float32), axis=0).reshape(len(published) - 1, -1)
    scores = []
    for d in range(0, len(pd) - len(rd) // 2):
        n = min(len(rd), len(pd) - d)
        scores.append((float(np.corrcoef(rd[:n].ravel(), pd[d : d + n].ravel())[0, 1]), d))
    scores.sort(reverse=True)
    return scores[0][1], scores[0][0], scores[1][0]


def test_webrtc_loopback_end_to_end(srv: ServerThread, spoken: np.ndarray, tmp_path: Path) -> None:
    from posetalk.clients.rtc_client import run_client

    published: list[Output] = []
    assert srv.server is not None
    srv.server.taps.append(lambda key, out: published.append(out))
    sent = np.concatenate([np.zeros(4000, np.float32), spoken])
    out = tmp_path / "received.mp4"
    result = asyncio.run(run_client(srv.url, sent, out, prompt="calm, nods now and then", tail_s=1.0))
    srv.server.taps.clear()

    # Frame rate by the timestamps: every step one frame (3600 ticks), 25 a second.
    steps = np.diff(result.video_pts)
    assert result.frames >= 100 and (steps % 3600 == 0).all()
    assert (steps == 3600).mean() >= 0.95 and 24.0 <= result.fps <= 25.0 + 1e-6
    audio_steps = np.diff(result.audio_pts)
    assert (audio_steps == 960).all()  # gapless 20 ms packets

    # The recording: constant 25 fps, as long as what was received.
    frames, fps = read_mp4(out)
    heard, start = decode_audio(out, 16000)
    assert fps == 25 and len(frames) == result.mp4.frames and abs(start) < 1e-3
    assert frames.shape[1:] == (SIZE, SIZE, 3)

    # A/V offset against the engine's own pairing of picture and sound.
    pub_video = np.stack([o.video for o in published])
    pub_audio = np.concatenate([o.audio for o in published])
    audio_at = best_lag(heard, pub_audio)  # heard[s] is published sample s + audio_at
    video_at, match, runner_up = frame_offset(frames, pub_video)  # frames[i] is published frame i + video_at
    assert match > 0.5 and match - runner_up > 0.1  # an unambiguous match
    offset_ms = (video_at * 640 - audio_at) / 16.0  # > 0: the sound comes later than its picture
    assert abs(offset_ms) <= 40.0

    # The mouth re-tracked from the received video follows the loudness of the sent speech.
    mouth = np.array([lip_gap(f) for f in frames])
    assert np.isfinite(mouth).mean() > 0.95
    # The codec's noise differs frame to frame, the mouth's motion does not: a 3-frame mean.
    ok = np.isfinite(mouth)
    mouth[~ok] = np.interp(np.flatnonzero(~ok), np.flatnonzero(ok), mouth[ok])
    mouth = uniform_filter1d(mouth, 3)
    at = best_lag(sent, heard[: len(frames) * 640])  # heard[s] is sent[s - at]
    aligned = np.zeros(len(frames) * 640, np.float32)
    lo, hi = max(at, 0), min(len(aligned), at + len(sent))
    aligned[lo:hi] = sent[lo - at : hi - at]
    loud = np.log(np.sqrt((aligned.reshape(-1, 640) ** 2).mean(1)) + 1e-3)
    corr = {}
    for lag in range(-2, 3):
        m, e = mouth[max(0, lag) : len(mouth) + min(0, lag)], loud[max(0, -lag) : len(loud) - max(0, lag)]
        corr[lag] = float(np.corrcoef(m, e)[0, 1])
    best = max(corr, key=lambda k: corr[k])
    jaw = np.array([o.expression[0] for o in published])[video_at : video_at + len(frames)]
    retrack_vs_engine = float(np.corrcoef(mouth[: len(jaw)], jaw)[0, 1])
    jaw_vs_loudness = float(np.corrcoef(jaw, loud[: len(jaw)])[0, 1])  # the engine's own, before the wire
    report: dict[str, Any] = {
        "frames_received": result.frames, "fps_by_timestamps": round(result.fps, 3),
        "one_frame_steps": float((steps == 3600).mean()), "mp4_frames_filled": result.mp4.filled,
        "av_offset_ms": offset_ms, "video_match": round(match, 3), "video_match_runner_up": round(runner_up, 3),
        "mouth_vs_loudness_r": {str(k): round(v, 3) for k, v in corr.items()}, "mouth_best_lag_frames": best,
        "retracked_mouth_vs_engine_jaw_r": round(retrack_vs_engine, 3),
        "engine_jaw_vs_loudness_r": round(jaw_vs_loudness, 3),
    }  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "webrtc_loopback.json").write_text(json.dumps(report, indent=1))
    print(report)
    assert corr[best] > 0.5 and abs(best) <= 2
    assert retrack_vs_engine > 0.6 and jaw_vs_loudness > 0.8
    assert not srv.server.peers  # the client hung up: the session is gone


def test_webrtc_carries_the_full_band(srv: ServerThread, spoken: np.ndarray, tmp_path: Path) -> None:
    """What the listener hears is the audio that came in, at full band: a 48 kHz sentence with
    hiss above 8 kHz (bursts of 9-14 kHz noise, like fricatives) comes back with that hiss (the
    models hear their 16 kHz copy; before, 1 % of the high band arrived)."""
    from posetalk.clients.rtc_client import run_client
    from scipy.signal import butter, resample_poly, sosfilt, welch

    rng = np.random.default_rng(0)
    speech = resample_poly(spoken, 3, 1)
    hiss = sosfilt(butter(8, [9000, 14000], "bandpass", fs=48000, output="sos"), rng.standard_normal(len(speech)))
    bursts = (np.arange(len(speech)) / 48000 % 0.8) < 0.3
    sent = (speech + 0.3 * hiss * bursts).astype(np.float32)
    out = tmp_path / "received.mp4"
    published: list[Output] = []
    assert srv.server is not None
    srv.server.taps.append(lambda key, o: published.append(o))
    asyncio.run(run_client(srv.url, sent, out, rate=48000, tail_s=0.5))
    srv.server.taps.clear()
    heard, _ = decode_audio(out, 48000)
    at_server = np.concatenate([o.wide for o in published])

    def band_energy(x: np.ndarray, lo: float, hi: float) -> float:
        f, p = welch(x, 48000, nperseg=2048)
        return float(p[(f > lo) & (f < hi)].sum() * len(x))

    report = {}
    for lo, hi in ((300, 3000), (9000, 10000), (10000, 11000), (11000, 12000), (12000, 13000), (13000, 14000)):
        want = band_energy(sent, lo, hi)
        report[f"{lo}-{hi} Hz"] = {"at the server": round(band_energy(at_server, lo, hi) / want, 3),
                                   "received": round(band_energy(heard, lo, hi) / want, 3)}  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "webrtc_full_band.json").write_text(json.dumps({"energy_over_sent": report}, indent=1))
    for band, got in report.items():  # two Opus hops: the level and the band both kept
        assert 0.7 < got["received"] < 1.3 and 0.7 < got["at the server"] < 1.3, (band, got)
