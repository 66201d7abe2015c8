"""The pose VAE: windows of pose + gaze frames (B, T, 8) <-> latent tokens (B, T/4, C_lat).

Channels: yaw, pitch, roll (rad), tx, ty (face widths), log scale, gaze yaw, gaze pitch (rad).
They differ in scale by 10x, so each is normalised by per-channel statistics of the training data
(buffers, saved with the weights). The latent is what the denoiser generates; its per-channel mean
and spread are measured after training (``set_latent_stats``) so the diffusion sees unit-variance
tokens (EDM's sigma_data = 1). The convolutions are all "same"-padded and stride 2 twice, so any T
divisible by 4 works; one latent token stands for 4 frames.

Loss: Huber on the normalised frames (a few glitchy frames should not dominate) plus a small KL
that keeps the latent smooth enough to sample from, and velocity and acceleration terms so that
decoded curves have the data's own frame-to-frame motion: without them a conv decoder blurs the
fast nods and adds a ripple of its own. The decoder upsamples by interpolation + convolution, not
transposed convolution, whose uneven overlap left a 2-frame ripple on every curve."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS = 8  # pose (6) + gaze (2)
DOWN = 4  # frames per latent token


@dataclass(frozen=True)
class VAEConfig:
    channels: int = CHANNELS
    hidden: int = 64
    latent: int = 8  # C_lat
    kl_weight: float = 1e-3
    vel_weight: float = 1.0


class _Res(nn.Module):
    """A residual pair of k=3 convolutions."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.a = nn.Conv1d(width, width, 3, padding=1)
        self.b = nn.Conv1d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.gelu(self.a(F.gelu(x))))


class PoseVAE(nn.Module):
    mean: torch.Tensor  # (8,) per-channel statistics of the training frames
    std: torch.Tensor
    z_mean: torch.Tensor  # (C_lat,) per-channel statistics of the latent
    z_std: torch.Tensor

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.register_buffer("mean", torch.zeros(cfg.channels))
        self.register_buffer("std", torch.ones(cfg.channels))
        self.register_buffer("z_mean", torch.zeros(cfg.latent))
        self.register_buffer("z_std", torch.ones(cfg.latent))
        self.enc = nn.Sequential(
            nn.Conv1d(cfg.channels, h, 3, padding=1),
            _Res(h),
            nn.Conv1d(h, h, 4, stride=2, padding=1),  # T -> T/2
            _Res(h),
            nn.Conv1d(h, h, 4, stride=2, padding=1),  # T/2 -> T/4
            _Res(h),
            nn.GELU(),
            nn.Conv1d(h, 2 * cfg.latent, 1),
        )
        self.dec = nn.Sequential(
            nn.Conv1d(cfg.latent, h, 3, padding=1),
            _Res(h),
            nn.Upsample(scale_factor=2, mode="linear"),  # T/4 -> T/2
            nn.Conv1d(h, h, 3, padding=1),
            _Res(h),
            nn.Upsample(scale_factor=2, mode="linear"),  # T/2 -> T
            nn.Conv1d(h, h, 3, padding=1),
            _Res(h),
            nn.GELU(),
            nn.Conv1d(h, cfg.channels, 3, padding=1),
        )

    # --- the normalised frame space shared with the denoiser's context -------------------------
    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - self.mean) / self.std

    def denormalise(self, frames: torch.Tensor) -> torch.Tensor:
        return frames * self.std + self.mean

    # --- raw encoder / decoder on normalised frames -------------------------------------------
    def encode_dist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 8) normalised frames -> mean, log-variance, each (B, T/4, C_lat)."""
        if x.shape[1] % DOWN:
            raise ValueError(f"the VAE needs a multiple of {DOWN} frames, got {x.shape[1]}")
        h = self.enc(x.transpose(1, 2))  # (B, 2*C_lat, T/4)
        mu, logvar = h.transpose(1, 2).chunk(2, -1)
        return mu, logvar.clamp(-12.0, 6.0)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T/4, C_lat) latent -> (B, T, 8) normalised frames."""
        return self.dec(z.transpose(1, 2)).transpose(1, 2)

    # --- the diffusion's latent space (unit spread) --------------------------------------------
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 8) frames in physical units -> (B, T/4, C_lat) scaled latent (the mean)."""
        mu, _ = self.encode_dist(self.normalise(frames))
        return (mu - self.z_mean) / self.z_std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T/4, C_lat) scaled latent -> (B, T, 8) frames in physical units."""
        return self.denormalise(self.decode_raw(z * self.z_std + self.z_mean))

    @torch.no_grad()
    def set_latent_stats(self, frames: torch.Tensor) -> None:
        """Measure the latent's per-channel mean and spread on a batch of (B, T, 8) frames."""
        mu, _ = self.encode_dist(self.normalise(frames))
        flat = mu.reshape(-1, mu.shape[-1])
        self.z_mean.copy_(flat.mean(0))
        self.z_std.copy_(flat.std(0).clamp_min(1e-3))

    def loss(
        self, frames: torch.Tensor, mask: torch.Tensor | None = None, latent_noise: float = 0.0
    ) -> dict[str, torch.Tensor]:
        """Huber reconstruction + velocity + KL on (B, T, 8) frames; ``mask`` (B, T) marks real frames.
        ``latent_noise``: more noise on the sampled latent, up to this many of its spreads (drawn per
        window), as a few-step sampler's latents carry (decoder.py)."""
        x = self.normalise(frames)
        mu, logvar = self.encode_dist(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        if latent_noise:
            z = z + torch.randn_like(mu) * self.z_std * latent_noise * torch.rand(mu.shape[0], 1, 1, device=mu.device)
        y = self.decode_raw(z)
        m = torch.ones(x.shape[:2], device=x.device) if mask is None else mask.float()
        m3 = m[..., None]
        recon = (F.huber_loss(y, x, reduction="none", delta=1.0) * m3).sum() / (m3.sum() * x.shape[-1]).clamp_min(1)
        vel = y.new_zeros(())
        for order, gain in ((1, 4.0), (2, 16.0)):  # velocity and acceleration, scaled to about unit spread
            mv = m.unfold(1, order + 1, 1).prod(-1)[..., None]  # (B, T - order, 1): all frames real
            dv = F.huber_loss(y.diff(order, 1) * gain, x.diff(order, 1) * gain, reduction="none", delta=1.0)
            vel = vel + (dv * mv).sum() / (mv.sum() * x.shape[-1]).clamp_min(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).mean()
        total = recon + self.cfg.vel_weight * vel + self.cfg.kl_weight * kl
        return {"total": total, "recon": recon, "vel": vel, "kl": kl}
