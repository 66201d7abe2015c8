"""`posetalk data synth`: the synthetic speech corpus. Sentences spoken by every installed TTS
voice (the neural Piper voice weighted up), per-frame lip/eye/brow targets from the engines' own
phone timings, head motion coupled to the speech's rhythm with a description in words, acoustic
augmentation; split by voice, the CMU ARCTIC family held out for testing.

Shard k is made in a fresh process from a generator seeded by (seed, k) alone, so a build is
the same whatever the number of workers or interruptions, and an interrupted build resumes at the
first missing shard.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.data import records, text, tts, visemes
from posetalk.models.data.phones import PHONE_ID, Utterance
from posetalk.models.errors import CorpusError, NoTTSEngineError

SHARD_SECONDS = 600.0  # audio per shard (each made in a fresh process: ~4 s to start)
SPLIT_SHARE = {"train": 0.86, "val": 0.07, "test": 0.07}
# Share of the utterances per engine family (the rest: espeak-ng). espeak-ng's 40 formant voices
# sound alike and nothing like a person; Piper (a net trained on a real voice), festival's and
# flite's voices (recorded diphones and units) are closer to real speech, so they get more than a
# per-voice share. With a per-voice share (4 % festival/flite), models scored jawOpen r 0.2-0.3 on
# the held-out flite voices against 0.6-0.7 on held-out espeak-ng voices. festival's share covers
# its recorded women of other languages too (tts.FOREIGN_WOMEN), the only natural-sounding women.
ENGINE_SHARE = {"piper": 0.25, "festival": 0.3, "flite": 0.15}
AUGMENT_P = 0.75  # utterances that get acoustic augmentation (the rest stay clean)


def split_voices(voices: list[tts.Voice]) -> dict[str, list[tts.Voice]]:
    """Test: the held-out CMU ARCTIC family. Validation: every 8th other non-Piper voice (at
    least one when there are two or more). Training: the rest."""
    test = [v for v in voices if v.heldout]
    rest = [v for v in voices if not v.heldout]
    candidates = [v for v in rest if v.engine != "piper"]
    val = candidates[3::8] or (candidates[-1:] if len(candidates) >= 2 else [])
    train = [v for v in rest if v not in val]
    return {"train": train, "val": val, "test": test}


def _pick_voice(rng: np.random.Generator, split: str, voices: dict[str, list[tts.Voice]]) -> tts.Voice:
    pool = voices[split]
    if split != "train":  # held-out voices: each equally often
        return pool[int(rng.integers(len(pool)))]
    families = sorted({v.engine for v in pool})
    share = np.array([ENGINE_SHARE.get(f, 0.0) for f in families])
    rest = [f not in ENGINE_SHARE for f in families]
    share[rest] = max(0.0, 1.0 - share.sum()) / max(1, sum(rest))
    if share.sum() <= 0:
        share[:] = 1.0
    family = families[int(rng.choice(len(families), p=share / share.sum()))]
    members = [v for v in pool if v.engine == family]
    return members[int(rng.integers(len(members)))]


def make_record(
    utt: Utterance, rng: np.random.Generator, rid: str, split: str, pool: list[np.ndarray] | None = None,
    *, source: str = "tts", augment_p: float = AUGMENT_P, articulation: float | None = None,
) -> records.Record:  # fmt: skip
    """Targets, head motion and description for one utterance, then augmentation (babble noise
    made from ``pool``, other utterances of the same shard) with probability ``augment_p``;
    ``articulation``: a fixed one (visemes.expression_track) instead of a random style."""
    from posetalk.models.data import augment, describe, head_motion

    frames = visemes.n_frames(utt.duration)
    rhythm = head_motion.rhythm(utt.audio, frames)
    expression, style = visemes.expression_track(utt.phones, frames, rng, peaks=rhythm.beats, articulation=articulation)
    pose, gaze, plan = head_motion.generate(frames, rng, rhythm=rhythm)
    description = describe.describe(plan, rng)
    audio, applied = utt.audio, {}
    if rng.random() < augment_p:
        audio, applied = augment.augment(utt.audio, rng, speech_pool=pool or None)
    phones = np.array([(PHONE_ID[p.label], p.start, p.end, p.stress) for p in utt.phones], np.float32)
    return records.Record(
        id=rid, split=split, source=source, voice=utt.voice, text=utt.text, description=description,
        audio=audio.astype(np.float32), expression=expression, pose=pose, gaze=gaze,
        phone=visemes.frame_phones(utt.phones, frames), phones=phones,
        meta={"engine": utt.engine, **utt.meta, "style": style, "augment": applied},
    )  # fmt: skip


def make_shard(index: int, seed: int, seconds: float, voices: dict[str, list[tts.Voice]]) -> list[records.Record]:
    """The records of shard ``index``: utterances until ``seconds`` of audio."""
    rng = np.random.default_rng((seed, index))
    splits = [s for s in SPLIT_SHARE if voices[s]]
    share = np.array([SPLIT_SHARE[s] for s in splits])
    out: list[records.Record] = []
    pool: list[np.ndarray] = []  # the latest clean utterances, for babble noise
    total = 0.0
    while total < seconds:
        split = splits[int(rng.choice(len(splits), p=share / share.sum()))]
        voice = _pick_voice(rng, split, voices)
        words = text.script(rng)
        utt = tts.synthesize(
            voice, words, rate=float(rng.uniform(0.75, 1.35)), pitch=float(rng.uniform(0.85, 1.2)),
            variation=float(rng.uniform(0.0, 1.0)),
        )  # fmt: skip
        out.append(make_record(utt, rng, f"{index:05d}-{len(out):03d}", split, pool))
        pool = [utt.audio, *pool[:5]]
        total += utt.duration
    return out


def _shard_job(args: tuple[Path, int, int, float, dict[str, list[tts.Voice]]]) -> tuple[int, float]:
    root, index, seed, seconds, voices = args
    recs = make_shard(index, seed, seconds, voices)
    records.write_shard(root, index, recs)
    return index, sum(r.duration for r in recs)


def build(
    out: str | Path, hours: float, seed: int = 0, *, engines: list[str] | None = None, workers: int | None = None,
    shard_seconds: float = SHARD_SECONDS,
) -> dict[str, Any]:  # fmt: skip
    """Build (or resume) a corpus of about ``hours`` hours in ``out``; returns its summary."""
    root = Path(out)
    found = tts.available_engines()
    voices = tts.voices(engines)  # NoTTSEngineError when none (or a requested one is missing)
    split = split_voices(voices)
    if not split["train"]:
        raise NoTTSEngineError("no training voices: every installed voice is in the held-out test family")
    # Small corpora get smaller shards, so that every core has one to build.
    shard_seconds = min(shard_seconds, max(30.0, hours * 3600 / 4))
    n_shards = max(1, int(np.ceil(hours * 3600 / shard_seconds)))
    request = {"seed": seed, "hours": hours, "shard_seconds": shard_seconds, "shards_planned": n_shards,
               "voices": {k: [v.id for v in vs] for k, vs in split.items()}}  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    plan_file = root / "request.json"
    if plan_file.exists() and json.loads(plan_file.read_text()) != request:
        raise CorpusError(f"{root} holds a corpus built with other settings (see {plan_file}); use a new folder")
    plan_file.write_text(json.dumps(request, indent=1))
    used = sorted({v.engine for v in voices})
    print(f"engines used: {', '.join(used)}; voices: " + ", ".join(f"{k} {len(v)}" for k, v in split.items()))
    for name, why in found.items():
        if why is not None:
            print(f"engine {name} not used: {why}")
    todo = [i for i in range(n_shards) if not records.shard_done(root, i)]
    if len(todo) < n_shards:
        print(f"resuming: {n_shards - len(todo)} of {n_shards} shards already built")
    t0 = time.perf_counter()
    done_seconds = 0.0
    jobs = [(root, i, seed, shard_seconds, split) for i in todo]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    # Each shard in a fresh process: espeak-ng and Piper carry state from call to call, so a
    # shard is reproducible only when its calls start from a newly loaded engine.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        for index, seconds in pool.map(_shard_job, jobs):
            done_seconds += seconds
            print(f"shard {index + 1}/{n_shards}: {seconds:.0f} s of audio", flush=True)
    wall = time.perf_counter() - t0
    summary = {**request, "engines": {k: "used" if k in used else v for k, v in found.items()},
               "seconds_built_now": round(done_seconds, 1), "wall_s": round(wall, 1),
               "realtime_factor": round(done_seconds / wall, 1) if wall > 0 else None}  # fmt: skip
    records.finish(root, summary)
    return summary
