"""The server's portraits: uploaded images checked against limits, prepared once (off the event
loop, one at a time), and kept by id.

An avatar's id is derived from the image's bytes, so uploading the same photo twice prepares it
once and gives the same id. ``models.render.prepare`` also caches on disk, so a restart does not
repeat the face analysis either. At most ``capacity`` avatars stay in memory (least recently used
ones are forgotten; the default portrait is kept)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from posetalk.models.errors import ImageTooLargeError, NotAnImageError
from posetalk.streaming.errors import UnknownAvatarError

if TYPE_CHECKING:
    from posetalk.models.render import Avatar

DEFAULT = "default"


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 10 * 2**20  # the request body (enforced by the HTTP layer: 413)
    max_side: int = 4096  # pixels, width or height, checked from the header before decoding


def check_image(data: bytes, limits: UploadLimits) -> np.ndarray:
    """RGB uint8 from encoded image bytes, after the size checks (ImageTooLargeError,
    NotAnImageError)."""
    from PIL import Image, UnidentifiedImageError
    from posetalk.models.render.prepare import decode_image

    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"the upload is {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise NotAnImageError(f"not a readable image ({exc.__class__.__name__})") from exc
    if max(w, h) > limits.max_side:
        raise ImageTooLargeError(f"the image is {w}×{h} px; the limit is {limits.max_side} px a side")
    return decode_image(data)


class AvatarStore:
    def __init__(self, size: int, limits: UploadLimits | None = None, capacity: int = 32) -> None:
        self.size = size
        self.limits = limits or UploadLimits()
        self.capacity = capacity
        self._avatars: OrderedDict[str, Avatar] = OrderedDict()
        self._thumbs: dict[str, bytes] = {}
        self._pending: dict[str, asyncio.Future[Avatar]] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="posetalk-prepare")  # one at a time

    def __contains__(self, avatar_id: str) -> bool:
        return avatar_id in self._avatars

    def __len__(self) -> int:
        return len(self._avatars)

    def ids(self) -> list[str]:
        return list(self._avatars)

    def get(self, avatar_id: str) -> Avatar:
        avatar = self._avatars.get(avatar_id)
        if avatar is None:
            raise UnknownAvatarError(f"no avatar {avatar_id!r} on this server (upload one: POST /avatars)")
        self._avatars.move_to_end(avatar_id)
        return avatar

    def thumbnail(self, avatar_id: str) -> bytes:
        """The prepared portrait as PNG."""
        if avatar_id not in self._thumbs:
            import cv2

            ok, png = cv2.imencode(".png", self.get(avatar_id).image[..., ::-1])
            self._thumbs[avatar_id] = png.tobytes() if ok else b""
        return self._thumbs[avatar_id]

    async def add(self, data: bytes) -> str:
        """Check, decode and prepare an uploaded image; its id. Raises ImageTooLargeError,
        NotAnImageError, NoFaceError or FaceTooSmallError."""
        avatar_id = hashlib.sha256(data).hexdigest()[:16]
        if avatar_id not in self._avatars:
            await self._prepare(avatar_id, lambda: check_image(data, self.limits))
        return avatar_id

    async def add_default(self, image: str | Path | None) -> str:
        """The server's default portrait: ``image``, or the bundled astronaut."""

        def load() -> np.ndarray | Path:
            if image is not None:
                return Path(image)
            import skimage.data

            astronaut: np.ndarray = skimage.data.astronaut()  # type: ignore[no-untyped-call]
            return astronaut

        await self._prepare(DEFAULT, load)
        return DEFAULT

    async def _prepare(self, avatar_id: str, load: Callable[[], np.ndarray | Path]) -> Avatar:
        pending = self._pending.get(avatar_id)
        if pending is not None:  # the same image is being prepared for another request
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        size = self.size

        def work() -> Avatar:
            from posetalk.models.render import prepare

            return prepare(load(), size=size)

        future = loop.run_in_executor(self._pool, work)
        self._pending[avatar_id] = future
        try:
            avatar = await future
        finally:
            self._pending.pop(avatar_id, None)
        self._avatars[avatar_id] = avatar
        while len(self._avatars) > self.capacity:
            oldest = next(k for k in self._avatars if k != DEFAULT)
            del self._avatars[oldest]
            self._thumbs.pop(oldest, None)
        return avatar

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
