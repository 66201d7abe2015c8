"""Streaming motion: push audio as it arrives, get each video frame's 21 blendshapes as soon as
the lookahead's audio is in. Gives the same numbers as MotionModel.predict on the whole file
(the networks are causal: each convolution's last inputs and the GRU state are all it needs),
through the one step the engine runs too (runtime.MotionRunner, ONNX Runtime)."""

from __future__ import annotations

from collections import deque

import numpy as np
from posetalk.models.motion.infer import SAMPLES_PER_FRAME, MotionModel, silent_frames
from posetalk.models.motion.nets import N_MOUTH
from posetalk.models.motion.runtime import MotionRunner


class MotionStream:
    """``push(samples)`` returns (k, 21) blendshapes for the frames completed so far, in order;
    frame t comes out once the audio of frame t + lookahead has been pushed. ``flush()`` emits the
    last ``lookahead`` frames as predict() does (no future audio: the last step repeats)."""

    def __init__(self, model: MotionModel | MotionRunner, lookahead: int = 2) -> None:
        self.runner = model if isinstance(model, MotionRunner) else MotionRunner(model, lookahead)
        self.lookahead = self.runner.lookahead
        self.state = self.runner.new_state()
        self.pose_gaze = np.zeros((1, 8), np.float32)
        self.last: np.ndarray | None = None
        self.pending = np.zeros(0, np.float32)  # audio of the frame being filled
        self.silent: deque[bool] = deque()  # per frame stepped, until it is emitted: its audio was silent

    @property
    def steps(self) -> int:
        return self.state.steps

    def push(self, samples: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        out = []
        while len(self.pending) >= SAMPLES_PER_FRAME:
            slot, self.pending = self.pending[:SAMPLES_PER_FRAME], self.pending[SAMPLES_PER_FRAME:]
            self.silent.append(bool(silent_frames(slot, 1)[0]))
            mel = self.state.push_audio(slot)
            self.last = self.runner.step([self.state], mel[None], self.pose_gaze)[0]
            if self.state.steps > self.lookahead:
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
