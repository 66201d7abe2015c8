"""Shared fixtures: the astronaut portrait, its variants, prepared avatars and measurements."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

if TYPE_CHECKING:
    from posetalk.models.motion.infer import MotionModel

os.environ.setdefault("POSETALK_CACHE", tempfile.mkdtemp(prefix="posetalk-test-cache-"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def make_variants(img: np.ndarray) -> dict[str, np.ndarray]:
    """The astronaut mirrored, scaled, rotated ±10°, shifted and relit."""
    h, w = img.shape[:2]
    rot = {
        f"rotated{a:+d}": cv2.warpAffine(
            img, cv2.getRotationMatrix2D((w / 2, h / 2), a, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT
        )
        for a in (10, -10)
    }
    ramp = np.linspace(0.55, 1.3, w)[None, :, None]
    return {
        "original": img,
        "mirrored": np.ascontiguousarray(img[:, ::-1]),
        "scaled": cv2.resize(img, (int(w * 1.5), int(h * 1.5)), interpolation=cv2.INTER_CUBIC),
        **rot,
        "shifted": cv2.warpAffine(img, np.float32([[1, 0, -50], [0, 1, 35]]), (w, h), borderMode=cv2.BORDER_REFLECT),
        "relit": np.clip(img * ramp + 12, 0, 255).astype(np.uint8),
    }


@pytest.fixture(scope="session")
def variants(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    return make_variants(astronaut)


@pytest.fixture(scope="session")
def avatar(astronaut: np.ndarray):  # type: ignore[no-untyped-def]
    from posetalk.models.render import prepare

    return prepare(astronaut)


@pytest.fixture(scope="session")
def cpu_renderer(avatar):  # type: ignore[no-untyped-def]
    from posetalk.models.render import make_renderer

    return make_renderer(avatar, "cpu")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def pose_with(avatar, yaw=None, pitch=None, roll=None):  # type: ignore[no-untyped-def]
    """The avatar's own pose with some angles (degrees) replaced."""
    p = avatar.pose.copy()
    for i, v in enumerate((yaw, pitch, roll)):
        if v is not None:
            p[i] = np.radians(v)
    return p


def random_motion(avatar, n: int, seed: int):  # type: ignore[no-untyped-def]
    """n frames around the avatar's own pose: random turns, shifts, gaze, sparse blendshapes."""
    rng = np.random.default_rng(seed)
    pose = np.repeat(avatar.pose[None], n, 0)
    pose[:, :3] += rng.uniform(-0.35, 0.35, (n, 3)) * [1, 0.6, 0.6]
    pose[:, 3:5] += rng.uniform(-0.05, 0.05, (n, 2))
    gaze = rng.uniform(-0.3, 0.3, (n, 2)).astype(np.float32)
    expr = (rng.uniform(0, 1, (n, 21)) * (rng.uniform(size=(n, 21)) < 0.3)).astype(np.float32)
    return pose, gaze, expr


@pytest.fixture(scope="session")
def small_avatar(astronaut: np.ndarray):  # type: ignore[no-untyped-def]
    """The astronaut prepared at 128 px: for tests where the picture's size does not matter."""
    from posetalk.models.render import prepare

    return prepare(astronaut, size=128)


@pytest.fixture(scope="session")
def spoken() -> np.ndarray:
    """A sentence of 16 kHz speech from espeak-ng (about four seconds)."""
    from posetalk.models.data import tts

    if tts.available_engines().get("espeak-ng") is not None:
        pytest.skip("espeak-ng is not installed (scripts/setup installs it)")
    text = "Hello there. Could you tell me the way to the station, please?"
    audio = np.asarray(tts.synthesize(tts.Voice("espeak-ng", "en-us"), text).audio, np.float32)
    return audio


@pytest.fixture(scope="session")
def real_spoken() -> np.ndarray:
    """About eight seconds of real recorded speech at 16 kHz: the English Asterisk voice's first
    test-split prompts, end to end (the Debian package scripts/setup installs)."""
    from posetalk.models.data import real
    from posetalk.models.data.phones import SAMPLE_RATE

    voice = real.VOICE_NAMES["en"]
    if real.missing_packages(voice):
        pytest.skip("the Asterisk prompt sets are not installed (scripts/setup installs them)")
    parts, total = [], 0
    for p in real.prompts(voice):
        if real.split_of(voice, p.text) == "test":
            parts.append(real.decode(p.path))
            total += len(parts[-1])
            if total >= 8 * SAMPLE_RATE:
                break
    return np.concatenate(parts)[: 8 * SAMPLE_RATE].astype(np.float32)


@pytest.fixture(scope="session")
def motion_model() -> MotionModel:
    """The shipped motion models (CoarseNet + RefineNet)."""
    from posetalk.models.motion.infer import MotionModel

    return MotionModel.load()
