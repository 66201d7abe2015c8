"""`posetalk inspect render`: the contact sheet of the rendered mouth and eyes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from posetalk.clients.cli import main


def test_inspect_render_writes_the_mouth_and_eyes_of_each_portrait(tmp_path: Path, capsys: Any) -> None:
    import matplotlib.cbook

    hopper = str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    out = tmp_path / "sheet.png"
    assert main(["inspect", "render", "--image", hopper, "--size", "256", "--out", str(out)]) in (0, None)
    assert "wrote" in capsys.readouterr().out
    sheet = cv2.imread(str(out))
    assert sheet is not None
    # Two rows of tiles (nine mouths over three eye crops) under each other, split by black lines;
    # the mouth tiles differ: the jaw opens.
    black_rows = np.flatnonzero((sheet.max(2) == 0).all(1))
    assert len(black_rows) >= 2 and sheet.shape[1] > 3 * sheet.shape[0]
    mouths = sheet[: black_rows[0]]
    w = mouths.shape[1] // 9
    rest, wide = mouths[:, :w].astype(float), mouths[:, 8 * w : 9 * w].astype(float)
    assert np.abs(rest - wide).mean() > 3.0
