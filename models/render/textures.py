"""Textures prepare() paints: the background plate, eyeballs without irises, whole irises and
the mouth interior (gums, upper and lower teeth, cavity, tongue)."""

from __future__ import annotations

import cv2
import numpy as np


def background_plate(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The crop with the person removed and the hole filled from the surroundings."""
    size = rgb.shape[0]
    hole = (alpha > 0.15).astype(np.uint8)
    hole = cv2.dilate(hole, np.ones((9, 9), np.uint8))
    small = max(64, size // 4)
    rs = cv2.resize(rgb, (small, small), interpolation=cv2.INTER_AREA)
    hs = cv2.resize(hole, (small, small), interpolation=cv2.INTER_NEAREST)
    filled = cv2.inpaint(rs, hs, 5, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (0, 0), 1.5)
    up = cv2.resize(filled, (size, size), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), 2.0)[..., None]
    return (rgb * (1 - soft) + up * soft).astype(np.uint8)


def lum_sat(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel luminance (mean of the channels) and saturation ((max - min) / max) of an RGB image."""
    px = np.asarray(rgb, np.float32)
    top = px.max(-1)
    return px.mean(-1), (top - px.min(-1)) / np.maximum(top, 1.0)


def _polygon_mask(shape: tuple[int, int], poly: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return m.astype(bool)


def eyeball_texture(rgb: np.ndarray, eye_polys: list[np.ndarray], irises: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """The crop with each iris painted over in its eye's sclera colour."""
    out = rgb.copy()
    hw = rgb.shape[:2]
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    for poly, (centre, radius) in zip(eye_polys, irises, strict=True):
        eye = _polygon_mask(hw, poly)
        disk = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= (radius * 1.15) ** 2
        white = eye & ~disk
        if white.sum() >= 4:
            px = rgb[white].astype(np.float32)
            bright = px[px.sum(1) >= np.percentile(px.sum(1), 50)]
            colour = np.median(bright, 0)
        else:
            colour = np.array([220, 215, 210], np.float32)
        fill = disk & cv2.dilate(eye.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        out[fill] = colour.astype(np.uint8)
        # Soften the painted edge so it does not read as a sticker.
        blur = cv2.GaussianBlur(out, (0, 0), 1.0)
        ring = cv2.dilate(fill.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~fill
        out[ring] = blur[ring]
    return out


def iris_texture(rgb: np.ndarray, eye_polys: list[np.ndarray], irises: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """The crop with each iris completed as a whole disk where the lids hid part of it."""
    out = rgb.copy()
    hw = rgb.shape[:2]
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    for poly, (centre, radius) in zip(eye_polys, irises, strict=True):
        eye = _polygon_mask(hw, poly)
        disk = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= (radius + 1.5) ** 2
        hidden = disk & ~cv2.erode(eye.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        seen = disk & ~hidden
        if seen.sum() >= 4:
            out[hidden] = np.median(rgb[seen], 0).astype(np.uint8)
            mask = hidden.astype(np.uint8)
            out = cv2.inpaint(out, mask, 2, cv2.INPAINT_TELEA)
        else:
            out[disk] = (60, 45, 35)
    return out


# Mouth interior texture rows (fractions of its height), top to bottom: the upper rows ride the
# skull (gum, the upper teeth from root to edge, the cavity's top), the lower rows the jaw (the
# tongue's top, the lower teeth from edge to root, the floor).
V_GUM, V_ROOT, V_EDGE, V_CAVITY = 0.0, 0.10, 0.40, 0.43
V_TONGUE, V_LOWER_EDGE, V_LOWER_ROOT, V_FLOOR = 0.55, 0.68, 0.80, 1.0
# Visible crown widths from the midline out (incisors, canine, premolars, a molar), in mouth
# widths between the corners.
UPPER_TEETH = (0.105, 0.08, 0.07, 0.06, 0.055, 0.05)
LOWER_TEETH = (0.07, 0.065, 0.065, 0.06, 0.055, 0.05)
OVERSAMPLE = 4  # painted this many times larger, then averaged down: smooth edges


def _teeth(
    u: np.ndarray, v: np.ndarray, widths: tuple[float, ...], top: float, bottom: float, upper: bool
) -> np.ndarray:
    """Where a row of teeth covers the texture: teeth side by side from the midline (``u`` in mouth
    widths from it), a hairline apart, their free edge (the bottom of the upper row, the top of
    the lower) rounded at each side and rising toward the corners as a smile's arc does."""
    cover = np.zeros(u.shape, bool)
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    gap, height = 0.004, bottom - top
    x = np.abs(u)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        across = np.clip(np.minimum(x - a - gap / 2, b - gap / 2 - x) / (0.35 * (b - a)), 0.0, 1.0)
        inside = (x >= a + gap / 2) & (x <= b - gap / 2)
        cut = (0.08 * (b / 0.45) ** 2 + 0.12 * (1 - np.sqrt(np.clip(1 - (1 - across) ** 2, 0, 1)))) * height
        cover |= inside & ((v >= top) & (v <= bottom - cut) if upper else (v <= bottom) & (v >= top + cut))
    return cover


def mouth_texture(width: int, height: int, teeth: np.ndarray, lips: np.ndarray, corner_u: float) -> np.ndarray:
    """The mouth interior (height, width, 3) uint8 at the V_* rows: gums, upper teeth shaded under
    the lip and toward the corners, a dark cavity, the tongue in the palate's shadow, lower teeth.
    ``teeth`` and ``lips`` are RGB colours taken from the portrait; ``corner_u`` is where the
    mouth's corners fall in from each side (fraction of the width)."""
    h, w = height * OVERSAMPLE, width * OVERSAMPLE
    v = np.repeat(((np.arange(h) + 0.5) / h)[:, None], w, 1)
    u = np.repeat(((np.arange(w) + 0.5) / w - 0.5)[None, :], h, 0) / (1 - 2 * corner_u)  # ±0.5 at the corners
    lips, teeth = np.asarray(lips, np.float32), np.asarray(teeth, np.float32)
    cavity = lips * np.array([0.2, 0.13, 0.14], np.float32)
    tongue = lips * np.array([0.9, 0.55, 0.58], np.float32)
    img = np.empty((h, w, 3), np.float32)
    # Toward the corners the cavity fades into the lips' inner skin: no black notch where they meet.
    img[:] = cavity + (lips * 0.6 - cavity) * np.clip((np.abs(u) - 0.38) / 0.12, 0, 1)[..., None]
    img[v < V_ROOT] = lips * 0.85  # gum
    img[v >= V_LOWER_ROOT] = lips * 0.68
    # The tongue lies behind the lower teeth, its top in shadow, darker toward the corners.
    rise = np.clip((v - V_TONGUE) / (V_LOWER_EDGE - V_TONGUE) * 1.6, 0, 1) * np.clip(1 - np.abs(u), 0, 1)
    on_tongue = ((v >= V_TONGUE) & (v < V_LOWER_ROOT))[..., None]
    img = np.where(on_tongue, cavity + (tongue - cavity) * rise[..., None], img)
    # Teeth: darker toward the gum (under the lip) and toward the corners, where they turn away
    # into the mouth; the upper edge a little translucent; a thin shadow between neighbours.
    side = np.clip(1 - 0.6 * (np.abs(u) / 0.5) ** 1.6, 0.35, 1)
    down = np.clip((v - V_ROOT) / (V_EDGE - V_ROOT), 0, 1)
    upper_shade = (0.72 + 0.28 * np.clip(down / 0.55, 0, 1)) * np.where(down > 0.85, 0.94, 1.0) * side
    lower_shade = np.clip(side + 0.2, 0, 1) * (
        0.85 + 0.15 * np.clip((V_LOWER_ROOT - v) / (V_LOWER_ROOT - V_LOWER_EDGE), 0, 1)
    )
    rows = (
        (UPPER_TEETH, V_ROOT, V_EDGE, True, upper_shade, (v >= V_ROOT) & (v < V_EDGE - 0.15 * (V_EDGE - V_ROOT))),
        (LOWER_TEETH, V_LOWER_EDGE, V_LOWER_ROOT, False, lower_shade,
         (v > V_LOWER_EDGE + 0.15 * (V_LOWER_ROOT - V_LOWER_EDGE)) & (v <= V_LOWER_ROOT)),
    )  # fmt: skip
    for widths, top, bottom, upper, shade, behind in rows:  # behind: the teeth further back, in shadow
        img = np.where(behind[..., None], teeth * (0.5 * shade)[..., None], img)
        img = np.where(_teeth(u, v, widths, top, bottom, upper)[..., None], teeth * shade[..., None], img)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(img, 0, 255).astype(np.uint8)


def mouth_from_portrait(
    synthetic: np.ndarray,
    crop: np.ndarray,
    hole: np.ndarray,
    grid_tex: np.ndarray,
    grid_src: np.ndarray,
    quads: np.ndarray,
    rows: tuple[float, float] = (V_ROOT, V_CAVITY),
) -> np.ndarray:
    """The mouth texture with the portrait's visible mouth interior copied in.

    ``grid_tex`` are the interior grid's texture positions, ``grid_src`` where the same grid
    points sit in the crop; each texture pixel whose grid point falls inside the portrait's
    open mouth (``hole``) takes that crop pixel, the rest stays synthetic. Only the texture
    ``rows`` (fractions of its height: by default the upper teeth) take the photo: what it shows
    below them, stretched over the cavity as the jaw opens, would be a wall of teeth.
    """
    h, w = synthetic.shape[:2]
    map_x = np.full((h, w), -1.0, np.float32)
    map_y = np.full((h, w), -1.0, np.float32)
    for tri in quads:
        d = np.column_stack([grid_tex[tri], np.ones(3)])
        if abs(np.linalg.det(d)) < 1e-9:
            continue
        a = np.linalg.solve(d, grid_src[tri])  # texture (x, y, 1) -> crop (x, y)
        cell = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(cell, np.round(grid_tex[tri] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
        yy, xx = np.nonzero(cell)
        map_x[yy, xx] = a[0, 0] * xx + a[1, 0] * yy + a[2, 0]
        map_y[yy, xx] = a[0, 1] * xx + a[1, 1] * yy + a[2, 1]
    sampled = cv2.remap(crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.remap(hole.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)  # fmt: skip
    v = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    inside = np.where((map_x >= 0) & (v >= rows[0]) & (v < rows[1]), inside, 0.0)
    # Only the photo's teeth: where it shows the dark mouth beside them, the painted teeth stay.
    lum, painted = sampled.astype(np.float32).mean(2), synthetic.astype(np.float32).mean(2)
    inside = (inside * np.clip((lum - 0.5 * painted) / (0.3 * np.maximum(painted, 1.0)), 0.0, 1.0))[..., None]
    return np.clip(synthetic * (1 - inside) + sampled * inside, 0, 255).astype(np.uint8)
