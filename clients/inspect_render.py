"""`posetalk inspect render`: contact sheets of the rendered mouth and eyes at 3x, one row per
portrait, to look at before a renderer change is called done."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from posetalk.models.data.visemes import VISEMES
from posetalk.models.face import topology as T
from posetalk.models.face.params import INDEX, N_BLENDSHAPES
from posetalk.models.render import make_renderer
from posetalk.models.render.avatar import Avatar


def _weights(named: dict[str, float]) -> np.ndarray:
    e = np.zeros(N_BLENDSHAPES, np.float32)
    for name, w in named.items():
        e[INDEX[name]] = w
    return e


# The mouth in the shapes of speech (the corpus's own viseme targets), wide open and smiling.
MOUTH_SHAPES: dict[str, np.ndarray] = {
    "rest": _weights({}),
    "/a/": _weights(VISEMES["AA"][0]),
    "/o/": _weights(VISEMES["OW"][0]),
    "/u/": _weights(VISEMES["UW"][0]),
    "/m/": _weights(VISEMES["M"][0]),
    "/f/": _weights(VISEMES["F"][0]),
    "smile": _weights({"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8}),
    "jaw 0.8": _weights({"jawOpen": 0.8}),
    "jaw 1": _weights({"jawOpen": 1.0}),
}
EYE_SHAPES: dict[str, np.ndarray] = {
    "open": _weights({}),
    "half": _weights({"eyeBlinkLeft": 0.5, "eyeBlinkRight": 0.5}),
    "shut": _weights({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}),
}


def _tile(frame: np.ndarray, centre: np.ndarray, half: tuple[float, float], scale: int, label: str) -> np.ndarray:
    """The frame's box around ``centre`` (half width, half height in pixels), enlarged ``scale``x."""
    hw, hh = half
    m = np.array([[scale, 0, scale * (hw - centre[0])], [0, scale, scale * (hh - centre[1])]], np.float32)
    out = cv2.warpAffine(frame, m, (round(2 * hw * scale), round(2 * hh * scale)), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    cv2.putText(out, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def render_sheet(avatar: Avatar, scale: int = 3) -> np.ndarray:
    """The mouth in each of MOUTH_SHAPES above both eyes in each of EYE_SHAPES (RGB)."""
    renderer = make_renderer(avatar, "cpu")
    lm = avatar.landmarks
    pose, gaze = avatar.pose.copy(), avatar.gaze.copy()  # as in the photo, where its landmarks are
    mouth_w = float(np.linalg.norm(lm[291, :2] - lm[61, :2]))
    mouth_c = (lm[61, :2] + lm[291, :2]) / 2 + [0.0, 0.25 * mouth_w]
    mouth_half = (0.85 * mouth_w, 0.75 * mouth_w)
    eyes = lm[list(T.RIGHT_EYE_UPPER + T.LEFT_EYE_UPPER + T.RIGHT_EYE_LOWER + T.LEFT_EYE_LOWER), :2]
    eyes_c = (eyes.min(0) + eyes.max(0)) / 2
    eye_span = float(eyes[:, 0].max() - eyes[:, 0].min())
    eyes_half = (0.6 * eye_span, 0.75 * mouth_half[1])
    mouths = [_tile(renderer.render_frame(pose, gaze, e), mouth_c, mouth_half, scale, label)
              for label, e in MOUTH_SHAPES.items()]  # fmt: skip
    eyes = [_tile(renderer.render_frame(pose, gaze, e), eyes_c, eyes_half, scale, label)
            for label, e in EYE_SHAPES.items()]  # fmt: skip
    return _stack([_row(mouths), _row(eyes)])


def _row(tiles: list[np.ndarray]) -> np.ndarray:
    height = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 2, cv2.BORDER_CONSTANT, value=(0, 0, 0)) for t in tiles]
    return np.concatenate(tiles, 1)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    rows = [cv2.copyMakeBorder(r, 0, 2, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(0, 0, 0)) for r in rows]
    return np.concatenate(rows, 0)


def write_sheet(avatars: list[Avatar], out: str | Path, scale: int = 3) -> Path:
    """render_sheet of each avatar, one under the other, written as a PNG."""
    sheet = _stack([render_sheet(a, scale) for a in avatars])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {out}")
    return out
