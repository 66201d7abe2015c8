"""`posetalk train decoder`: the pose VAE's decoder fine-tuned on its frozen encoder's latents
with extra noise, so that it decodes a few-step sampler's imperfect latents into smooth motion.

The denoiser and student learnt the encoder's latent space; the encoder is left as it is, so they
stay valid, and the output folder is a whole PLD folder (their files copied beside the new
pld_vae.safetensors). The decoder trained only on clean latents turns the sampler's leftover
noise into small fast motion (the generated roll's mean |second difference| was 3–3.5× the
ground truth's), which the style classifier reads as "energetic".

Windows are windows.PlanWindows' (batch number = step: a resumed run sees the same batches);
the loss is the VAE's own (PoseVAE.loss) with ``latent_noise``. Checkpoints and the optimiser
state every ``save_every`` steps; CSV log and PNG plot as the other trainers."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch
from posetalk.models import runlog
from posetalk.models.errors import PoseModelError
from posetalk.models.motion import checkpoint
from posetalk.models.pld.denoiser import DenoiserConfig, PoseDenoiser
from posetalk.models.pld.train import window_frames
from posetalk.models.pld.vae import PoseVAE, VAEConfig
from posetalk.models.pld.windows import PlanWindows

LOG_KEYS = ("total", "recon", "vel")
OTHER_FILES = ("pld_denoiser.safetensors", "pld_student.safetensors", "prompts.npz")


def tune_decoder(
    weights: str | Path, data: str | Path, out: str | Path, *, steps: int = 800, latent_noise: float = 0.5,
    batch: int = 64, lr: float = 3e-4, seed: int = 0, device: str = "cpu", save_every: int = 200, log_every: int = 50,
) -> dict[str, float]:  # fmt: skip
    """Fine-tune the decoder of ``weights``/pld_vae.safetensors for ``steps`` (or resume in ``out``)."""
    weights, out = Path(weights), Path(out)
    if not (weights / "pld_vae.safetensors").exists():
        raise PoseModelError(f"{weights} has no pld_vae.safetensors (a folder made by `posetalk train pld`)")
    if weights.resolve() == out.resolve():
        raise PoseModelError("--out must be another folder than --weights (the encoder's latents must stay)")
    out.mkdir(parents=True, exist_ok=True)
    for name in OTHER_FILES:
        if (weights / name).exists() and not (out / name).exists():
            shutil.copy2(weights / name, out / name)
    vae_path, state_path = out / "pld_vae.safetensors", out / "train_state.pt"
    resume = vae_path.exists() and state_path.exists()
    source = vae_path if resume else weights / "pld_vae.safetensors"
    vae, vcfg, _ = checkpoint.load(source, "pld_vae", VAEConfig, PoseVAE)
    vae = vae.to(device)
    vae.enc.requires_grad_(False)
    ncfg = _net_config(weights)
    opt = torch.optim.AdamW(vae.dec.parameters(), lr=lr, weight_decay=1e-4)
    step = 0
    torch.manual_seed(seed)
    if resume:
        state = torch.load(state_path, map_location=device, weights_only=False)
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming at step {step}", flush=True)
    windows = PlanWindows(data, ncfg, seed=seed)
    log, writer = runlog.open_log(out / "train_log.csv", step == 0, ["step", *LOG_KEYS, "lr", "seconds"])
    t0 = time.perf_counter()
    recent: dict[str, list[float]] = {}
    while step < steps:
        b = windows.batch(batch, step)
        frames, _ = window_frames(b, device)
        lr_now = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr_now
        vae.train()
        parts = vae.loss(frames, b["mask"].to(device), latent_noise=latent_noise)
        opt.zero_grad()
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(vae.dec.parameters(), 1.0)
        opt.step()
        step += 1
        for k in LOG_KEYS:
            recent.setdefault(k, []).append(float(parts[k].detach()))
        if step % log_every == 0 or step == steps:
            writer.writerow([step, *(f"{np.mean(recent[k]):.5f}" for k in LOG_KEYS), f"{lr_now:.6f}",
                             f"{time.perf_counter() - t0:.1f}"])  # fmt: skip
            log.flush()
            print(f"step {step}/{steps}  loss {np.mean(recent['total']):.4f}  {time.perf_counter() - t0:.0f} s",
                  flush=True)  # fmt: skip
            recent = {}
        if step % save_every == 0 or step == steps:
            vae.eval()
            meta = {"step": step, "decoder_of": str(weights), "latent_noise": latent_noise}
            checkpoint.save(vae_path, vae, vcfg, "pld_vae", meta)
            state = {"optimizer": opt.state_dict(), "step": step, "torch_rng": torch.get_rng_state()}
            runlog.save_state(state_path, state)
    log.close()
    runlog.plot_losses(out / "train_log.csv", out / "train_loss.png", LOG_KEYS)
    return {"steps": step, "seconds": time.perf_counter() - t0}


def _net_config(weights: Path) -> DenoiserConfig:
    """The window layout the denoiser was trained on (context + window frames)."""
    for name, kind in (("pld_student.safetensors", "pld_student"), ("pld_denoiser.safetensors", "pld_denoiser")):
        if (weights / name).exists():
            return checkpoint.load(weights / name, kind, DenoiserConfig, PoseDenoiser)[0].cfg
    return DenoiserConfig()
