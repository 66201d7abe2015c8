"""Training windows for the pose model, made from the corpus: each window's plan, its audio and a
prompt that describes exactly the window's motion. The layout the denoiser sees (shared with
streaming) is cond.py's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from posetalk.models.data import head_motion as hm
from posetalk.models.errors import CorpusError
from posetalk.models.pld.cond import SAMPLES_PER_FRAME
from posetalk.models.pld.denoiser import DenoiserConfig

# --- Training windows whose prompt describes exactly the window's motion -------------------------


@dataclass(frozen=True)
class Template:
    """The words of a plan: its segments' styles, sizes, paces and sides, and one description of them.

    A window's plan is rebuilt from a template with the window's own bounds (make_segment draws
    the amplitude and rate inside the named size and pace), so the description stays exact while
    the prompt strings stay few enough to embed once up front."""

    styles: tuple[str, ...]
    sizes: tuple[str, ...]
    paces: tuple[str, ...]
    directions: tuple[int, ...]
    text: str

    def plan(self, bounds: list[int], rng: np.random.Generator) -> hm.Plan:
        """The template's segments over [bounds[i], bounds[i + 1])."""
        return hm.Plan(tuple(
            hm.make_segment(s, bounds[i], bounds[i + 1], rng, size=z, pace=p, direction=d)
            for i, (s, z, p, d) in enumerate(zip(self.styles, self.sizes, self.paces, self.directions, strict=True))
        ))  # fmt: skip


def _template(segs: tuple[hm.Segment, ...], rng: np.random.Generator, heldout: bool) -> Template:
    from posetalk.models.data.describe import describe

    # No casing or typo noise: both encoders lower-case, and training texts typed sloppily (a fifth
    # lower case, a tenth with a typo) cost the teacher Fréchet 5.48 against 4.04 (notes/issue24.md).
    text = describe(hm.Plan(segs), rng, heldout=heldout)
    return Template(tuple(s.style for s in segs), tuple(s.size for s in segs), tuple(s.pace for s in segs),
                    tuple(s.direction for s in segs), text)  # fmt: skip


class PlanWindows:
    """Endless batches of K + W frame windows whose prompt describes the motion in the window.

    The corpus gives the audio only. Per clip (a random stretch of ``frames`` .. ``max_clip``
    frames of a training record) a plan is drawn and its ground-truth pose and gaze are made by
    head_motion.generate on the clip's own rhythm (measured once per record over the whole record,
    as the corpus does); windows are cut from the clip at random offsets, so oscillations and held
    turns are seen at every phase. Plans, by kind:

    - single (the rest): one style over the whole clip (styles equally often), described alone;
      ``per_clip`` windows per clip;
    - switch (``p_switch``): two styles, the switch inside the window's generated part, described
      as a sequence ("first nods, then looks around"); one window;
    - change (``p_change``): the context in one style, the generated part in another, described
      as the new style alone (what a stream sees after ``set_prompt``); one window.

    Descriptions use the TRAIN vocabulary (HELDOUT is for evaluation) and come from a pool of
    ``pool`` templates per style (and as many two-style ones in all), drawn once from ``seed``:
    ``texts`` lists them, to embed up front."""

    def __init__(
        self, data: str | Path, cfg: DenoiserConfig, *, split: str = "train", seed: int = 0, p_switch: float = 0.15,
        p_change: float = 0.25, per_clip: int = 4, max_clip: int = 200, pool: int = 300, verbose: bool = True,
    ) -> None:  # fmt: skip
        from posetalk.models.data.records import Corpus

        self.frames, self.k, self.w = cfg.context + cfg.window, cfg.context, cfg.window
        for name, p in (("p_switch", p_switch), ("p_change", p_change)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be a share (0-1), got {p}")
        self.seed, self.p_switch, self.p_change = seed, p_switch, p_change
        self.per_clip, self.max_clip = per_clip, max(max_clip, cfg.context + cfg.window)
        corpus = Corpus(data)
        ids = [i for i, x in enumerate(corpus.lines) if x["split"] == split and x["frames"] >= self.frames]
        if not ids:
            raise CorpusError(f"corpus {data} has no {split} records of {self.frames} frames or more")
        t0 = time.perf_counter()
        self.audio: list[np.ndarray] = []
        self.rhythm: list[hm.Rhythm] = []
        for i in ids:
            rec = corpus.record(i)
            self.audio.append(rec.audio.astype(np.float32))
            self.rhythm.append(hm.rhythm(rec.audio, rec.frames))
        lengths = np.array([len(r.energy) for r in self.rhythm], np.float64)
        self.weights = lengths / lengths.sum()
        if verbose:
            print(f"plan windows: rhythm of {len(ids)} records in {time.perf_counter() - t0:.0f} s", flush=True)
        rng = np.random.default_rng((seed, 4242))
        self.singles: dict[str, list[Template]] = {s: [] for s in hm.STYLES}
        for s in hm.STYLES:
            for _ in range(pool):
                self.singles[s].append(_template((hm.make_segment(s, 0, 100, rng),), rng, False))
        self.pairs: list[Template] = []
        for _ in range(pool * len(hm.STYLES) // 2):
            a, b = (str(x) for x in rng.choice(hm.STYLES, 2, replace=False))
            segs = (hm.make_segment(a, 0, 100, rng), hm.make_segment(b, 100, 200, rng))
            self.pairs.append(_template(segs, rng, False))

    @property
    def texts(self) -> list[str]:
        """Every description a window can have."""
        return sorted({t.text for ts in self.singles.values() for t in ts} | {t.text for t in self.pairs})

    def clip(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        """The windows of one clip: dicts of audio (N*640,), pose (N, 6), gaze (N, 2), description, styles."""
        n, k = self.frames, self.k
        r = int(rng.choice(len(self.rhythm), p=self.weights))
        rh, total = self.rhythm[r], len(self.rhythm[r].energy)
        m = int(min(total, rng.integers(n, self.max_clip + 1)))
        c0 = int(rng.integers(0, total - m + 1))
        beats = rh.beats[(rh.beats >= c0) & (rh.beats < c0 + m)] - c0
        clip_rhythm = hm.Rhythm(rh.energy[c0 : c0 + m], rh.pitch[c0 : c0 + m], beats)
        u = rng.random()
        style = hm.STYLES[int(rng.integers(len(hm.STYLES)))]
        if u < self.p_switch + self.p_change:
            f0 = int(rng.integers(0, m - n + 1))
            if u < self.p_switch:  # both styles inside the generated part, both named
                t = self.pairs[int(rng.integers(len(self.pairs)))]
                cut = f0 + k + int(rng.integers(6, self.w - 5))
                plan, text, styles = t.plan([0, cut, m], rng), t.text, t.styles
            else:  # the prompt changed: the context in another style, the window in the new one
                other = [s for s in hm.STYLES if s != style][int(rng.integers(len(hm.STYLES) - 1))]
                old = self.singles[other][int(rng.integers(len(self.singles[other])))]
                new = self.singles[style][int(rng.integers(len(self.singles[style])))]
                cut = max(1, f0 + k + int(rng.integers(-8, 5)))
                segs = old.plan([0, cut], rng).segments + new.plan([cut, m], rng).segments
                plan, text, styles = hm.Plan(segs), new.text, (style,)
            starts = [f0]
        else:
            t = self.singles[style][int(rng.integers(len(self.singles[style])))]
            plan, text, styles = t.plan([0, m], rng), t.text, t.styles
            starts = [int(s) for s in rng.integers(0, m - n + 1, self.per_clip)]
        pose, gaze, _ = hm.generate(m, rng, rhythm=clip_rhythm, plan=plan)
        out = []
        for f0 in starts:
            a0 = (c0 + f0) * SAMPLES_PER_FRAME
            audio = np.zeros(n * SAMPLES_PER_FRAME, np.float32)
            src = self.audio[r][a0 : a0 + len(audio)]
            audio[: len(src)] = src
            out.append({"audio": audio, "pose": pose[f0 : f0 + n], "gaze": gaze[f0 : f0 + n], "description": text,
                        "styles": styles})  # fmt: skip
        return out

    def batch(self, size: int, index: int) -> dict[str, Any]:
        """Batch number ``index`` (a function of the seed and the index alone: resumable)."""
        rng = np.random.default_rng((self.seed, 777, index))
        items: list[dict[str, Any]] = []
        while len(items) < size:
            items += self.clip(rng)
        items = items[:size]
        return {
            "audio": torch.from_numpy(np.stack([x["audio"] for x in items])),
            "pose": torch.from_numpy(np.stack([x["pose"] for x in items]).astype(np.float32)),
            "gaze": torch.from_numpy(np.stack([x["gaze"] for x in items]).astype(np.float32)),
            "mask": torch.ones(size, self.frames, dtype=torch.bool),
            "description": [x["description"] for x in items],
            "styles": [x["styles"] for x in items],
            "epoch": index,
        }

    def batches(self, size: int, start: int = 0) -> Iterator[dict[str, Any]]:
        """Endless batches from number ``start`` on (``epoch`` of each: its number)."""
        i = start
        while True:
            yield self.batch(size, i)
            i += 1
