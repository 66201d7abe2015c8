"""`posetalk data real`: real recorded speech aligned to its transcripts, split by prompt text
and by voice, resumable, evaluated per voice; clear errors when a Debian package is missing."""

from __future__ import annotations

import json
import shutil
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pytest
from posetalk.clients.cli import main
from posetalk.models.data import dtw, real, tts
from posetalk.models.data.dataset import MixedWindows, WindowDataset
from posetalk.models.data.phones import SAMPLE_RATE, SILENCE, Phone
from posetalk.models.data.records import Corpus
from posetalk.models.errors import CorpusError

EN, IT = real.VOICE_NAMES["en"], real.VOICE_NAMES["it"]
if real.missing_packages(EN) or real.missing_packages(IT):
    pytest.skip("the Asterisk prompt sets are not installed (scripts/setup installs them)", allow_module_level=True)


def _build(root: Path) -> dict:
    return real.build(root, ["en", "it"], limit=6, workers=1, shard_prompts=4)


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real") / "a"
    _build(root)
    return root


def _level_db(audio: np.ndarray) -> np.ndarray:
    """Level of each 10 ms of ``audio`` in dB."""
    n = len(audio) // 160
    return 10 * np.log10((audio[: n * 160].reshape(n, 160) ** 2).mean(1) + 1e-10)


def _onset_rises(rec_audio: np.ndarray, phones: list[Phone], shift: float = 0.0) -> list[float]:
    """dB change across every boundary between a pause (60 ms or longer) and speech, towards the
    speech side (the 50 ms of speech against the 50 ms of pause); boundaries moved by ``shift``."""
    db = _level_db(rec_audio)
    out = []
    for a, b in zip(phones, phones[1:], strict=False):
        pause = a if a.label == SILENCE else b
        if (a.label == SILENCE) != (b.label == SILENCE) and pause.end - pause.start >= 0.06:
            f = int(round((b.start + shift) * 100))
            if 5 <= f <= len(db) - 6:
                rise = float(db[f + 1 : f + 6].mean() - db[f - 5 : f].mean())
                out.append(rise if a.label == SILENCE else -rise)
    return out


def _phones(rec) -> list[Phone]:  # type: ignore[no-untyped-def]
    from posetalk.models.data.phones import ALL

    return [Phone(ALL[int(i)], float(s), float(e)) for i, s, e, _ in rec.phones]


def test_records_have_phones_on_the_audios_own_energy_changes(real_dir: Path) -> None:
    corpus = Corpus(real_dir)
    assert {r.voice for r in corpus} == {EN.id, IT.id}
    rises, shifted = [], []
    for rec in corpus:
        assert rec.source == "real" and rec.meta["lang"] in ("en", "it") and rec.meta["aligner"] == "pocketsphinx"
        phones = _phones(rec)
        assert phones[0].start == 0 and abs(phones[-1].end - rec.duration) < 0.02
        assert sum(p.label != SILENCE for p in phones) >= 3
        rises += _onset_rises(rec.audio, phones)
        shifted += _onset_rises(rec.audio, phones, shift=-0.12)
    # Between a pause and speech the level changes: by >= 10 dB on most boundaries; boundaries
    # moved 120 ms early do not show it.
    assert len(rises) >= 12
    assert np.median(rises) > 10 and np.mean(np.array(rises) > 6) >= 0.8
    assert np.median(shifted) < 3


def test_splits_never_share_a_prompt_and_hold_out_the_man() -> None:
    texts: dict[str, set[str]] = {}
    for p in real.prompts(EN):
        texts.setdefault(real.split_of(EN, p.text), set()).add(real.normalise(p.text))
    assert set(texts) == {"train", "val", "test"}
    assert not (texts["train"] & texts["val"]) and not (texts["train"] & texts["test"])
    assert not (texts["val"] & texts["test"])
    n = sum(map(len, texts.values()))
    assert 0.6 < len(texts["train"]) / n < 0.8 and len(texts["test"]) / n > 0.08
    assert {real.split_of(IT, p.text) for p in real.prompts(IT)} == {"val", "test"}
    assert real.split_of(real.VOICE_NAMES["fr"], "Bonjour.") == "train"


def test_half_built_corpus_is_refused_then_resumed(real_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "b"
    shutil.copytree(real_dir, root)
    (root / "corpus.json").unlink()
    (root / "shards" / "shard-00002.jsonl").unlink()
    with pytest.raises(CorpusError, match="not a complete corpus"):
        Corpus(root)
    capsys.readouterr()
    _build(root)
    assert "resuming: 2 of 3 shards already built" in capsys.readouterr().out
    assert [x["id"] for x in Corpus(root).lines] == [x["id"] for x in Corpus(real_dir).lines]
    with pytest.raises(CorpusError, match="other settings"):
        real.build(root, ["en"], limit=3, workers=1)


def test_eval_prints_figures_per_real_voice(real_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from posetalk.models.motion.evaluate import evaluate

    res = evaluate(real_dir, split="test", lookaheads=(2,))
    out = capsys.readouterr().out
    voices = {r.voice for r in Corpus(real_dir) if r.split == "test"}
    for v in voices:
        assert v in out
        assert 0.2 < res["voices"][v]["clean/lookahead80ms/coarse+refine"]["jaw_r"] <= 1.0
    assert len(voices) == 2


def test_missing_debian_package_is_named(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CorpusError, match="not installed: asterisk-core-sounds-it asterisk-core-sounds-it-g722 "):
        real.build(tmp_path / "c", ["it"], sounds=tmp_path, docs=tmp_path)
    real.SOUNDS, saved = tmp_path, real.SOUNDS
    try:
        assert main(["data", "real", "--out", str(tmp_path / "d"), "--voices", "en"]) == 2
    finally:
        real.SOUNDS = saved
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "asterisk-core-sounds-en-g722" in err[0] and "scripts/setup" in err[0]
    with pytest.raises(CorpusError, match="unknown real voice"):
        real.build(tmp_path / "e", ["de"])


def test_warp_carries_timings_onto_a_slower_recording() -> None:
    utt = tts.synthesize(tts.Voice("espeak-ng", "en-us"), "Please enter your password, followed by the pound key.")
    slower = tts.synthesize(tts.Voice("espeak-ng", "en-us"), utt.text, rate=0.75)
    warped = dtw.align_to(utt.audio, utt.phones, slower.audio)
    assert [p.label for p in warped] == [p.label for p in utt.phones]  # the source's phones, re-timed
    # espeak-ng may label the two rates slightly differently (a first plosive merged into silence):
    # compare the start of each phone that both label alike.
    got, want = [p.label for p in warped], [p.label for p in slower.phones]
    blocks = SequenceMatcher(None, got, want, autojunk=False).get_matching_blocks()
    pairs = [(i + k, j + k) for i, j, n in blocks for k in range(n)]
    assert len(pairs) >= 0.8 * len(want)
    err = np.abs([warped[i].start - slower.phones[j].start for i, j in pairs])
    assert np.median(err) < 0.03
    # the cheapest path through a cost with one cheap diagonal runs along it
    cost = np.ones((6, 9))
    cost[[0, 1, 2, 3, 4, 5], [0, 2, 4, 5, 7, 8]] = 0
    path = dtw.warp_path(cost)
    assert cost[path[:, 0], path[:, 1]].sum() <= 3
    with pytest.raises(CorpusError, match="not the same words"):
        dtw.align_to(utt.audio, utt.phones, np.zeros(SAMPLE_RATE * 20, np.float32))


def test_mixed_windows_draw_each_part_at_its_share(real_dir: Path) -> None:
    ds = MixedWindows([WindowDataset(real_dir, "val", frames=20), WindowDataset(real_dir, "test", frames=20)],
                      [0.75, 0.25])  # fmt: skip
    keys = [ds[i]["record"] for i in range(200)]
    second = np.mean([k >= MixedWindows.KEY for k in keys])
    assert 0.15 < second < 0.35
    k = next(k for k in keys if k >= MixedWindows.KEY)
    assert ds.record(k).split == "test"
    assert json.loads((real_dir / "corpus.json").read_text())["alignment"][EN.id]["prompts"] == 6


def test_training_mixes_real_windows_and_fine_tunes_from_a_model(real_dir: Path, tmp_path: Path) -> None:
    import torch
    from posetalk.models.motion.infer import MotionModel
    from posetalk.models.motion.train import train_motion

    base = tmp_path / "base"
    train_motion(real_dir, base, steps=4, batch=4, frames=20, real=real_dir, real_share=0.5, adapt=0.3, adapt_var=True,
                 log_every=2)  # fmt: skip
    tuned = tmp_path / "tuned"
    train_motion(real_dir, tuned, steps=2, batch=4, frames=20, lr=1e-5, init=base, log_every=1)
    a, b = MotionModel.load(base), MotionModel.load(tuned)
    assert b.coarse.cfg == a.coarse.cfg and b.coarse.cfg.adapt_var and b.refine.cfg.adapt_s == 0.3
    pairs = zip(a.coarse.parameters(), b.coarse.parameters(), strict=True)
    moved = max(float((p - q).detach().abs().max()) for p, q in pairs)
    assert 0 < moved < 1e-3  # started from the model, moved a little
    assert torch.equal(a.coarse.mel_mean, b.coarse.mel_mean)
