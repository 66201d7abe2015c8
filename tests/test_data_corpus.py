"""The synthetic corpus end to end: determinism, resuming, splits, alignment, the window
dataset, the inspect report, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from posetalk.models.data import records, synth, tts
from posetalk.models.data.dataset import SAMPLES_PER_FRAME, WindowDataset
from posetalk.models.data.phones import ALL, FPS
from posetalk.models.data.records import Corpus
from posetalk.models.data.visemes import n_frames
from posetalk.models.errors import CorpusError, NoTTSEngineError

FAST = ["espeak-ng", "flite"]  # quick engines; Piper and festival are covered by their own tests
SECONDS = 30.0


def _engines() -> list[str]:
    ok = [e for e in FAST if tts.available_engines().get(e) is None]
    if not ok:
        pytest.skip("neither espeak-ng nor flite is installed (scripts/setup installs them)")
    return ok


def _build(root: Path, seed: int) -> dict:
    return synth.build(root, SECONDS / 3600, seed, engines=_engines(), workers=1, shard_seconds=SECONDS / 2)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "a"
    _build(root, seed=7)
    return root


def _arrays(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted((root / "shards").glob("*.npz")):
        with np.load(p) as z:
            out.update({f"{p.name}/{k}": z[k] for k in z.files})
    return out


def _lines(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / "manifest.jsonl").read_text().splitlines()]


def test_same_seed_same_corpus_other_seed_other_corpus(corpus_dir: Path, tmp_path: Path) -> None:
    _build(tmp_path / "b", seed=7)
    a, b = _arrays(corpus_dir), _arrays(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert _lines(corpus_dir) == _lines(tmp_path / "b")
    _build(tmp_path / "c", seed=8)
    texts_a = [x["text"] for x in _lines(corpus_dir)]
    texts_c = [x["text"] for x in _lines(tmp_path / "c")]
    assert texts_a != texts_c


def test_an_interrupted_build_resumes_to_the_same_corpus(corpus_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "r"
    shutil.copytree(corpus_dir, root)
    # As if killed while writing shard 1: its files gone, a temporary left, no finished marker.
    (root / "shards" / "shard-00001.jsonl").unlink()
    (root / "shards" / "shard-00001.npz").rename(root / "shards" / "shard-00001.npz.tmp")
    (root / "corpus.json").unlink()
    (root / "manifest.jsonl").unlink()
    with pytest.raises(CorpusError, match="not a complete corpus"):
        Corpus(root)
    assert not records.shard_done(root, 1)
    _build(root, seed=7)
    assert _lines(root) == _lines(corpus_dir)
    a, b = _arrays(root), _arrays(corpus_dir)
    assert all(np.array_equal(a[k], b[k]) for k in b)


def test_other_settings_in_the_same_folder_are_refused(corpus_dir: Path) -> None:
    with pytest.raises(CorpusError, match="other settings"):
        synth.build(corpus_dir, 1.0, 7, engines=_engines(), workers=1)


def test_missing_engines_get_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoTTSEngineError):
        synth.build(tmp_path / "x", 0.001, 0, engines=["no-such-engine"], workers=1)
    assert not (tmp_path / "x" / "corpus.json").exists()


def test_records_line_up_and_splits_are_by_voice(corpus_dir: Path) -> None:
    corpus = Corpus(corpus_dir)
    heldout = {v.id for v in tts.voices(_engines()) if v.heldout}
    by_split: dict[str, set[str]] = {}
    for rec in corpus:
        by_split.setdefault(rec.split, set()).add(rec.voice)
        assert rec.frames == n_frames(rec.duration)
        assert rec.pose.shape == (rec.frames, 6) and rec.gaze.shape == (rec.frames, 2)
        assert np.isfinite(rec.audio).all() and np.abs(rec.audio).max() <= 1.0
        # Phones tile the audio, and the per-frame phone is the one under each frame's centre.
        assert rec.phones[0, 1] == pytest.approx(0, abs=0.02)
        assert rec.phones[-1, 2] == pytest.approx(rec.duration, abs=0.02)
        for f in range(0, rec.frames, 7):
            t = (f + 0.5) / FPS
            k = min(np.searchsorted(rec.phones[:, 2], t, side="right"), len(rec.phones) - 1)
            assert rec.phone[f] == rec.phones[k, 0]
        assert rec.description and rec.text
    voices = [v for s in by_split.values() for v in s]
    assert len(voices) == len(set(voices))  # no voice in two splits
    assert by_split.get("test", set()) <= heldout
    assert not (by_split.get("train", set()) | by_split.get("val", set())) & heldout


def test_window_dataset(corpus_dir: Path) -> None:
    ds = WindowDataset(corpus_dir, "train", frames=40, seed=3)
    item = ds[0]
    assert item["audio"].shape == (40 * SAMPLES_PER_FRAME,)
    assert item["expression"].shape == (40, 21) and item["pose"].shape == (40, 6)
    assert item["phone"].shape == (40,) and item["mask"].dtype.is_floating_point is False
    again = WindowDataset(corpus_dir, "train", frames=40, seed=3)[0]
    assert (item["audio"] == again["audio"]).all()
    with pytest.raises(CorpusError):
        WindowDataset(corpus_dir, "nonexistent-split")


def test_inspect_reports_and_plots(corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from posetalk.models.data.report import inspect

    png = tmp_path / "rec.png"
    s = inspect(corpus_dir, plot=png)
    out = capsys.readouterr().out
    assert "hours per voice" in out and s["records"] == len(Corpus(corpus_dir))
    assert sum(s["phone_frames"].values()) == sum(x["frames"] for x in Corpus(corpus_dir).lines)
    assert set(s["phone_frames"]) == set(ALL)
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 500 and img.std() > 20
