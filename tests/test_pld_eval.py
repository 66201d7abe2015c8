"""`posetalk eval pose` and its metrics: the beat-align score is 1 on the beats and falls off the
beats; the seam statistic flags a jump at a hop boundary and only there; the Fréchet distance is 0
for identical sets and grows with a shift; the style classifier learns from a little ground truth;
the command runs end to end on a tiny corpus and model and writes what it promises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from posetalk.models.pld import metrics, style
from posetalk.tests.test_pld import TINY, HashEncoder, speech

torch.set_num_threads(1)


def test_beat_align_is_one_on_the_beats_and_falls_when_they_shift() -> None:
    t = np.arange(200)
    rot = np.zeros((200, 3))
    rot[:, 0] = 0.2 * np.cos(2 * np.pi * t / 20)  # turnarounds (speed minima) every 10 frames
    beats = metrics.motion_beats(rot)
    assert set(range(20, 181, 10)) <= set(beats.tolist())
    audio = np.arange(20, 181, 20)
    scores = []
    for shift in (0, 1, 3, 5):
        total, n = metrics.beat_align(audio + shift, beats)
        scores.append(total / n)
    assert scores[0] == pytest.approx(1.0)
    assert scores[2] == pytest.approx(np.exp(-9 / 18), abs=1e-9)  # 3 frames off: exp(-d^2 / 2 sigma^2)
    assert scores[0] > scores[1] > scores[2] > scores[3]
    assert metrics.beat_align(audio, np.zeros(0, np.int64)) == (0.0, len(audio))
    # Speed at beats: above its chance level where the beats fall on the fastest frames.
    fast, n = metrics.speed_at_beats(audio + 5, rot)
    slow, _ = metrics.speed_at_beats(audio, rot)
    assert fast / n > 1.3 > slow / n


def _smooth_clip(n: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 25
    return 0.1 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5, 8) * t + rng.uniform(0, 6, 8))


def test_the_seam_statistic_flags_a_jump_at_a_hop_boundary_and_only_there() -> None:
    clean = _smooth_clip()
    s = metrics.seam_summary(*metrics.seam_jumps(clean, 8))
    assert s["boundaries"] == 19 and s["max_over_p95"] < 1.3 and s["share_over_p95"] <= 0.15
    jumped = clean.copy()
    jumped[64:] += 0.05  # a step between frames 63 and 64: the boundary of hops 7 and 8
    s = metrics.seam_summary(*metrics.seam_jumps(jumped, 8))
    assert s["max_over_p95"] > 5 and s["share_over_p95"] > 0
    inside = clean.copy()
    inside[61:] += 0.05  # the same step inside a hop: not a seam
    assert metrics.seam_summary(*metrics.seam_jumps(inside, 8))["max_over_p95"] < 1.3


def test_frechet_is_zero_for_identical_sets_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 15)) @ rng.standard_normal((15, 15))
    assert abs(metrics.frechet(a, a)) < 1e-6
    sd = a.std(0)
    d = [metrics.frechet(a + k * sd, a) for k in (0.25, 0.5, 1.0)]
    assert 0 < d[0] < d[1] < d[2]
    assert d[2] == pytest.approx(15.0, rel=0.05)  # a one-sigma shift of every one of 15 features
    wider = metrics.frechet(a * 1.5, a)
    assert wider > 0.5
    feats = metrics.window_features(_smooth_clip(160))
    assert feats.shape == (5, 15)  # 2-s windows every second over 6.4 s


def test_the_style_classifier_beats_chance_on_heldout_ground_truth(tmp_path: Path) -> None:
    train = [speech(4.0, seed=i) for i in range(6)]
    heldout = [speech(4.0, seed=100 + i) for i in range(3)]
    clf, report = style.train_classifier(train, heldout, per_audio=10)
    assert report["train_clips"] == 60 and report["heldout_clips"] == 30
    assert report["heldout_accuracy"] >= 0.5, report  # chance: 0.1
    clf.save(tmp_path / "c.npz")
    again = style.StyleClassifier.load(tmp_path / "c.npz")
    clips, _ = style.clips_from_audio(heldout[:1], np.random.default_rng(5), per_audio=4)
    np.testing.assert_array_equal(again.predict(clips), clf.predict(clips))
    assert again.info["heldout_accuracy"] == report["heldout_accuracy"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A corpus of 6 train and 3 test records of 3-4 s, and a few-step teacher + student on it."""
    from posetalk.models.data import head_motion as hm
    from posetalk.models.data import records
    from posetalk.models.pld.distill import distill_pld
    from posetalk.models.pld.train import train_pld
    from posetalk.models.pld.vae import VAEConfig

    root = tmp_path_factory.mktemp("pld_eval")
    recs = []
    for i in range(9):
        audio = speech(4.0 if i < 6 else 3.0, seed=i)
        t = len(audio) // 640
        pose, gaze, _ = hm.generate(t, np.random.default_rng(i), rhythm=hm.rhythm(audio, t))
        recs.append(records.Record(
            id=f"r{i}", split="train" if i < 6 else "test", source="tts", voice="test", text="", audio=audio,
            description="He nods a lot.", expression=np.zeros((t, 21), np.float32), pose=pose, gaze=gaze,
            phone=np.zeros(t, np.int8),
        ))  # fmt: skip
    records.write_shard(root / "corpus", 0, recs)
    records.finish(root / "corpus", {"note": "test_pld_eval"})
    train_pld(root / "corpus", root / "teacher", steps=4, vae_steps=2, batch=4, log_every=2, prompts=HashEncoder(),
              net_config=TINY, vae_config=VAEConfig(hidden=16))  # fmt: skip
    distill_pld(root / "teacher", root / "corpus", root / "student", steps=2, student_steps=2, batch=2, log_every=1,
                prompts=HashEncoder())  # fmt: skip
    return root / "corpus", root / "student"


def test_eval_pose_runs_end_to_end_and_writes_its_report(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from posetalk.clients.cli import main
    from posetalk.models.pld import text

    monkeypatch.setitem(text._encoders, "minilm", HashEncoder())  # the models' encoder: no MiniLM to load

    corpus, weights = tiny
    out = tmp_path / "eval"
    args = ["eval", "pose", "--data", str(corpus), "--weights", str(weights), "--out", str(out), "--limit", "3",
            "--teacher-limit", "2"]  # fmt: skip
    assert main(args) == 0
    r = json.loads((out / "eval_pose.json").read_text())
    assert {"classifier", "adherence", "beat_align", "diversity", "student_vs_teacher", "seams", "variants",
            "config", "plots"} <= set(r)  # fmt: skip
    assert r["config"]["clips"] == 3 and r["config"]["main"] == "student@2"
    assert set(r["variants"]) == {"ground truth", "teacher@50", "student@1", "student@2", "student@4"}
    assert r["variants"]["teacher@50"]["clips"] == 2 and r["variants"]["student@1"]["clips"] == 3
    assert r["student_vs_teacher"]["clips"] == 2 and "over_teacher" in r["student_vs_teacher"]["student@4"]
    assert {"ground_truth", "generated", "ratio", "met", "generated_train_wording"} <= set(r["adherence"])
    assert r["adherence"]["ground_truth"] > 0
    assert {"ground_truth", "generated", "ground_truth_shuffled", "met"} <= set(r["beat_align"])
    assert r["diversity"]["generated_deg"] > 0 and r["diversity"]["ground_truth_deg"] > 0
    assert r["audio"]["ground_truth_deg"] > 0.05 and r["audio"]["generated_deg"] >= 0  # the generator hears speech
    assert 0 <= r["seams"]["share_over_p95"] <= 1
    for p in r["plots"]:
        assert Path(p).stat().st_size > 10000
    assert "style classifier:" in capsys.readouterr().out
    # A second run reuses the cached classifier; without any model folder it fails in one line.
    assert main(args[:-2] + ["--teacher-limit", "1", "--limit", "1"]) == 0
    assert "style classifier:" not in capsys.readouterr().out
    assert main(args + ["--split", "val"]) == 2  # this corpus has no validation voices: said so
    assert "no val records" in capsys.readouterr().err
    assert main(["eval", "pose", "--data", str(corpus), "--weights", str(tmp_path / "none"), "--out", str(out)]) == 2


def test_bench_pose_measures_the_student(tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from posetalk.clients.bench import bench_pose
    from posetalk.models.pld import text

    monkeypatch.setitem(text._encoders, "minilm", HashEncoder())
    r = bench_pose(str(tiny[1]), seconds=1.5, repeats=1, streams=4)
    assert r["steps"] == 2
    for k in ("hop_ms_batch1_1thread", "denoiser_call_ms_batch1_1thread", "offline_realtime_factor_1thread",
              "cpu_hop_ms_batch4_1thread"):  # fmt: skip
        assert np.isfinite(r[k]) and r[k] > 0, k
