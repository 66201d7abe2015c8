"""The corpus on disk: shards of records (audio + per-frame arrays + text + voice/speaker id)
and a JSONL manifest, written so that an interrupted build resumes where it stopped and a
half-built corpus is never taken for a whole one.

Layout of a corpus folder::

    shards/shard-00000.npz     concatenated arrays of that shard's records
    shards/shard-00000.jsonl   one JSON line per record (metadata and offsets into the npz)
    manifest.jsonl             all records' lines, written last
    corpus.json                what was asked for and what was built; "complete": true

Each record: ``audio`` (N,) int16 at 16 kHz; per 25 fps frame ``expression`` (T, 21),
``pose`` (T, 6), ``gaze`` (T, 2) float32 and ``phone`` (T,) int8 (phones.PHONE_ID, -1 where
unknown); its phones as (P, 4) float32 rows (id, start s, end s, stress).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.data.phones import FPS, SAMPLE_RATE
from posetalk.models.errors import CorpusError

FRAME_ARRAYS = ("expression", "pose", "gaze", "phone")


@dataclass
class Record:
    """One utterance (synthetic) or one video (tracked), in the corpus's terms."""

    id: str
    split: str  # "train" | "val" | "test"
    source: str  # "tts" | "video"
    voice: str  # "flite:slt", "piper:joe", or "video:<file stem>"
    text: str  # the words spoken ("" when unknown)
    description: str  # the head motion in words
    audio: np.ndarray  # (N,) float32 in [-1, 1] at 16 kHz
    expression: np.ndarray  # (T, 21)
    pose: np.ndarray  # (T, 6)
    gaze: np.ndarray  # (T, 2)
    phone: np.ndarray  # (T,) int8
    phones: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # (P, 4)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return len(self.expression)

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def check(self) -> None:
        t = self.frames
        for name in FRAME_ARRAYS:
            if len(getattr(self, name)) != t:
                raise CorpusError(f"record {self.id}: {name} has {len(getattr(self, name))} frames, expected {t}")
        if abs(self.duration * FPS - t) > 1.0:
            raise CorpusError(f"record {self.id}: {t} frames for {self.duration:.2f} s of audio")


def shard_path(root: Path, index: int) -> Path:
    return root / "shards" / f"shard-{index:05d}.npz"


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_shard(root: Path, index: int, records: list[Record]) -> list[dict[str, Any]]:
    """Write one shard (npz then its JSONL, each atomically); returns its manifest lines."""
    path = shard_path(root, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in ("audio", "phones", *FRAME_ARRAYS)}
    lines = []
    offsets = dict.fromkeys(arrays, 0)
    for i, r in enumerate(records):
        r.check()
        pcm = np.round(np.clip(r.audio, -1, 1) * 32767).astype(np.int16)
        parts = {"audio": pcm, "phones": r.phones.astype(np.float32), "expression": r.expression.astype(np.float32),
                 "pose": r.pose.astype(np.float32), "gaze": r.gaze.astype(np.float32),
                 "phone": r.phone.astype(np.int8)}  # fmt: skip
        line = {"id": r.id, "split": r.split, "source": r.source, "voice": r.voice, "text": r.text,
                "description": r.description, "shard": path.name, "index": i, "frames": r.frames,
                "seconds": round(r.duration, 4), "meta": r.meta}  # fmt: skip
        for k, a in parts.items():
            arrays[k].append(a)
            line[f"{k}_at"] = [offsets[k], offsets[k] + len(a)]
            offsets[k] += len(a)
        lines.append(line)

    def save(p: Path) -> None:
        with open(p, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(f, **{k: np.concatenate(v) for k, v in arrays.items()})

    _atomic(path, save)
    text = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    _atomic(path.with_suffix(".jsonl"), lambda p: p.write_text(text, encoding="utf-8"))
    return lines


def shard_done(root: Path, index: int) -> bool:
    path = shard_path(root, index)
    return path.exists() and path.with_suffix(".jsonl").exists()


def finish(root: Path, summary: dict[str, Any]) -> None:
    """Join the shards' lines into manifest.jsonl and mark the corpus complete."""
    jsonls = sorted((root / "shards").glob("shard-*.jsonl"))
    text = "".join(p.read_text(encoding="utf-8") for p in jsonls)
    _atomic(root / "manifest.jsonl", lambda p: p.write_text(text, encoding="utf-8"))
    summary = {**summary, "complete": True, "shards": len(jsonls)}
    _atomic(root / "corpus.json", lambda p: p.write_text(json.dumps(summary, indent=1), encoding="utf-8"))


def read_manifest(root: str | Path) -> list[dict[str, Any]]:
    """All records' manifest lines; CorpusError if the folder is not a complete corpus."""
    root = Path(root)
    info = root / "corpus.json"
    if not info.exists() or not json.loads(info.read_text()).get("complete"):
        raise CorpusError(f"{root} is not a complete corpus (no finished corpus.json): build or resume it first")
    return [json.loads(x) for x in (root / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if x]


class Corpus:
    """Random access to a complete corpus's records (shards loaded on first use and kept)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.lines = read_manifest(self.root)
        self.info = json.loads((self.root / "corpus.json").read_text())
        self._shards: dict[str, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.lines)

    def _shard(self, name: str) -> dict[str, np.ndarray]:
        if name not in self._shards:
            with np.load(self.root / "shards" / name) as z:
                self._shards[name] = {k: z[k] for k in z.files}
        return self._shards[name]

    def record(self, i: int) -> Record:
        line = self.lines[i]
        z = self._shard(line["shard"])

        def part(k: str) -> np.ndarray:
            a, b = line[f"{k}_at"]
            return z[k][a:b]

        return Record(
            id=line["id"], split=line["split"], source=line["source"], voice=line["voice"], text=line["text"],
            description=line["description"], audio=part("audio").astype(np.float32) / 32767,
            expression=part("expression"), pose=part("pose"), gaze=part("gaze"), phone=part("phone"),
            phones=part("phones"), meta=line["meta"],
        )  # fmt: skip

    def __iter__(self) -> Iterator[Record]:
        for i in range(len(self)):
            yield self.record(i)
