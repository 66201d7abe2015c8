"""Overlays for live streams: the person alone on a transparent background (`--alpha`), written as
VP9 with alpha (.webm) or ProRes 4444 (.mov); decoded alpha ~0 on the background and ~255 on the
face; composited over the portrait's own background plate it is the normal frame. (The live
overlay page: tests/test_streaming_browser.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from posetalk.clients.cli import main
from posetalk.models.render import make_renderer
from posetalk.streaming.tracks import flatten, pack_matte
from posetalk.tests.conftest import psnr, random_motion


def _decode_rgba(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        # FFmpeg's own VP9 decoder drops the alpha layer (a Matroska BlockAdditional): libvpx's keeps it
        dec = av.CodecContext.create("libvpx-vp9", "r") if stream.codec_context.name == "vp9" else stream.codec_context
        frames = [f.to_ndarray(format="rgba") for pkt in c.demux(stream) for f in dec.decode(pkt)]
    return np.stack(frames)


def test_rgba_over_the_plate_is_the_frame(avatar: Any) -> None:
    """What an alpha session's ordinary video shows (tracks.flatten) is the normal frame; what the
    overlay page receives (tracks.pack_matte) is the colour and the matte side by side."""
    r = make_renderer(avatar, "cpu")
    for pose, gaze, expr in zip(*random_motion(avatar, 4, seed=3), strict=True):
        rgba = r.render_rgba(pose, gaze, expr)
        assert psnr(flatten(rgba, avatar.plate), r.render_frame(pose, gaze, expr)) > 40
        packed = pack_matte(rgba)
        w = rgba.shape[1]
        assert packed.shape == (rgba.shape[0], 2 * w, 3)
        assert np.array_equal(packed[:, :w], rgba[..., :3]) and np.array_equal(packed[:, w:, 1], rgba[..., 3])


@pytest.mark.parametrize("suffix", [".webm", ".mov"])
def test_alpha_video_is_transparent_around_the_person(tmp_path: Path, avatar: Any, suffix: str) -> None:
    out = tmp_path / f"overlay{suffix}"
    assert main(["animate", "--motion", "nod", "--seconds", "1", "--alpha", "--out", str(out)]) == 0
    frames = _decode_rgba(out)
    assert len(frames) == 25 and frames.shape[1:] == (512, 512, 4)
    alpha = frames[..., 3].astype(np.float32)
    background = avatar.alpha < 0.02  # where the portrait has no person
    face = tuple(np.round(avatar.landmarks[1, :2]).astype(int))[::-1]  # the nose tip, (row, col)
    assert np.median(alpha[:, background]) < 8 and alpha[:, face[0], face[1]].min() > 245
    # The person's colours, not the portrait's background's: the face matches the normal render.
    rgb = frames[12, face[0] - 20 : face[0] + 20, face[1] - 20 : face[1] + 20, :3].astype(np.float32)
    assert (
        np.abs(
            rgb.mean((0, 1)) - avatar.image[face[0] - 20 : face[0] + 20, face[1] - 20 : face[1] + 20].mean((0, 1))
        ).max()
        < 12
    )


def test_alpha_needs_a_container_that_holds_it(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "overlay.mp4"
    assert main(["animate", "--motion", "nod", "--alpha", "--out", str(out)]) == 2
    assert ".webm" in capsys.readouterr().err and not out.exists()
