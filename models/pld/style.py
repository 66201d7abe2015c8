"""A motion-style classifier: which of head_motion.STYLES a clip of pose + gaze shows.

It is the judge of prompt adherence in evaluate.py, so it is trained on ground-truth motion only
(head_motion.generate over a corpus's training audio) and never sees the PLD's output. The task is
single-label per clip: a clip follows one one-segment plan, which is well defined, where a
multi-segment plan's boundaries are random and a description only gives the order of its styles
(a generator cannot know where the switch falls, so frame-exact segment labels would judge timing
the prompt never gave).

Features, not a network over raw frames: per angle channel its level, spread, speed, jerkiness,
oscillation rate, periodicity and band powers. They are what tells the styles apart (a held
turn is a level, nodding is a pitch oscillation at 0.5-2 Hz, emphatic nods are pulses without a
period, calm and still differ in spread), they do not depend on clip length, and a classifier on
them cannot key on sample-level artefacts of one generator. On top: a one-hidden-layer MLP
(numpy at inference; trained with torch in seconds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.data import head_motion as hm
from posetalk.models.data.phones import FPS
from scipy.ndimage import gaussian_filter1d

STYLES = hm.STYLES
ANGLES = (0, 1, 2, 6, 7)  # yaw, pitch, roll, gaze yaw, gaze pitch of a (T, 8) pose+gaze clip
BANDS_HZ = ((0.1, 0.45), (0.45, 0.9), (0.9, 1.6), (1.6, 3.0), (3.0, 6.0))
SKIP = 8  # frames left out at a clip's start: a stream's first hop has no committed context
VERSION = 1  # bump when the features change: cached classifiers of another version are retrained


def features(x: np.ndarray) -> np.ndarray:
    """(F,) features of one clip ``x`` (T, 8) of pose + gaze (radians), T >= 16."""
    x = np.asarray(x, np.float64)
    ang = np.degrees(x[:, ANGLES])  # (T, 5)
    out: list[np.ndarray] = []
    lg = lambda a: np.log(1e-3 + np.asarray(a))  # noqa: E731 (amplitudes span decades)
    v = np.diff(ang, axis=0) * FPS  # deg/s
    a = np.diff(ang, 2, axis=0) * FPS * FPS
    slow = gaussian_filter1d(ang, 6.0, axis=0, mode="nearest")
    fast = ang - gaussian_filter1d(ang, 25.0, axis=0, mode="nearest")  # around the local level
    crossings = (np.diff(np.sign(fast), axis=0) != 0).sum(0) / (len(ang) / FPS)
    out += [ang.mean(0), lg(np.abs(ang.mean(0))), lg(ang.std(0)), lg(np.ptp(ang, 0)), lg(np.abs(v).mean(0)),
            lg(np.percentile(np.abs(v), 90, 0)), lg(np.abs(a).mean(0)), crossings,
            lg(np.abs(ang - slow).std(0))]  # fmt: skip
    out.append(_periodicity(v))
    out.append(_band_powers(ang[:, :3]).reshape(-1))
    out.append(lg(x[:, 3:6].std(0) * 100))  # translation and scale: spread only
    # How much yaw and pitch move together (looking around moves both; a shake only yaw).
    out.append(np.array([np.corrcoef(np.abs(v[:, 0]), np.abs(v[:, 1]))[0, 1] if len(v) > 2 else 0.0]))
    f = np.concatenate([np.ravel(o) for o in out])
    return np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _periodicity(v: np.ndarray) -> np.ndarray:
    """(C,) the highest normalised autocorrelation of each velocity channel at lags 0.3-2.5 s."""
    t = len(v)
    lo, hi = int(0.3 * FPS), min(int(2.5 * FPS), t // 2)
    if hi <= lo:
        return np.zeros(v.shape[1])
    z = v - v.mean(0)
    den = (z**2).sum(0) + 1e-9
    return np.array([max((z[k:, c] * z[:-k, c]).sum() / den[c] for k in range(lo, hi + 1)) for c in range(v.shape[1])])


def _band_powers(ang: np.ndarray) -> np.ndarray:
    """(C, len(BANDS_HZ)) log power of each channel (detrended, Hann-windowed) per band."""
    t = len(ang)
    z = ang - np.linspace(ang[0], ang[-1], t)
    spec = np.abs(np.fft.rfft(z * np.hanning(t)[:, None], n=max(t, 128), axis=0)) ** 2
    freqs = np.fft.rfftfreq(max(t, 128), 1 / FPS)
    return np.log(1e-3 + np.stack([spec[(freqs >= lo) & (freqs < hi)].sum(0) for lo, hi in BANDS_HZ], 1) / t)


def one_style_plan(style: str, n_frames: int, rng: np.random.Generator) -> hm.Plan:
    """A plan of one segment of ``style`` over the whole clip (size, pace and side drawn)."""
    return hm.Plan((hm.make_segment(style, 0, n_frames, rng),))


def ground_truth_clip(
    style: str, audio: np.ndarray, n_frames: int, rng: np.random.Generator, rhythm: hm.Rhythm | None = None
) -> tuple[np.ndarray, hm.Plan]:
    """(T, 8) pose + gaze of ``style`` for ``audio``, as the corpus makes it, and its plan."""
    rhythm = hm.rhythm(audio, n_frames) if rhythm is None else rhythm
    plan = one_style_plan(style, n_frames, rng)
    pose, gaze, _ = hm.generate(n_frames, rng, rhythm=rhythm, plan=plan)
    return np.concatenate([pose, gaze], 1), plan


@dataclass
class StyleClassifier:
    """Standardised features -> tanh hidden layer -> softmax over STYLES."""

    mean: np.ndarray
    std: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    info: dict[str, Any]

    def probs(self, feats: np.ndarray) -> np.ndarray:
        """(N, len(STYLES)) class probabilities of (N, F) features."""
        h = np.tanh(((feats - self.mean) / self.std) @ self.w1 + self.b1)
        logits = h @ self.w2 + self.b2
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def predict(self, clips: list[np.ndarray]) -> np.ndarray:
        """(N,) style indices of clips (T, 8), their first SKIP frames left out."""
        if not clips:
            return np.zeros(0, np.int64)
        return self.probs(np.stack([features(c[SKIP:] if len(c) > SKIP + 16 else c) for c in clips])).argmax(1)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, mean=self.mean, std=self.std, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2,
                     info=np.array(json.dumps(self.info)))  # fmt: skip
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> StyleClassifier:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("mean", "std", "w1", "b1", "w2", "b2")}
            info = json.loads(str(z["info"]))
        return cls(**arrays, info=info)


def fit(
    feats: np.ndarray, labels: np.ndarray, *, hidden: int = 64, steps: int = 1500, weight_decay: float = 1e-3,
    seed: int = 0,
) -> StyleClassifier:  # fmt: skip
    """An MLP on (N, F) features and (N,) style indices, full-batch Adam (a few seconds)."""
    import torch

    mean, std = feats.mean(0), feats.std(0) + 1e-6
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy((feats - mean) / std).float()
    y = torch.from_numpy(labels.astype(np.int64))
    w1 = (torch.randn(x.shape[1], hidden, generator=gen) / x.shape[1] ** 0.5).requires_grad_()
    b1 = torch.zeros(hidden, requires_grad=True)
    w2 = (torch.randn(hidden, len(STYLES), generator=gen) / hidden**0.5).requires_grad_()
    b2 = torch.zeros(len(STYLES), requires_grad=True)
    opt = torch.optim.AdamW([w1, b1, w2, b2], lr=1e-2, weight_decay=weight_decay)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = 1e-2 * 0.5 * (1 + np.cos(np.pi * step / steps))
        # Feature noise: the classifier must not hinge on a feature's exact value.
        noisy = x + 0.1 * torch.randn(x.shape, generator=gen)
        loss = torch.nn.functional.cross_entropy(torch.tanh(noisy @ w1 + b1) @ w2 + b2, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    t = lambda p: p.detach().numpy().astype(np.float32)  # noqa: E731
    return StyleClassifier(mean.astype(np.float32), std.astype(np.float32), t(w1), t(b1), t(w2), t(b2),
                           {"version": VERSION, "examples": len(labels), "final_loss": loss.item()})  # fmt: skip


def clips_from_audio(
    audios: list[np.ndarray], rng: np.random.Generator, per_audio: int = 3, max_frames: int = 250
) -> tuple[list[np.ndarray], np.ndarray]:
    """Ground-truth clips (T, 8) and their style indices: ``per_audio`` one-style plans per audio
    (styles cycled so every style is equally common), at most ``max_frames`` frames each."""
    clips, labels = [], []
    k = int(rng.integers(len(STYLES)))
    for audio in audios:
        n = min(max_frames, -(-len(audio) // hm.HOP))
        if n < SKIP + 24:
            continue
        rh = hm.rhythm(audio, n)
        for _ in range(per_audio):
            clip, _ = ground_truth_clip(STYLES[k % len(STYLES)], audio, n, rng, rh)
            clips.append(clip)
            labels.append(k % len(STYLES))
            k += 1
    return clips, np.array(labels, np.int64)


def train_classifier(
    train_audio: list[np.ndarray], heldout_audio: list[np.ndarray], seed: int = 0, per_audio: int = 3
) -> tuple[StyleClassifier, dict[str, Any]]:
    """A classifier on ground truth over ``train_audio``, and its accuracy and confusion matrix
    on ground truth over ``heldout_audio`` (other voices, other plans)."""
    rng = np.random.default_rng((seed, 17))
    clips, labels = clips_from_audio(train_audio, rng, per_audio)
    clf = fit(np.stack([features(c[SKIP:]) for c in clips]), labels, seed=seed)
    hclips, hlabels = clips_from_audio(heldout_audio, np.random.default_rng((seed, 29)), per_audio)
    pred = clf.predict(hclips)
    conf = np.zeros((len(STYLES), len(STYLES)), np.int64)
    np.add.at(conf, (hlabels, pred), 1)
    report = {"train_clips": len(labels), "heldout_clips": len(hlabels),
              "heldout_accuracy": float((pred == hlabels).mean()) if len(hlabels) else float("nan"),
              "confusion": conf.tolist()}  # fmt: skip
    clf.info.update(report)
    return clf, report
