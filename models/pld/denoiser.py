"""The PLD denoiser: a small U-ViT over one window's latent tokens.

Tokens (d_model wide, learned positions)::

    [time (+ guidance)] [prompt] [context x K/4] [latent x W/4]
      log-sigma, w       384-d     committed       the noisy window
                         MiniLM    frames          being generated

The window's audio (log-mel, 4 mel frames per video frame) goes through a small strided conv to
one feature per 4 frames and is added to the context and latent tokens it lines up with; mel
frames the stream has not heard yet (beyond the hop plus the lookahead) are zeroed and flagged, so
the same net serves every lookahead. The context tokens carry the last K committed frames, which
is how consecutive windows join; a learned "no context" token stands in at the start of a stream.

Blocks are pre-LayerNorm transformer blocks with U-ViT's long skips: each block of the first half
hands its output to its mirror in the second half (concatenated, then projected back to d_model),
which keeps fine detail of the noisy input reachable by the last blocks of a shallow net.

The network is raw (EDM's c_in/c_skip/c_out scaling lives in samplers.Denoiser). The student of
distill.py is the same network with ``guidance_embed``: the CFG scale is an input, so it needs one
pass per step instead of two."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from posetalk.models.pld.text import dim as text_dim
from torch import nn

N_MELS = 80
MELS_PER_FRAME = 4


@dataclass(frozen=True)
class DenoiserConfig:
    latent: int = 8  # C_lat, as the VAE's
    channels: int = 8  # pose + gaze channels of the context frames
    window: int = 32  # frames generated per call (window / 4 latent tokens)
    context: int = 16  # committed frames seen before the window
    hop: int = 8  # frames committed per call when streaming (training shows this much audio + lookahead)
    max_lookahead: int = 4  # frames of audio past the hop seen in training (0..this)
    d_model: int = 128
    depth: int = 5  # odd: (depth - 1) / 2 blocks each side of the middle one
    heads: int = 4
    mlp: int = 4
    audio_width: int = 64
    adaln: bool = True  # the prompt and time also scale and shift every block's norms (DiT's adaLN)
    guidance_embed: bool = False  # the CFG scale is an input (the distilled student)
    consistency: bool = False  # consistency-model scaling (the distilled student)
    text_encoder: str = "minilm"  # the prompt's sentence encoder (text.ENCODERS)

    @property
    def tokens(self) -> int:
        return 2 + (self.context + self.window) // 4


def sinusoid(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) -> (B, dim) sin/cos features over log-spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    arg = x.float()[:, None] * freqs[None] * 10.0
    return torch.cat([arg.sin(), arg.cos()], -1)


class Block(nn.Module):
    """Pre-LayerNorm attention + MLP; with ``adaln`` the conditioning vector (time + prompt)
    scales and shifts both norms' outputs, so every token hears the prompt in every block instead
    of only through attention to the one prompt token (which the committed context outvoted)."""

    def __init__(self, d: int, heads: int, mlp: int, skip: bool, adaln: bool) -> None:
        super().__init__()
        self.heads = heads
        self.skip = nn.Linear(2 * d, d) if skip else None
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, mlp * d), nn.GELU(), nn.Linear(mlp * d, d))
        self.ada = nn.Linear(d, 4 * d) if adaln else None
        if self.ada is not None:  # starts as the plain block
            nn.init.zeros_(self.ada.weight), nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.skip is not None:
            x = self.skip(torch.cat([x, skip], -1))  # type: ignore[list-item]
        b, n, d = x.shape
        h1, h2 = self.n1(x), self.n2
        if self.ada is not None:
            s1, b1, s2, b2 = self.ada(F.silu(c))[:, None].chunk(4, -1)  # each (B, 1, d)
            h1 = h1 * (1 + s1) + b1
        q, k, v = self.qkv(h1).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d/heads)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        h = h2(x)
        if self.ada is not None:
            h = h * (1 + s2) + b2
        return x + self.ff(h)


class AudioEncoder(nn.Module):
    """(B, 80, 4F) normalised log-mel + (B, F) visibility -> (B, F/4, d): one feature per latent token."""

    def __init__(self, width: int, d: int) -> None:
        super().__init__()
        self.frame = nn.Conv1d(N_MELS + 1, width, MELS_PER_FRAME, stride=MELS_PER_FRAME)  # 4F -> F
        self.mix = nn.Conv1d(width, width, 3, padding=1)
        self.token = nn.Conv1d(width, d, 4, stride=4)  # F -> F/4

    def forward(self, mel: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        vis = visible.repeat_interleave(MELS_PER_FRAME, 1)[:, None]  # (B, 1, 4F)
        h = F.gelu(self.frame(torch.cat([mel * vis, vis], 1)))  # (B, width, F)
        h = F.gelu(h + self.mix(h))
        return self.token(h).transpose(1, 2)  # (B, F/4, d)


class PoseDenoiser(nn.Module):
    mel_mean: torch.Tensor  # (80, 1) per-bin log-mel statistics of the training audio
    mel_std: torch.Tensor

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        if cfg.depth % 2 != 1 or cfg.window % 4 or cfg.context % 4:
            raise ValueError("depth must be odd; window and context multiples of 4 frames")
        self.cfg = cfg
        d = cfg.d_model
        self.register_buffer("mel_mean", torch.zeros(N_MELS, 1))
        self.register_buffer("mel_std", torch.ones(N_MELS, 1))
        self.time = nn.Sequential(nn.Linear(64, d), nn.SiLU(), nn.Linear(d, d))
        self.guidance = nn.Linear(64, d) if cfg.guidance_embed else None
        if self.guidance is not None:  # starts as the teacher: no effect until trained
            nn.init.zeros_(self.guidance.weight), nn.init.zeros_(self.guidance.bias)
        self.prompt = nn.Linear(text_dim(cfg.text_encoder), d)
        self.ctx = nn.Linear(4 * cfg.channels, d)
        self.no_ctx = nn.Parameter(torch.zeros(d))
        self.audio = AudioEncoder(cfg.audio_width, d)
        self.inp = nn.Linear(cfg.latent, d)
        self.pos = nn.Parameter(torch.randn(1, cfg.tokens, d) * 0.02)
        half = cfg.depth // 2
        self.down = nn.ModuleList(Block(d, cfg.heads, cfg.mlp, False, cfg.adaln) for _ in range(half))
        self.mid = Block(d, cfg.heads, cfg.mlp, False, cfg.adaln)
        self.up = nn.ModuleList(Block(d, cfg.heads, cfg.mlp, True, cfg.adaln) for _ in range(half))
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.latent)
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """``x`` (B, W/4, C_lat) scaled noisy latent, ``c_noise`` (B,) -> (B, W/4, C_lat) raw output.

        ``cond``: prompt (B, 384); context (B, K, 8) normalised frames; has_context (B,) 0/1;
        mel (B, 80, 4(K+W)) log-mel of the context + window audio; visible (B, K+W) 0/1 per
        frame; guidance (B,) when the net has a guidance embedding."""
        cfg = self.cfg
        b = x.shape[0]
        t = self.time(sinusoid(c_noise, 64))
        if self.guidance is not None:
            t = t + self.guidance(sinusoid(cond["guidance"], 64))
        p = self.prompt(cond["prompt"])
        ctx = self.ctx(cond["context"].reshape(b, cfg.context // 4, 4 * cfg.channels))  # (B, K/4, d)
        has = cond["has_context"].reshape(b, 1, 1).to(ctx.dtype)
        ctx = ctx * has + self.no_ctx * (1 - has)
        mel = (cond["mel"] - self.mel_mean) / self.mel_std
        aud = self.audio(mel, cond["visible"].to(mel.dtype))  # (B, (K+W)/4, d)
        k = cfg.context // 4
        c = t + p
        h = torch.cat([t[:, None], p[:, None], ctx + aud[:, :k], self.inp(x) + aud[:, k:]], 1) + self.pos
        skips = []
        for blk in self.down:
            h = blk(h, c)
            skips.append(h)
        h = self.mid(h, c)
        for blk in self.up:
            h = blk(h, c, skips.pop())
        return self.out(self.norm(h[:, -(cfg.window // 4) :]))
