"""Face landmarks from mediapipe's face mesh (478 points with irises) and person segmentation.

Landmarks are returned in pixels: x, y in the image, z scaled like x (mediapipe's convention),
smaller z nearer the camera.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from posetalk.models.face.topology import N_POINTS

_local = threading.local()

# mediapipe's z comes out flatter than the face it describes: with z as given, our warp turned
# by 25° of yaw re-tracked as about 20.5°. With z scaled by 1.3 the depth the renderer rotates
# and the depth the tracker reports agree (yaw ±25° re-tracks within 1.6° on the astronaut and
# its mirror image; 1.6 overshoots by up to 7°).
Z_GAIN = 1.2


@dataclass
class FaceFound:
    landmarks: np.ndarray  # (478, 3) float32 pixels
    faces_seen: int  # how many faces the detector saw; the largest is returned

    @property
    def width(self) -> float:
        """Face width in pixels (cheek to cheek)."""
        lm = self.landmarks
        return float(np.linalg.norm(lm[454, :2] - lm[234, :2]))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """mediapipe's C++ start-up chatter (TF Lite delegates, absl warnings) goes to the process's
    stderr: drop it while a graph starts, unless $POSETALK_VERBOSE is 1 (`posetalk -v`)."""
    if os.environ.get("POSETALK_VERBOSE") == "1":
        yield
        return
    # protobuf warns on every graph run, not only at start-up
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _started(key: str, make):  # type: ignore[no-untyped-def]
    """This thread's mediapipe graph ``key``, made by ``make()`` and run once on a blank image
    (where it logs its start-up), quietly."""
    graph = getattr(_local, key, None)
    if graph is None:
        with _quiet():
            graph = make()
            graph.process(np.zeros((64, 64, 3), np.uint8))
        setattr(_local, key, graph)
    return graph


def _face_mesh(static: bool):  # type: ignore[no-untyped-def]
    def make():  # type: ignore[no-untyped-def]
        import mediapipe as mp

        return mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static, max_num_faces=4, refine_landmarks=True, min_detection_confidence=0.5
        )

    return _started("mesh_static" if static else "mesh_video", make)


def find_faces(rgb: np.ndarray, static: bool = True) -> list[np.ndarray]:
    """All faces in an RGB uint8 image as (478, 3) pixel landmark arrays, largest first."""
    h, w = rgb.shape[:2]
    result = _face_mesh(static).process(np.ascontiguousarray(rgb))
    faces = []
    for face in result.multi_face_landmarks or []:
        lm = np.array([(p.x * w, p.y * h, p.z * w * Z_GAIN) for p in face.landmark], np.float32)
        if len(lm) == N_POINTS:
            faces.append(lm)
    faces.sort(key=lambda lm: -float(np.ptp(lm[:, 0]) * np.ptp(lm[:, 1])))
    return faces


def track(rgb: np.ndarray, static: bool = True) -> FaceFound | None:
    """The largest face in the image, or None."""
    faces = find_faces(rgb, static)
    if not faces:
        return None
    return FaceFound(faces[0], len(faces))


def segment_person(rgb: np.ndarray) -> np.ndarray:
    """Person probability (H, W) float32 in [0, 1] from mediapipe's selfie segmentation."""

    def make():  # type: ignore[no-untyped-def]
        import mediapipe as mp

        return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    mask = _started("segmenter", make).process(np.ascontiguousarray(rgb)).segmentation_mask
    return np.clip(mask, 0.0, 1.0).astype(np.float32)
