"""The pose model's hop in NumPy: the same arithmetic as the PyTorch modules, for one stream on
the CPU, where PyTorch's ~10 µs per operation is most of the cost of these small products (a
window is 14 tokens of 128). The modules in denoiser.py, vae.py and samplers.py are the
specification; tests/test_pld_fast.py holds this to them.

Per hop the parts that do not change between sampling steps are made once: the audio tokens, the
context tokens and the prompt's projection. Each step then runs the time embedding, the input
projection and the blocks."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from posetalk.models.pld.denoiser import Block, PoseDenoiser
from posetalk.models.pld.samplers import SIGMA_DATA, SIGMA_MIN
from posetalk.models.pld.vae import PoseVAE, _Res
from torch import nn

F32 = np.float32


def _arr(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().numpy())


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU through PyTorch's kernel on the same memory: 4x faster than scipy's erf."""
    return torch.nn.functional.gelu(torch.from_numpy(x)).numpy()


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


class _Linear:
    def __init__(self, m: nn.Linear) -> None:
        self.w, self.b = _arr(m.weight).T.copy(), _arr(m.bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.w + self.b


class _Norm:
    def __init__(self, m: nn.LayerNorm) -> None:
        self.w, self.b, self.eps = m.weight.detach().float(), m.bias.detach().float(), m.eps

    def __call__(self, x: np.ndarray) -> np.ndarray:  # PyTorch's kernel: one call instead of eight NumPy ones
        return torch.nn.functional.layer_norm(torch.from_numpy(x), self.w.shape, self.w, self.b, self.eps).numpy()


class _Conv:
    """A Conv1d on (C, T) as one matrix product over its unrolled taps; ``pad`` zeros each side."""

    def __init__(self, m: nn.Conv1d) -> None:
        out, cin, k = m.weight.shape
        self.w = _arr(m.weight.permute(0, 2, 1)).reshape(out, k * cin)  # columns: tap-major, then channel
        self.b, self.k, self.stride, self.pad = _arr(m.bias)[:, None], k, m.stride[0], m.padding[0]  # type: ignore[index]

    def __call__(self, x: np.ndarray) -> np.ndarray:  # (C, T) -> (out, T')
        c, t = x.shape
        if self.pad:
            z = np.zeros((c, self.pad), F32)
            x, t = np.concatenate([z, x, z], 1), t + 2 * self.pad
        n = (t - self.k) // self.stride + 1
        if self.stride == self.k:  # non-overlapping taps: a reshape, no copies
            cols = x[:, : n * self.k].reshape(c, n, self.k).transpose(2, 0, 1).reshape(self.k * c, n)
        else:
            last = self.stride * (n - 1) + 1
            cols = np.concatenate([x[:, j : j + last : self.stride] for j in range(self.k)], 0)  # (k*C, T')
        return self.w @ cols + self.b


class _Block:
    def __init__(self, m: Block) -> None:
        self.heads = m.heads
        self.skip = _Linear(m.skip) if m.skip is not None else None
        self.n1, self.n2 = _Norm(m.n1), _Norm(m.n2)
        self.qkv, self.proj = _Linear(m.qkv), _Linear(m.proj)
        self.ff1, self.ff2 = _Linear(m.ff[0]), _Linear(m.ff[2])  # type: ignore[arg-type]
        self.ada = _Linear(m.ada) if m.ada is not None else None

    def __call__(self, x: np.ndarray, mod: np.ndarray | None, skip: np.ndarray | None) -> np.ndarray:
        """``x`` (N, d) tokens; ``mod`` (4, d) the adaLN scales and shifts for this call."""
        if self.skip is not None:
            x = self.skip(np.concatenate([x, skip], -1))  # type: ignore[list-item]
        n, d = x.shape
        h = self.n1(x)
        if mod is not None:
            h = h * (1 + mod[0]) + mod[1]
        q, k, v = self.qkv(h).reshape(n, 3, self.heads, d // self.heads).transpose(1, 2, 0, 3)  # (heads, N, dh)
        s = q @ k.transpose(0, 2, 1) * F32(1 / math.sqrt(d // self.heads))
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v  # (heads, N, dh)
        x = x + self.proj(a.transpose(1, 0, 2).reshape(n, d))
        h = self.n2(x)
        if mod is not None:
            h = h * (1 + mod[2]) + mod[3]
        return x + self.ff2(_gelu(self.ff1(h)))


def _sinusoid(x: float, dim: int) -> np.ndarray:
    half = dim // 2
    freqs = np.exp(-math.log(1000.0) * np.arange(half, dtype=F32) / half).astype(F32)
    arg = F32(x) * freqs * F32(10.0)
    return np.concatenate([np.sin(arg), np.cos(arg)])


class HopCond(NamedTuple):
    """What every sampling step of one hop shares."""

    prompt: np.ndarray  # (d,) the prompt's projection
    guidance: np.ndarray  # (d,) the guidance scale's embedding (zeros for a teacher)
    fixed: np.ndarray  # (1 + K/4, d) the prompt and context tokens
    audio: np.ndarray  # (W/4, d) the window's audio features


class FastDenoiser:
    """``PoseDenoiser`` wrapped as ``samplers.Denoiser`` does (EDM or consistency scaling), for
    one window: ``condition`` once per hop, then ``__call__`` once per sampling step. It holds
    weights and the per-step terms made from them (the time embedding and each block's adaLN
    scales, which depend only on the noise level, the prompt and the guidance scale: the same
    few every hop), so streams may share one. Guidance must be the student's own input (one
    pass); a teacher's two-pass guidance is left to the PyTorch path."""

    def __init__(self, net: PoseDenoiser) -> None:
        cfg = self.cfg = net.cfg
        self.consistency = cfg.consistency
        self.mel_mean, self.mel_std = _arr(net.mel_mean), _arr(net.mel_std)  # (80, 1)
        self.time1, self.time2 = _Linear(net.time[0]), _Linear(net.time[2])  # type: ignore[arg-type]
        self.guidance = _Linear(net.guidance) if net.guidance is not None else None
        self.prompt, self.ctx, self.inp = _Linear(net.prompt), _Linear(net.ctx), _Linear(net.inp)
        self.no_ctx, self.pos = _arr(net.no_ctx), _arr(net.pos)[0]
        a = net.audio
        self.a_frame, self.a_mix, self.a_token = _Conv(a.frame), _Conv(a.mix), _Conv(a.token)
        self.down = [_Block(b) for b in net.down]  # type: ignore[arg-type]
        self.mid = _Block(net.mid)
        self.up = [_Block(b) for b in net.up]  # type: ignore[arg-type]
        self.norm, self.out = _Norm(net.norm), _Linear(net.out)
        self._terms: dict[tuple[float, bytes, bytes], tuple[np.ndarray, list[np.ndarray | None]]] = {}

    def condition(self, mel: np.ndarray, visible: np.ndarray, context: np.ndarray, has_context: bool,
                  prompt: np.ndarray, guidance: float) -> HopCond:  # fmt: skip
        """The hop's inputs, as ``windows.make_cond`` gives them to the net (unbatched):
        ``mel`` (80, 4(K+W)) log-mel of the masked audio, ``visible`` (K+W,), ``context`` (K, 8)
        normalised committed frames, ``prompt`` (384,) (zeros when ``guidance`` is 0)."""
        cfg = self.cfg
        if guidance == 0:
            prompt = np.zeros_like(prompt)
        vis = np.repeat(visible.astype(F32), 4)[None]  # (1, 4F)
        m = (mel - self.mel_mean) / self.mel_std
        h = _gelu(self.a_frame(np.concatenate([m * vis, vis], 0)))  # (width, F)
        h = _gelu(h + self.a_mix(h))
        aud = self.a_token(h).T  # (F/4, d)
        k = cfg.context // 4
        ctx = self.ctx(context.reshape(k, 4 * cfg.channels)) if has_context else np.tile(self.no_ctx, (k, 1))
        p = self.prompt(prompt.astype(F32))
        g = self.guidance(_sinusoid(guidance, 64)) if self.guidance is not None else np.zeros_like(p)
        return HopCond(p, g, np.concatenate([p[None], ctx + aud[:k]], 0), aud[k:])

    def __call__(self, x: np.ndarray, sigma: float, cond: HopCond) -> np.ndarray:
        """The x0 estimate for ``x`` (W/4, C_lat) at noise level ``sigma``."""
        s = max(sigma - SIGMA_MIN, 0.0) if self.consistency else sigma
        sd2, norm = SIGMA_DATA**2, math.sqrt(sigma**2 + SIGMA_DATA**2)
        c_skip, c_out, c_in = sd2 / (s * s + sd2), s * SIGMA_DATA / norm, 1 / norm
        t, mods = self._step_terms(sigma, cond)
        h = np.concatenate([t[None], cond.fixed, self.inp(F32(c_in) * x) + cond.audio], 0) + self.pos
        skips = []
        for blk, mod in zip(self.down, mods[: len(self.down)], strict=True):
            h = blk(h, mod, None)
            skips.append(h)
        h = self.mid(h, mods[len(self.down)], None)
        for blk, mod in zip(self.up, mods[len(self.down) + 1 :], strict=True):
            h = blk(h, mod, skips.pop())
        raw = self.out(self.norm(h[-(self.cfg.window // 4) :]))
        return (F32(c_skip) * x + F32(c_out) * raw).astype(F32)

    def _step_terms(self, sigma: float, cond: HopCond) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """The time token and every block's adaLN terms (down, mid, up) for this noise level and
        the hop's prompt and guidance, made once and kept."""
        key = (float(sigma), cond.prompt.tobytes(), cond.guidance.tobytes())
        terms = self._terms.get(key)
        if terms is None:
            t = self.time2(_silu(self.time1(_sinusoid(math.log(sigma) / 4, 64)))) + cond.guidance
            c = _silu(t + cond.prompt)
            blocks = [*self.down, self.mid, *self.up]
            mods = [blk.ada(c).reshape(4, -1) if blk.ada is not None else None for blk in blocks]
            if len(self._terms) >= 256:  # prompts change: forget the old ones
                self._terms.clear()
            terms = self._terms[key] = (t, mods)
        return terms


class FastDecoder:
    """``PoseVAE.decode_raw`` for one window: (W/4, C_lat) latent -> (W, 8) normalised frames."""

    def __init__(self, vae: PoseVAE) -> None:
        self.layers: list[object] = []
        for m in vae.dec:
            if isinstance(m, nn.Conv1d):
                self.layers.append(_Conv(m))
            elif isinstance(m, _Res):
                self.layers.append((_Conv(m.a), _Conv(m.b)))
            elif isinstance(m, nn.Upsample):
                self.layers.append("up")
            elif isinstance(m, nn.GELU):
                self.layers.append(_gelu)
            else:
                raise TypeError(f"no NumPy twin for {type(m).__name__}")

    def __call__(self, z: np.ndarray) -> np.ndarray:
        h = z.T  # (C, T)
        for layer in self.layers:
            if isinstance(layer, tuple):
                a, b = layer
                h = h + b(_gelu(a(_gelu(h))))
            elif layer == "up":
                h = _upsample2(h)
            else:
                h = layer(h)  # type: ignore[operator]
        return np.ascontiguousarray(h.T)


def _upsample2(x: np.ndarray) -> np.ndarray:
    """nn.Upsample(scale_factor=2, mode="linear"), align_corners False, on (C, T)."""
    t = x.shape[1]
    src = np.clip((np.arange(2 * t, dtype=F32) + 0.5) / 2 - 0.5, 0, None)
    lo = np.minimum(src.astype(np.int64), t - 1)
    hi = np.minimum(lo + 1, t - 1)
    frac = (src - lo).astype(F32)
    return x[:, lo] * (1 - frac) + x[:, hi] * frac
