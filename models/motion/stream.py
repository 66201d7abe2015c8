"""Streaming motion: push audio as it arrives, get each video frame's 21 blendshapes as soon as
the lookahead's audio is in. Gives the same numbers as MotionModel.predict on the whole file
(the networks are causal: a window of the last few frames and the GRU state are all it needs)."""

from __future__ import annotations

import numpy as np
import torch
from posetalk.models.motion.infer import SAMPLES_PER_FRAME, MotionModel, silent_frames
from posetalk.models.motion.nets import MELS_PER_FRAME, N_MOUTH, FrameNet


class _Step:
    """One network run a frame at a time: recent mel frames and the GRU state."""

    def __init__(self, net: FrameNet, lookahead: int) -> None:
        self.net, self.lookahead = net, lookahead
        self.window = net.receptive_frames() * MELS_PER_FRAME
        self.h: torch.Tensor | None = None

    def __call__(self, mel: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """``mel``: (1, 80, ≤ window) ending with this frame's 4 mel frames; -> (1, out)."""
        feats = self.net.features(mel)[:, -1:]  # causal: the last frame's features
        y, self.h = self.net.gru(self.net.step_inputs(feats, extra, self.lookahead), self.h)
        return self.net.shapes(self.net.output_logits(y, extra))[:, 0]


class MotionStream:
    """``push(samples)`` returns (k, 21) blendshapes for the frames completed so far, in order;
    frame t comes out once the audio of frame t + lookahead has been pushed. ``flush()`` emits the
    last ``lookahead`` frames as predict() does (no future audio: the last step repeats)."""

    def __init__(self, model: MotionModel, lookahead: int = 2) -> None:
        from posetalk.models.audio.mel import StreamingMel

        self.model, self.lookahead = model, lookahead
        self.mel = StreamingMel()
        self.coarse, self.refine = _Step(model.coarse, lookahead), _Step(model.refine, lookahead)
        self.window = max(self.coarse.window, self.refine.window)  # mel frames either net reads
        self.history = np.zeros((80, 0), np.float32)
        self.pose_gaze = torch.zeros(1, 1, 8)
        self.steps = 0
        self.last: np.ndarray | None = None
        self.pending = np.zeros(0, np.float32)  # audio of the frame being filled
        self.silent: list[bool] = []  # per completed frame

    @torch.no_grad()
    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, np.float32)
        self.pending = np.concatenate([self.pending, samples])
        while len(self.pending) >= SAMPLES_PER_FRAME:
            self.silent.append(bool(silent_frames(self.pending[:SAMPLES_PER_FRAME], 1)[0]))
            self.pending = self.pending[SAMPLES_PER_FRAME:]
        mel = self.mel.push(samples)
        self.history = np.concatenate([self.history, mel], 1)
        out = []
        while self.history.shape[1] >= (self.steps + 1) * MELS_PER_FRAME - self._dropped:
            end = (self.steps + 1) * MELS_PER_FRAME - self._dropped
            window = torch.from_numpy(self.history[:, max(0, end - self.window) : end])[None]
            c = self.coarse(window, self.pose_gaze)
            r = self.refine(window, c[:, None, :N_MOUTH])
            self.steps += 1
            self.last = torch.cat([r, c[:, N_MOUTH:]], -1)[0].numpy()
            if self.steps > self.lookahead:
                out.append(self._gate(self.last, self.steps - 1 - self.lookahead))
            self._trim()
        return np.array(out, np.float32).reshape(-1, 21)

    _dropped = 0  # mel frames dropped from the front of history

    def _trim(self) -> None:
        keep = self.window
        extra = self.history.shape[1] - keep - MELS_PER_FRAME
        if extra > 0:
            self.history = self.history[:, extra:]
            self._dropped += extra

    def _gate(self, frame: np.ndarray, index: int) -> np.ndarray:
        if self.silent[index]:
            frame = frame.copy()
            frame[:N_MOUTH] = 0.0
        return frame

    def flush(self) -> np.ndarray:
        """The last ``lookahead`` frames (repeating the final step, as predict() does)."""
        if self.last is None:
            return np.zeros((0, 21), np.float32)
        n = min(self.lookahead, self.steps)
        first = self.steps - n
        return np.array([self._gate(self.last, first + i) for i in range(n)], np.float32).reshape(-1, 21)
