"""Streaming motion: push audio as it arrives, get each video frame's 21 blendshapes as soon as
the lookahead's audio is in. Gives the same numbers as MotionModel.predict on the whole file
(the networks are causal: each convolution's last inputs and the GRU state are all it needs)."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from posetalk.models.motion.infer import SAMPLES_PER_FRAME, MotionModel, seal_closures, silent_frames
from posetalk.models.motion.nets import (
    ADAPT_PRIOR,
    MELS_PER_FRAME,
    N_MELS,
    N_MOUTH,
    SPEECH_LEVEL,
    FrameNet,
    adapt_decay,
    adapt_deviation,
)
from posetalk.models.motion.voice_norm import PitchTracker, warp_rows
from scipy.special import erf, expit, logit


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2))))


class NetStep:
    """One network run a frame at a time in NumPy, for a batch of B streams: each causal
    convolution keeps its last inputs and the GRU its state, so a frame costs a few matrix
    products (convolutions as matmuls over their unrolled kernels). At batch 1 this is several
    times faster than the same arithmetic in PyTorch, whose per-operation overhead (~10 µs)
    outweighs these small products; FrameNet.forward is the reference it is tested against.

    Same numbers as FrameNet.forward on the whole stream (within float32 rounding): every
    convolution there is causal with zeros in front, which the zeroed states reproduce."""

    def __init__(self, net: FrameNet, lookahead: int, batch: int = 1) -> None:
        cfg, w = net.cfg, net.cfg.width

        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().float().numpy())

        def unrolled(conv: torch.nn.Conv1d) -> np.ndarray:  # (out, in, k) -> (k * in, out), tap-major rows
            return arr(conv.weight.permute(2, 1, 0).reshape(-1, conv.out_channels))

        self.cfg, self.w = cfg, w
        std = arr(net.mel_std[:, 0])
        self.scale, self.shift = 1 / std, -arr(net.mel_mean[:, 0]) / std
        self.k = cfg.mel_kernel
        if net.mel_conv is not None:
            self.mel_w, self.mel_b = unrolled(net.mel_conv), arr(net.mel_conv.bias)  # type: ignore[arg-type]
        self.frame_w, self.frame_b = unrolled(net.frame), arr(net.frame.bias)  # type: ignore[arg-type]
        self.convs = [(unrolled(c.conv), arr(c.conv.bias)) for c in net.convs]  # type: ignore[arg-type, union-attr]
        g = net.gru
        w_ih = arr(g.weight_ih_l0).T  # (w + extra + lookahead one-hot, 3w): gates reset, update, new
        self.ih_feat, self.ih_extra = np.ascontiguousarray(w_ih[:w]), np.ascontiguousarray(w_ih[w : w + cfg.extra])
        self.ih_b = arr(g.bias_ih_l0) + w_ih[w + cfg.extra + lookahead]  # the one-hot lookahead is a constant
        self.hh_w, self.hh_b = np.ascontiguousarray(arr(g.weight_hh_l0).T), arr(g.bias_hh_l0)
        self.head_w, self.head_b = np.ascontiguousarray(arr(net.head.weight).T), arr(net.head.bias)
        self.decay = adapt_decay(cfg.adapt_s) if cfg.adapt_s else None
        self.adapt_total = np.zeros((batch, N_MELS), np.float32)  # FrameNet.adapt's running sums
        self.adapt_count = np.zeros((batch, 1), np.float32)
        self.adapt_square = np.zeros((batch, N_MELS), np.float32)  # with adapt_var
        i = np.arange(MELS_PER_FRAME)
        d = self.decay or 0.0
        self.adapt_mix = np.tril(d ** np.maximum(i[:, None] - i[None], 0)).astype(np.float32)  # (4, 4)
        self.adapt_carry = (d ** (i + 1.0)).astype(np.float32)[:, None]  # (4, 1): the sums before this frame
        self.mel_state = np.zeros((batch, max(0, self.k - 1), N_MELS), np.float32)  # last normalised mel frames
        self.conv_state = [np.zeros((batch, 2, w), np.float32) for _ in net.convs]  # each layer's last 2 inputs
        self.h = np.zeros((batch, w), np.float32)

    def features(self, mel: np.ndarray) -> np.ndarray:
        """``mel`` (B, 4, 80) this frame's mel frames -> (B, width) its audio features."""
        b = mel.shape[0]
        x = mel * self.scale + self.shift
        if self.decay is not None:
            x = self._adapt(x)
        if self.k:
            seq = np.concatenate([self.mel_state, x], 1)  # (B, k - 1 + 4, 80)
            self.mel_state = seq[:, MELS_PER_FRAME:]
            taps = sliding_window_view(seq, self.k, 1).transpose(0, 1, 3, 2).reshape(b, MELS_PER_FRAME, -1)
            x = x + _gelu(taps @ self.mel_w + self.mel_b)  # (B, 4, 80)
        y = _gelu(x.reshape(b, -1) @ self.frame_w + self.frame_b)  # (B, width)
        for i, (wt, bias) in enumerate(self.convs):
            taps = np.concatenate([self.conv_state[i], y[:, None]], 1)  # (B, 3, width): frames t-2, t-1, t
            self.conv_state[i] = taps[:, 1:]
            y = y + _gelu(taps.reshape(b, -1) @ wt + bias)
        return y

    def _adapt(self, x: np.ndarray) -> np.ndarray:
        """FrameNet.adapt on this frame's (B, 4, 80) normalised mel frames: the running sums after
        each of them at once (decay^(i−j) for frame j's share in frame i's sum)."""
        speech = (x.mean(2, keepdims=True) > -SPEECH_LEVEL).astype(np.float32)  # (B, 4, 1)
        total = self.adapt_mix @ (speech * x) + self.adapt_carry * self.adapt_total[:, None]
        count = self.adapt_mix @ speech + self.adapt_carry * self.adapt_count[:, None]
        self.adapt_total, self.adapt_count = total[:, -1], count[:, -1]
        mean = total / (count + ADAPT_PRIOR)
        if not self.cfg.adapt_var:
            return x - mean
        square = self.adapt_mix @ (speech * x * x) + self.adapt_carry * self.adapt_square[:, None]
        self.adapt_square = square[:, -1]
        return (x - mean) / adapt_deviation(square, count + ADAPT_PRIOR, mean)

    def __call__(self, mel: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        """``mel`` (B, 4, 80), ``extra`` (B, extra) -> (B, out) blendshape weights."""
        w = self.w
        gi = self.features(mel) @ self.ih_feat + self.ih_b
        if extra is not None and self.cfg.extra:
            gi += extra @ self.ih_extra
        gh = self.h @ self.hh_w + self.hh_b
        r = expit(gi[:, :w] + gh[:, :w])
        z = expit(gi[:, w : 2 * w] + gh[:, w : 2 * w])
        self.h = (1 - z) * np.tanh(gi[:, 2 * w :] + r * gh[:, 2 * w :]) + z * self.h
        logits = self.h @ self.head_w + self.head_b
        if self.cfg.residual and extra is not None:
            logits += _inverse_shapes(extra)
        return _shapes(logits)


def _shapes(logits: np.ndarray) -> np.ndarray:
    """FrameNet.shapes in NumPy."""
    w = expit(logits)
    w[:, 2] *= 1 - w[:, 1]
    w[:, 1] *= w[:, 0]
    return w


def _inverse_shapes(w: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """FrameNet.inverse_shapes in NumPy."""
    v = w.copy()
    v[:, 1] = np.clip(w[:, 1] / np.maximum(w[:, 0], eps), 0, 1)
    v[:, 2] = w[:, 2] / np.maximum(1 - v[:, 1], eps)
    return logit(np.clip(v, eps, 1 - eps))


class MotionStream:
    """``push(samples)`` returns (k, 21) blendshapes for the frames completed so far, in order;
    frame t comes out once the audio of frame t + lookahead has been pushed. ``flush()`` emits the
    last ``lookahead`` frames as predict() does (no future audio: the last step repeats)."""

    def __init__(self, model: MotionModel, lookahead: int = 2) -> None:
        from posetalk.models.audio.mel import StreamingMel

        self.model, self.lookahead = model, lookahead
        self.mel = StreamingMel()
        self.coarse, self.refine = NetStep(model.coarse, lookahead), NetStep(model.refine, lookahead)
        self.history = np.zeros((N_MELS, 0), np.float32)  # mel frames not yet used by a step
        self.pose_gaze = np.zeros((1, 8), np.float32)
        self.steps = 0
        self.last: np.ndarray | None = None
        self.pending = np.zeros(0, np.float32)  # audio of the frame being filled
        # Per frame, in order, kept only until the frame is used: whether its audio is silent, and
        # its voice_norm factor (known once the frame before is complete).
        self.silent: deque[bool] = deque()
        self.pitch = PitchTracker(model.voice_norm) if model.voice_norm else None
        self.alphas = deque([1.0])

    @torch.no_grad()
    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, np.float32)
        self.pending = np.concatenate([self.pending, samples])
        while len(self.pending) >= SAMPLES_PER_FRAME:
            self.silent.append(bool(silent_frames(self.pending[:SAMPLES_PER_FRAME], 1)[0]))
            if self.pitch is not None:
                self.pitch.push(self.pending[:SAMPLES_PER_FRAME])
                self.alphas.append(self.pitch.alpha)
            self.pending = self.pending[SAMPLES_PER_FRAME:]
        mel = self.mel.push(samples)
        self.history = np.concatenate([self.history, mel], 1)
        out = []
        while self.history.shape[1] >= MELS_PER_FRAME:
            frame = self.history[:, :MELS_PER_FRAME].T[None]  # (1, 4, 80)
            self.history = self.history[:, MELS_PER_FRAME:]
            if self.pitch is not None:
                frame = warp_rows(frame, self.alphas.popleft())
            c = self.coarse(frame, self.pose_gaze)
            r = seal_closures(self.refine(frame, c[:, :N_MOUTH]), self.model.closure_ramp)
            self.steps += 1
            self.last = np.concatenate([r, c[:, N_MOUTH:]], -1)[0]
            if self.steps > self.lookahead:
                out.append(self._gate(self.last))
        return np.array(out, np.float32).reshape(-1, 21)

    def _gate(self, frame: np.ndarray) -> np.ndarray:
        """The next frame out, its mouth at rest if its audio was silent."""
        if self.silent.popleft():
            frame = frame.copy()
            frame[:N_MOUTH] = 0.0
        return frame

    def flush(self) -> np.ndarray:
        """The last ``lookahead`` frames (repeating the final step, as predict() does); the stream
        is spent afterwards (a second flush returns nothing)."""
        if self.last is None:
            return np.zeros((0, 21), np.float32)
        n = min(self.lookahead, self.steps)
        out = np.array([self._gate(self.last) for _ in range(n)], np.float32).reshape(-1, 21)
        self.last = None
        return out
