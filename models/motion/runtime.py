"""CoarseNet + RefineNet for any number of streams, one frame per stream per call, on ONNX Runtime.

``MotionRunner`` holds the exported ``step.MotionStep`` (one ONNX Runtime session, any batch);
each stream keeps its own states (``MotionState``: the log-mel front end, the pitch tracker when
the model normalises voices, and the nets' states), and ``MotionRunner.step`` stacks the states of
the streams due this round into one batch, runs the step once for all of them, and hands every
stream its rows back. ``stream.MotionStream`` (one stream) and the engine (every session due in a
tick) both step through it: one step function, the numbers of ``MotionModel.predict`` for each
stream.

The pose and gaze each CoarseNet step sees are the head motion of the frame it describes, as in
``MotionModel.predict`` (training fed the pose delayed by the lookahead), not zeros."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from posetalk.models import inference
from posetalk.models.audio.mel import StreamingMel
from posetalk.models.motion import step as step_module
from posetalk.models.motion.infer import MotionModel
from posetalk.models.motion.nets import MAX_LOOKAHEAD, MELS_PER_FRAME, N_MELS
from posetalk.models.motion.step import MotionStep, state_shapes
from posetalk.models.motion.voice_norm import PitchTracker, warp_rows

INPUTS = ["mel", "pose_gaze", "lookahead"]


def state_names(n: int) -> list[str]:
    return [f"state{i}" for i in range(n)]


def export_step(model: MotionModel) -> bytes:
    """The motion step as ONNX (``MotionStep``: mel, pose_gaze, lookahead, states -> shapes, states)."""
    module = MotionStep(model).eval()
    names = state_names(len(module.shapes))
    outs = ["shapes", *[n + "_out" for n in names]]
    args = (torch.zeros(1, MELS_PER_FRAME, N_MELS), torch.zeros(1, 8), torch.tensor([2]), *module.zero_states())
    meta = {"posetalk": "motion step", "coarse": repr(model.coarse.cfg), "refine": repr(model.refine.cfg),
            "closure_ramp": repr(model.closure_ramp), "states": repr(module.shapes)}  # fmt: skip
    return inference.export(module, args, [*INPUTS, *names], outs, ["mel", "pose_gaze", *names, *outs], meta)


def step_bytes(model: MotionModel) -> bytes:
    """``export_step(model)``, from the cache when these weights and this code were exported before."""
    module = MotionStep(model)
    config = repr((model.coarse.cfg, model.refine.cfg, model.closure_ramp))
    key = inference.fingerprint(module, step_module, export_step, config=config)
    return inference.exported("motion-step", key, lambda: export_step(model))


@dataclass
class MotionState:
    """Everything the nets remember about one stream's audio."""

    mel: StreamingMel
    nets: list[np.ndarray]  # the step's states, batch 1 (step.MotionStep)
    steps: int = 0
    pitch: PitchTracker | None = None  # voice_norm, when the model was trained with it

    def push_audio(self, slot: np.ndarray) -> np.ndarray:
        """A frame's 640 samples -> its (4, 80) mel frames (the front end is causal: a 640-sample
        push after 640-sample pushes always completes exactly four)."""
        mel = self.mel.push(slot)
        if mel.shape[1] != MELS_PER_FRAME:
            raise RuntimeError(f"expected {MELS_PER_FRAME} mel frames per slot, got {mel.shape[1]}")
        if self.pitch is None:
            return np.ascontiguousarray(mel.T)
        alpha = self.pitch.alpha  # from the frames before this one
        self.pitch.push(slot)
        return warp_rows(np.ascontiguousarray(mel.T), alpha)


class MotionRunner:
    """The shipped (or given) motion model, stepped for any set of streams. ``lookahead``: frames
    of audio past a frame that its expression waits for (0..4; 2 = 80 ms). ``device``: "cpu" or
    "cuda" (ONNX Runtime's providers, models.inference)."""

    def __init__(self, model: MotionModel | None = None, lookahead: int = 2, device: str = "cpu") -> None:
        if not 0 <= lookahead <= MAX_LOOKAHEAD:
            raise ValueError(f"lookahead must be 0..{MAX_LOOKAHEAD} frames, got {lookahead}")
        self.model = model if model is not None else MotionModel.load()
        self.lookahead = lookahead
        self._la = np.array([lookahead], np.int64)
        shapes = state_shapes(self.model.coarse) + state_shapes(self.model.refine)
        self._zeros = [np.zeros(s, np.float32) for s in shapes]
        self._names = state_names(len(self._zeros))
        self.session = inference.session(step_bytes(self.model), device)
        self._lock = threading.Lock()  # one call at a time: ONNX Runtime's session is shared

    def new_state(self) -> MotionState:
        pitch = PitchTracker(self.model.voice_norm) if self.model.voice_norm else None
        return MotionState(StreamingMel(), [z.copy() for z in self._zeros], pitch=pitch)

    def step(self, states: list[MotionState], mels: np.ndarray, pose_gaze: np.ndarray) -> np.ndarray:
        """``mels`` (B, 4, 80) each stream's next frame of mel, ``pose_gaze`` (B, 8) the head
        motion of the frame each step describes -> (B, 21) blendshapes of frame step - lookahead
        (meaningless for a stream's first ``lookahead`` steps)."""
        feeds = {"mel": np.ascontiguousarray(mels, np.float32), "lookahead": self._la,
                 "pose_gaze": np.ascontiguousarray(pose_gaze, np.float32)}  # fmt: skip
        for i, name in enumerate(self._names):
            feeds[name] = states[0].nets[i] if len(states) == 1 else np.concatenate([s.nets[i] for s in states])
        with self._lock:
            out = self.session.run(None, feeds)
        for j, s in enumerate(states):
            s.nets = [o[j : j + 1] for o in out[1:]]
            s.steps += 1
        shapes: np.ndarray = out[0]
        return shapes
