"""Helpers the engine tests share: a tiny randomly initialised pose model whose prompt encoder
needs no sentence model, and synthetic speech-like audio."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from posetalk.models.pld.denoiser import DenoiserConfig, PoseDenoiser
from posetalk.models.pld.stream import PoseModel
from posetalk.models.pld.text import DIM, PromptEncoder
from posetalk.models.pld.vae import PoseVAE, VAEConfig

torch.set_num_threads(1)  # these nets are tiny; extra threads only contend on a shared machine


class SeededPrompts(PromptEncoder):
    """A fixed random unit vector per prompt text (seeded by its hash); the empty prompt is zero,
    as with MiniLM. Records every text it embeds, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts: object) -> np.ndarray:  # type: ignore[override]
        items = [texts] if isinstance(texts, str) else list(texts)  # type: ignore[call-overload]
        out = []
        for t in (str(x).strip() for x in items):
            self.seen.append(t)
            if not t:
                out.append(np.zeros(DIM, np.float32))
                continue
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(DIM)
            out.append((v / np.linalg.norm(v)).astype(np.float32))
        return np.stack(out) if out else np.zeros((0, DIM), np.float32)


def tiny_pose_model(seed: int = 0) -> PoseModel:
    """An untrained PLD small enough for a unit test, with non-zero output layers so that the
    prompt reaches the output."""
    torch.manual_seed(seed)
    cfg = DenoiserConfig(d_model=32, depth=3, heads=2, audio_width=16)
    net, vae = PoseDenoiser(cfg), PoseVAE(VAEConfig(hidden=16))
    torch.nn.init.normal_(net.out.weight, std=0.3)
    vae.std.fill_(0.1)
    return PoseModel(vae.eval(), net.eval(), default_steps=2, prompts=SeededPrompts())


def buzz(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-like bursts of a 140 Hz buzz at 16 kHz (speech to the models' front end)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    env = (np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)) > 0.2).astype(np.float32)
    return (0.2 * env * np.sign(np.sin(2 * np.pi * 140 * t)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
