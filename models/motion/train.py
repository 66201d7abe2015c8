"""`posetalk train motion`: CoarseNet and RefineNet trained together on a corpus's windows.

CoarseNet learns every blendshape from audio, pose and gaze (squared error, upper face weighted down:
blinks are a random process the audio cannot predict) and, through an auxiliary head, the phone of
every frame: the targets are rules over the phones, so recognising them is most of the job.
RefineNet learns the mouth from audio and CoarseNet's (detached) mouth with a lip-weighted squared
error, a cross-entropy on the closure ratio mouthClose / jawOpen (near 1 on bilabials, 0 elsewhere),
a loss that drives the lip gap to zero on every bilabial frame, and an auxiliary viseme-class head.
Each batch uses a random lookahead of 0..MAX_LOOKAHEAD frames, so one pair of models serves every
latency setting, and a random speaker warp of the log-mel (vocal tract length, tilt, gain): the
corpus has few voices that sound like people. Options add more augmentations (augment.py): noise,
smoothed spectra and a vocoder's re-synthesis in a share of the windows. (An L1 loss
was tried first: most shapes have a median near 0, the sigmoids saturated there and the nets
stopped listening to the audio.)

Distillation (``teachers``): trained motion models run on the same augmented windows, and each
of the four main losses (CoarseNet's shapes and phones, RefineNet's mouth and closure fraction)
is taken partly (``distill``) against the teachers' averaged outputs instead of the rule targets:
an average of independently trained nets generalises better to unheard voices than any one of
them, and one net trained on its outputs keeps part of that at one net's cost (measured: most of
the average's closures, none of its jawOpen r; weights/MODEL_CARD.md).

Checkpoints (safetensors) and the optimiser state are written every ``save_every`` steps and at
the end; a run resumes from them. Progress goes to the terminal, a CSV and a PNG plot."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from posetalk.models import runlog
from posetalk.models.data.dataset import MixedWindows, WindowDataset
from posetalk.models.data.phones import PHONE_ID
from posetalk.models.face.params import INDEX
from posetalk.models.motion import checkpoint
from posetalk.models.motion.augment import WARP, noise_mix, smooth_spectra, speaker_warp, vocode
from posetalk.models.motion.nets import (
    MAX_LOOKAHEAD,
    MELS_PER_FRAME,
    N_MOUTH,
    FrameNet,
    NetConfig,
    advance,
    coarse_net,
    delay,
    refine_net,
)
from posetalk.models.motion.voice_norm import VoiceNorm, config_fields, factors, of_config, warp_frequency

VISEME_CLASS = {"sil": 0, "P": 1, "B": 1, "M": 1, "F": 2, "V": 2}
for _p in ("W", "UW", "OW", "UH", "AO", "AW", "OY", "R", "SH", "ZH", "CH", "JH", "ER"):
    VISEME_CLASS[_p] = 3
for _p in ("IY", "IH", "EY", "Y", "AE", "EH"):
    VISEME_CLASS[_p] = 4
for _p in ("AA", "AH", "AY"):
    VISEME_CLASS[_p] = 5
PHONE_TO_CLASS = torch.full((len(PHONE_ID) + 1,), 6, dtype=torch.long)  # index −1 (unknown) is the last
for _p, _i in PHONE_ID.items():
    PHONE_TO_CLASS[_i] = VISEME_CLASS.get(_p, 6)
PHONE_TO_CLASS[-1] = -100  # ignored by cross_entropy
BILABIAL_IDS = [PHONE_ID[p] for p in ("P", "B", "M")]

SHAPE_WEIGHT = torch.ones(21)
SHAPE_WEIGHT[N_MOUTH:] = 0.5
SHAPE_WEIGHT[[INDEX["eyeBlinkLeft"], INDEX["eyeBlinkRight"]]] = 0.1
LIP_WEIGHT = torch.ones(N_MOUTH)
LIP_WEIGHT[[INDEX["jawOpen"], INDEX["mouthClose"]]] = 2.0
JAW, CLOSE = INDEX["jawOpen"], INDEX["mouthClose"]
PHONE_WEIGHT = 0.05  # CoarseNet's phone cross-entropy (about 3 at the start, 1 when trained)
CLOSE_WEIGHT = 0.05  # RefineNet's closure-ratio cross-entropy (about 0.2 when trained)
LOG_KEYS = ("total", "coarse_mse", "lip_mse", "closure", "close_bce", "aux_ce", "phone_ce", "distill")
Teacher = tuple[FrameNet, FrameNet]  # CoarseNet, RefineNet of a trained motion model
Windows = WindowDataset | MixedWindows


def mel_of(audio: torch.Tensor) -> torch.Tensor:
    from posetalk.models.audio.mel import log_mel

    return log_mel(audio)


def losses(
    coarse: FrameNet, refine: FrameNet, batch: dict[str, Any], lookahead: int, device: str,
    gen: torch.Generator | None = None, noise: float = 0.0, warp: float = WARP, smooth: float = 0.0,
    vocoded: float = 0.0, pitch: float = 1.0, teachers: list[Teacher] | None = None, distill: float = 0.0,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """The training losses of one batch at one lookahead (with ``gen``: a random speaker warp, and
    in their shares of the windows a vocoder's re-synthesis, noise and smoothed spectra; with
    ``teachers``: the main losses a ``distill`` share against their averaged outputs)."""
    audio = batch["audio"].to(device)
    if gen is not None and vocoded > 0:
        lo, hi = sorted((pitch, 1 / pitch))
        audio = vocode(audio, gen, vocoded, (lo, hi))
    if gen is not None and noise > 0:
        audio = noise_mix(audio, gen, noise)
    target = batch["expression"].to(device)
    mask = batch["mask"].to(device).float()
    if lookahead:
        mask[:, -lookahead:] = 0.0  # no future audio for the last frames
    phone = batch["phone"].to(device)
    mel = mel_of(audio)
    if "alpha" in batch:  # voices normalised by their pitch (voice_norm)
        mel = warp_frequency(mel, batch["alpha"])
    if gen is not None:
        mel = speaker_warp(mel, gen, warp)
        if smooth > 0:
            mel = smooth_spectra(mel, gen, smooth)
    pose_gaze = torch.cat([batch["pose"], batch["gaze"]], -1).to(device)
    y, c_aux, _ = coarse(mel, delay(pose_gaze, lookahead), lookahead)
    c_out = advance(y, lookahead)
    m = mask[..., None]
    coarse_mse = weighted_mse(c_out, target, SHAPE_WEIGHT.to(device), m)
    r_logits, aux, _ = refine.logits(mel, y[..., :N_MOUTH].detach(), lookahead)
    r_logits, aux = advance(r_logits, lookahead), advance(aux, lookahead)  # type: ignore[arg-type]
    r_out = FrameNet.shapes(r_logits)
    lip_mse = weighted_mse(r_out, target[..., :N_MOUTH], LIP_WEIGHT.to(device), m)
    bilabial = torch.isin(phone, torch.tensor(BILABIAL_IDS, device=device)).float() * mask
    # The lips close by mouthClose (jawOpen × the closure fraction), not by shutting the jaw: with
    # the jaw in this loss's gradient the net learnt to keep it low around every bilabial it was
    # unsure of (jawOpen r fell from 0.6 to 0.3 on held-out voices).
    gap = r_out[..., JAW].detach() * (1.0 - torch.sigmoid(r_logits[..., CLOSE]))
    # Averaged over all frames (bilabials are ~8% of them).
    closure = masked_mean(gap * bilabial, mask)
    # The lips' closure as its own near-binary target: mouthClose / jawOpen, 1 on every bilabial
    # and ~0 elsewhere. Squared error on mouthClose alone is tiny (the jaw is nearly shut there)
    # and did not close the lips. On the fraction's own logit (FrameNet.shapes: mouthClose =
    # jawOpen × sigmoid(logit 1)), so that it cannot move the jaw.
    ratio_t = torch.maximum((target[..., CLOSE] / target[..., JAW].clamp_min(0.03)).clamp(0.0, 1.0), bilabial)
    close_bce = F.binary_cross_entropy_with_logits(r_logits[..., CLOSE], ratio_t, reduction="none")
    close_bce = masked_mean(close_bce, mask)
    classes = PHONE_TO_CLASS.to(device)[phone.clamp(min=-1)]
    classes = torch.where(mask > 0, classes, torch.full_like(classes, -100))
    aux_ce = F.cross_entropy(aux.reshape(-1, aux.shape[-1]), classes.reshape(-1), ignore_index=-100)
    total = coarse_mse + lip_mse + 0.5 * closure + CLOSE_WEIGHT * close_bce + 0.01 * aux_ce
    parts = {"total": total, "coarse_mse": coarse_mse, "lip_mse": lip_mse, "closure": closure, "close_bce": close_bce,
             "aux_ce": aux_ce}  # fmt: skip
    if c_aux is not None:  # CoarseNet recognises the phones: the targets are rules over them
        phones = torch.where((mask > 0) & (phone >= 0), phone, torch.full_like(phone, -100))
        c_aux = advance(c_aux, lookahead)
        parts["phone_ce"] = F.cross_entropy(c_aux.reshape(-1, c_aux.shape[-1]), phones.reshape(-1), ignore_index=-100)
        parts["total"] = total + PHONE_WEIGHT * parts["phone_ce"]
    if teachers and distill > 0:
        t = teacher_outputs(teachers, mel, pose_gaze, lookahead)
        kd = weighted_mse(c_out, t["coarse"], SHAPE_WEIGHT.to(device), m)
        kd = kd + weighted_mse(r_out, t["mouth"], LIP_WEIGHT.to(device), m)
        kd_close = F.binary_cross_entropy_with_logits(r_logits[..., CLOSE], t["close"], reduction="none")
        kd = kd + CLOSE_WEIGHT * masked_mean(kd_close, mask)
        main = coarse_mse + lip_mse + CLOSE_WEIGHT * close_bce
        if c_aux is not None:
            kd_phone = -(t["phone"] * F.log_softmax(c_aux, -1)).sum(-1)
            kd = kd + PHONE_WEIGHT * masked_mean(kd_phone, mask)
            main = main + PHONE_WEIGHT * parts["phone_ce"]
        parts["distill"] = kd
        parts["total"] = parts["total"] + distill * (kd - main)
    return parts


def weighted_mse(out: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Squared error (B, T, C) weighted per shape, averaged over the frames ``m`` (B, T, 1) counts."""
    return ((out - target) ** 2 * weight * m).sum() / (m.sum() * out.shape[-1])


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of ``x * mask`` over the frames ``mask`` counts (at least one)."""
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


@torch.no_grad()
def teacher_outputs(
    teachers: list[Teacher], mel: torch.Tensor, pose_gaze: torch.Tensor, lookahead: int
) -> dict[str, torch.Tensor]:
    """The teachers' averaged outputs, frame-aligned (lookahead undone): all shapes (CoarseNet),
    the mouth and its closure fraction (RefineNet) and the phone probabilities."""
    sums: dict[str, torch.Tensor] = {}
    for coarse, refine in teachers:
        y, aux, _ = coarse(mel, delay(pose_gaze, lookahead), lookahead)
        r_logits = advance(refine.logits(mel, y[..., :N_MOUTH], lookahead)[0], lookahead)
        out = {"coarse": advance(y, lookahead), "mouth": FrameNet.shapes(r_logits),
               "close": torch.sigmoid(r_logits[..., CLOSE])}  # fmt: skip
        if aux is not None:
            out["phone"] = torch.softmax(advance(aux, lookahead), -1)
        for k, v in out.items():
            sums[k] = sums.get(k, 0) + v
    return {k: v / len(teachers) for k, v in sums.items()}


def load_teachers(folders: list[str | Path], device: str) -> list[Teacher]:
    from posetalk.models.motion.infer import MotionModel

    models = [MotionModel.load(folder, device) for folder in folders]
    return [(m.coarse.requires_grad_(False), m.refine.requires_grad_(False)) for m in models]


def _mel_stats(ds: Windows, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    mels = torch.cat([mel_of(ds[i]["audio"][None])[0] for i in range(min(n, len(ds)))], 1)
    return mels.mean(1, keepdim=True), mels.std(1, keepdim=True).clamp_min(0.1)


def _window_factors(ds: Windows, b: dict[str, Any], cache: dict[int, np.ndarray], norm: VoiceNorm) -> np.ndarray:
    """(B, 4 * frames) voice_norm factors of a batch's windows, per mel frame (the padding keeps
    the last); each record's computed once."""
    out = []
    for i, start in zip(b["record"].tolist(), b["start"].tolist(), strict=True):
        if i not in cache:
            rec = ds.record(i)
            cache[i] = factors(rec.audio, rec.frames, norm)
        a = cache[i][start : start + ds.frames]
        out.append(np.repeat(np.pad(a, (0, ds.frames - len(a)), mode="edge"), MELS_PER_FRAME))
    return np.stack(out)


def _batches(ds: Windows, batch: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False, num_workers=0, drop_last=True)
    while True:
        yield from loader
        ds.epoch += 1


def train_motion(
    data: str | Path, out: str | Path, *, steps: int = 4000, batch: int = 32, frames: int = 50, lr: float = 1e-3,
    seed: int = 0, device: str = "cpu", save_every: int = 250, log_every: int = 25, warp: float = WARP,
    noise: float = 0.0, width: int | None = None, layers: int | None = None, smooth: float = 0.0,
    adapt: float = 0.0, vocoded: float = 0.0, pitch: float = 1.0, teachers: list[str | Path] | None = None,
    distill: float = 0.5, f0norm: VoiceNorm | None = None, real: str | Path | None = None, real_share: float = 0.3,
    init: str | Path | None = None, adapt_var: bool = False,
) -> dict[str, float]:  # fmt: skip
    """Train (or resume) CoarseNet + RefineNet on ``data``; checkpoints in ``out``. ``width`` and
    ``layers`` change CoarseNet's size from its default, ``adapt`` (seconds) gives both nets a
    running speech-spectrum mean taken off their input (a resumed run keeps its checkpoint's),
    ``adapt_var`` divides it by the running deviation too; ``teachers`` (motion model folders)
    are distilled with the share ``distill`` of the losses; ``real`` (a `data real` corpus) gives
    the share ``real_share`` of the training windows; ``init`` (a motion model folder) is the
    starting point instead of random weights (its architecture and input settings are kept:
    width, layers, adapt and f0norm are then ignored)."""
    if f0norm is not None and vocoded > 0 and pitch != 1.0:
        raise ValueError("--f0norm with --vocode --pitch: the vocoded pitch would not move the voice_norm factor")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    ds: Windows = WindowDataset(data, "train", frames=frames, seed=seed)
    if real is not None:  # real recorded speech (data real) mixed in: a share of the windows
        parts = [ds, WindowDataset(real, "train", frames=frames, seed=seed)]
        ds = MixedWindows(parts, [1.0 - real_share, real_share], seed=seed)
    cfg = coarse_net().cfg
    cfg = dataclasses.replace(cfg, width=width or cfg.width, layers=cfg.layers if layers is None else layers,
                              adapt_s=adapt, adapt_var=adapt_var, **config_fields(f0norm))  # fmt: skip
    coarse = coarse_net(cfg).to(device)
    refine_cfg = dataclasses.replace(refine_net().cfg, adapt_s=adapt, adapt_var=adapt_var, **config_fields(f0norm))
    refine = refine_net(refine_cfg).to(device)
    params = list(coarse.parameters()) + list(refine.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    step = 0
    paths = {"coarse": out / "coarse.safetensors", "refine": out / "refine.safetensors"}
    state_path = out / "train_state.pt"
    if paths["coarse"].exists() and paths["refine"].exists() and state_path.exists():
        coarse = checkpoint.load(paths["coarse"], "coarse", NetConfig, FrameNet)[0].to(device)
        refine = checkpoint.load(paths["refine"], "refine", NetConfig, FrameNet)[0].to(device)
        params = list(coarse.parameters()) + list(refine.parameters())
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
        state = torch.load(state_path, map_location=device, weights_only=False)
        opt.load_state_dict(state["optimizer"])
        step, ds.epoch = state["step"], state["epoch"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming at step {step}")
    elif init is not None:  # fine-tune a trained model: its architecture, settings and weights
        coarse = checkpoint.load(Path(init) / "coarse.safetensors", "coarse", NetConfig, FrameNet)[0].to(device)
        refine = checkpoint.load(Path(init) / "refine.safetensors", "refine", NetConfig, FrameNet)[0].to(device)
        params = list(coarse.parameters()) + list(refine.parameters())
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
        print(f"starting from {init} (its own input normalisation and settings)")
    else:
        mean, std = _mel_stats(ds)
        for net in (coarse, refine):
            net.mel_mean.copy_(mean.to(device))
            net.mel_std.copy_(std.to(device))
    teacher_nets = load_teachers(teachers, device) if teachers else None
    norm = of_config(coarse.cfg)
    if teacher_nets and any(of_config(c.cfg) != norm for c, _ in teacher_nets):
        raise ValueError("the teachers must have been trained with the student's --f0norm setting (they see its input)")
    rng = np.random.default_rng((seed, step))
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    log_path = out / "train_log.csv"
    log, writer = runlog.open_log(log_path, step == 0, ["step", "lookahead", *LOG_KEYS, "lr", "seconds"])
    t0 = time.perf_counter()
    batches = _batches(ds, batch, rng)
    # A resumed run starts its epoch's windows again from the first (windows are drawn at random).
    recent: list[float] = []
    alphas: dict[int, np.ndarray] = {}  # record -> voice_norm factor per frame, for f0_ref
    while step < steps:
        b = next(batches)
        if norm is not None:
            b["alpha"] = _window_factors(ds, b, alphas, norm)
        lookahead = int(rng.integers(0, MAX_LOOKAHEAD + 1))
        lr_now = lr * 0.5 * (1 + math.cos(math.pi * step / steps)) if step > 100 else lr * (step + 1) / 100
        for g in opt.param_groups:
            g["lr"] = lr_now
        coarse.train(), refine.train()
        parts = losses(coarse, refine, b, lookahead, device, gen if warp else None, noise, warp, smooth, vocoded, pitch,
                       teacher_nets, distill)  # fmt: skip
        opt.zero_grad()
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        recent.append(float(parts["total"].detach()))
        if step % log_every == 0 or step == steps:
            values = (float(parts[k].detach()) if k in parts else 0.0 for k in LOG_KEYS)
            row = [step, lookahead, *(f"{v:.5f}" for v in values), f"{lr_now:.6f}",
                   f"{time.perf_counter() - t0:.1f}"]  # fmt: skip
            writer.writerow(row)
            log.flush()
            lip, closure = float(parts["lip_mse"].detach()), float(parts["closure"].detach())
            print(f"step {step}/{steps}  loss {np.mean(recent):.4f}  lip {lip:.4f}  closure {closure:.4f}  "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
            recent = []
        if step % save_every == 0 or step == steps:
            _save(coarse, refine, opt, step, ds.epoch, paths, state_path)
    log.close()
    runlog.plot_losses(log_path, out / "train_loss.png", LOG_KEYS)
    return {"steps": step, "seconds": time.perf_counter() - t0}


def _save(coarse, refine, opt, step, epoch, paths, state_path) -> None:  # type: ignore[no-untyped-def]
    checkpoint.save(paths["coarse"], coarse, coarse.cfg, "coarse", {"step": step})
    checkpoint.save(paths["refine"], refine, refine.cfg, "refine", {"step": step})
    state = {"optimizer": opt.state_dict(), "step": step, "epoch": epoch, "torch_rng": torch.get_rng_state()}
    runlog.save_state(state_path, state)
