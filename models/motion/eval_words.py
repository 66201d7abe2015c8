"""`posetalk eval words`: lips from known words against audio-only lips, on a corpus's held-out
prompts (80 ms lookahead, RefineNet on, as shipped).

How the words are given (``--method``):
- ``align``: the record's own transcript, forced-aligned to its audio (``align_text``). On the
  real-speech corpus the targets themselves come from this aligner's alignment of the same
  transcript, so there the figures are an upper bound; on the synthetic corpus the targets come
  from the TTS engine's own phone events, which the aligner never sees.
- ``words``: timed words as the live path shows them before their alignment lands
  (``Session.push_words``): word spans from the alignment, the phones inside each word placed by
  inherent duration, all trusted. (Offline, timed words are aligned as text.)
- ``wrong``: another prompt's transcript (the one half the split away), aligned: how much a wrong
  text costs once trust sends it back to audio-only lips.

Reported per variant: jawOpen Pearson r against the targets and the bilabial closure rate
(models/motion/evaluate.py), and the share of speaking frames the text was trusted on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.data.records import Corpus
from posetalk.models.face.params import INDEX
from posetalk.models.motion import words as W
from posetalk.models.motion.evaluate import LipMesh, closure_hits
from posetalk.models.motion.infer import MotionModel
from posetalk.models.motion.nets import N_MOUTH

METHODS = ("align", "words", "wrong")


def evaluate_words(
    data: str | Path, method: str = "align", split: str = "test", voice: str = "", limit: int | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The table for ``method`` over ``split``'s records whose voice starts with ``voice``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    corpus = Corpus(data)
    rows = [i for i, x in enumerate(corpus.lines) if x["split"] == split and x["voice"].startswith(voice)]
    recs = [corpus.record(i) for i in rows[:limit]]
    if not recs:
        raise ValueError(f"{data} has no {split} records of voice {voice!r}")
    model, mesh = MotionModel.load(), LipMesh()
    texts = [r.text for r in recs]
    variants: dict[str, list[np.ndarray]] = {"audio only": [], "text only": [], "mix": [], "mix where trusted": []}
    used, shares, seconds, cost, failed = [], [], 0.0, 0.0, []
    for i, r in enumerate(recs):
        a = model.predict(r.audio, 2)
        frames = len(a)
        try:
            t0 = time.perf_counter()
            if method == "words":
                words = W.align_text(r.audio, r.text, confidence=False).words
                text = W.text_lips(W.phones_from_words(words, r.duration), frames)
                ok = np.ones(frames, bool)
            else:
                said = r.text if method == "align" else texts[(i + len(texts) // 2) % len(texts)]
                found = W.align_text(r.audio, said)
                text, ok = W.text_lips(found.phones, frames), found.trusted(frames)
            cost += time.perf_counter() - t0
            seconds += r.duration
        except Exception as e:  # noqa: BLE001 - reported and counted, the rest goes on
            failed.append(f"{r.id}: {e}")
            continue
        speaking = np.abs(a[:, :N_MOUTH]).sum(1) > 0
        shares.append(float(ok[speaking].mean()) if speaking.any() else 1.0)
        used.append(r)
        variants["audio only"].append(a)
        variants["text only"].append(W.combine(a, text, np.ones(frames, bool), 1.0))
        variants["mix"].append(W.combine(a, text, np.ones(frames, bool)))
        variants["mix where trusted"].append(W.combine(a, text, ok))
    jaw = INDEX["jawOpen"]
    truth = np.concatenate([r.expression[:, jaw] for r in used])
    results: dict[str, Any] = {"method": method, "split": split, "voice": voice, "records": len(used),
                               "failed": failed, "trusted_share": float(np.mean(shares)),
                               "seconds_per_second": cost / max(seconds, 1e-9)}  # fmt: skip
    print(f"{data} {split} {voice or 'all voices'}, {method}: {len(used)} records ({len(failed)} not aligned), "
          f"text trusted on {results['trusted_share']:.0%} of speaking frames, "
          f"{results['seconds_per_second']:.2f} s per second of audio")  # fmt: skip
    # Synthetic targets carry a random articulation scale per utterance that neither the audio nor
    # the text says: r against the targets at articulation 1 too (real speech is at 1 already).
    scale = [r.meta.get("style", {}).get("articulation") or 1.0 for r in used]
    at1 = np.concatenate([r.expression[:, jaw] / a for r, a in zip(used, scale, strict=True)])
    for name, preds in variants.items():
        hits = [closure_hits(r, mesh.gap(p)) for r, p in zip(used, preds, strict=True)]
        jaw_p = np.concatenate([p[:, jaw] for p in preds])
        r_jaw, r_at1 = float(np.corrcoef(jaw_p, truth)[0, 1]), float(np.corrcoef(jaw_p, at1)[0, 1])
        closed = sum(h for h, _ in hits) / max(1, sum(t for _, t in hits))
        results[name] = {"jaw_r": r_jaw, "jaw_r_articulation_1": r_at1, "closure_hit_rate": closed}
        print(f"  {name:18s} jawOpen r {r_jaw:.3f} (at articulation 1: {r_at1:.3f})  closures {closed:.1%}")
    if out is not None:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        name = f"eval_words_{Path(data).name}{('_' + voice.replace(':', '-')) if voice else ''}_{split}_{method}.json"
        (path / name).write_text(json.dumps(results, indent=1))
    return results
