"""The sync expert: a SyncNet-style pair of encoders that embed a short window of audio (log-mel)
and the same window of the 14 mouth blendshapes so that in-sync pairs lie close together.

It stands in for the pretrained SyncNet behind LSE-C / LSE-D (none can be downloaded here):
``sync_scores`` computes the same statistics in blendshape space. Training is contrastive
(InfoNCE): the positive of an audio window is its own mouth window; the negatives are the same
utterance's mouth shifted by ±1…±MAX_SHIFT frames (so the model must learn timing, not just who
is speaking or which sound it is) and the other items of the batch. Shifted or other windows that
are (nearly) the same as the positive (silence next to silence) are not counted as negatives.

Offset convention everywhere: a positive offset means the mouth lags the audio (mouth frame
t + offset shows what audio frame t says); 0 is in sync.

    model = load_sync("models/motion/weights/sync.safetensors")
    s = sync_scores(model, audio, expression[:, :14])   # s["offset"], s["confidence"], s["distance"]
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from posetalk.models import runlog
from posetalk.models.audio.mel import MELS_PER_FRAME, N_MELS, log_mel
from posetalk.models.data.dataset import SAMPLES_PER_FRAME, WindowDataset
from posetalk.models.errors import CheckpointError, CorpusError, InputError
from posetalk.models.motion import checkpoint
from torch import nn

KIND = "sync"
N_MOUTH = 14  # the first 14 blendshapes (params.MOUTH_SHAPES)
MAX_SHIFT = 10  # training negatives and evaluation offsets: ±1 … ±MAX_SHIFT frames
DUP_TOL = 0.02  # mouth windows closer than this (max abs weight difference) count as the same


@dataclass(frozen=True)
class SyncConfig:
    window: int = 5  # video frames per window (SyncNet's 0.2 s)
    dim: int = 64  # embedding size
    audio_width: int = 128  # audio encoder channels
    mouth_width: int = 64  # mouth encoder channels


class SyncNet(nn.Module):
    """Audio window (B, 80, 4·window) and mouth window (B, window, 14) -> unit embeddings (B, dim).

    Both encoders keep the window's frame order (convolutions over frames, then a linear layer
    over the flattened frames), so an embedding knows *when* in the window things happen."""

    mel_mean: torch.Tensor
    mel_std: torch.Tensor
    mouth_mean: torch.Tensor
    mouth_std: torch.Tensor

    def __init__(self, cfg: SyncConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SyncConfig()
        aw, mw, w = cfg.audio_width, cfg.mouth_width, cfg.window
        self.audio_frame = nn.Conv1d(N_MELS, aw, MELS_PER_FRAME, stride=MELS_PER_FRAME)  # mel 4f..4f+3 -> frame f
        self.audio_convs = nn.ModuleList(nn.Conv1d(aw, aw, 3, padding=1) for _ in range(2))
        self.audio_out = nn.Linear(aw * w, cfg.dim)
        self.mouth_in = nn.Conv1d(N_MOUTH, mw, 3, padding=1)
        self.mouth_convs = nn.ModuleList(nn.Conv1d(mw, mw, 3, padding=1) for _ in range(2))
        self.mouth_out = nn.Linear(mw * w, cfg.dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))  # InfoNCE temperature, learnt
        # Input normalisation, measured on the training data before training starts.
        self.register_buffer("mel_mean", torch.zeros(N_MELS, 1))
        self.register_buffer("mel_std", torch.ones(N_MELS, 1))
        self.register_buffer("mouth_mean", torch.zeros(N_MOUTH, 1))
        self.register_buffer("mouth_std", torch.ones(N_MOUTH, 1))

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, 4·window) log-mel -> (B, dim), unit length."""
        x = F.gelu(self.audio_frame((mel - self.mel_mean) / self.mel_std))  # (B, aw, window)
        for conv in self.audio_convs:
            x = x + F.gelu(conv(x))
        return F.normalize(self.audio_out(x.flatten(1)), dim=-1)

    def embed_mouth(self, mouth: torch.Tensor) -> torch.Tensor:
        """(B, window, 14) blendshape weights -> (B, dim), unit length."""
        x = F.gelu(self.mouth_in((mouth.transpose(1, 2) - self.mouth_mean) / self.mouth_std))  # (B, mw, window)
        for conv in self.mouth_convs:
            x = x + F.gelu(conv(x))
        return F.normalize(self.mouth_out(x.flatten(1)), dim=-1)

    def forward(self, mel: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
        """Embedding distance (B,) in [0, 2]: small when the pair is in sync."""
        d: torch.Tensor = torch.linalg.vector_norm(self.embed_audio(mel) - self.embed_mouth(mouth), dim=-1)
        return d


def load_sync(path: str | Path, device: str = "cpu") -> SyncNet:
    """A trained sync expert (kind "sync"), in eval mode; CheckpointError when unusable."""
    model: SyncNet = checkpoint.load(path, KIND, SyncConfig, SyncNet)[0]
    return model.to(device).eval()


# ---------------------------------------------------------------------------------------------
# Evaluation: LSE-D / LSE-C analogues


def shift_frames(x: np.ndarray, frames: int) -> np.ndarray:
    """Delay a per-frame track by ``frames`` (> 0: out[t] = x[t − frames], so the track lags;
    < 0: it leads), repeating the edge frame."""
    if frames == 0:
        return x.copy()
    idx = np.clip(np.arange(len(x)) - frames, 0, len(x) - 1)
    return x[idx]


@torch.no_grad()
def sync_scores(model: SyncNet, audio: np.ndarray, mouth: np.ndarray, max_offset: int = MAX_SHIFT) -> dict[str, Any]:
    """Embedding distances between every audio window and the mouth windows at offsets
    −max_offset…+max_offset (audio window t against mouth window t + offset, over the positions
    where every offset fits). Returns
      "offset":     the offset with the lowest mean distance (> 0: the mouth lags the audio),
      "confidence": median over offsets of the mean distance minus its minimum (as LSE-C),
      "distance":   the mean distance at the best offset (as LSE-D),
      "offsets", "curve": the offsets and their mean distances; "dists": (windows, offsets);
      "windows": how many window positions were compared.
    ``audio`` is 16 kHz mono; ``mouth`` is (T, 14) (or (T, 21): its first 14 columns)."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise InputError(f"audio must be mono samples (N,), got {audio.shape}")
    mouth = np.asarray(mouth, np.float32)
    if mouth.ndim != 2 or mouth.shape[1] < N_MOUTH:
        raise InputError(f"mouth track must be (frames, {N_MOUTH}), got {mouth.shape}")
    w = model.cfg.window
    t = min(len(audio) // SAMPLES_PER_FRAME, len(mouth))
    n = t - w + 1  # window positions
    if n < 2 * max_offset + 1:
        raise InputError(f"{t} frames are too few for offsets ±{max_offset} with {w}-frame windows")
    device = next(model.parameters()).device
    wav = torch.from_numpy(np.ascontiguousarray(audio[: t * SAMPLES_PER_FRAME], np.float32)).to(device)
    mel = log_mel(wav)  # (80, 4t)
    mel_win = mel.unfold(1, MELS_PER_FRAME * w, MELS_PER_FRAME).permute(1, 0, 2)  # (n, 80, 4w)
    m = torch.from_numpy(np.ascontiguousarray(mouth[:t, :N_MOUTH])).to(device)
    mouth_win = m.unfold(0, w, 1).transpose(1, 2)  # (n, w, 14)
    was_training = model.training
    model.eval()
    a = torch.cat([model.embed_audio(x) for x in torch.split(mel_win, 512)])  # (n, dim)
    v = torch.cat([model.embed_mouth(x) for x in torch.split(mouth_win, 512)])
    model.train(was_training)
    offsets = np.arange(-max_offset, max_offset + 1)
    pos = torch.arange(max_offset, n - max_offset, device=device)  # audio windows compared
    dists = torch.stack([(a[pos] - v[pos + int(o)]).norm(dim=-1) for o in offsets], 1).cpu().numpy()
    curve = dists.mean(0)
    best = int(np.argmin(curve))
    return {
        "offset": int(offsets[best]),
        "confidence": float(np.median(curve) - curve[best]),
        "distance": float(curve[best]),
        "offsets": offsets,
        "curve": curve,
        "dists": dists,
        "windows": len(pos),
    }


def _window_hits(mouth: np.ndarray, dists: np.ndarray, w: int, k: int) -> tuple[int, int]:
    """For an in-sync track: windows where offset 0 is at least as close as every offset whose
    mouth window really differs from the aligned one (windows with none such are skipped)."""
    win = np.lib.stride_tricks.sliding_window_view(mouth[:, :N_MOUTH], w, axis=0)  # (n, 14, w)
    hits = total = 0
    for i in range(len(dists)):
        t = k + i
        diff = np.abs(win[t - k : t + k + 1] - win[t]).max((1, 2)) >= DUP_TOL
        if diff.any():
            total += 1
            hits += bool(dists[i, k] <= dists[i, diff].min())
    return hits, total


def evaluate(model: SyncNet, data: str | Path, split: str = "test", shifts: tuple[int, ...] = (0, 3, -5),
             max_offset: int = MAX_SHIFT) -> dict[str, Any]:  # fmt: skip
    """Sync statistics over the records of a corpus split: for each shift of the mouth track,
    the fraction of records whose best offset equals the shift, the mean offset error, mean
    confidence and distance; for the unshifted track also the per-window accuracy."""
    from posetalk.models.data.records import Corpus

    corpus = Corpus(data)
    ids = [i for i, x in enumerate(corpus.lines) if x["split"] == split]
    if not ids:
        raise CorpusError(f"corpus {data} has no records in split {split!r}")
    w = model.cfg.window
    res: dict[int, dict[str, list[float]]] = {s: {"hit": [], "err": [], "conf": [], "dist": []} for s in shifts}
    hits = total = skipped = 0
    for i in ids:
        rec = corpus.record(i)
        if rec.frames < w + 2 * max_offset + 1:
            skipped += 1
            continue
        for s in shifts:
            r = sync_scores(model, rec.audio, shift_frames(rec.expression[:, :N_MOUTH], s), max_offset)
            res[s]["hit"].append(float(r["offset"] == s))
            res[s]["err"].append(abs(r["offset"] - s))
            res[s]["conf"].append(r["confidence"])
            res[s]["dist"].append(r["distance"])
            if s == 0:
                h, n = _window_hits(rec.expression, r["dists"], w, max_offset)
                hits, total = hits + h, total + n
    out: dict[str, Any] = {"records": len(ids) - skipped, "skipped_short": skipped}
    for s, v in res.items():
        out[f"shift{s:+d}"] = {
            "offset_accuracy": float(np.mean(v["hit"])),
            "mean_abs_error": float(np.mean(v["err"])),
            "confidence": float(np.mean(v["conf"])),
            "distance": float(np.mean(v["dist"])),
        }
    out["window_accuracy"] = hits / max(total, 1)
    out["windows"] = total
    return out


# ---------------------------------------------------------------------------------------------
# Training


def contrastive_loss(
    model: SyncNet, mel: torch.Tensor, mouth: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """InfoNCE over windows of ``window + 2·MAX_SHIFT`` frames: mel (B, 80, 4·frames), mouth
    (B, frames, 14), mask (B, frames). The centre window's audio is scored against its own mouth,
    the other items' centre mouths and its own mouth shifted by ±1…±MAX_SHIFT; symmetrically each
    centre mouth against every item's audio. Returns the loss and the batch's accuracy at
    picking the aligned mouth among the shifted ones."""
    k, w = MAX_SHIFT, model.cfg.window
    keep = mask[:, k : k + w].all(1)  # the centre window is real audio (not padding)
    mel, mouth, mask = mel[keep], mouth[keep], mask[keep]
    b = mel.shape[0]
    a = model.embed_audio(mel[:, :, MELS_PER_FRAME * k : MELS_PER_FRAME * (k + w)])  # (b, dim)
    win = mouth.unfold(1, w, 1)  # (b, 2k+1, 14, w): window at shift s is index k + s
    v = model.embed_mouth(win.transpose(-1, -2).reshape(b * (2 * k + 1), w, N_MOUTH)).view(b, 2 * k + 1, -1)
    real = mask.float().unfold(1, w, 1).amin(-1) > 0  # (b, 2k+1) windows without padding
    same_shift = (win - win[:, k : k + 1]).abs().amax((-1, -2)) < DUP_TOL  # (b, 2k+1)
    centre = win[:, k]
    same_item = (centre[:, None] - centre[None]).abs().amax((-1, -2)) < DUP_TOL  # (b, b)
    eye = torch.eye(b, dtype=torch.bool, device=mel.device)
    scale = model.logit_scale.clamp(max=math.log(100.0)).exp()
    sim_items = (scale * a @ v[:, k].T).masked_fill(same_item & ~eye, -1e4)  # audio i vs mouth j
    sim_shift = scale * torch.einsum("bd,bsd->bs", a, v)
    drop = ~real | same_shift
    drop[:, k] = True  # the aligned pair is already on the diagonal of sim_items
    logits = torch.cat([sim_items, sim_shift.masked_fill(drop, -1e4)], 1)
    target = torch.arange(b, device=mel.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(sim_items.T, target))
    with torch.no_grad():
        rivals = sim_shift.masked_fill(drop, -1e4).amax(1)
        acc = float((sim_shift[:, k] >= rivals).float().mean())
    return loss, acc


def _batch(ds: WindowDataset, idx: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    items = [ds[int(i)] for i in idx]
    audio = torch.stack([x["audio"] for x in items]).to(device)
    mouth = torch.stack([x["expression"][:, :N_MOUTH] for x in items]).to(device)
    mask = torch.stack([x["mask"] for x in items]).to(device)
    return audio, mouth, mask


@torch.no_grad()
def _val_accuracy(model: SyncNet, val: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None) -> float:
    """Fixed validation windows: fraction whose aligned mouth is nearer its audio than every
    really different shifted mouth (windows whose shifts are all alike are skipped)."""
    if val is None:
        return float("nan")
    mel, mouth, mask = val
    k, w = MAX_SHIFT, model.cfg.window
    model.eval()
    a = model.embed_audio(mel[:, :, MELS_PER_FRAME * k : MELS_PER_FRAME * (k + w)])
    win = mouth.unfold(1, w, 1)
    b = len(a)
    v = model.embed_mouth(win.transpose(-1, -2).reshape(b * (2 * k + 1), w, N_MOUTH)).view(b, 2 * k + 1, -1)
    d = (a[:, None] - v).norm(dim=-1)
    rival = (mask.float().unfold(1, w, 1).amin(-1) > 0) & ((win - win[:, k : k + 1]).abs().amax((-1, -2)) >= DUP_TOL)
    used = rival.any(1) & mask[:, k : k + w].all(1)
    if not used.any():
        return float("nan")
    hit = d[:, k] <= d.masked_fill(~rival, 9.0).amin(1)
    return float(hit[used].float().mean())


def _colour(mel: torch.Tensor, rng: np.random.Generator, strength: float = 0.5) -> torch.Tensor:
    """Random smooth spectral tilt per item (a few cosines over the mel bins, in log-power units):
    other voices and microphones colour the spectrum; timing must not depend on it."""
    b, n = mel.shape[0], mel.shape[1]
    basis = torch.cos(math.pi * torch.arange(1, 4)[:, None] * (torch.arange(n) + 0.5) / n)  # (3, n)
    coef = torch.from_numpy(rng.normal(0.0, strength, (b, 3))).float()
    return mel + (coef @ basis).to(mel.device)[:, :, None]


def _lr(step: int, progress: float, lr: float, warmup: int = 50) -> float:
    """Linear warm-up, then a cosine from lr to lr/10 over the run's progress (0..1)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_sync(
    data: str | Path, out: str | Path, *, steps: int, batch: int = 64, lr: float = 2e-3, seed: int = 0,
    device: str = "cpu", log_every: int = 50, save_every: int = 250, config: SyncConfig | None = None,
    val_windows: int = 256, max_seconds: float | None = None,
) -> Path:  # fmt: skip
    """Train (or resume) the sync expert on ``data``'s "train" split until ``steps`` steps in all.
    Writes out/sync.safetensors (+ sync.optim.pt, the optimiser state), sync_log.csv and
    sync_loss.png; returns the checkpoint's path. An existing checkpoint in ``out`` is resumed
    (its config wins; a different ``config`` raises CheckpointError). With ``max_seconds`` the
    run also stops after that much wall time, its learning-rate schedule following whichever of
    steps and time is further along."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, optim_path, log_path = out / "sync.safetensors", out / "sync.optim.pt", out / "sync_log.csv"
    torch.manual_seed(seed)
    step = 0
    if ckpt.exists():
        model, cfg, extra = checkpoint.load(ckpt, KIND, SyncConfig, SyncNet)
        if config is not None and config != cfg:
            raise CheckpointError(f"{ckpt} was trained with {cfg}, not {config}: use another folder")
        step = int(extra.get("step", 0))
        model = model.to(device)
    else:
        cfg = config or SyncConfig()
        model = SyncNet(cfg).to(device)
    frames = cfg.window + 2 * MAX_SHIFT
    ds = WindowDataset(data, "train", frames=frames, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    if step and optim_path.exists():
        opt.load_state_dict(torch.load(optim_path, map_location=device, weights_only=True))
    if step:
        print(f"sync: resuming {ckpt} at step {step}", flush=True)
    else:  # input normalisation from the training data
        audio, mouth, _ = _batch(ds, np.arange(min(len(ds), 128)), device)
        mel = log_mel(audio)
        model.mel_mean.copy_(mel.mean((0, 2))[:, None])
        model.mel_std.copy_(mel.std((0, 2)).clamp_min(0.1)[:, None])
        model.mouth_mean.copy_(mouth.mean((0, 1))[:, None])
        model.mouth_std.copy_(mouth.std((0, 1)).clamp_min(0.05)[:, None])
    val = None
    try:
        vds = WindowDataset(data, "val", frames=frames, seed=seed + 1)
        audio, mouth, mask = _batch(vds, np.arange(val_windows), device)  # items past len(vds) are fresh draws
        val = (log_mel(audio), mouth, mask)
    except CorpusError:
        print("sync: no validation split; val accuracy not measured", flush=True)
    new_log = step == 0 or not log_path.exists()
    log = open(log_path, "w" if new_log else "a", newline="")  # noqa: SIM115 (kept open for the run)
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "loss", "train_acc", "val_acc", "lr", "seconds"])
    bar = _progress(step, steps)
    t0, start = time.perf_counter(), step
    losses: list[float] = []
    accs: list[float] = []
    val_acc = float("nan")

    def progress() -> float:
        done = step / max(steps, 1)
        if max_seconds:
            done = max(done, (time.perf_counter() - t0) / max_seconds)
        return done

    while step < steps and progress() < 1.0:
        rng = np.random.default_rng((seed, step))  # the batch of a step does not depend on resuming
        ds.epoch = step
        audio, mouth, mask = _batch(ds, rng.integers(0, len(ds), batch), device)
        audio = audio * torch.from_numpy(10 ** rng.uniform(-0.6, 0.3, (batch, 1))).float().to(device)  # ±gain
        lr_now = _lr(step, progress(), lr)
        for g in opt.param_groups:
            g["lr"] = lr_now
        model.train()
        loss, acc = contrastive_loss(model, _colour(log_mel(audio), rng), mouth, mask)
        opt.zero_grad()
        torch.autograd.backward(loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        accs.append(acc)
        last = step == steps or progress() >= 1.0
        if step % log_every == 0 or last:
            val_acc = _val_accuracy(model, val)
            secs = time.perf_counter() - t0
            writer.writerow([step, f"{np.mean(losses):.5f}", f"{np.mean(accs):.4f}", f"{val_acc:.4f}",
                             f"{lr_now:.6f}", f"{secs:.1f}"])  # fmt: skip
            log.flush()
            rate = (step - start) / max(secs, 1e-9)
            bar(step, f"loss {np.mean(losses):.3f}  train acc {np.mean(accs):.2f}  val acc {val_acc:.3f}  "
                      f"{rate:.1f} steps/s  eta {(steps - step) / max(rate, 1e-9):.0f} s")  # fmt: skip
            losses, accs = [], []
        if step % save_every == 0 or last:
            _save(model, opt, step, val_acc, ckpt, optim_path)
    log.close()
    plot_log(log_path, out / "sync_loss.png")
    return ckpt


def _save(model: SyncNet, opt: torch.optim.Optimizer, step: int, val_acc: float, ckpt: Path, optim: Path) -> None:
    checkpoint.save(ckpt, model, model.cfg, KIND, {"step": step, "val_acc": None if math.isnan(val_acc) else val_acc})
    runlog.save_state(optim, opt.state_dict())


def _progress(step: int, steps: int) -> Any:
    """A tqdm bar when tqdm is installed, else one printed line per update."""
    try:
        from tqdm import tqdm
    except ImportError:

        def line(now: int, text: str) -> None:
            print(f"sync step {now}/{steps}  {text}", flush=True)

        return line
    bar = tqdm(total=steps, initial=step, desc="sync")

    def update(now: int, text: str) -> None:
        bar.update(now - bar.n)
        bar.set_postfix_str(text)
        if now >= steps:
            bar.close()

    return update


def plot_log(csv_path: Path, png: Path) -> None:
    """Loss (left axis) and accuracies (right axis) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = runlog.read_log(csv_path)
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, [float(r["loss"]) for r in rows], color="C0", label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("InfoNCE loss")
    acc = ax.twinx()
    acc.plot(steps, [float(r["train_acc"]) for r in rows], color="C1", label="train acc")
    acc.plot(steps, [float(r["val_acc"]) for r in rows], color="C2", label="val acc")
    acc.set_ylim(0, 1)
    acc.set_ylabel("aligned beats every shift")
    fig.legend(loc="upper center", ncol=3)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
