"""Video files through PyAV: writing frames (H.264 mp4, or VP9 webm) with an optional sound
track, reading frames and sound back, and contact sheets to look at."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from posetalk.models.errors import VideoError

AUDIO_RATE = 16_000  # model audio: 16 kHz mono float32 (DESIGN.md)


def write_mp4(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    crf: int = 20,
    audio: np.ndarray | None = None,
    sample_rate: int = AUDIO_RATE,
) -> int:
    """Encode RGB uint8 frames to H.264 (yuv420p); returns the number of frames written.
    RGBA frames (straight alpha, for overlays) need a .webm (VP9 with alpha) or a .mov (ProRes
    4444 with alpha).

    ``audio``: optional mono float32 samples in [-1, 1] at ``sample_rate``, written as an AAC
    track (Opus in a .webm, whose video is then VP9) starting with the first frame. It is
    written whole, whatever its length against the frames'.
    """
    import av

    sound = None if audio is None else _mono_float(audio)
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = None
        sound_stream = None
        sent = 0  # audio samples encoded so far
        for frame in frames:
            if stream is None:
                rgba = frame.ndim == 3 and frame.shape[2] == 4
                stream = add_video_stream(container, path, frame.shape[1], frame.shape[0], fps, crf, rgba)
                if sound is not None:  # every stream exists before the first packet is muxed
                    sound_stream = add_audio_stream(container, path, sample_rate)
            vf = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame[: stream.height, : stream.width]), format="rgba" if rgba else "rgb24"
            )
            for packet in stream.encode(vf):
                container.mux(packet)
            count += 1
            if sound is not None and sound_stream is not None:  # interleave: the sound up to this frame's end
                end = min(len(sound), round(count * sample_rate / fps))
                _encode_audio(container, sound_stream, sound, sent, end, sample_rate)
                sent = max(sent, end)
        if sound is not None:
            if sound_stream is None:  # no frames: a file with the sound alone
                sound_stream = add_audio_stream(container, path, sample_rate)
            _encode_audio(container, sound_stream, sound, sent, len(sound), sample_rate)
            for packet in sound_stream.encode(None):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return count


def _mono_float(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio)
    if a.ndim != 1:
        raise ValueError(f"audio must be mono, shape (N,); got {a.shape}")
    return np.ascontiguousarray(np.clip(a, -1.0, 1.0), dtype=np.float32)


ALPHA_SUFFIXES = (".webm", ".mov")  # the files add_video_stream writes with alpha


def add_video_stream(container: Any, path: str | Path, w: int, h: int, fps: float, crf: int, rgba: bool) -> Any:
    """The video stream for ``path``'s kind of file: H.264 (.mp4 and the like), VP9 (.webm, with
    alpha when ``rgba``) or ProRes 4444 (.mov with alpha). VideoError for alpha in a container
    that cannot hold it."""
    suffix = Path(path).suffix.lower()
    if rgba and suffix not in ALPHA_SUFFIXES:
        raise VideoError(f"{path}: video with alpha needs a .webm or .mov file, not {suffix or 'none'}")
    rate = Fraction(fps).limit_denominator(1001)
    if suffix == ".webm":
        stream = container.add_stream("libvpx-vp9", rate=rate)
        # VP9's constant-quality scale runs 0-63 where x264's runs 0-51: crf 20 -> 31.
        stream.options = {"crf": str(crf + 11), "b": "0", "deadline": "realtime", "cpu-used": "8"}
        stream.pix_fmt = "yuva420p" if rgba else "yuv420p"
    elif rgba:  # .mov: ProRes 4444, alpha included
        stream = container.add_stream("prores_ks", rate=rate)
        stream.options = {"profile": "4", "vendor": "apl0"}
        stream.pix_fmt = "yuva444p10le"
    else:
        stream = container.add_stream("libx264", rate=rate)
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.pix_fmt = "yuv420p"
    stream.width, stream.height = w - w % 2, h - h % 2
    return stream


def add_audio_stream(container: Any, path: str | Path, sample_rate: int) -> Any:
    """Mono audio for ``path``'s kind of file: Opus in a .webm, AAC otherwise (both take 16 kHz
    as it is; Opus decoders hand back 48 kHz, which read_audio resamples)."""
    webm = Path(path).suffix.lower() == ".webm"
    return container.add_stream("libopus" if webm else "aac", rate=sample_rate, layout="mono")


def _encode_audio(container: Any, stream: Any, sound: np.ndarray, start: int, end: int, rate: int) -> None:
    import av

    if end <= start:
        return
    frame = av.AudioFrame.from_ndarray(sound[None, start:end], format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = start
    frame.time_base = Fraction(1, rate)
    for packet in stream.encode(frame):  # PyAV regroups samples into the codec's frame size
        container.mux(packet)


def _open(path: str | Path) -> Any:
    import av

    if not Path(path).is_file():
        raise VideoError(f"{path}: no such file")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: not a readable video ({exc.__class__.__name__})") from exc


def decode_audio(path: str | Path, sample_rate: int = AUDIO_RATE) -> tuple[np.ndarray, float]:
    """The first sound track as mono float32 at ``sample_rate``, and when its first sample plays
    (seconds on the file's clock, which the video frames' times share).

    Encoder priming is dropped by the decoder; encoder padding at the end is cut to the track's
    stated duration where the container states one (mp4/mov do, for AAC and Opus).
    Raises VideoError if the file cannot be read or has no sound track.
    """
    import av

    with _open(path) as container:
        if not container.streams.audio:
            raise VideoError(f"{path}: the video has no audio track")
        stream = container.streams.audio[0]
        # Keep the channels and average them below: FFmpeg's own downmix to mono scales a
        # stereo sound by 1/√2 per channel (+3 dB against the mean that load_audio uses).
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)
        chunks: list[np.ndarray] = []
        start: float | None = None
        try:
            for frame in container.decode(stream):
                if start is None and frame.pts is not None and frame.time_base is not None:
                    start = float(frame.pts * frame.time_base)
                chunks.extend(f.to_ndarray().mean(0) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().mean(0) for f in resampler.resample(None))
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: the audio track cannot be decoded ({exc.__class__.__name__})") from exc
        samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        if stream.duration is not None and stream.time_base is not None:
            stated = round(float(stream.duration * stream.time_base) * sample_rate)
            if 0 < stated < len(samples):
                samples = samples[:stated]
    if len(samples) == 0:
        raise VideoError(f"{path}: the audio track is empty")
    return samples, start or 0.0


def read_audio(path: str | Path, sample_rate: int = AUDIO_RATE) -> np.ndarray:
    """The first sound track as mono float32 samples at ``sample_rate`` (16 kHz by default)."""
    return decode_audio(path, sample_rate)[0]


def iter_frames(path: str | Path) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds on the file's clock, RGB uint8 frame) for every frame of the first video
    stream, turned upright where the file says it is displayed rotated (phone videos)."""
    import av

    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fallback = 1.0 / float(stream.average_rate or 25)
        last = -fallback
        try:
            for frame in container.decode(stream):
                t = float(frame.pts * frame.time_base) if frame.pts is not None else last + fallback
                last = t
                rgb = frame.to_ndarray(format="rgb24")
                # The display matrix turns the frame counterclockwise by this much (as ffmpeg's
                # autorotate reads it); PyAV < 13 does not expose it.
                turns = round(getattr(frame, "rotation", 0) / 90) % 4
                yield t, np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: the video stream cannot be decoded ({exc.__class__.__name__})") from exc


def read_mp4(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames of a video as (T, H, W, 3) RGB uint8, and its frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return np.stack(frames), fps


def sheet_frames(total: int, count: int = 18) -> np.ndarray:
    """Which of ``total`` frames a contact sheet shows: ``count`` evenly spaced ones."""
    return np.linspace(0, total - 1, min(count, total)).round().astype(int)


def contact_sheet(
    frames: np.ndarray, columns: int = 6, count: int = 18, tile: int = 256, labels: list[int] | None = None
) -> np.ndarray:
    """Evenly spaced frames in a labelled grid (RGB uint8). With ``labels`` every frame given is
    shown, labelled by them (frames kept by ``sheet_frames`` while streaming a long video)."""
    idx = sheet_frames(len(frames), count) if labels is None else np.arange(len(frames))
    tiles = []
    for i in idx:
        t = cv2.resize(frames[i], (tile, tile), interpolation=cv2.INTER_AREA)
        label = str(i if labels is None else labels[i])
        cv2.putText(t, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
        tiles.append(t)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
