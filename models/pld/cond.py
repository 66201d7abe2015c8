"""How a window is laid out for the denoiser, shared by training and streaming so the two see
exactly the same inputs::

    frames:  [ context: K committed | window: W generated                       ]
    audio:   [ heard                | hop + lookahead heard | not yet heard (0) ]

Frame f of the layout covers audio samples [f*640, (f+1)*640) of the layout's audio. Audio the
stream has not heard is zeroed and flagged invisible; the log-mel is causal, so zeroing the future
changes no visible mel frame. (The training windows themselves, made from the corpus: windows.py.)"""

from __future__ import annotations

import torch
from posetalk.models.pld.denoiser import DenoiserConfig
from posetalk.models.rates import SAMPLES_PER_FRAME


def visibility(cfg: DenoiserConfig, heard_from: torch.Tensor, heard_to: torch.Tensor) -> torch.Tensor:
    """(B, K+W) 1.0 where layout frame f has been heard: heard_from <= f < heard_to, each (B,)."""
    f = torch.arange(cfg.context + cfg.window, device=heard_to.device)[None]
    return ((f >= heard_from[:, None]) & (f < heard_to[:, None])).float()


def make_cond(
    cfg: DenoiserConfig,
    audio: torch.Tensor,
    context: torch.Tensor,
    has_context: torch.Tensor,
    visible: torch.Tensor,
    prompt: torch.Tensor,
    guidance: torch.Tensor | float = 1.0,
) -> dict[str, torch.Tensor]:
    """The denoiser's ``cond``: ``audio`` (B, (K+W)*640) at 16 kHz, ``context`` (B, K, 8)
    normalised frames, ``has_context`` (B,), ``visible`` (B, K+W), ``prompt`` (B, 384)."""
    from posetalk.models.audio.mel import log_mel

    b = audio.shape[0]
    keep = visible.repeat_interleave(SAMPLES_PER_FRAME, 1)
    mel = log_mel(audio * keep)  # (B, 80, 4(K+W))
    return {
        "prompt": prompt,
        "context": context * has_context.reshape(b, 1, 1),
        "has_context": has_context.float(),
        "mel": mel,
        "visible": visible,
        "guidance": torch.as_tensor(guidance, dtype=torch.float32, device=audio.device).expand(b),
    }
