"""Where the shipped pose model lives, and whether it has shipped.

``WEIGHTS`` holds pld_vae.safetensors and pld_student.safetensors (the distilled student that the
commands sample from) and/or pld_denoiser.safetensors (the teacher). Until a training run puts
them there, the commands that need the pose model fall back to procedural head motion and say so
(``missing`` tells them). Importing this module is cheap: no torch."""

from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"
VAE = "pld_vae.safetensors"
NETS = ("pld_student.safetensors", "pld_denoiser.safetensors")  # either one will do


def missing(folder: str | Path = WEIGHTS) -> list[str]:
    """The files ``PoseModel.load(folder)`` needs that are not there ([] when it can load)."""
    folder = Path(folder)
    out = [] if (folder / VAE).is_file() else [VAE]
    if not any((folder / name).is_file() for name in NETS):
        out.append(" or ".join(NETS))
    return out
