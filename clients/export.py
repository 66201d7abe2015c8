"""`posetalk export --format onnx --out DIR`: the networks the engine runs, as ONNX files for other
runtimes (ONNX Runtime, TensorRT), each checked against PyTorch on export.

- ``motion_step.onnx``: CoarseNet + RefineNet, one video frame for a batch of streams, states in
  and out (models/motion/step.py has the inputs and outputs);
- ``pose_hop_{steps}.onnx``: one hop of the distilled pose student, its sampling steps unrolled
  and the pose VAE's decoder after them (models/pld/hop.py).

Opset 17, the batch dimension dynamic, the models' configs in the metadata. The check runs each
file in ONNX Runtime on random inputs at batch 3 and prints the largest absolute difference from
the PyTorch modules."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def export_onnx(out: Path, motion_weights: str | None = None, pose_weights: str | None = None,
                steps: int | None = None) -> dict[str, float]:  # fmt: skip
    """Write the files into ``out``; returns each one's largest difference from PyTorch."""
    from posetalk.models.motion.infer import MotionModel
    from posetalk.models.motion.runtime import export_step
    from posetalk.models.motion.step import MotionStep
    from posetalk.models.pld.evaluate import default_weights
    from posetalk.models.pld.hop import PoseHop, export_hop
    from posetalk.models.pld.stream import PoseModel

    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    diffs: dict[str, float] = {}

    motion = MotionModel.load(motion_weights) if motion_weights else MotionModel.load()
    path = out / "motion_step.onnx"
    path.write_bytes(export_step(motion))
    step = MotionStep(motion).eval()
    args = [torch.randn(3, 4, 80, generator=g) * 2 - 4, torch.randn(3, 8, generator=g) * 0.1, torch.tensor([2])]
    args += [torch.randn(s, generator=g).abs() * 0.5 for s in ((3, *s[1:]) for s in step.shapes)]
    diffs[path.name] = _check(path, step, args)

    pose = PoseModel.load(pose_weights or default_weights())
    n = pose.default_steps if steps is None else steps
    path = out / f"pose_hop_{n}.onnx"
    path.write_bytes(export_hop(pose.net, pose.vae, n))
    hop = PoseHop(pose.net, pose.vae, n).eval()
    args = [torch.randn(a.shape, generator=g) for a in hop.example(batch=3)]
    args[1], args[3] = (args[1] > -1).float(), (args[3] > 0).float()  # visibility and has_context are 0/1
    args[5] = torch.full((3,), pose.guidance_at(n))
    diffs[path.name] = _check(path, hop, args)
    return diffs


def _check(path: Path, module: torch.nn.Module, args: list[torch.Tensor]) -> float:
    from posetalk.models import inference

    session = inference.session(path)
    feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
    with torch.no_grad():
        want = module(*args)
    want = list(want) if isinstance(want, tuple) else [want]
    got = session.run(None, feeds)
    return inference.max_abs(got, [np.asarray(w) for w in want])


def main(args: argparse.Namespace) -> None:
    if args.format != "onnx":
        raise SystemExit(f"posetalk export: unknown format {args.format!r} (onnx)")
    diffs = export_onnx(Path(args.out), args.motion_weights, args.pose_weights, args.pose_steps)
    for name, d in diffs.items():
        print(f"wrote {Path(args.out) / name}: ONNX Runtime vs PyTorch, max abs difference {d:.2e}")
    worst = max(diffs.values())
    if worst > 1e-4:
        raise SystemExit(f"posetalk export: ONNX Runtime differs from PyTorch by {worst:.2e} (more than 1e-4)")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    x = sub.add_parser("export", help="the networks as ONNX files, checked against PyTorch")
    x.add_argument("--format", default="onnx", help="onnx (the only format)")
    x.add_argument("--out", required=True, help="folder to write into")
    x.add_argument("--motion-weights", help="a motion model folder (default: the shipped one)")
    x.add_argument("--pose-weights", help="a pose model folder with a student (default: the shipped one)")
    x.add_argument("--pose-steps", type=int, help="the student's sampling steps (default: its own)")
    x.set_defaults(func=main)
