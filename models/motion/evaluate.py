"""`posetalk eval motion`: the motion models on a corpus's held-out test voices.

Metrics, each at lookahead 0, 1, 2 and 4 frames (0–160 ms), for CoarseNet alone and with
RefineNet, on clean and degraded (Opus + noise at 10 dB SNR) audio:
- jawOpen Pearson correlation with the targets;
- lip landmark error: the lip contours of the canonical face mesh deformed by the predicted
  and by the target weights, mean distance in face widths;
- bilabial closure hit rate: each p/b/m whose lips close (inner-lip gap under CLOSED of a face
  width on the mesh) on some frame within ±1 of its centre frame;
- sync offset and confidence from the sync expert, when its weights exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.data.phones import FPS, PHONE_ID
from posetalk.models.data.records import Corpus, Record
from posetalk.models.face import topology as T
from posetalk.models.face.params import INDEX
from posetalk.models.motion.infer import MotionModel

LOOKAHEADS = (0, 1, 2, 4)
CLOSED = 0.01  # face widths between the inner lips: closed
LIPS = sorted(set(T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER + T.LIP_INNER_UPPER + T.LIP_INNER_LOWER))
BILABIALS = {PHONE_ID[p] for p in ("P", "B", "M")}


class LipMesh:
    """Lip points of the canonical face for given blendshape weights (face width 1)."""

    def __init__(self) -> None:
        from posetalk.models.face import blendshapes, canonical

        shape = canonical.load().vertices
        self.base = shape[LIPS]
        self.basis = blendshapes.basis(shape)[:, LIPS]  # (21, L, 3)
        self.upper, self.lower = LIPS.index(13), LIPS.index(14)

    def points(self, w: np.ndarray) -> np.ndarray:  # (T, 21) -> (T, L, 3)
        return self.base[None] + np.tensordot(w, self.basis, 1)

    def gap(self, w: np.ndarray) -> np.ndarray:  # (T,) inner-lip opening
        p = self.points(w)
        return p[:, self.lower, 1] - p[:, self.upper, 1]


def closure_hits(rec: Record, gap: np.ndarray) -> tuple[int, int]:
    """(closed, total) over the record's bilabials."""
    hit = total = 0
    for pid, start, end, _ in rec.phones:
        if int(pid) in BILABIALS:
            f = int((start + end) / 2 * FPS)
            total += 1
            hit += bool((gap[max(0, f - 1) : f + 2] < CLOSED).any())
    return hit, total


def degrade(audio: np.ndarray, seed: int) -> np.ndarray:
    from posetalk.models.data import augment

    rng = np.random.default_rng(seed)
    noisy = augment.add_noise(audio, rng, 10.0, "babble")
    return augment.opus_roundtrip(noisy, rng, bitrate=24000)


def evaluate(
    data: str | Path, out: str | Path | None = None, weights: str | Path | None = None, limit: int | None = None,
    split: str = "test", lookaheads: tuple[int, ...] = LOOKAHEADS,
) -> dict[str, Any]:  # fmt: skip
    """Metrics over the records of ``split`` (the held-out test voices; "val" for choosing
    settings), at most ``limit`` of each voice; the table printed for all and for each voice,
    JSON and plots in ``out``."""
    model = MotionModel.load(weights) if weights else MotionModel.load()
    sync = _sync_model(weights)
    corpus = Corpus(data)
    lines = [(i, x) for i, x in enumerate(corpus.lines) if x["split"] == split]
    if limit is not None:
        seen: dict[str, int] = {}
        for _, x in lines:
            seen[x["voice"]] = x["_n"] = seen.get(x["voice"], 0) + 1
        lines = [(i, x) for i, x in lines if x.pop("_n") <= limit]
    recs = [corpus.record(i) for i, _ in lines]
    if not recs:
        raise ValueError(f"{data} has no {split} records")
    voices = sorted({r.voice for r in recs})
    mesh = LipMesh()
    results: dict[str, Any] = {"split": split, "records": len(recs), "seconds": round(sum(r.duration for r in recs), 1),
                               "closure_ramp": list(model.closure_ramp)}  # fmt: skip
    # Each utterance's mouth targets are scaled by a random articulation (0.7-1.3) that its audio
    # does not carry: the correlation of the targets at articulation 1 with the targets themselves
    # is the ceiling of jawOpen r for any model of the audio.
    at1 = [_at_articulation_1(r) for r in recs]
    if all(a is not None for a in at1):
        targets = np.concatenate([r.expression[:, INDEX["jawOpen"]] for r in recs])
        results["jaw_r_ceiling_articulation"] = float(np.corrcoef(np.concatenate(at1), targets)[0, 1])  # type: ignore[arg-type]
    # The targets' own closure rate: the ceiling of the hit rate against this corpus's targets
    # (corpora made before the viseme rule dropped mouthFunnel at closures reach about 0.6).
    hits = [closure_hits(r, mesh.gap(r.expression)) for r in recs]
    results["targets_closure_hit_rate"] = sum(h for h, _ in hits) / max(1, sum(t for _, t in hits))
    plots = []
    for audio_kind in ("clean", "degraded"):
        audios = [r.audio if audio_kind == "clean" else degrade(r.audio, i) for i, r in enumerate(recs)]
        for la in lookaheads:
            for refine in (False, True):
                preds = [
                    model.predict(a, la, np.concatenate([r.pose, r.gaze], 1), refine)
                    for a, r in zip(audios, recs, strict=True)
                ]  # noqa: E501
                key = f"{audio_kind}/lookahead{la * 40}ms/{'coarse+refine' if refine else 'coarse'}"
                results[key] = _metrics(recs, preds, audios, mesh, sync)
                if len(voices) > 1:
                    for v in voices:
                        mine = [k for k, r in enumerate(recs) if r.voice == v]
                        per = results.setdefault("voices", {}).setdefault(v, {"records": len(mine)})
                        per[key] = _metrics(*([x[k] for k in mine] for x in (recs, preds, audios)), mesh, sync)
                if audio_kind == "clean" and la == min(2, max(lookaheads)) and refine:
                    plots = preds[:4]
    print(f"{split}: {len(recs)} records of {len(voices)} voice(s), {results['seconds']:.0f} s")
    _print_table(results)
    for v, per in results.get("voices", {}).items():
        print(f"\n{v} ({per['records']} records)")
        _print_table(per)
    print(f"the targets themselves close {results['targets_closure_hit_rate']:.0%} of bilabials")
    if "jaw_r_ceiling_articulation" in results:
        ceiling = results["jaw_r_ceiling_articulation"]
        print(f"jawOpen r ceiling set by the targets' random articulation scale: {ceiling:.3f}")
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval_motion.json").write_text(json.dumps(results, indent=1))
        _plot(recs[:4], plots, out / "eval_motion.png")
        print(f"wrote {out / 'eval_motion.json'} and {out / 'eval_motion.png'}")
    return results


def _at_articulation_1(rec: Record) -> np.ndarray | None:
    """The record's jawOpen targets divided by its articulation scale (None when not recorded)."""
    a = rec.meta.get("style", {}).get("articulation")
    return rec.expression[:, INDEX["jawOpen"]] / a if a else None


def _metrics(recs, preds, audios, mesh, sync) -> dict[str, float]:  # type: ignore[no-untyped-def]
    jaw_p = np.concatenate([p[:, INDEX["jawOpen"]] for p in preds])
    jaw_t = np.concatenate([r.expression[:, INDEX["jawOpen"]] for r in recs])
    errs, hit, total = [], 0, 0
    for r, p in zip(recs, preds, strict=True):
        errs.append(np.linalg.norm(mesh.points(p) - mesh.points(r.expression), axis=-1).mean(1))
        h, n = closure_hits(r, mesh.gap(p))
        hit, total = hit + h, total + n
    m = {
        "jaw_r": float(np.corrcoef(jaw_p, jaw_t)[0, 1]),
        "lip_error": float(np.concatenate(errs).mean()),
        "closure_hit_rate": hit / max(total, 1),
        "bilabials": total,
    }
    if sync is not None:
        from posetalk.models.motion.sync import sync_scores

        scores = [sync_scores(sync, a, p[:, :14]) for a, p in zip(audios, preds, strict=True) if len(p) >= 30]
        if not scores:
            return m
        m["sync_offset_median"] = float(np.median([s["offset"] for s in scores]))
        m["sync_offset0_share"] = float(np.mean([s["offset"] == 0 for s in scores]))
        m["sync_confidence"] = float(np.mean([s["confidence"] for s in scores]))
    return m


def _sync_model(weights):  # type: ignore[no-untyped-def]
    from posetalk.models.motion.infer import WEIGHTS

    path = Path(weights or WEIGHTS) / "sync.safetensors"
    if not path.exists():
        return None
    from posetalk.models.motion.sync import load_sync

    return load_sync(path)


def _print_table(results: dict[str, Any]) -> None:
    keys = [k for k in results if "/" in k]
    cols = list(dict.fromkeys(c for k in keys for c in results[k]))
    print(f"{'setting':48s}" + "".join(f"{c:>20s}" for c in cols))
    for k in keys:
        print(f"{k:48s}" + "".join(f"{results[k][c]:20.3f}" if c in results[k] else f"{'-':>20s}" for c in cols))


def _plot(recs: list[Record], preds: list[np.ndarray], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(recs), 1, figsize=(12, 2.6 * len(recs)), squeeze=False)
    for ax, r, p in zip(axes[:, 0], recs, preds, strict=True):
        t = np.arange(len(p)) / FPS
        for name, c in (("jawOpen", "C0"), ("mouthClose", "C1"), ("mouthPucker", "C2")):
            ax.plot(t, r.expression[:, INDEX[name]], c, lw=1, ls="--")
            ax.plot(t, p[:, INDEX[name]], c, lw=1.2, label=name)
        for pid, start, end, _ in r.phones:
            if int(pid) in BILABIALS:
                ax.axvspan(start, end, color="k", alpha=0.08)
        ax.set_title(f"{r.voice}: {r.text[:90]}", fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds (dashed: targets; grey: p/b/m)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
