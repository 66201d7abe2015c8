"""CoarseNet then RefineNet, one video frame for a batch of streams, with every state explicit:
what `posetalk export` writes to ONNX and ONNX Runtime runs (models/motion/runtime.py).

``MotionStep.forward(mel, pose_gaze, lookahead, *states) -> (shapes, *new_states)``:
``mel`` (B, 4, 80) the frame's log-mel frames, ``pose_gaze`` (B, 8) the head motion of the frame
the step describes, ``lookahead`` (1,) int64 in 0..4; per net (coarse, then refine) its states
(``state_shapes``): its last normalised mel frames (B, k - 1, 80), each causal convolution's last
two inputs (B, 2, width), the GRU state (B, width), and the running speech-spectrum sums of
``FrameNet.adapt`` (B, 80), (B, 1), (B, 80). ``shapes`` (B, 21): RefineNet's mouth (closures sealed) and CoarseNet's
other shapes, for the frame ``lookahead`` steps back. All states start at zero.

The same arithmetic as ``FrameNet.forward`` on the whole stream (every convolution there is
causal with zeros in front, which the zeroed states reproduce): tests/test_motion_runtime.py
holds it to that."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from posetalk.models.motion.infer import CLOSE, FUNNEL, JAW, MotionModel
from posetalk.models.motion.nets import (
    ADAPT_PRIOR,
    MAX_LOOKAHEAD,
    MELS_PER_FRAME,
    MIN_VAR,
    N_MELS,
    N_MOUTH,
    SPEECH_LEVEL,
    FrameNet,
    adapt_decay,
)
from torch import nn


def state_shapes(net: FrameNet) -> list[tuple[int, ...]]:
    """The shapes of one stream's states of ``net``, batch dimension first (1): the last normalised
    mel frames (with a mel convolution), each causal convolution's last two inputs, the GRU state,
    the adapt sums."""
    w, k = net.cfg.width, net.cfg.mel_kernel
    mel = [(1, k - 1, N_MELS)] if k > 1 else []
    return [*mel, *[(1, 2, w)] * net.cfg.layers, (1, w), (1, N_MELS), (1, 1), (1, N_MELS)]


class _NetStep(nn.Module):
    """One FrameNet, one frame, states in and out."""

    def __init__(self, net: FrameNet) -> None:
        super().__init__()
        cfg, w = net.cfg, net.cfg.width
        self.cfg, self.w, self.k = cfg, w, cfg.mel_kernel
        self.n_states = len(state_shapes(net))
        self.register_buffer("mean", net.mel_mean[:, 0].detach().clone())
        self.register_buffer("std", net.mel_std[:, 0].detach().clone())
        self.mel_conv, self.frame, self.convs = net.mel_conv, net.frame, net.convs
        g = net.gru
        w_ih = g.weight_ih_l0.detach()  # (3w, w + extra + 5): gates reset, update, new
        self.register_buffer("ih_feat", w_ih[:, :w].T.contiguous())
        self.register_buffer("ih_extra", w_ih[:, w : w + cfg.extra].T.contiguous())
        self.register_buffer("ih_la", w_ih[:, w + cfg.extra :].T.contiguous())  # (5, 3w): the lookahead one-hot's rows
        self.register_buffer("ih_b", g.bias_ih_l0.detach().clone())
        self.register_buffer("hh_w", g.weight_hh_l0.detach().T.contiguous())
        self.register_buffer("hh_b", g.bias_hh_l0.detach().clone())
        self.head = net.head
        d = adapt_decay(cfg.adapt_s) if cfg.adapt_s else 0.0
        i = torch.arange(MELS_PER_FRAME, dtype=torch.float64)
        mix = torch.tril(d ** (i[:, None] - i[None]).clamp_min(0))
        self.register_buffer("adapt_mix", mix.float())  # frame j's share in the sum after frame i: decay^(i-j)
        self.register_buffer("adapt_carry", (d ** (i + 1.0)).float()[:, None])  # the sums before this frame

    def forward(self, mel: torch.Tensor, extra: torch.Tensor, la: torch.Tensor,
                states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:  # fmt: skip
        mel_state = states[:1] if self.k > 1 else []
        conv_states = states[len(mel_state) : -4]
        h, a_total, a_count, a_square = states[-4:]
        x = (mel - self.mean) / self.std  # (B, 4, 80)
        if self.cfg.adapt_s:
            x, a_total, a_count, a_square = self._adapt(x, a_total, a_count, a_square)
        if self.mel_conv is not None:
            seq = torch.cat([*mel_state, x], 1)  # (B, k - 1 + 4, 80)
            mel_state = [seq[:, MELS_PER_FRAME:]] if mel_state else []
            x = x + F.gelu(self.mel_conv(seq.transpose(1, 2))).transpose(1, 2)
        y = F.gelu(self.frame(x.transpose(1, 2)))[..., 0]  # (B, width)
        new_convs = []
        for conv, state in zip(self.convs, conv_states, strict=True):
            taps = torch.cat([state, y[:, None]], 1)  # (B, 3, width): frames t-2, t-1, t
            new_convs.append(taps[:, 1:])
            y = y + F.gelu(conv.conv(taps.transpose(1, 2)))[..., 0]  # type: ignore[union-attr]
        w = self.w
        gi = y @ self.ih_feat + self.ih_b + self.ih_la[la]
        if self.cfg.extra:
            gi = gi + extra @ self.ih_extra
        gh = h @ self.hh_w + self.hh_b
        r = torch.sigmoid(gi[:, :w] + gh[:, :w])
        z = torch.sigmoid(gi[:, w : 2 * w] + gh[:, w : 2 * w])
        h = (1 - z) * torch.tanh(gi[:, 2 * w :] + r * gh[:, 2 * w :]) + z * h
        logits = self.head(h)
        if self.cfg.residual:
            logits = logits + FrameNet.inverse_shapes(extra)
        return FrameNet.shapes(logits), [*mel_state, *new_convs, h, a_total, a_count, a_square]

    def _adapt(self, x: torch.Tensor, total0: torch.Tensor, count0: torch.Tensor,
               square0: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        speech = (x.mean(2, keepdim=True) > -SPEECH_LEVEL).float()  # (B, 4, 1)
        total = self.adapt_mix @ (speech * x) + self.adapt_carry * total0[:, None]
        count = self.adapt_mix @ speech + self.adapt_carry * count0[:, None]
        mean = total / (count + ADAPT_PRIOR)
        if not self.cfg.adapt_var:
            return x - mean, total[:, -1], count[:, -1], square0
        square = self.adapt_mix @ (speech * x * x) + self.adapt_carry * square0[:, None]
        var = (square + ADAPT_PRIOR) / (count + ADAPT_PRIOR) - mean * mean
        return (x - mean) / var.clamp_min(MIN_VAR).sqrt(), total[:, -1], count[:, -1], square[:, -1]


class MotionStep(nn.Module):
    """See the module docstring."""

    def __init__(self, model: MotionModel) -> None:
        super().__init__()
        self.coarse, self.refine = _NetStep(model.coarse), _NetStep(model.refine)
        lo, hi = model.closure_ramp
        self.ramp = (float(lo), float(hi))
        self.shapes = state_shapes(model.coarse) + state_shapes(model.refine)

    def forward(self, mel: torch.Tensor, pose_gaze: torch.Tensor, lookahead: torch.Tensor,
                *states: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        la = lookahead.clamp(0, MAX_LOOKAHEAD)
        n = self.coarse.n_states
        c, cs = self.coarse(mel, pose_gaze, la, list(states[:n]))
        r, rs = self.refine(mel, c[:, :N_MOUTH], la, list(states[n:]))
        return (torch.cat([self._seal(r), c[:, N_MOUTH:]], 1), *cs, *rs)

    def _seal(self, w: torch.Tensor) -> torch.Tensor:
        """infer.seal_closures: mouthClose = jawOpen x ramp(closure fraction), the funnel shrinking with it."""
        lo, hi = self.ramp
        if (lo, hi) == (0.0, 1.0):
            return w
        jaw = w[:, JAW : JAW + 1]
        frac = (w[:, CLOSE : CLOSE + 1] / jaw.clamp_min(1e-6)).clamp(0.0, 1.0)
        funnel = w[:, FUNNEL : FUNNEL + 1] / (1.0 - frac).clamp_min(1e-3)
        sealed = ((frac - lo) / (hi - lo)).clamp(0.0, 1.0)
        parts = {JAW: jaw, CLOSE: jaw * sealed, FUNNEL: funnel.clamp_max(1.0) * (1.0 - sealed)}
        cols = [parts.get(i, w[:, i : i + 1]) for i in range(w.shape[1])]
        return torch.cat(cols, 1)

    def zero_states(self, batch: int = 1) -> list[torch.Tensor]:
        return [torch.zeros((batch, *s[1:])) for s in self.shapes]
