"""CoarseNet and RefineNet: audio (log-mel) to the 21 ARKit blendshapes, frame by frame.

Both read the mel frames of each video frame (4 per frame) through a frame-rate encoder of
causal convolutions and a GRU, so that frame t's output depends on audio up to the end of frame
t + L, where L is the lookahead in frames (an input: one model serves lookaheads 0 to
MAX_LOOKAHEAD). Output for step s describes video frame s − L.

CoarseNet sees the head pose and gaze too and predicts every blendshape; RefineNet sees the
audio again and CoarseNet's mouth, and predicts the 14 mouth shapes, trained with a lip-weighted
loss and a closure loss on bilabials (see train.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 80
MELS_PER_FRAME = 4
N_SHAPES = 21
N_MOUTH = 14  # the first 14 blendshapes (params.MOUTH_SHAPES)
MAX_LOOKAHEAD = 4  # frames (160 ms)
N_VISEME_CLASSES = 7  # silence, bilabial, labiodental, rounded, spread, open, other (aux head)


@dataclass(frozen=True)
class NetConfig:
    width: int = 160  # encoder channels and GRU size
    layers: int = 2  # causal convolutions after the frame convolution
    extra: int = 0  # per-frame inputs besides audio (8 = pose + gaze for CoarseNet, 14 for RefineNet)
    out: int = N_SHAPES
    aux: int = 0  # auxiliary per-frame classes (viseme classes for RefineNet)


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
        self.frame = nn.Conv1d(N_MELS, w, MELS_PER_FRAME, stride=MELS_PER_FRAME)  # mel frames 4t..4t+3 -> t
        self.convs = nn.ModuleList(CausalConv(w) for _ in range(cfg.layers))
        self.gru = nn.GRU(w + cfg.extra + MAX_LOOKAHEAD + 1, w, batch_first=True)
        self.head = nn.Linear(w, cfg.out)
        self.aux = nn.Linear(w, cfg.aux) if cfg.aux else None
        # Per-bin mel normalisation, measured on the training data before training starts.
        self.register_buffer("mel_mean", torch.zeros(N_MELS, 1))
        self.register_buffer("mel_std", torch.ones(N_MELS, 1))

    def receptive_frames(self) -> int:
        return 1 + 2 * self.cfg.layers

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, 4T) -> (B, T, width) causal audio features."""
        x = F.gelu(self.frame((mel - self.mel_mean) / self.mel_std))
        for conv in self.convs:
            x = conv(x)
        return x.transpose(1, 2)

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
        y, h = self.gru(self.step_inputs(self.features(mel), extra, lookahead), h)
        aux = self.aux(y) if self.aux is not None else None
        return self.shapes(self.head(y)), aux, h

    @staticmethod
    def shapes(logits: torch.Tensor) -> torch.Tensor:
        """Weights in [0, 1]; mouthClose is predicted as a fraction of jawOpen, so that the lips
        never pass each other (mouthClose > jawOpen) and close fully when the fraction is 1."""
        w = torch.sigmoid(logits)
        return torch.cat([w[..., :1], w[..., :1] * w[..., 1:2], w[..., 2:]], -1)


def coarse_net(cfg: NetConfig | None = None) -> FrameNet:
    return FrameNet(cfg or NetConfig(width=160, layers=2, extra=8, out=N_SHAPES))


def refine_net(cfg: NetConfig | None = None) -> FrameNet:
    return FrameNet(cfg or NetConfig(width=128, layers=2, extra=N_MOUTH, out=N_MOUTH, aux=N_VISEME_CLASSES))


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
