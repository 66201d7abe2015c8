"""PyTorch Datasets of random fixed-length windows over a corpus split: audio samples and the
per-frame arrays that go with them, aligned (frame f covers samples [f·640, (f+1)·640)); and a
mix of several corpora (synthetic and real speech) in set shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from posetalk.models.data.phones import FPS, SAMPLE_RATE
from posetalk.models.data.records import Corpus, Record
from posetalk.models.errors import CorpusError

SAMPLES_PER_FRAME = SAMPLE_RATE // FPS


class WindowDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Windows of ``frames`` video frames from the records of ``split``. Item i is drawn from a
    generator seeded by (seed, epoch, i): records in proportion to their length, then a start.
    Records shorter than the window are zero-padded, with ``mask`` marking the real frames."""

    def __init__(self, root: str | Path, split: str = "train", frames: int = 50, seed: int = 0) -> None:
        self.corpus = Corpus(root)
        self.ids = [i for i, x in enumerate(self.corpus.lines) if x["split"] == split]
        if not self.ids:
            raise CorpusError(f"corpus {root} has no records in split {split!r}")
        self.frames = frames
        self.seed = seed
        self.epoch = 0
        lengths = np.array([self.corpus.lines[i]["frames"] for i in self.ids], np.float64)
        self.weights = lengths / lengths.sum()
        self.length = max(1, int(lengths.sum() // frames))

    def __len__(self) -> int:
        return self.length

    def record(self, key: int) -> Record:
        """The record an item's ``record`` field names."""
        return self.corpus.record(key)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.window(np.random.default_rng((self.seed, self.epoch, i)))

    def window(self, rng: np.random.Generator) -> dict[str, Any]:
        """A window drawn with ``rng``: a record in proportion to its length, then a start."""
        index = self.ids[int(rng.choice(len(self.ids), p=self.weights))]
        rec = self.corpus.record(index)
        n = self.frames
        start = int(rng.integers(0, max(1, rec.frames - n + 1)))
        real = min(n, rec.frames - start)

        def cut(a: np.ndarray) -> np.ndarray:
            out = np.zeros((n, *a.shape[1:]), a.dtype)
            out[:real] = a[start : start + real]
            return out

        audio = np.zeros(n * SAMPLES_PER_FRAME, np.float32)
        seg = rec.audio[start * SAMPLES_PER_FRAME : (start + n) * SAMPLES_PER_FRAME]
        audio[: len(seg)] = seg
        mask = np.zeros(n, bool)
        mask[:real] = True
        return {
            "audio": torch.from_numpy(audio),
            "expression": torch.from_numpy(cut(rec.expression)),
            "pose": torch.from_numpy(cut(rec.pose)),
            "gaze": torch.from_numpy(cut(rec.gaze)),
            "phone": torch.from_numpy(cut(rec.phone).astype(np.int64)),
            "mask": torch.from_numpy(mask),
            "description": rec.description,
            "voice": rec.voice,
            "record": index,
            "start": start,
        }


class MixedWindows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Windows from several WindowDatasets, item i from part k with probability ``shares[k]``
    (drawn from a generator seeded by (seed, epoch, i)); an item's ``record`` is a key that
    ``record()`` resolves across the parts. As long as its first part."""

    KEY = 10**8  # record keys of part k are k * KEY + the record's index in its corpus

    def __init__(self, parts: list[WindowDataset], shares: list[float], seed: int = 0) -> None:
        if len(parts) != len(shares) or not parts or min(shares) < 0 or sum(shares) <= 0:
            raise ValueError(f"shares {shares} do not fit {len(parts)} parts")
        self.parts, self.seed, self.epoch = parts, seed, 0
        self.shares = np.asarray(shares, np.float64) / sum(shares)
        self.frames = parts[0].frames

    def __len__(self) -> int:
        return len(self.parts[0])

    def record(self, key: int) -> Record:
        return self.parts[key // self.KEY].record(key % self.KEY)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        k = int(rng.choice(len(self.parts), p=self.shares))
        item = self.parts[k].window(rng)
        item["record"] += k * self.KEY
        return item
