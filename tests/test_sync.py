"""The sync expert: contrastive training on a tiny synthetic corpus lowers the loss and resumes,
checkpoints reload bit-exactly and fail clearly, and the LSE-style scores find the offset of a
held-out voice's mouth track (0 in sync, +3 when the mouth lags by 3 frames)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from posetalk.models.data import records, synth, tts
from posetalk.models.data.dataset import SAMPLES_PER_FRAME
from posetalk.models.data.records import Corpus
from posetalk.models.errors import CheckpointError, InputError
from posetalk.models.motion import checkpoint, sync

SECONDS = 40.0
HELD_OUT_FRAMES = 120  # the held-out split gets at least this much


def _corpus(root: Path) -> Path:
    """A ~40 s espeak-ng corpus, re-split so that the "val" split holds whole utterances of
    voices not trained on (a corpus this small may get no val record of its own)."""
    if tts.available_engines().get("espeak-ng") is not None:
        pytest.skip("espeak-ng is not installed (scripts/setup installs it)")
    raw = root / "raw"
    synth.build(raw, SECONDS / 3600, 0, engines=["espeak-ng"], workers=1, shard_seconds=SECONDS / 2)
    recs = list(Corpus(raw))
    held = {r.voice for r in recs if r.split == "val"}
    if sum(r.frames for r in recs if r.voice in held) < HELD_OUT_FRAMES:
        held.add(min((r for r in recs if r.frames >= HELD_OUT_FRAMES), key=lambda r: r.frames).voice)
    for r in recs:
        r.split = "val" if r.voice in held else "train"
    out = root / "corpus"
    records.write_shard(out, 0, recs)
    records.finish(out, {"note": "test_sync"})
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sync")
    data = _corpus(root)
    out = root / "run"
    # One thread: on a busy shared machine every small op of a two-thread pool waits for the other
    # core (measured ~10x slower here), and this model is too small to gain from a second thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sync.train_sync(data, out, steps=100, batch=32, log_every=20, save_every=50)
        first_step = checkpoint.read(out / "sync.safetensors", "sync")[2]["step"]
        path = sync.train_sync(data, out, steps=180, batch=32, log_every=20, save_every=50)  # resumes
    finally:
        torch.set_num_threads(threads)
    with open(out / "sync_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    recs = list(Corpus(data))
    held = [r for r in recs if r.split == "val"]
    train = [r for r in recs if r.split == "train"]
    return {
        "data": data,
        "out": out,
        "path": path,
        "first_step": first_step,
        "rows": rows,
        "held": held,
        "train": train,
    }


def test_training_lowers_the_loss_and_resumes(trained: dict[str, Any]) -> None:
    rows = trained["rows"]
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(20, 181, 20))  # the resumed run continued the step count
    assert trained["first_step"] == 100
    assert checkpoint.read(trained["path"], "sync")[2]["step"] == 180
    assert (trained["out"] / "sync.optim.pt").exists()
    assert (trained["out"] / "sync_loss.png").stat().st_size > 1000
    loss = [float(r["loss"]) for r in rows]
    assert loss[-1] < 0.75 * loss[0]
    assert float(rows[-1]["train_acc"]) > float(rows[0]["train_acc"])


def test_resume_with_another_config_is_refused(trained: dict[str, Any]) -> None:
    with pytest.raises(CheckpointError, match="trained with"):
        sync.train_sync(trained["data"], trained["out"], steps=200, config=sync.SyncConfig(dim=32))


def test_model_is_small() -> None:
    model = sync.SyncNet()
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert size < 1.5e6


def test_checkpoint_reloads_bit_exactly(trained: dict[str, Any], tmp_path: Path) -> None:
    model = sync.load_sync(trained["path"])
    assert not model.training
    checkpoint.save(tmp_path / "again.safetensors", model, model.cfg, "sync")
    again = sync.load_sync(tmp_path / "again.safetensors")
    torch.manual_seed(1)
    mel = torch.randn(4, 80, 4 * model.cfg.window) - 5
    mouth = torch.rand(4, model.cfg.window, sync.N_MOUTH) * 0.5
    assert torch.equal(model(mel, mouth), again(mel, mouth))
    rec = trained["held"][0]
    a = sync.sync_scores(model, rec.audio, rec.expression)
    b = sync.sync_scores(again, rec.audio, rec.expression)
    assert np.array_equal(a["curve"], b["curve"])


def test_wrong_kind_corrupt_or_missing_checkpoints_raise(trained: dict[str, Any], tmp_path: Path) -> None:
    model = sync.load_sync(trained["path"])
    checkpoint.save(tmp_path / "coarse.safetensors", model, model.cfg, "coarse")
    with pytest.raises(CheckpointError, match="not 'sync'"):
        sync.load_sync(tmp_path / "coarse.safetensors")
    blob = trained["path"].read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError):
        sync.load_sync(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        sync.load_sync(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError):
        sync.load_sync(tmp_path / "missing.safetensors")


def test_shift_frames_delays_the_track() -> None:
    x = np.arange(10.0)[:, None]
    assert sync.shift_frames(x, 3)[5, 0] == 2.0  # out[t] = x[t - 3]: the track lags
    assert sync.shift_frames(x, -2)[5, 0] == 7.0
    assert sync.shift_frames(x, 3)[0, 0] == 0.0 and sync.shift_frames(x, -2)[-1, 0] == 9.0


def test_sync_scores_find_the_offset_of_a_held_out_voice(trained: dict[str, Any]) -> None:
    model = sync.load_sync(trained["path"])
    rec = max(trained["held"], key=lambda r: r.frames)
    mouth = rec.expression[:, : sync.N_MOUTH]
    aligned = sync.sync_scores(model, rec.audio, mouth)
    assert aligned["offset"] == 0
    assert aligned["confidence"] > 0.05
    assert aligned["distance"] == pytest.approx(aligned["curve"].min())
    assert list(aligned["offsets"]) == list(range(-10, 11))
    assert aligned["dists"].shape == (aligned["windows"], 21)
    lagging = sync.sync_scores(model, rec.audio, sync.shift_frames(mouth, 3))
    assert lagging["offset"] == 3
    leading = sync.sync_scores(model, rec.audio, sync.shift_frames(mouth, -5))
    assert leading["offset"] == -5
    # Another utterance's mouth (a training voice's) matches worse than the utterance's own.
    other = max(trained["train"], key=lambda r: r.frames)
    n = min(other.frames, rec.frames)
    own = sync.sync_scores(model, rec.audio[: n * SAMPLES_PER_FRAME], mouth[:n])
    wrong = sync.sync_scores(model, rec.audio[: n * SAMPLES_PER_FRAME], other.expression[:n])
    assert wrong["confidence"] < own["confidence"]
    assert wrong["distance"] > own["distance"]


def test_sync_scores_refuse_unusable_input(trained: dict[str, Any]) -> None:
    model = sync.load_sync(trained["path"])
    rec = trained["held"][0]
    with pytest.raises(InputError, match="too few"):
        sync.sync_scores(model, rec.audio[: 20 * SAMPLES_PER_FRAME], rec.expression[:20])
    with pytest.raises(InputError, match="mouth track"):
        sync.sync_scores(model, rec.audio, rec.expression[:, :5])
    with pytest.raises(InputError, match="mono"):
        sync.sync_scores(model, np.stack([rec.audio, rec.audio]), rec.expression)


def test_shipped_weights_load() -> None:
    path = Path(sync.__file__).parent / "weights" / "sync.safetensors"
    if not path.exists():
        pytest.skip("no shipped sync expert")
    model = sync.load_sync(path)
    assert path.stat().st_size < 2e6
    assert model(torch.zeros(1, 80, 4 * model.cfg.window), torch.zeros(1, model.cfg.window, 14)).shape == (1,)
