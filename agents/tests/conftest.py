"""A real `posetalk serve` for the adapters' tests, started from the main environment (.venv):
the adapters' environment holds neither mediapipe nor torch."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    cmd = [str(ROOT / ".venv" / "bin" / "posetalk"), "serve", "--port", "0", "--size", "160", "--max-sessions", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    url = None
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        found = re.search(r"open (http://\S+)", line)
        url = found.group(1) if found else None
    if url is None:
        proc.kill()
        pytest.fail("posetalk serve did not start")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def sessions(url: str) -> int:
    with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=10) as r:
        return int(json.load(r)["sessions"])


def released(url: str, within_s: float = 5.0) -> bool:
    """Whether the server holds no session, waiting up to ``within_s`` (it closes a session as
    its socket goes)."""
    deadline = time.monotonic() + within_s
    while sessions(url):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def speech(seconds: float, rate: int) -> np.ndarray:
    """Syllable-like bursts of a 140 Hz buzz with a 4 kHz hiss, int16 at ``rate``."""
    t = np.arange(int(seconds * rate)) / rate
    on = np.sin(2 * np.pi * 4 * t) > 0.2
    buzz = np.sign(np.sin(2 * np.pi * 140 * t)) * 0.2 + 0.05 * np.sin(2 * np.pi * 4000 * t)
    return (buzz * on * 32767).astype(np.int16)
