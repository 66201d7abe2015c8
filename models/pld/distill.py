"""`posetalk train distill`: a 1-4 step student distilled from the PLD teacher.

Method: consistency distillation (Song et al. 2023), guided as in LCM (Luo et al. 2023). The
student f(x, s, w) maps any point of the teacher's probability-flow ODE straight to its end; it is
trained so that two neighbouring points of one ODE trajectory (the second reached from the first
by one Heun step of the teacher, with classifier-free guidance w) map to the same x0, against an
EMA copy of itself. Sampling then takes 1-4 jumps with re-noising in between.

Why this and not progressive distillation: progressive distillation halves the step count per
round (50 -> 2 is five to six rounds, each a full training run, each student a new teacher), and
its student works only at the one step count it ended at. One consistency run gives a student
that samples at 1, 2, 3 or 4 steps, and making w an input (zero-initialised embedding, so the
student starts as the teacher) keeps the run-time choice of guidance at one network pass per step
instead of two. The student is the teacher's network with ``guidance_embed`` and ``consistency``
set (the latter makes the wrapper's scaling satisfy f(x, sigma_min) = x exactly).

The output folder holds the teacher's VAE and denoiser (copied) and pld_student.safetensors, whose metadata
carries the default step count; PoseModel.load picks the student when it is there."""

from __future__ import annotations

import copy
import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from posetalk.models import runlog
from posetalk.models.errors import PoseModelError
from posetalk.models.motion import checkpoint
from posetalk.models.motion.augment import noise_mix
from posetalk.models.pld.cond import make_cond, visibility
from posetalk.models.pld.denoiser import DenoiserConfig, PoseDenoiser
from posetalk.models.pld.samplers import SIGMA_MAX, SIGMA_MIN, Denoiser, karras_sigmas
from posetalk.models.pld.text import PromptEncoder, encoder
from posetalk.models.pld.train import P_NO_CONTEXT, _lr, batches, embed_texts, prompt_table, window_frames
from posetalk.models.pld.vae import PoseVAE, VAEConfig
from posetalk.models.pld.windows import PlanWindows

LOG_KEYS = ("total",)


def _heun(
    d: Denoiser, x: torch.Tensor, s: torch.Tensor, s_next: torch.Tensor, cond: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Heun's step of the teacher's ODE with per-sample levels (B,), all s_next > 0."""
    s3, n3 = s[:, None, None], s_next[:, None, None]
    v = (x - d(x, s, cond)) / s3
    x_next = x + (n3 - s3) * v
    v2 = (x_next - d(x_next, s_next, cond)) / n3
    return x + (n3 - s3) * 0.5 * (v + v2)


def cd_loss(
    student: Denoiser, target: Denoiser, teacher: Denoiser, vae: PoseVAE, b: dict[str, Any], prompts: torch.Tensor,
    levels: torch.Tensor, gen: torch.Generator, guidance_max: float, device: str, p_no_context: float = P_NO_CONTEXT,
) -> torch.Tensor:  # fmt: skip
    """Consistency-distillation loss of one batch; ``levels`` ascending (N,) noise levels."""
    cfg = student.net.cfg
    k, n = cfg.context, cfg.context + cfg.window
    frames, valid = window_frames(b, device)
    bs = frames.shape[0]
    with torch.no_grad():
        z = vae.encode(frames[:, k:n])
        ctx = vae.normalise(frames[:, :k])
    has = (torch.rand(bs, generator=gen) >= p_no_context).float().to(device)
    lookahead = torch.randint(0, cfg.max_lookahead + 1, (bs,), generator=gen).to(device)
    heard_from = torch.where(has > 0, 0, k).to(device)
    vis = visibility(cfg, heard_from, k + cfg.hop + lookahead)
    w = torch.rand(bs, generator=gen).to(device) * guidance_max
    w = torch.where(torch.rand(bs, generator=gen).to(device) < 0.1, torch.zeros_like(w), w)  # some exact w = 0
    cond = make_cond(cfg, b["audio"][:, : n * 640].to(device), ctx, has, vis, prompts.to(device), w)
    i = torch.randint(0, len(levels) - 1, (bs,), generator=gen)
    s_lo, s_hi = levels[i].to(device), levels[i + 1].to(device)
    x_hi = z + s_hi[:, None, None] * torch.randn(z.shape, generator=gen).to(device)
    with torch.no_grad():
        x_lo = _heun(teacher, x_hi, s_hi, s_lo, cond)
        want = target(x_lo, s_lo, cond)
    got = student(x_hi, s_hi, cond)
    c = 0.00054 * (z[0].numel() ** 0.5)  # pseudo-Huber (Song & Dhariwal 2023)
    per = (((got - want) ** 2).sum((1, 2)) + c**2).sqrt() - c
    return (per * valid).sum() / valid.sum().clamp_min(1)


def distill_pld(
    teacher: str | Path, data: str | Path, out: str | Path, *, steps: int = 4000, student_steps: int = 2,
    batch: int = 64, lr: float = 1e-4, levels: int = 40, guidance_max: float = 3.0, ema: float = 0.95,
    seed: int = 0, device: str = "cpu", save_every: int = 250, log_every: int = 25,
    prompts: PromptEncoder | None = None, windows: str = "plan", plan_options: dict[str, Any] | None = None,
    init: str | Path | None = None, noise: float = 0.0, p_no_context: float = P_NO_CONTEXT,
) -> dict[str, float]:  # fmt: skip
    """Distil the teacher in ``teacher`` (a `train pld` folder) into a student in ``out``, on
    ``windows`` as train_pld's: "plan" (windows.PlanWindows, what the teacher is trained on) or
    "corpus". The student starts as the teacher, or as the student in the folder ``init`` (a
    distillation continued, e.g. with a finer grid of ``levels``). ``noise``: the share of windows
    whose audio gets noise mixed in (motion.augment.noise_mix), the teacher hearing the same;
    ``p_no_context``: the share of windows whose committed context is dropped (as train_pld's)."""
    if windows not in ("plan", "corpus"):
        raise ValueError(f"windows must be 'plan' or 'corpus', not {windows!r}")
    teacher, out = Path(teacher), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not 1 <= student_steps <= 4:
        raise PoseModelError(f"student steps must be 1..4, got {student_steps}")
    torch.manual_seed(seed)
    vae = checkpoint.load(teacher / "pld_vae.safetensors", "pld_vae", VAEConfig, PoseVAE)[0].to(device).eval()
    t_net = checkpoint.load(teacher / "pld_denoiser.safetensors", "pld_denoiser", DenoiserConfig, PoseDenoiser)[0]
    t_net = t_net.to(device).eval().requires_grad_(False)
    for name in ("pld_vae.safetensors", "pld_denoiser.safetensors"):  # the folder stands alone
        if (teacher / name).resolve() != (out / name).resolve():
            shutil.copyfile(teacher / name, out / name)
    if (teacher / "prompts.npz").exists() and not (out / "prompts.npz").exists():
        shutil.copyfile(teacher / "prompts.npz", out / "prompts.npz")
    enc = prompts or encoder(t_net.cfg.text_encoder)
    if windows == "corpus":
        prompt_table(data, out, enc)
    else:
        enc.load_cache(out / "prompts.npz")
    scfg = dataclasses.replace(t_net.cfg, guidance_embed=True, consistency=True)
    net = PoseDenoiser(scfg).to(device)
    missing = net.load_state_dict(t_net.state_dict(), strict=False).missing_keys
    assert all(m.startswith("guidance.") for m in missing), missing
    if init is not None:
        start = checkpoint.load(Path(init) / "pld_student.safetensors", "pld_student", DenoiserConfig, PoseDenoiser)[0]
        if start.cfg != scfg:
            raise PoseModelError(f"the student in {init} is not the teacher's network: {start.cfg} != {scfg}")
        net.load_state_dict(start.state_dict())
    path, state_path = out / "pld_student.safetensors", out / "train_state.pt"
    step, epoch = 0, 0
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    if path.exists() and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["optimizer"])
        step, epoch = state["step"], state["epoch"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming at step {step}", flush=True)
    tgt = copy.deepcopy(net).requires_grad_(False)
    if step:
        tgt.load_state_dict(state["target"])
    grid = karras_sigmas(levels, SIGMA_MIN, SIGMA_MAX)[:-1].flip(0)  # ascending (N,)
    student, target, teach = Denoiser(net), Denoiser(tgt), Denoiser(t_net)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    log_path = out / "train_log.csv"
    log, writer = runlog.open_log(log_path, step == 0, ["step", "phase", *LOG_KEYS, "lr", "seconds"])
    t0, recent = time.perf_counter(), []
    if windows == "plan":
        plan_windows = PlanWindows(data, scfg, seed=seed, **(plan_options or {}))
        embed_texts(enc, plan_windows.texts, out)
        it = plan_windows.batches(batch, epoch + 1 if step else 0)
    else:
        it = batches(data, scfg.context + scfg.window, batch, seed, epoch)
    if step >= steps:  # a finished run, resumed: save again (a new --student-steps takes effect)
        checkpoint.save(path, tgt, scfg, "pld_student", {"step": step, "student_steps": student_steps})
    while step < steps:
        b = next(it)
        lr_now = _lr(step, steps, lr, warmup=100)
        for g in opt.param_groups:
            g["lr"] = lr_now
        net.train()
        emb = torch.from_numpy(enc.embed(b["description"]))
        if noise:
            b["audio"] = noise_mix(b["audio"], gen, noise)
        loss = cd_loss(student, target, teach, vae, b, emb, grid, gen, guidance_max, device, p_no_context)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for a, p in zip(tgt.parameters(), net.parameters(), strict=True):
                a.lerp_(p, 1 - ema)
        step += 1
        recent.append(float(loss.detach()))
        if step % log_every == 0 or step == steps:
            mean, sec = np.mean(recent), time.perf_counter() - t0
            writer.writerow([step, "distill", f"{mean:.5f}", f"{lr_now:.6f}", f"{sec:.1f}"])
            log.flush()
            print(f"step {step}/{steps}  distill  loss {mean:.4f}  {sec:.0f} s", flush=True)
            recent = []
        if step % save_every == 0 or step == steps:
            checkpoint.save(path, tgt, scfg, "pld_student", {"step": step, "student_steps": student_steps})
            state = {"net": net.state_dict(), "target": tgt.state_dict(), "optimizer": opt.state_dict(), "step": step,
                     "epoch": int(b["epoch"]), "torch_rng": torch.get_rng_state()}  # fmt: skip
            runlog.save_state(state_path, state)
    log.close()
    runlog.plot_losses(log_path, out / "train_loss.png", LOG_KEYS)
    return {"steps": step, "seconds": time.perf_counter() - t0}
