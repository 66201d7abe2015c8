"""Writing frames: H.264 mp4 through PyAV, and contact sheets to look at."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25.0, crf: int = 20) -> int:
    """Encode RGB uint8 frames to H.264 (yuv420p); returns the number of frames written."""
    import av

    count = 0
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                h, w = frame.shape[:2]
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height = w - w % 2, h - h % 2
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            vf = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame[: stream.height, : stream.width]), format="rgb24"
            )
            for packet in stream.encode(vf):
                container.mux(packet)
            count += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return count


def read_mp4(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames of a video as (T, H, W, 3) RGB uint8, and its frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return np.stack(frames), fps


def contact_sheet(frames: np.ndarray, columns: int = 6, count: int = 18, tile: int = 256) -> np.ndarray:
    """Evenly spaced frames in a labelled grid (RGB uint8)."""
    idx = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    tiles = []
    for i in idx:
        t = cv2.resize(frames[i], (tile, tile), interpolation=cv2.INTER_AREA)
        cv2.putText(t, str(i), (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
        tiles.append(t)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
