"""`posetalk eval pose`: the pose model (PLD) on a corpus's held-out test voices, prompted with
held-out wordings.

Each test clip (one record's audio, at most ``max_seconds``) gets a one-style plan (styles taken
in turn, so all ten are asked for equally), a description of it in the held-out vocabulary
(describe(..., heldout=True): words the model never saw in training) and ground-truth motion for
that plan made as the corpus makes it (head_motion.generate on the clip's own rhythm). Then:

1. a style classifier trained on ground truth only (style.py; cached in ``out``) reports its
   accuracy on held-out ground truth;
2. prompt adherence: the classifier on the generated motion, against the plan's style, as a
   share of its accuracy on the ground truth of the same clips (target >= 0.9);
3. beat alignment (Bailando's Beat Align Score against the audio's emphasis beats) for generated
   and ground-truth motion, and for each against another clip's beats as the chance level;
4. diversity: the spread of several seeds for one prompt and audio, against the spread of
   ground-truth draws for the same plan;
5. a Fréchet distance on per-window pose statistics to the ground truth, for the teacher (50
   steps) and the student at 1, 2 and 4 steps on the same clips (target: student within 10 %);
6. seams: velocity jumps at hop boundaries against the 95th percentile of those inside hops;
7. audio dependence: how far the motion moves when the clip's speech is replaced by silence,
   against how far the ground truth's does (same prompt and seed; same random draws).

The teacher costs ~50 network passes (x2 with guidance) per hop (still faster than real time), so
it can be run on the first ``teacher_limit`` clips only, the students compared with it there. The
distance is noisy on few clips: the same 4-step student measured 1.02x the teacher on 8 test
clips, 1.62x on 20, 1.30x on 40 and 1.15x on all 118, so by default every clip is used, the
teacher's too (about 10 minutes on one thread)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.data import describe as desc
from posetalk.models.data import head_motion as hm
from posetalk.models.data.phones import FPS, SAMPLE_RATE
from posetalk.models.data.records import Corpus
from posetalk.models.errors import CorpusError, PoseModelError
from posetalk.models.pld import metrics, style
from posetalk.models.pld.stream import TEACHER_STEPS, PoseModel

ADHERENCE_TARGET = 0.9  # generated accuracy / ground-truth accuracy
STUDENT_TARGET = 1.1  # student FD / teacher FD
STUDENT_STEPS = (1, 2, 4)
PLOT_STYLES = ("nodding", "shaking", "tilting", "looking_around")


def default_weights() -> Path:
    """The shipped PLD folder; PoseModelError when it is not there (the user must name one)."""
    from posetalk.models.pld.weights import WEIGHTS, missing

    if missing(WEIGHTS):
        raise PoseModelError(f"no shipped pose model in {WEIGHTS}: pass --weights (a folder from `posetalk train pld`)")
    return WEIGHTS


@dataclass
class Case:
    """One test clip: audio, the style asked for, its plan and description, ground truth."""

    index: int
    record: str
    audio: np.ndarray
    style: str
    plan: hm.Plan
    description: str  # held-out wording
    train_description: str  # the same plan in the training vocabulary (a diagnostic)
    rhythm: hm.Rhythm
    gt: np.ndarray  # (T, 8) ground truth for the plan
    gt2: np.ndarray  # (T, 8) another draw of it (the noise floor of the distances)

    @property
    def frames(self) -> int:
        return len(self.gt)


@dataclass
class Variant:
    name: str
    model: PoseModel
    steps: int
    n: int  # clips it runs on (the first n)
    clips: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0


def make_cases(
    corpus: Corpus, limit: int | None, seed: int = 0, max_seconds: float = 10.0, split: str = "test"
) -> list[Case]:
    """Up to ``limit`` (None: all) clips from ``split`` (the test voices; "val" to choose settings on)
    (records under 2 s left out)."""
    out: list[Case] = []
    for i, line in enumerate(corpus.lines):
        if limit is not None and len(out) >= limit:
            break
        if line["split"] != split or line["frames"] < hm.MIN_SEGMENT:
            continue
        rec = corpus.record(i)
        audio = rec.audio[: int(max_seconds * SAMPLE_RATE)]
        n = -(-len(audio) // hm.HOP)
        k = len(out)
        rng = np.random.default_rng((seed, k))
        rh = hm.rhythm(audio, n)
        name = style.STYLES[k % len(style.STYLES)]
        plan = style.one_style_plan(name, n, rng)
        text = desc.describe(plan, rng, heldout=True)
        seen = desc.describe(plan, np.random.default_rng((seed, k, 2)))
        pose, gaze, _ = hm.generate(n, rng, rhythm=rh, plan=plan)
        pose2, gaze2, _ = hm.generate(n, np.random.default_rng((seed, k, 1)), rhythm=rh, plan=plan)
        out.append(Case(k, rec.id, audio, name, plan, text, seen, rh, np.concatenate([pose, gaze], 1),
                        np.concatenate([pose2, gaze2], 1)))  # fmt: skip
    if not out:
        raise CorpusError(f"{corpus.root} has no {split} records of 2 s or more")
    return out


def load_classifier(corpus: Corpus, out: Path, retrain: bool = False, seed: int = 0) -> style.StyleClassifier:
    """The style classifier cached in ``out`` for this corpus, trained first when missing, stale
    or ``retrain``: on the train split's audio, checked on the val split's (or the test split's)."""
    path = out / "style_classifier.npz"
    key = str(corpus.root.resolve())
    if path.exists() and not retrain:
        clf = style.StyleClassifier.load(path)
        if clf.info.get("version") == style.VERSION and clf.info.get("data") == key:
            return clf
    t0 = time.perf_counter()
    split = lambda s: [corpus.record(i).audio for i, x in enumerate(corpus.lines) if x["split"] == s]  # noqa: E731
    train = split("train")
    if not train:
        raise CorpusError(f"{corpus.root} has no train records to fit the style classifier on")
    clf, report = style.train_classifier(train, split("val") or split("test"), seed)
    clf.info["data"] = key
    clf.info["seconds"] = round(time.perf_counter() - t0, 1)
    clf.save(path)
    print(f"style classifier: {report['train_clips']} ground-truth clips, {clf.info['seconds']:.0f} s; held-out "
          f"accuracy {report['heldout_accuracy']:.3f} on {report['heldout_clips']} clips", flush=True)  # fmt: skip
    return clf


def load_variants(weights: Path, n: int, teacher_limit: int | None, teacher_steps: int, prompts: Any) -> list[Variant]:
    """The teacher, and the student at 1, 2 and 4 steps (and its own default) when there is one."""
    teacher = PoseModel.load(weights, teacher=True)
    has_student = (weights / "pld_student.safetensors").exists()
    n_teacher = min(n, teacher_limit or n) if has_student else n
    out = [Variant(f"teacher@{teacher_steps}", teacher, teacher_steps, n_teacher)]
    if has_student:
        student = PoseModel.load(weights)
        out += [Variant(f"student@{k}", student, k, n) for k in sorted({*STUDENT_STEPS, student.default_steps})]
    for v in out:
        if prompts is not None:
            v.model.prompts = prompts
    return out


def main_variant(variants: list[Variant]) -> Variant:
    """What `posetalk` runs by default: the student at its own step count, else the teacher."""
    students = [v for v in variants if v.name == f"student@{v.model.default_steps}" and v.model.cfg.consistency]
    return students[0] if students else variants[0]


def evaluate(
    data: str | Path, weights: str | Path | None = None, out: str | Path = "eval_pose", limit: int | None = None, *,
    teacher_limit: int | None = None, seeds: int = 5, diversity_clips: int = 3, retrain: bool = False, seed: int = 0,
    teacher_steps: int = TEACHER_STEPS, max_seconds: float = 10.0, prompts: Any = None, split: str = "test",
) -> dict[str, Any]:  # fmt: skip
    """Every metric over up to ``limit`` (None: all) clips of ``split`` (the held-out test voices, or "val":
    the validation voices, to choose run-time settings on); a table printed, eval_pose.json and
    PNG plots written to ``out``. ``prompts`` replaces the models' prompt encoder (tests)."""
    import torch

    torch.set_num_threads(1)
    weights = Path(weights) if weights else default_weights()
    corpus = Corpus(data)
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', not {split!r}")
    cases = make_cases(corpus, limit, seed, max_seconds, split)
    variants = load_variants(weights, len(cases), teacher_limit, teacher_steps, prompts)  # fail before training
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clf = load_classifier(corpus, out, retrain, seed)
    main = main_variant(variants)
    for v in variants:
        t0 = time.perf_counter()
        for c in cases[: v.n]:
            pose, gaze = v.model.generate(c.audio, c.description, seed=c.index, steps=v.steps)
            v.clips.append(np.concatenate([pose, gaze], 1))
        v.seconds = time.perf_counter() - t0
        print(f"{v.name}: {v.n} clips in {v.seconds:.0f} s", flush=True)
    # The same plans worded in the training vocabulary: tells wording generalisation apart from
    # following a prompt at all.
    seen = [np.concatenate(main.model.generate(c.audio, c.train_description, seed=c.index, steps=main.steps), 1)
            for c in cases]  # fmt: skip
    common = min(v.n for v in variants)
    scale = np.concatenate([c.gt for c in cases]).std(0) + 1e-6
    ref = np.concatenate([metrics.window_features(c.gt) for c in cases])
    rows = {"ground truth": _row(clf, cases, [c.gt for c in cases], [c.gt2 for c in cases], scale, ref, common, None)}
    for v in variants:
        rows[v.name] = _row(clf, cases[: v.n], v.clips, [c.gt for c in cases[: v.n]], scale, ref, common, v)
    results = _summary(rows, variants, main, clf, cases, common)
    labels = np.array([style.STYLES.index(c.style) for c in cases])
    results["adherence"]["generated_train_wording"] = float((clf.predict(seen) == labels).mean())
    results["audio"] = _audio_dependence(main, cases, seed)
    results["diversity"] = _diversity(main, cases[:diversity_clips], seeds, seed)
    results["config"] = {"data": str(data), "weights": str(weights), "clips": len(cases), "limit": limit,
                         "teacher_limit": teacher_limit, "max_seconds": max_seconds, "seed": seed, "split": split,
                         "main": main.name, "guidance": main.model.guidance_at(main.steps)}  # fmt: skip
    _print(results)
    results["plots"] = [str(plot_prompts(main, cases[0], out / "pose_prompts.png", seed)),
                        str(plot_vs_ground_truth(main, cases[:4], out / "pose_vs_gt.png"))]  # fmt: skip
    (out / "eval_pose.json").write_text(json.dumps(_json_safe(results), indent=1))
    print(f"wrote {out / 'eval_pose.json'} and {', '.join(Path(p).name for p in results['plots'])}")
    return results


def _row(
    clf: style.StyleClassifier, cases: list[Case], clips: list[np.ndarray], gts: list[np.ndarray], scale: np.ndarray,
    ref: np.ndarray, common: int, v: Variant | None,
) -> dict[str, Any]:  # fmt: skip
    """One table row: ``clips`` (generated, or ground truth) judged against ``gts``."""
    labels = np.array([style.STYLES.index(c.style) for c in cases])
    pred = clf.predict(clips)
    beats = [metrics.motion_beats(x[:, :3]) for x in clips]
    ba = [metrics.beat_align(c.rhythm.beats, m) for c, m in zip(cases, beats, strict=True)]
    # Chance level: each clip against the next clip's audio beats.
    other = [cases[(i + 1) % len(cases)].rhythm.beats for i in range(len(cases))]
    shuf = [metrics.beat_align(b[b < len(x)], m) for b, x, m in zip(other, clips, beats, strict=True)]
    speed = [metrics.speed_at_beats(c.rhythm.beats, x[:, :3]) for c, x in zip(cases, clips, strict=True)]
    speed_shuf = [metrics.speed_at_beats(b, x[:, :3]) for b, x in zip(other, clips, strict=True)]
    feats = [metrics.window_features(x) for x in clips]
    gfeats = [metrics.window_features(g) for g in gts]
    jumps = [metrics.seam_jumps(x, 8, scale) for x in clips]
    row: dict[str, Any] = {
        "clips": len(clips),
        "adherence": float((pred == labels).mean()),
        "per_style": {s: float((pred[labels == k] == k).mean()) for k, s in enumerate(style.STYLES) if k in labels},
        "confusion": _confusion(labels, pred),
        "beat_align": _pool(ba),
        "beat_align_shuffled": _pool(shuf),
        "beat_speed": _pool(speed),
        "beat_speed_shuffled": _pool(speed_shuf),
        "fd": metrics.frechet(np.concatenate(feats), np.concatenate(gfeats), ref),
        "fd_common": metrics.frechet(np.concatenate(feats[:common]), np.concatenate(gfeats[:common]), ref),
        "seams": metrics.seam_summary(np.concatenate([a for a, _ in jumps]), np.concatenate([b for _, b in jumps])),
        "amplitude_deg": float(np.degrees(np.concatenate(clips)[:, :3].std(0)).mean()),
    }
    if v is not None:
        audio_s = sum(len(c.audio) for c in cases) / SAMPLE_RATE
        row.update(steps=v.steps, seconds=round(v.seconds, 2), realtime=audio_s / max(v.seconds, 1e-9))
    return row


def _json_safe(x: Any) -> Any:
    """NaN (a metric with nothing to measure) as null: strict JSON readers reject NaN."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return None if isinstance(x, float) and not np.isfinite(x) else x


def _pool(parts: list[tuple[float, int]]) -> float:
    total, n = sum(p for p, _ in parts), sum(k for _, k in parts)
    return total / n if n else float("nan")


def _confusion(labels: np.ndarray, pred: np.ndarray) -> list[list[int]]:
    conf = np.zeros((len(style.STYLES), len(style.STYLES)), np.int64)
    np.add.at(conf, (labels, pred), 1)
    return conf.tolist()


def _summary(
    rows: dict[str, Any], variants: list[Variant], main: Variant, clf: style.StyleClassifier, cases: list[Case],
    common: int,
) -> dict[str, Any]:  # fmt: skip
    gt, gen = rows["ground truth"], rows[main.name]
    ratio = gen["adherence"] / gt["adherence"] if gt["adherence"] > 0 else float("nan")
    pair = ("ground truth", main.name)
    res: dict[str, Any] = {
        "classifier": {k: clf.info.get(k) for k in ("train_clips", "heldout_clips", "heldout_accuracy", "confusion")},
        "adherence": {"ground_truth": gt["adherence"], "generated": gen["adherence"], "ratio": ratio,
                      "target": ADHERENCE_TARGET, "met": bool(ratio >= ADHERENCE_TARGET), "clips": len(cases),
                      "by_style": gen["per_style"]},
        "beat_align": {"ground_truth": gt["beat_align"], "generated": gen["beat_align"],
                       "ground_truth_shuffled": gt["beat_align_shuffled"],
                       "generated_shuffled": gen["beat_align_shuffled"],
                       "speed_at_beats": {k: rows[k]["beat_speed"] for k in pair},
                       "speed_at_beats_shuffled": {k: rows[k]["beat_speed_shuffled"] for k in pair},
                       "met": bool(gen["beat_align"] >= gt["beat_align"])},
        "seams": gen["seams"],
        "variants": rows,
    }  # fmt: skip
    teacher = variants[0]
    fd_t = rows[teacher.name]["fd_common"]
    svt: dict[str, Any] = {"clips": common, "teacher": fd_t, "ground_truth_floor": gt["fd_common"]}
    for v in variants[1:]:
        fd = rows[v.name]["fd_common"]
        svt[v.name] = {"fd": fd, "over_teacher": fd / fd_t, "met": bool(fd <= STUDENT_TARGET * fd_t)}
    res["student_vs_teacher"] = svt
    return res


def _diversity(main: Variant, cases: list[Case], seeds: int, seed: int) -> dict[str, Any]:
    """Spread of ``seeds`` generated samples per clip, and of as many ground-truth draws."""
    gen, gt = [], []
    for c in cases:
        samples = [np.concatenate(main.model.generate(c.audio, c.description, seed=1000 + s, steps=main.steps), 1)
                   for s in range(seeds)]  # fmt: skip
        gen.append(metrics.spread(samples))
        draws = [np.concatenate(hm.generate(c.frames, np.random.default_rng((seed, c.index, 7, s)), rhythm=c.rhythm,
                                            plan=c.plan)[:2], 1) for s in range(seeds)]  # fmt: skip
        gt.append(metrics.spread(draws))
    g, t = float(np.mean(gen)), float(np.mean(gt))
    return {"model": main.name, "clips": len(cases), "seeds": seeds, "generated_deg": g, "ground_truth_deg": t,
            "ratio": g / t if t > 0 else float("nan"), "per_clip": [{"style": c.style, "generated_deg": a,
            "ground_truth_deg": b} for c, a, b in zip(cases, gen, gt, strict=True)]}  # fmt: skip


def _audio_dependence(main: Variant, cases: list[Case], seed: int) -> dict[str, Any]:
    """How much the head's motion depends on the speech: the mean |yaw, pitch, roll| difference
    (degrees) between a clip's motion made from its audio (``main.clips``, already made) and from
    silence of the same length, the same prompt and seed; for the ground truth, the generator's
    motion for the clip's plan from the speech's rhythm and from silence's, with the same random
    draws. Beat alignment cannot show a model that ignores the audio when the ground truth's own
    score is at chance."""
    gen, gt = [], []
    for c, made in zip(cases, main.clips, strict=True):
        quiet = np.zeros_like(c.audio)
        silent = main.model.generate(quiet, c.description, seed=c.index, steps=main.steps)[0]
        gen.append(float(np.degrees(np.abs(made[:, :3] - silent[:, :3])).mean()))
        n = c.frames
        a = hm.generate(n, np.random.default_rng((seed, c.index, 3)), rhythm=c.rhythm, plan=c.plan)[0]
        b = hm.generate(n, np.random.default_rng((seed, c.index, 3)), rhythm=hm.rhythm(quiet, n), plan=c.plan)[0]
        gt.append(float(np.degrees(np.abs(a[:, :3] - b[:, :3])).mean()))
    g, t = float(np.mean(gen)), float(np.mean(gt))
    return {"model": main.name, "clips": len(cases), "generated_deg": g, "ground_truth_deg": t,
            "ratio": g / t if t > 0 else float("nan")}  # fmt: skip


def _print(r: dict[str, Any]) -> None:
    cfg, rows = r["config"], r["variants"]
    print(
        f"\nposetalk eval pose: {cfg['clips']} {cfg['split']} clips (held-out voices, held-out wordings), main model "
        f"{cfg['main']}; style classifier {r['classifier']['heldout_accuracy']:.3f} on held-out ground truth"
    )
    head = ("clips", "adhere", "beat", "(chance)", "spd@beat", "(chance)", "FD", "FD common", "seam max",
            "seam>p95", "amp deg", "x realtime")  # fmt: skip
    print(f"{'':14s}" + "".join(f"{h:>11s}" for h in head))
    for name, x in rows.items():
        s = x["seams"]
        vals = (x["clips"], x["adherence"], x["beat_align"], x["beat_align_shuffled"], x["beat_speed"],
                x["beat_speed_shuffled"], x["fd"], x["fd_common"], s["max_over_p95"], s["share_over_p95"],
                x["amplitude_deg"], x.get("realtime", float("nan")))  # fmt: skip
        print(f"{name:14s}" + "".join(f"{v:11d}" if isinstance(v, int) else f"{v:11.3f}" for v in vals))
    a, b, d, s = r["adherence"], r["beat_align"], r["diversity"], r["student_vs_teacher"]
    print(f"adherence: generated {a['generated']:.3f} / ground truth {a['ground_truth']:.3f} = {a['ratio']:.2f} "
          f"(target >= {a['target']}: {'met' if a['met'] else 'NOT met'}); with training wordings "
          f"{a['generated_train_wording']:.3f}")  # fmt: skip
    print("  by style: " + ", ".join(f"{k} {v:.2f}" for k, v in a.get("by_style", {}).items()))
    print(f"beat align: generated {b['generated']:.3f} vs ground truth {b['ground_truth']:.3f} "
          f"({'met' if b['met'] else 'NOT met'}; chance {b['ground_truth_shuffled']:.3f})")  # fmt: skip
    au = r["audio"]
    print(f"audio dependence (mean |speech - silence|): generated {au['generated_deg']:.2f}° vs ground truth "
          f"{au['ground_truth_deg']:.2f}° (ratio {au['ratio']:.2f})")  # fmt: skip
    print(f"diversity ({d['seeds']} seeds, {d['clips']} clips): generated {d['generated_deg']:.2f}° vs ground truth "
          f"{d['ground_truth_deg']:.2f}° (ratio {d['ratio']:.2f})")  # fmt: skip
    parts = [f"{k} {v['over_teacher']:.2f}× teacher ({'met' if v['met'] else 'NOT met'})" for k, v in s.items()
             if isinstance(v, dict)]  # fmt: skip
    print(f"Fréchet on {s['clips']} common clips: teacher {s['teacher']:.3f} (ground-truth floor "
          f"{s['ground_truth_floor']:.3f}); " + ("; ".join(parts) or "no student"))  # fmt: skip
    print(f"seams ({cfg['main']}): boundary jumps mean {r['seams']['mean_over_p95']:.2f}×, max "
          f"{r['seams']['max_over_p95']:.2f}× the in-hop p95; {r['seams']['share_over_p95']:.3f} above it")  # fmt: skip


def _angles(ax: Any, x: np.ndarray, k: int, **kw: Any) -> None:
    ax.plot(np.arange(len(x)) / FPS, np.degrees(x[:, k]), **kw)


def plot_prompts(main: Variant, case: Case, png: Path, seed: int = 0) -> Path:
    """Yaw, pitch and roll generated for four held-out prompts of different styles, one audio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng((seed, 99))
    texts = [desc.describe(style.one_style_plan(s, case.frames, rng), rng, heldout=True) for s in PLOT_STYLES]
    fig, axes = plt.subplots(3, len(texts), figsize=(4 * len(texts), 6.5), sharex=True, sharey="row")
    for j, text in enumerate(texts):
        x = np.concatenate(main.model.generate(case.audio, text, seed=seed, steps=main.steps), 1)
        for k, name in enumerate(("yaw", "pitch", "roll")):
            _angles(axes[k, j], x, k, color=f"C{k}")
            for b in case.rhythm.beats:
                axes[k, j].axvline(b / FPS, color="0.85", lw=0.8, zorder=0)
            axes[k, 0].set_ylabel(f"{name} (°)")
        axes[0, j].set_title("\n".join(_wrap(text, 38)), fontsize=8)
        axes[-1, j].set_xlabel("s")
    fig.suptitle(f"{main.name}: four held-out prompts on one test audio ({case.record}; grey: audio beats)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def plot_vs_ground_truth(main: Variant, cases: list[Case], png: Path) -> Path:
    """Generated (solid) against ground truth (dashed) yaw, pitch and roll for a few clips."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(cases), 3, figsize=(13, 2.3 * len(cases)), squeeze=False)
    for i, c in enumerate(cases):
        for k, name in enumerate(("yaw", "pitch", "roll")):
            ax = axes[i, k]
            _angles(ax, c.gt, k, color="k", ls="--", lw=1, label="ground truth")
            _angles(ax, main.clips[i], k, color=f"C{k}", label=main.name)
            ax.set_ylabel(f"{name} (°)")
            if k == 0:
                ax.set_title(f"{c.style}: " + "\n".join(_wrap(c.description, 60)), fontsize=8, loc="left")
        axes[i, 0].legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("s")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]
