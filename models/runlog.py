"""What every training command shares: a CSV log that a resumed run appends to, the optimiser
state saved atomically beside the checkpoints, and a PNG plot of the losses."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any


def open_log(path: Path, fresh: bool, header: list[str]) -> tuple[IO[str], Any]:
    """The CSV file and its writer: a new file with ``header`` when ``fresh`` or missing, else
    appended to (a resumed run)."""
    new = fresh or not path.exists()
    log = open(path, "w" if new else "a", newline="")  # noqa: SIM115 (kept open for the run)
    writer = csv.writer(log)
    if new:
        writer.writerow(header)
        log.flush()
    return log, writer


def save_state(path: Path, state: Any) -> None:
    """torch.save through a temporary file, so an interrupted save leaves the previous state."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def read_log(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def plot_losses(csv_path: Path, png: Path, keys: tuple[str, ...]) -> None:
    """Each of ``keys`` that the log holds (positive values only) against the step, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(csv_path)
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    for key in keys:
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        if pts and all(v > 0 for _, v in pts):
            ax.plot(*zip(*pts, strict=True), label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
