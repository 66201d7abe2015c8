"""Running the trained motion models: audio in, the 21 blendshapes per 25 fps frame out.

The shipped weights live in models/motion/weights/ (see its MODEL_CARD.md). Blinks are a random
process the audio cannot predict, so the model's blink columns are topped up with blinks drawn
as in the corpus (more often in pauses), from a seeded generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from posetalk.models.face.params import INDEX
from posetalk.models.motion import checkpoint
from posetalk.models.motion.nets import MAX_LOOKAHEAD, MELS_PER_FRAME, N_MOUTH, FrameNet, NetConfig, advance, delay
from posetalk.models.motion.voice_norm import VoiceNorm, factors, of_config, warp_frequency
from posetalk.models.rates import FPS, SAMPLES_PER_FRAME

WEIGHTS = Path(__file__).parent / "weights"
BLINKS = [INDEX["eyeBlinkLeft"], INDEX["eyeBlinkRight"]]
SILENT_DBFS = -55.0  # a frame quieter than this (RMS, dB full scale) is silence: mouth at rest


def silent_frames(audio: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) True where a 40 ms frame of 16 kHz audio is below SILENT_DBFS. The nets leave a
    little jaw opening in silence (about 0.07); a gate on the level closes it exactly."""
    return 20 * np.log10(frame_rms(audio, frames) + 1e-12) < SILENT_DBFS


def frame_rms(audio: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) RMS of each 40 ms frame of 16 kHz audio (zero-padded or cut to ``frames``)."""
    padded = np.zeros(frames * SAMPLES_PER_FRAME, np.float64)
    n = min(len(audio), len(padded))
    padded[:n] = audio[:n]
    return np.sqrt((padded.reshape(frames, -1) ** 2).mean(1))


# RefineNet's closure fraction (mouthClose / jawOpen) read through a ramp: at or below the first
# value the lips stay as predicted, at or above the second they seal. Trained against a fraction that
# is 1 on the frames of a p/b/m and 0 elsewhere, the net answers with its confidence, which on an
# uncertain bilabial spreads over two or three frames at 0.3-0.5 and never shuts the lips; the ramp
# turns a confident-enough dip into a closure. Chosen on the validation voices (MODEL_CARD.md).
CLOSURE_RAMP = (0.1, 0.35)
JAW, CLOSE, FUNNEL = INDEX["jawOpen"], INDEX["mouthClose"], INDEX["mouthFunnel"]


def seal_closures(w: np.ndarray, ramp: tuple[float, float] = CLOSURE_RAMP) -> np.ndarray:
    """(..., >= 3) mouth weights with the closure fraction mapped through ``ramp`` (lo, hi):
    mouthClose = jawOpen x ramp(fraction), and mouthFunnel shrinks with it as FrameNet.shapes
    makes it. ``ramp`` (0, 1) changes nothing."""
    lo, hi = ramp
    if (lo, hi) == (0.0, 1.0):
        return w
    out = np.array(w, np.float32)
    jaw = out[..., JAW]
    frac = np.clip(out[..., CLOSE] / np.maximum(jaw, 1e-6), 0.0, 1.0)
    funnel = out[..., FUNNEL] / np.maximum(1.0 - frac, 1e-3)
    sealed = np.clip((frac - lo) / (hi - lo), 0.0, 1.0)
    out[..., CLOSE] = jaw * sealed
    out[..., FUNNEL] = np.minimum(funnel, 1.0) * (1.0 - sealed)
    return out


@dataclass
class MotionModel:
    coarse: FrameNet
    refine: FrameNet
    closure_ramp: tuple[float, float] = CLOSURE_RAMP  # (0, 1): RefineNet's fraction as it is

    @classmethod
    def load(cls, folder: str | Path = WEIGHTS, device: str = "cpu") -> MotionModel:
        folder = Path(folder)
        coarse = checkpoint.load(folder / "coarse.safetensors", "coarse", NetConfig, FrameNet)[0]
        refine = checkpoint.load(folder / "refine.safetensors", "refine", NetConfig, FrameNet)[0]
        return cls(coarse.to(device).eval(), refine.to(device).eval())

    @property
    def voice_norm(self) -> VoiceNorm | None:
        """The pitch normalisation the nets were trained with (None: none)."""
        return of_config(self.coarse.cfg)

    @torch.no_grad()
    def predict(
        self, audio: np.ndarray, lookahead: int = 2, pose_gaze: np.ndarray | None = None, refine: bool = True
    ) -> np.ndarray:
        """(T, 21) blendshapes for 16 kHz ``audio`` (T = ceil(len / 640)), at ``lookahead``
        frames (0..4); the mouth from RefineNet unless ``refine`` is False (CoarseNet alone)."""
        from posetalk.models.audio.mel import log_mel

        if not 0 <= lookahead <= MAX_LOOKAHEAD:
            raise ValueError(f"lookahead must be 0..{MAX_LOOKAHEAD} frames, got {lookahead}")
        t = int(np.ceil(len(audio) / SAMPLES_PER_FRAME))
        padded = np.zeros(t * SAMPLES_PER_FRAME, np.float32)
        padded[: len(audio)] = audio
        device = next(self.coarse.parameters()).device
        mel = log_mel(torch.from_numpy(padded)[None].to(device))
        norm = self.voice_norm
        if norm is not None:
            alpha = np.repeat(factors(audio, t, norm), MELS_PER_FRAME)[None, : mel.shape[2]]
            mel = warp_frequency(mel, alpha)
        pg = torch.zeros(1, t, 8, device=device)
        if pose_gaze is not None:
            pg[0] = torch.as_tensor(pose_gaze, dtype=torch.float32, device=device)
        y, _, _ = self.coarse(mel, delay(pg, lookahead), lookahead)
        out = advance(y, lookahead)
        if refine:
            r, _, _ = self.refine(mel, y[..., :N_MOUTH], lookahead)
            out = torch.cat([advance(r, lookahead), out[..., N_MOUTH:]], -1)
        result = out[0].cpu().numpy().astype(np.float32)
        if refine:
            result = seal_closures(result, self.closure_ramp)
        result[silent_frames(audio, t), :N_MOUTH] = 0.0
        return result


def add_blinks(expression: np.ndarray, audio: np.ndarray, seed: int = 0) -> np.ndarray:
    """Blinks drawn as in the corpus (visemes.blinks), with pauses found from the audio's energy."""
    from posetalk.models.data.phones import Phone
    from posetalk.models.data.visemes import blinks

    t = len(expression)
    rms = frame_rms(audio, t) + 1e-6
    quiet = 20 * np.log10(rms / (rms.max() + 1e-12)) < -35
    phones = [Phone("sil" if q else "AH", f / FPS, (f + 1) / FPS) for f, q in enumerate(quiet)]
    out = expression.copy()
    out[:, BLINKS] = np.maximum(out[:, BLINKS], blinks(phones, t, np.random.default_rng(seed)))
    return out
