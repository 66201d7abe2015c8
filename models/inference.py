"""The models' one inference backend: PyTorch modules exported to ONNX, run by ONNX Runtime.

``export`` writes a module to ONNX bytes (opset 17, batch dimensions dynamic, the model's config
in the metadata); ``exported`` does that once per weights and code and keeps the result in the
posetalk cache (exporting takes ~1 s); ``session`` opens it on the CPU (``CPUExecutionProvider``,
the ``onnxruntime`` wheel) or on CUDA (``onnxruntime-gpu``: TensorRT where it is installed, then
CUDA), one thread per call by default: the engine runs many small calls, batched across sessions."""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

OPSET = 17


def export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], inputs: Sequence[str], outputs: Sequence[str],
           batched: Sequence[str], metadata: dict[str, str] | None = None) -> bytes:  # fmt: skip
    """``module`` called on ``args`` as ONNX bytes; ``batched``: the inputs and outputs whose first
    dimension is the batch (dynamic)."""
    import onnx

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, args, buf, input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes={n: {0: "batch"} for n in batched}, opset_version=OPSET,
                          dynamo=False)  # fmt: skip
    model = onnx.load_from_string(buf.getvalue())
    for k, v in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    return bytes(model.SerializeToString())


def fingerprint(module: torch.nn.Module, *sources: Any, config: str = "") -> str:
    """A hash of ``module``'s weights, its ``config`` and the source of the code (modules,
    functions) that builds its graph."""
    h = hashlib.sha256(config.encode())
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    for src in sources:
        h.update(inspect.getsource(src).encode())
    h.update(f"{torch.__version__} opset {OPSET}".encode())
    return h.hexdigest()[:32]


def exported(name: str, key: str, make: Callable[[], bytes]) -> bytes:
    """The ONNX bytes ``make()`` gives, kept in the posetalk cache under ``name`` and ``key``."""
    from posetalk.models.render.avatar import cache_root

    path = cache_root() / "onnx" / f"{name}-{key}.onnx"
    try:
        return path.read_bytes()
    except OSError:
        pass
    data = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:  # a read-only cache: export again next time
        log.warning("cannot keep %s in the cache: %s", path, exc)
    return data


def providers(device: str) -> list[str]:
    """ONNX Runtime's providers for ``device`` ("cpu" or "cuda"), best first."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    have = ort.get_available_providers()
    wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in have]
    if not wanted:
        raise RuntimeError(f"ONNX Runtime has no CUDA provider here (it has {', '.join(have)}): "
                           "install the gpu extra (onnxruntime-gpu)")  # fmt: skip
    return [*wanted, "CPUExecutionProvider"]


def session(model: bytes | str | Path, device: str = "cpu", threads: int = 1) -> Any:
    """An ``onnxruntime.InferenceSession`` on ``device``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    return ort.InferenceSession(data, opts, providers=providers(device))


def max_abs(a: Sequence[np.ndarray], b: Sequence[torch.Tensor | np.ndarray]) -> float:
    """The largest absolute difference between two lists of arrays."""
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a, b, strict=True))
