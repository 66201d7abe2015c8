"""Checkpoints: safetensors files with the model's architecture config (a frozen dataclass)
and its kind in the metadata. Loading is strict: a missing or unknown tensor, a shape that does
not match, or a different kind raises CheckpointError. Runtime choices are not stored."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from posetalk.models.errors import CheckpointError

C = TypeVar("C")


def save(path: str | Path, model: torch.nn.Module, config: Any, kind: str, extra: dict[str, Any] | None = None) -> None:
    """Write ``model``'s weights with ``config`` (a dataclass) and ``kind`` in the metadata;
    ``extra`` (JSON-able: step, metrics) goes beside them. Written atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": kind, "config": json.dumps(dataclasses.asdict(config)), "extra": json.dumps(extra or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def read(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Tensors, config dict and extra dict of a checkpoint of ``kind``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {meta.get('kind')!r} model, not {kind!r}")
    return tensors, json.loads(meta["config"]), json.loads(meta.get("extra", "{}"))


def load(path: str | Path, kind: str, config_cls: type[C], build: Any) -> tuple[Any, C, dict[str, Any]]:
    """Build ``build(config)`` from the stored config and load its weights strictly."""
    tensors, cfg, extra = read(path, kind)
    try:
        config = config_cls(**cfg)
    except TypeError as exc:
        raise CheckpointError(f"{path}: config does not fit {config_cls.__name__}: {exc}") from exc
    model = build(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the model: {exc}") from exc
    return model, config, extra
