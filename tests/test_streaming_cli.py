"""The live commands as a person runs them: `posetalk client` against a running server records an
mp4 with picture and sound; `posetalk live --audio` writes one without a server; what cannot work
on this machine (a virtual camera without pyvirtualcam, a microphone without a sound card) fails
with one clear line."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from posetalk.clients.cli import main
from posetalk.models.render.video import decode_audio, read_mp4
from posetalk.tests.engine_fixtures import buzz
from posetalk.tests.streaming_fixtures import ServerThread, server_thread, write_wav


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with server_thread() as t:
        yield t


def test_client_command_records_what_comes_back(srv: ServerThread, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    wav, out = tmp_path / "speech.wav", tmp_path / "received.mp4"
    write_wav(wav, buzz(1.5))
    assert main(["client", "--url", srv.url, "--audio", str(wav), "--out", str(out), "--prompt", "nods",
                 "--tail", "0.5"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "25.00 fps" in printed
    frames, fps = read_mp4(out)
    sound, _ = decode_audio(out, 16000)
    assert fps == 25 and frames.shape[1:] == (160, 160, 3) and len(frames) >= 50
    assert abs(len(sound) / 16000 - len(frames) / 25) < 0.1 and np.abs(sound).max() > 0.05
    assert not srv.server.peers  # type: ignore[union-attr]


def test_client_command_says_why_the_server_refused(srv: ServerThread, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    wav = tmp_path / "speech.wav"
    write_wav(wav, buzz(0.2))
    assert main(["client", "--url", srv.url, "--audio", str(wav), "--avatar", "nobody"]) == 2
    assert "the server refused the offer (404): no avatar 'nobody'" in capsys.readouterr().err
    assert main(["client", "--url", "ftp://x", "--audio", str(wav)]) == 2


def test_live_command_writes_an_mp4_from_a_file(tmp_path: Path) -> None:
    wav, out = tmp_path / "speech.wav", tmp_path / "live.mp4"
    write_wav(wav, buzz(1.2))
    assert main(["live", "--audio", str(wav), "--out", str(out), "--size", "128", "--head", "procedural"]) == 0
    frames, fps = read_mp4(out)
    sound, _ = decode_audio(out, 16000)
    assert fps == 25 and frames.shape[1:] == (128, 128, 3)
    assert 1.2 <= len(frames) / 25 <= 2.5 and np.abs(sound).max() > 0.05


def test_live_command_writes_an_overlay_with_alpha(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import av

    wav, out = tmp_path / "speech.wav", tmp_path / "live.webm"
    write_wav(wav, buzz(1.0))
    args = ["live", "--audio", str(wav), "--size", "128", "--head", "procedural", "--alpha"]
    assert main([*args, "--out", str(out)]) == 0
    with av.open(str(out)) as c:  # FFmpeg's own VP9 decoder drops the alpha layer: libvpx's keeps it
        dec = av.CodecContext.create("libvpx-vp9", "r")
        frames = np.stack([f.to_ndarray(format="rgba") for p in c.demux(c.streams.video[0]) for f in dec.decode(p)])
    assert frames.shape[1:] == (128, 128, 4) and len(frames) >= 25
    assert np.median(frames[:, :8, :8, 3]) < 8 and frames[:, 64, 64, 3].min() > 245  # corner clear, face solid
    sound, _ = decode_audio(out, 16000)
    assert np.abs(sound).max() > 0.05
    for bad in (["--out", str(tmp_path / "x.mp4")], ["--virtual-camera"]):
        assert main([*args, *bad]) == 2
    assert "--alpha" in capsys.readouterr().err


def test_live_command_fails_clearly_without_its_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["live", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "give --audio FILE or --mic" in capsys.readouterr().err
    if importlib.util.find_spec("pyvirtualcam") is None:
        wav = tmp_path / "s.wav"
        write_wav(wav, buzz(0.2))
        assert main(["live", "--audio", str(wav), "--virtual-camera", "--size", "128", "--head", "procedural"]) == 2
        assert "pip install pyvirtualcam" in capsys.readouterr().err


def test_live_microphone_records_or_says_why_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mic.mp4"
    code = main(["live", "--mic", "--seconds", "0.5", "--out", str(out), "--size", "128", "--head", "procedural"])
    if code == 2:  # no sound card here (CI): one clear line
        assert "microphone" in capsys.readouterr().err
    else:
        assert code == 0 and out.is_file()
