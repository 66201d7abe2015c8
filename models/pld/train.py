"""`posetalk train pld`: the pose VAE, then the denoiser, on a corpus's windows.

Each training window is K + W frames (16 + 32): the first K are the "committed" context, the last
W are what the denoiser learns to generate. Windows that run past the end of their record are
left out of the losses (padding would teach the model to snap back to the neutral pose).

Phase 1 (``vae_steps``): the VAE on whole windows; then its latent statistics are measured and
it is frozen. Phase 2: the denoiser with EDM's loss (log-normal noise levels, weight
(s^2 + 1) / s^2 on the x0 error) on the VAE's latent of the window, conditioned on

- the prompt, replaced by the null embedding with p = ``p_uncond``
  (classifier-free guidance). With ``windows="plan"`` (the default) the denoiser's windows are
  windows.PlanWindows: the corpus's audio with motion made for a plan drawn per window and a
  description of exactly that plan (a record's own description covers the whole utterance, whose
  plan often has several styles, so about a third of its windows would be told styles they do not
  show). ``windows="corpus"``: the records' stored motion and descriptions. The VAE and the data
  statistics are fitted on the same kind of windows as the denoiser;
- the context frames, dropped with p = ``p_no_context`` (a stream's first window has none; more
  often than a stream does, so that the prompt, not the committed frames of the same style,
  decides the motion) and cut short with p = 0.1 (a stream's second window has only one hop
  behind it: the rest repeats the first frame);
- the audio of the context and of the first hop + 0..max_lookahead frames of the window: what a
  stream has heard when it must commit that hop.

The denoiser's weights are an EMA of the trained ones (what is saved and sampled from).
Checkpoints: pld_vae.safetensors, pld_denoiser.safetensors; train_state.pt to resume; progress
on the terminal, in train_log.csv and train_loss.png; prompt embeddings cached in prompts.npz."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from posetalk.models import runlog
from posetalk.models.motion import checkpoint
from posetalk.models.pld.cond import make_cond, visibility
from posetalk.models.pld.denoiser import DenoiserConfig, PoseDenoiser
from posetalk.models.pld.samplers import Denoiser
from posetalk.models.pld.text import PromptEncoder, encoder
from posetalk.models.pld.vae import PoseVAE, VAEConfig
from posetalk.models.pld.windows import PlanWindows

LOG_KEYS = ("total", "recon", "vel", "kl", "denoise")
P_MEAN, P_STD = -1.2, 1.2  # EDM's log-normal training noise levels
P_NO_CONTEXT, P_SHORT_CONTEXT = 0.1, 0.1  # defaults: windows without context, with it cut short
# Noise on the unit prompt embedding (cosine to the clean one about 0.94): the training descriptions
# are a few hundred points of the embedding space per style; a prompt in other words lands between
# them, and a denoiser that only knows the points answers it at random.
PROMPT_NOISE = 0.35


def batches(data: str | Path, frames: int, batch: int, seed: int, epoch: int = 0) -> Iterator[dict[str, Any]]:
    """Endless batches of ``frames``-frame windows of the train split, epoch after epoch (a batch
    may span two epochs: a tiny corpus can have fewer windows than one batch)."""
    from posetalk.models.data.dataset import WindowDataset

    ds = WindowDataset(data, "train", frames=frames, seed=seed)
    ds.epoch, i = epoch, 0
    while True:
        items: list[dict[str, Any]] = []
        while len(items) < batch:
            if i == len(ds):
                ds.epoch, i = ds.epoch + 1, 0
            items.append(ds[i])
            i += 1
        b = torch.utils.data.default_collate(items)
        b["epoch"] = ds.epoch
        yield b


def prompt_table(data: str | Path, out: Path, enc: PromptEncoder) -> PromptEncoder:
    """Every description of the corpus embedded once (cached in ``out``/prompts.npz)."""
    from posetalk.models.data.records import read_manifest

    cache = out / "prompts.npz"
    enc.load_cache(cache)
    texts = sorted({x["description"] for x in read_manifest(data)} - set(enc.cache))
    if texts:
        print(f"embedding {len(texts)} prompts", flush=True)
        enc.embed(texts)
        enc.save_cache(cache)
    return enc


def embed_texts(enc: PromptEncoder, texts: list[str], out: Path) -> None:
    """Embed whichever of ``texts`` are not cached yet, and save the cache in ``out``/prompts.npz."""
    missing = [t for t in texts if t not in enc.cache]
    if missing:
        print(f"embedding {len(missing)} plan descriptions", flush=True)
        enc.embed(missing)
        enc.save_cache(out / "prompts.npz")


def window_frames(b: dict[str, Any], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 8) pose + gaze frames and (B,) 1.0 where the whole window is real."""
    frames = torch.cat([b["pose"], b["gaze"]], -1).to(device)
    return frames, b["mask"].all(1).float().to(device)


def denoise_loss(
    net: PoseDenoiser, vae: PoseVAE, b: dict[str, Any], prompts: torch.Tensor, gen: torch.Generator,
    p_uncond: float, device: str, p_no_context: float = P_NO_CONTEXT,
) -> torch.Tensor:  # fmt: skip
    """EDM loss of one batch (``prompts`` (B, 384): the descriptions' embeddings)."""
    cfg = net.cfg
    k, n = cfg.context, cfg.context + cfg.window
    frames, valid = window_frames(b, device)
    bs = frames.shape[0]
    r = lambda *s: torch.rand(*s, generator=gen).to(device)  # noqa: E731
    with torch.no_grad():
        z = vae.encode(frames[:, k:n])  # (B, W/4, C_lat) unit spread
        ctx = vae.normalise(frames[:, :k])  # (B, K, 8)
    has = (r(bs) >= p_no_context).float()
    short = (r(bs) < P_SHORT_CONTEXT) & (has > 0)
    keep = torch.randint(1, k, (bs,), generator=gen).to(device)  # committed frames kept when short
    first = torch.where(short, k - keep, torch.zeros_like(keep))  # (B,) first real context frame
    idx = torch.maximum(torch.arange(k, device=device)[None], first[:, None])  # repeat the first kept frame
    ctx = ctx.gather(1, idx[..., None].expand(-1, -1, ctx.shape[-1]))
    lookahead = torch.randint(0, cfg.max_lookahead + 1, (bs,), generator=gen).to(device)
    heard_from = torch.where(has > 0, first, torch.full_like(first, k))
    vis = visibility(cfg, heard_from, k + cfg.hop + lookahead)
    prompt = prompts.to(device)
    prompt = F.normalize(
        prompt + PROMPT_NOISE * torch.randn(prompt.shape, generator=gen).to(device) / prompt.shape[1] ** 0.5, dim=1
    )
    prompt = prompt * (r(bs) >= p_uncond).float()[:, None]
    cond = make_cond(cfg, b["audio"][:, : n * 640].to(device), ctx, has, vis, prompt)
    sigma = (torch.randn(bs, generator=gen).to(device) * P_STD + P_MEAN).exp()
    noisy = z + sigma[:, None, None] * torch.randn(z.shape, generator=gen).to(device)
    d = Denoiser(net).raw(noisy, sigma, cond)
    weight = (sigma**2 + 1) / sigma**2
    per = weight * ((d - z) ** 2).mean((1, 2))
    return (per * valid).sum() / valid.sum().clamp_min(1)


def _lr(step: int, total: int, base: float, warmup: int = 200) -> float:
    """Linear warm-up (at most a tenth of the run), then a cosine down to 0."""
    warmup = max(1, min(warmup, total // 10))
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _ema(avg: torch.nn.Module, net: torch.nn.Module, step: int, decay: float = 0.999) -> None:
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for a, p in zip(avg.parameters(), net.parameters(), strict=True):
            a.lerp_(p, 1 - d)
        for b, q in zip(avg.buffers(), net.buffers(), strict=True):
            b.copy_(q)


def train_pld(
    data: str | Path, out: str | Path, *, steps: int = 20000, vae_steps: int | None = None, batch: int = 64,
    lr: float = 3e-4, vae_lr: float = 1e-3, p_uncond: float = 0.15, seed: int = 0, device: str = "cpu",
    save_every: int = 500, log_every: int = 50, vae_config: VAEConfig | None = None,
    net_config: DenoiserConfig | None = None, prompts: PromptEncoder | None = None, windows: str = "plan",
    vae_from: str | Path | None = None, plan_options: dict[str, Any] | None = None, p_no_context: float = P_NO_CONTEXT,
) -> dict[str, float]:  # fmt: skip
    """Train (or resume) the pose VAE for ``vae_steps`` (default steps // 5), then the denoiser
    for the rest of ``steps``; everything is written to ``out``. ``windows``: "plan" or "corpus"
    (see the module's docstring); ``vae_from``: a folder whose trained pld_vae.safetensors is used
    as is (no VAE phase); ``plan_options``: keyword arguments of PlanWindows; ``p_no_context``: the
    share of windows whose committed context is dropped."""
    if windows not in ("plan", "corpus"):
        raise ValueError(f"windows must be 'plan' or 'corpus', not {windows!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vae_steps = 0 if vae_from is not None else steps // 5 if vae_steps is None else vae_steps
    torch.manual_seed(seed)
    vcfg, ncfg = vae_config or VAEConfig(), net_config or DenoiserConfig()
    frames = ncfg.context + ncfg.window
    enc = prompts or encoder(ncfg.text_encoder)
    if windows == "corpus":
        prompt_table(data, out, enc)
    else:
        enc.load_cache(out / "prompts.npz")
    plan_windows = None

    def sample(size: int, salt: int) -> dict[str, Any]:  # one batch apart from the training ones
        if plan_windows is not None:
            return plan_windows.batch(size, 10**9 + salt)
        return next(batches(data, frames, size, seed + salt))

    if windows == "plan":
        plan_windows = PlanWindows(data, ncfg, seed=seed, **(plan_options or {}))
        embed_texts(enc, plan_windows.texts, out)
    vae, net = PoseVAE(vcfg).to(device), PoseDenoiser(ncfg).to(device)
    paths = {"vae": out / "pld_vae.safetensors", "denoiser": out / "pld_denoiser.safetensors"}
    state_path = out / "train_state.pt"
    step, epoch, state = 0, 0, None
    if state_path.exists() and paths["vae"].exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        vae, vcfg, _ = checkpoint.load(paths["vae"], "pld_vae", VAEConfig, PoseVAE)
        vae = vae.to(device)
        ncfg = DenoiserConfig(**state["net_config"])  # the run's own architecture, not the arguments'
        net = PoseDenoiser(ncfg).to(device)
        net.load_state_dict(state["net"])
        step, epoch = state["step"], state["epoch"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming at step {step}", flush=True)
    else:
        _data_stats(vae, net, sample(256, 7), device)
        if vae_from is not None:
            vae = checkpoint.load(Path(vae_from) / "pld_vae.safetensors", "pld_vae", VAEConfig, PoseVAE)[0]
            vae, vcfg = vae.to(device), vae.cfg
            checkpoint.save(paths["vae"], vae, vcfg, "pld_vae", {"step": 0, "from": str(vae_from)})
    ema = None
    if step >= vae_steps:
        vae.eval().requires_grad_(False)
        resumed = paths["denoiser"].exists() and step > vae_steps
        ema = copy.deepcopy(net).requires_grad_(False)
        if resumed:
            ema = checkpoint.load(paths["denoiser"], "pld_denoiser", DenoiserConfig, PoseDenoiser)[0].to(device)
    phase = "vae" if step < vae_steps else "denoiser"
    opt = _optimiser(vae if phase == "vae" else net, vae_lr if phase == "vae" else lr)
    if state is not None and state["phase"] == phase:
        opt.load_state_dict(state["optimizer"])
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    log_path = out / "train_log.csv"
    log, writer = runlog.open_log(log_path, step == 0, ["step", "phase", *LOG_KEYS, "lr", "seconds"])
    t0 = time.perf_counter()
    # Resuming: "epoch" is the corpus's epoch, or with plan windows the last batch's number.
    if plan_windows is not None:
        it = plan_windows.batches(batch, epoch + 1 if step else 0)
    else:
        it = batches(data, frames, batch, seed, epoch)
    recent: dict[str, list[float]] = {}  # each loss since the last log line (logged as its mean)
    while step < steps:
        b = next(it)
        phase = "vae" if step < vae_steps else "denoiser"
        if phase == "vae":
            lr_now = _lr(step, vae_steps, vae_lr, warmup=50)
            x, valid = window_frames(b, device)
            parts = vae.loss(x, b["mask"].to(device))
            model: torch.nn.Module = vae
        else:
            lr_now = _lr(step - vae_steps, steps - vae_steps, lr)
            emb = torch.from_numpy(enc.embed(b["description"]))
            d = denoise_loss(net, vae, b, emb, gen, p_uncond, device, p_no_context)
            parts, model = {"total": d, "denoise": d}, net
        for g in opt.param_groups:
            g["lr"] = lr_now
        model.train()
        opt.zero_grad()
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if phase == "denoiser":
            _ema(ema, net, step - vae_steps)  # type: ignore[arg-type]
        for k, v in parts.items():
            recent.setdefault(k, []).append(float(v.detach()))
        if step % log_every == 0 or step in (steps, vae_steps):
            vals = [f"{np.mean(recent[k]):.5f}" if k in recent else "" for k in LOG_KEYS]
            writer.writerow([step, phase, *vals, f"{lr_now:.6f}", f"{time.perf_counter() - t0:.1f}"])
            log.flush()
            loss = np.mean(recent["total"])
            print(f"step {step}/{steps}  {phase}  loss {loss:.4f}  {time.perf_counter() - t0:.0f} s", flush=True)
            recent = {}
        if step == vae_steps:  # the VAE is done: measure its latent, save it, start the denoiser
            _latent_stats(vae, sample(512, 11), frames, device)
            vae.eval().requires_grad_(False)
            checkpoint.save(paths["vae"], vae, vcfg, "pld_vae", {"step": step})
            ema = copy.deepcopy(net).requires_grad_(False)
            opt = _optimiser(net, lr)
        if step % save_every == 0 or step == steps:
            _save(vae, net, ema, opt, step, vae_steps, int(b["epoch"]), paths, state_path)
    log.close()
    runlog.plot_losses(log_path, out / "train_loss.png", LOG_KEYS)
    return {"steps": step, "seconds": time.perf_counter() - t0}


def _optimiser(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)


def _data_stats(vae: PoseVAE, net: PoseDenoiser, b: dict[str, Any], device: str) -> None:
    """Per-channel pose/gaze statistics (the VAE's) and per-bin log-mel statistics (the net's) of batch ``b``."""
    from posetalk.models.audio.mel import log_mel

    x, _ = window_frames(b, device)
    m = b["mask"].to(device)
    real = x[m]  # (n, 8)
    vae.mean.copy_(real.mean(0))
    vae.std.copy_(real.std(0).clamp_min(1e-4))
    mel = log_mel(b["audio"][:64].to(device))  # (64, 80, F)
    net.mel_mean.copy_(mel.mean((0, 2))[:, None])
    net.mel_std.copy_(mel.std((0, 2))[:, None].clamp_min(0.1))


def _latent_stats(vae: PoseVAE, b: dict[str, Any], frames: int, device: str) -> None:
    x, valid = window_frames(b, device)
    vae.set_latent_stats(x[valid > 0][:, frames - 32 :] if (valid > 0).any() else x[:, frames - 32 :])


def _save(vae, net, ema, opt, step, vae_steps, epoch, paths, state_path) -> None:  # type: ignore[no-untyped-def]
    # "net": the raw (non-EMA) denoiser the optimiser moves, and its mel statistics in the VAE phase.
    phase = "vae" if step < vae_steps else "denoiser"
    state: dict[str, Any] = {"optimizer": opt.state_dict(), "step": step, "epoch": epoch, "net": net.state_dict(),
                             "net_config": dataclasses.asdict(net.cfg),
                             "torch_rng": torch.get_rng_state(), "phase": phase}  # fmt: skip
    if step <= vae_steps:
        checkpoint.save(paths["vae"], vae, vae.cfg, "pld_vae", {"step": step})
    else:
        checkpoint.save(paths["denoiser"], ema, ema.cfg, "pld_denoiser", {"step": step - vae_steps})
    runlog.save_state(state_path, state)
