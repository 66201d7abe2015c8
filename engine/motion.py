"""CoarseNet + RefineNet for many sessions at once, one frame per session per call.

models.motion.stream runs the two nets a frame at a time in NumPy (``NetStep``), for a batch of B
streams whose recurrent and convolution states live inside the step object. Sessions come and go
and a tick may have work for only some of them, so here each session keeps its own states
(``MotionState``) and ``MotionRunner.step`` stacks the states of the sessions due this round into
one batch, runs each net once for all of them, and hands every session its rows back. The
weights are shared and read-only; the numbers are those of ``MotionStream`` for each session.

The pose and gaze each CoarseNet step sees are the head motion of the frame it describes, as in
``MotionModel.predict`` (training fed the pose delayed by the lookahead), not zeros."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from posetalk.models.audio.mel import StreamingMel
from posetalk.models.motion.infer import MotionModel, seal_closures
from posetalk.models.motion.nets import MELS_PER_FRAME, N_MOUTH
from posetalk.models.motion.stream import NetStep  # the batched NumPy step; its states are swapped per round
from posetalk.models.motion.voice_norm import PitchTracker, warp_rows


@dataclass
class _NetState:
    """One session's row of a ``NetStep``'s states."""

    mel: np.ndarray  # (1, k - 1, 80) last normalised mel frames
    conv: list[np.ndarray]  # per causal conv: (1, 2, width) its last inputs
    h: np.ndarray  # (1, width) GRU state
    adapt_total: np.ndarray  # (1, 80) and (1, 1): the running speech-spectrum mean's sums (FrameNet.adapt)
    adapt_count: np.ndarray
    adapt_square: np.ndarray  # (1, 80): the speech frames' running squares (adapt_var)

    @classmethod
    def zeros_like(cls, step: NetStep) -> _NetState:
        return cls(
            np.zeros((1, *step.mel_state.shape[1:]), np.float32),
            [np.zeros((1, *c.shape[1:]), np.float32) for c in step.conv_state],
            np.zeros((1, step.h.shape[1]), np.float32),
            np.zeros((1, step.adapt_total.shape[1]), np.float32),
            np.zeros((1, 1), np.float32),
            np.zeros((1, step.adapt_square.shape[1]), np.float32),
        )


@dataclass
class MotionState:
    """Everything the nets remember about one session's audio."""

    mel: StreamingMel
    coarse: _NetState
    refine: _NetState
    steps: int = 0
    pending_mel: list[np.ndarray] = field(default_factory=list)
    pitch: PitchTracker | None = None  # voice_norm, when the model was trained with it

    def push_audio(self, slot: np.ndarray) -> np.ndarray:
        """A frame's 640 samples -> its (4, 80) mel frames (the front end is causal: a 640-sample
        push after 640-sample pushes always completes exactly four)."""
        mel = self.mel.push(slot)
        if mel.shape[1] != MELS_PER_FRAME:
            raise RuntimeError(f"expected {MELS_PER_FRAME} mel frames per slot, got {mel.shape[1]}")
        if self.pitch is None:
            return np.ascontiguousarray(mel.T)
        alpha = self.pitch.alpha  # from the frames before this one, as MotionStream
        self.pitch.push(slot)
        return warp_rows(np.ascontiguousarray(mel.T), alpha)


def _run(step: NetStep, states: list[_NetState], mel: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """One batched step over ``states`` (rows in order); the states are updated in place."""
    step.mel_state = np.concatenate([s.mel for s in states])
    step.conv_state = [np.concatenate([s.conv[i] for s in states]) for i in range(len(step.conv_state))]
    step.h = np.concatenate([s.h for s in states])
    step.adapt_total = np.concatenate([s.adapt_total for s in states])
    step.adapt_count = np.concatenate([s.adapt_count for s in states])
    step.adapt_square = np.concatenate([s.adapt_square for s in states])
    out: np.ndarray = step(mel, extra)
    for i, s in enumerate(states):  # views into the step's new arrays (it replaces them every call)
        s.mel = step.mel_state[i : i + 1]
        s.conv = [c[i : i + 1] for c in step.conv_state]
        s.h = step.h[i : i + 1]
        s.adapt_total, s.adapt_count = step.adapt_total[i : i + 1], step.adapt_count[i : i + 1]
        s.adapt_square = step.adapt_square[i : i + 1]
    return out


class MotionRunner:
    """The shipped (or given) motion model, stepped for any set of sessions. ``lookahead``:
    frames of audio past a frame that its expression waits for (0..4; 2 = 80 ms)."""

    def __init__(self, model: MotionModel | None = None, lookahead: int = 2) -> None:
        self.model = model if model is not None else MotionModel.load()
        self.lookahead = lookahead
        self.coarse = NetStep(self.model.coarse, lookahead)
        self.refine = NetStep(self.model.refine, lookahead)
        self._lock = threading.Lock()  # the steps hold the batch's states while they run

    def new_state(self) -> MotionState:
        pitch = PitchTracker(self.model.voice_norm) if self.model.voice_norm else None
        return MotionState(StreamingMel(), _NetState.zeros_like(self.coarse), _NetState.zeros_like(self.refine),
                           pitch=pitch)  # fmt: skip

    def step(self, states: list[MotionState], mels: np.ndarray, pose_gaze: np.ndarray) -> np.ndarray:
        """``mels`` (B, 4, 80) each session's next frame of mel, ``pose_gaze`` (B, 8) the head
        motion of the frame each step describes -> (B, 21) blendshapes of frame step - lookahead
        (meaningless for a session's first ``lookahead`` steps)."""
        with self._lock:
            c = _run(self.coarse, [s.coarse for s in states], mels, pose_gaze.astype(np.float32))
            r = _run(self.refine, [s.refine for s in states], mels, np.ascontiguousarray(c[:, :N_MOUTH]))
        r = seal_closures(r, self.model.closure_ramp)
        for s in states:
            s.steps += 1
        return np.concatenate([r[:, :N_MOUTH], c[:, N_MOUTH:]], 1).astype(np.float32)
