"""CoarseNet and RefineNet: audio (log-mel) to the 21 ARKit blendshapes, frame by frame.

Both read the mel frames of each video frame (4 per frame) through a frame-rate encoder of
causal convolutions and a GRU, so that frame t's output depends on audio up to the end of frame
t + L, where L is the lookahead in frames (an input: one model serves lookaheads 0 to
MAX_LOOKAHEAD). Output for step s describes video frame s − L.

CoarseNet sees the head pose and gaze too, predicts every blendshape and (an auxiliary head) the
phone of each frame. RefineNet sees the audio again and CoarseNet's mouth, and predicts
corrections to the 14 mouth shapes' logits (zero at the start: it begins as CoarseNet), trained
with a lip-weighted loss and closure losses on bilabials (see train.py). A non-residual RefineNet
trained from scratch with these losses opened the jaw less than CoarseNet and scored worse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 80
MELS_PER_FRAME = 4
N_SHAPES = 21
N_MOUTH = 14  # the first 14 blendshapes (params.MOUTH_SHAPES)
MAX_LOOKAHEAD = 4  # frames (160 ms)
N_VISEME_CLASSES = 7  # silence, bilabial, labiodental, rounded, spread, open, other (RefineNet's aux head)
N_PHONES = 40  # ARPAbet + silence (data.phones.PHONE_ID): CoarseNet's aux head


@dataclass(frozen=True)
class NetConfig:
    width: int = 160  # encoder channels and GRU size
    layers: int = 2  # causal convolutions after the frame convolution
    extra: int = 0  # per-frame inputs besides audio (8 = pose + gaze for CoarseNet, 14 for RefineNet)
    out: int = N_SHAPES
    aux: int = 0  # auxiliary per-frame classes (phones for CoarseNet, viseme classes for RefineNet)
    mel_kernel: int = 0  # a causal convolution over mel frames (100 Hz) before the frame convolution; 0 = none
    residual: bool = False  # outputs are corrections to the per-frame inputs (RefineNet: CoarseNet's mouth)
    adapt_s: float = 0.0  # time constant (s) of the running speech-spectrum mean taken off the input; 0: none
    adapt_var: bool = False  # with adapt_s: the input also divided by the running speech frames' deviation
    f0_ref: float = 0.0  # voice_norm.VoiceNorm(f0_ref, f0_lowest) moves the log-mel (by the caller); 0: none
    f0_lowest: float = 0.75  # the value before it was stored; new runs store theirs


# The running mean of ``adapt``: mel frames whose mean normalised log-mel is above -SPEECH_LEVEL
# count as speech (the corpus's speech frames: median 0.25, 85 % above -0.5; its pauses, noisy ones
# included: median -1.1), and the mean starts as ADAPT_PRIOR frames of the training average (0).
SPEECH_LEVEL = 0.5
ADAPT_PRIOR = 50.0  # mel frames (0.5 s)
MIN_VAR = 0.05  # the least variance adapt_var divides by (a steady tone's bins would blow up)
T = TypeVar("T", torch.Tensor, np.ndarray)


def adapt_decay(adapt_s: float) -> float:
    return 1.0 - 1.0 / (adapt_s * 100.0)  # per mel frame (100 Hz)


def adapt_deviation(square: T, count: T, mean: T) -> T:
    """The running deviation FrameNet.adapt divides by (``adapt_var``), from the running sums of
    the speech frames' squares, their count (prior included) and mean; torch or NumPy alike."""
    var = (square + ADAPT_PRIOR) / count - mean * mean
    return (var.clip(MIN_VAR, None) if isinstance(var, np.ndarray) else var.clamp_min(MIN_VAR)) ** 0.5  # type: ignore[return-value]


def running_sums(a: torch.Tensor, decay: float) -> torch.Tensor:
    """(B, C, F) -> s with s[..., t] = decay * s[..., t − 1] + a[..., t] (s[..., −1] = 0), in
    blocks short enough that decay^-block stays under 10 (a cumulative sum per block)."""
    block = max(1, min(256, int(np.log(10.0) / -np.log(decay))))
    powers = decay ** torch.arange(block, dtype=a.dtype, device=a.device)
    state = a.new_zeros(a.shape[:-1])
    out = []
    for start in range(0, a.shape[-1], block):
        seg = a[..., start : start + block]
        p = powers[: seg.shape[-1]]
        sums = torch.cumsum(seg / p, -1) * p + state[..., None] * (p * decay)
        out.append(sums)
        state = sums[..., -1]
    return torch.cat(out, -1) if out else a.clone()


class CausalConv(nn.Module):
    """Kernel 3 over frames, padded on the left only: output t sees inputs t−2 … t."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C, T)
        return x + F.gelu(self.conv(F.pad(x, (2, 0))))


class FrameNet(nn.Module):
    """Mel (B, 80, 4T) + per-frame inputs (B, T, extra) + lookahead -> per-frame outputs."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        # Phones last 30-150 ms: a convolution at the mel rate sees their 10 ms detail before the
        # frame convolution pools 4 mel frames into one video frame.
        self.mel_conv = nn.Conv1d(N_MELS, N_MELS, cfg.mel_kernel) if cfg.mel_kernel else None
        self.frame = nn.Conv1d(N_MELS, w, MELS_PER_FRAME, stride=MELS_PER_FRAME)  # mel frames 4t..4t+3 -> t
        self.convs = nn.ModuleList(CausalConv(w) for _ in range(cfg.layers))
        self.gru = nn.GRU(w + cfg.extra + MAX_LOOKAHEAD + 1, w, batch_first=True)
        self.head = nn.Linear(w, cfg.out)
        if cfg.residual:  # start as the identity: RefineNet begins where CoarseNet is
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.aux = nn.Linear(w, cfg.aux) if cfg.aux else None
        # Per-bin mel normalisation, measured on the training data before training starts.
        self.register_buffer("mel_mean", torch.zeros(N_MELS, 1))
        self.register_buffer("mel_std", torch.ones(N_MELS, 1))

    def receptive_frames(self) -> int:
        mel_frames = -(-max(0, self.cfg.mel_kernel - 1) // MELS_PER_FRAME)  # video frames the mel conv reaches back
        return 1 + 2 * self.cfg.layers + mel_frames

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, 4T) -> (B, T, width) causal audio features."""
        x = (mel - self.mel_mean) / self.mel_std
        if self.cfg.adapt_s:
            x = self.adapt(x)
        if self.mel_conv is not None:
            x = x + F.gelu(self.mel_conv(F.pad(x, (self.cfg.mel_kernel - 1, 0))))
        x = F.gelu(self.frame(x))
        for conv in self.convs:
            x = conv(x)
        return x.transpose(1, 2)

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 80, F) normalised log-mel minus, at each frame, the running mean of the speech
        frames heard up to it (exponentially forgotten over ``adapt_s``): a voice's and a
        channel's own spectral colouring is taken off, as cepstral mean normalisation does, and
        causally, so a stream gets the same numbers (step.MotionStep keeps the sums as state)."""
        decay = adapt_decay(self.cfg.adapt_s)
        speech = (x.mean(1, keepdim=True) > -SPEECH_LEVEL).to(x.dtype)  # (B, 1, F)
        total = running_sums(speech * x, decay)
        count = running_sums(speech, decay) + ADAPT_PRIOR
        mean = total / count
        if not self.cfg.adapt_var:
            return x - mean
        # and each bin's deviation over the speech frames (the prior's frames: variance 1)
        square = running_sums(speech * x * x, decay)
        return (x - mean) / adapt_deviation(square, count, mean)

    def step_inputs(self, feats: torch.Tensor, extra: torch.Tensor | None, lookahead: int) -> torch.Tensor:
        b, t, _ = feats.shape
        la = torch.zeros(b, t, MAX_LOOKAHEAD + 1, device=feats.device, dtype=feats.dtype)
        la[..., lookahead] = 1.0
        parts = [feats, la] if extra is None else [feats, extra, la]
        return torch.cat(parts, -1)

    def forward(
        self, mel: torch.Tensor, extra: torch.Tensor | None, lookahead: int, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Outputs (B, T, out) in [0, 1] for steps 0..T−1 (step s describes frame s − lookahead),
        aux logits (B, T, aux) or None, and the GRU state."""
        logits, aux, h = self.logits(mel, extra, lookahead, h)
        return self.shapes(logits), aux, h

    def logits(
        self, mel: torch.Tensor, extra: torch.Tensor | None, lookahead: int, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """As forward, with the output head's raw logits (training reads the closure fraction's)."""
        y, h = self.gru(self.step_inputs(self.features(mel), extra, lookahead), h)
        aux = self.aux(y) if self.aux is not None else None
        return self.output_logits(y, extra), aux, h

    def output_logits(self, y: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """GRU outputs (B, T, width) -> shape logits (B, T, out), plus the inputs' own logits when residual."""
        out = self.head(y)
        if self.cfg.residual and extra is not None:
            out = out + self.inverse_shapes(extra)
        return out

    @staticmethod
    def shapes(logits: torch.Tensor) -> torch.Tensor:
        """Weights in [0, 1]. mouthClose is predicted as a fraction of jawOpen, so that the lips
        never pass each other (mouthClose > jawOpen) and close fully when the fraction is 1; and
        mouthFunnel (lips pushed open into a funnel, the one other shape that parts them) shrinks
        as the lips close, so that a /m/ after a rounded vowel still seals them."""
        w = torch.sigmoid(logits)
        frac = w[..., 1:2]
        return torch.cat([w[..., :1], w[..., :1] * frac, w[..., 2:3] * (1 - frac), w[..., 3:]], -1)

    @staticmethod
    def inverse_shapes(w: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        """The logits that ``shapes`` maps to ``w`` (clamped away from 0 and 1)."""
        frac = (w[..., 1:2] / w[..., :1].clamp_min(eps)).clamp(0, 1)
        funnel = w[..., 2:3] / (1 - frac).clamp_min(eps)
        return torch.logit(torch.cat([w[..., :1], frac, funnel, w[..., 3:]], -1).clamp(eps, 1 - eps))


def coarse_net(cfg: NetConfig | None = None) -> FrameNet:
    return FrameNet(cfg or NetConfig(width=256, layers=2, extra=8, out=N_SHAPES, aux=N_PHONES, mel_kernel=5))


def refine_net(cfg: NetConfig | None = None) -> FrameNet:
    cfg = cfg or NetConfig(
        width=128, layers=2, extra=N_MOUTH, out=N_MOUTH, aux=N_VISEME_CLASSES, mel_kernel=5, residual=True
    )
    return FrameNet(cfg)


def delay(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Shift a (B, T, C) per-frame input later by ``frames`` (step s gets frame s − frames),
    repeating the first frame: what a stream with that lookahead has at step s."""
    if frames == 0:
        return x
    return torch.cat([x[:, :1].expand(-1, frames, -1), x[:, :-frames]], 1)


def advance(y: torch.Tensor, frames: int) -> torch.Tensor:
    """Undo the lookahead on outputs: frame t's prediction is step t + frames; the last frames
    (whose future audio is missing) repeat the last available step."""
    if frames == 0:
        return y
    return torch.cat([y[:, frames:], y[:, -1:].expand(-1, frames, -1)], 1)
