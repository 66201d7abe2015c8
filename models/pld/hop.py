"""One hop of the distilled pose student as a single graph: what `posetalk export` writes to ONNX
and ONNX Runtime runs in ``PoseStream`` (the consistency sampler's few steps unrolled, then the
VAE decoder).

``PoseHop(model, steps).forward(mel, visible, context, has_context, prompt, guidance, x[, noise])``:
``mel`` (B, 80, 4(K+W)) log-mel of the window's heard audio (zeros after it), ``visible`` (B, K+W)
0/1 per frame, ``context`` (B, K, 8) the normalised committed frames, ``has_context`` (B,) 0/1,
``prompt`` (B, 384) the prompt's sentence embedding, ``guidance`` (B,) the guidance scale (0: the
prompt is ignored), ``x`` (B, W/4, latent) the starting noise times the first noise level,
``noise`` (B, steps - 1, W/4, latent) the re-noising noise (absent for one step) -> (B, W, 8) the
window's normalised frames. The same modules as ``PoseStream``'s PyTorch path (samplers.Denoiser,
sample_consistency, PoseVAE.decode_raw): tests/test_pld_runtime.py holds the two together."""

from __future__ import annotations

import torch
from posetalk.models import inference
from posetalk.models.errors import PoseModelError
from posetalk.models.pld.samplers import Denoiser, consistency_sigmas, sample_consistency
from posetalk.models.pld.text import dim as text_dim
from torch import nn


class PoseHop(nn.Module):
    """See the module docstring."""

    def __init__(self, net: nn.Module, vae: nn.Module, steps: int) -> None:
        super().__init__()
        if not net.cfg.consistency or net.guidance is None:  # type: ignore[union-attr]
            raise PoseModelError("only a distilled student (one pass, its own guidance input) runs as one graph")
        self.net, self.vae, self.steps = net, vae, steps
        self.denoiser = Denoiser(net)  # type: ignore[arg-type]
        self.sigmas = consistency_sigmas(steps)

    def forward(self, mel: torch.Tensor, visible: torch.Tensor, context: torch.Tensor, has_context: torch.Tensor,
                prompt: torch.Tensor, guidance: torch.Tensor, x: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        cond = {"prompt": prompt, "context": context * has_context[:, None, None], "has_context": has_context,
                "mel": mel, "visible": visible, "guidance": guidance}  # fmt: skip
        steps_first = noise.transpose(0, 1) if noise is not None else None
        z = sample_consistency(self.denoiser, x, self.sigmas, cond=cond, noise=steps_first)
        vae = self.vae
        return vae.decode_raw(z * vae.z_std + vae.z_mean)  # type: ignore[operator]

    def example(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """Inputs of the right shapes (zeros; the noise present only with more than one step)."""
        cfg = self.net.cfg  # type: ignore[union-attr]
        frames = cfg.context + cfg.window
        args = [torch.zeros(batch, 80, 4 * frames), torch.zeros(batch, frames), torch.zeros(batch, cfg.context, 8),
                torch.zeros(batch), torch.zeros(batch, text_dim(cfg.text_encoder)), torch.ones(batch),
                torch.zeros(batch, cfg.window // 4, cfg.latent)]  # fmt: skip
        if self.steps > 1:
            args.append(torch.zeros(batch, self.steps - 1, cfg.window // 4, cfg.latent))
        return tuple(args)


INPUTS = ["mel", "visible", "context", "has_context", "prompt", "guidance", "x", "noise"]


def export_hop(net: nn.Module, vae: nn.Module, steps: int) -> bytes:
    hop = PoseHop(net, vae, steps).eval()
    args = hop.example()
    names = INPUTS[: len(args)]
    meta = {"posetalk": "pose student hop", "denoiser": repr(net.cfg), "vae": repr(vae.cfg), "steps": str(steps)}  # type: ignore[union-attr]
    with torch.no_grad():
        return inference.export(hop, args, names, ["frames"], [*names, "frames"], meta)


def hop_bytes(net: nn.Module, vae: nn.Module, steps: int) -> bytes:
    """``export_hop``, from the cache when these weights, steps and code were exported before."""
    import sys

    import posetalk.models.pld.denoiser as denoiser_module
    import posetalk.models.pld.samplers as samplers_module
    import posetalk.models.pld.vae as vae_module

    key = inference.fingerprint(nn.ModuleList([net, vae]), sys.modules[__name__], denoiser_module, samplers_module,
                                vae_module, config=repr((net.cfg, vae.cfg)))  # fmt: skip
    return inference.exported(f"pose-hop{steps}", key, lambda: export_hop(net, vae, steps))
