"""The Avatar: everything about one portrait that the per-frame renderer needs, and its cache."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from posetalk.models.errors import AvatarCacheError

FORMAT_VERSION = 38  # bump when prepare() changes what it stores
CLEAN_BAND = 3  # the atlas band (of size rows) holding the clean portrait


@dataclass
class Avatar:
    size: int  # the output frame is size × size
    atlas: np.ndarray  # (4·size, size, 4) uint8 RGBA: person colour+matte | eyeballs | irises+mouth | clean portrait
    plate: np.ndarray  # (size, size, 3) uint8 background with the person removed and filled
    crop: np.ndarray  # (size, size, 3) uint8 the portrait's square crop, as it was
    landmarks: np.ndarray  # (478, 3) float32 crop pixels, as tracked
    verts: np.ndarray  # (N, 3) float32 canonical neutral positions of the deformable vertices
    basis: np.ndarray  # (21, N, 3) float32 blendshape displacement fields on those vertices
    iris: np.ndarray  # (2, K) int32 vertex indices of each eye's iris (rotated by gaze)
    eye_centres: np.ndarray  # (2, 3) float32 canonical eyeball centres (gaze pivots)
    outer_can: np.ndarray  # (M, 3) float32 canonical positions of the outer control points
    outer_src: np.ndarray  # (M, 2) float32 their crop-pixel positions in the portrait
    outer_head: np.ndarray  # (M,) float32 how much each follows the head (1 hair … 0 border)
    uv: np.ndarray  # (N + M, 2) float32 atlas pixel coordinates of every vertex
    triangles: np.ndarray  # (K, 3) int32 into [deformable | outer] vertices
    layer: np.ndarray  # (K,) int32 draw order: 0 outer, 1 eyeballs and mouth, 2 iris, 3 face
    scale: float  # source similarity: crop = scale · R · canonical + offset
    rotation: np.ndarray  # (3, 3) float32
    offset: np.ndarray  # (3,) float32
    pivot: np.ndarray  # (3,) float32 canonical head pivot (where the neck turns)
    pose: np.ndarray  # (6,) float32 the portrait's own pose
    gaze: np.ndarray  # (2,) float32 the portrait's own gaze
    expression: np.ndarray  # (21,) float32 the portrait's own blendshape weights
    faces_seen: int = 1

    @property
    def image(self) -> np.ndarray:
        """The source crop, RGB uint8 (size, size, 3)."""
        return self.crop

    @property
    def alpha(self) -> np.ndarray:
        """The person matte of the source crop, float32 (size, size) in [0, 1]."""
        return self.atlas[: self.size, :, 3].astype(np.float32) / 255.0

    @property
    def clean_row(self) -> float:
        """Where the clean portrait starts in the atlas (rows below the portrait's own)."""
        return float(CLEAN_BAND * self.size)

    @property
    def n_deform(self) -> int:
        return len(self.verts)

    def save(self, path: Path) -> None:
        arrays = {k: np.asarray(v) for k, v in asdict(self).items()}
        arrays["format_version"] = np.asarray(FORMAT_VERSION)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Avatar:
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format_version"]) != FORMAT_VERSION:
                    raise AvatarCacheError(f"{path}: cache format {int(z['format_version'])}")
                kw = {}
                for f in fields(cls):
                    v = z[f.name]
                    kw[f.name] = v.item() if v.ndim == 0 else v
        except (OSError, KeyError, ValueError) as exc:
            raise AvatarCacheError(f"{path}: {exc}") from exc
        kw["size"] = int(kw["size"])
        kw["faces_seen"] = int(kw["faces_seen"])
        kw["scale"] = float(kw["scale"])
        return cls(**kw)


def cache_root() -> Path:
    """posetalk's cache folder: $POSETALK_CACHE, else ~/.cache/posetalk (prepared portraits, TLS)."""
    return Path(os.environ.get("POSETALK_CACHE") or Path.home() / ".cache" / "posetalk")


def cache_dir() -> Path:
    path = cache_root() / "avatars"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(image_bytes: bytes, size: int) -> str:
    h = hashlib.sha256(image_bytes).hexdigest()[:32]
    return f"{h}_{size}_v{FORMAT_VERSION}"
