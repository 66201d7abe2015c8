"""`posetalk export --format onnx`: the motion step and the pose student's hop as ONNX files that
ONNX Runtime runs with PyTorch's numbers (checked on export, printed), at any batch, with the
models' configs in their metadata; a format it does not write is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from posetalk.clients.cli import main
from posetalk.models import inference


def test_export_writes_checked_onnx_files(tmp_path: Path, capsys: Any) -> None:
    assert main(["export", "--format", "onnx", "--out", str(tmp_path), "--pose-steps", "2"]) == 0
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if line.startswith("wrote")]
    assert len(lines) == 2 and all(float(line.rsplit(" ", 1)[1]) < 1e-4 for line in lines), printed
    step, hop = tmp_path / "motion_step.onnx", tmp_path / "pose_hop_2.onnx"
    meta = {p.key: p.value for p in onnx.load(str(step)).metadata_props}
    assert "NetConfig(width=" in meta["coarse"] and meta["posetalk"] == "motion step"
    assert onnx.load(str(hop)).opset_import[0].version >= 17
    session = inference.session(step)
    for batch in (1, 5):  # the batch dimension is free
        feeds = {i.name: np.zeros([batch if d == "batch" else d for d in i.shape], np.float32)
                 for i in session.get_inputs() if i.name != "lookahead"}  # fmt: skip
        feeds["lookahead"] = np.array([2], np.int64)
        shapes = session.run(None, feeds)[0]
        assert shapes.shape == (batch, 21) and np.all((shapes >= 0) & (shapes <= 1))


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown format 'tflite'"):
        main(["export", "--format", "tflite", "--out", str(tmp_path)])
