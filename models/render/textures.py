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


def mouth_texture(width: int, height: int, teeth: np.ndarray, lips: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mouth interior (height, width, 3) uint8 laid out top to bottom at fractions ``rows``:
    gums, upper teeth, dark cavity with the tongue at its floor, lower teeth, floor.

    ``rows`` = (upper_start, cavity_start, cavity_end, lower_end) as fractions of the height.
    """
    _, cav0, cav1, _ = rows  # cavity between the upper teeth's edge and the lower teeth's
    v = (np.arange(height, dtype=np.float32) + 0.5) / height
    u = (np.arange(width, dtype=np.float32) + 0.5) / width
    cavity = np.array([40, 18, 20], np.float32)
    gum = lips.astype(np.float32) * 0.75
    tongue = np.clip(lips.astype(np.float32) * [0.95, 0.6, 0.62] + [20, 0, 0], 0, 255)
    img = np.empty((height, width, 3), np.float32)
    img[:] = cavity
    upper_teeth = (v >= 0.15) & (v < cav0)
    lower_teeth = (v >= cav1) & (v < cav1 + 0.10)
    img[v < 0.15] = gum
    img[upper_teeth] = teeth
    img[lower_teeth] = teeth * 0.9
    # The tongue lies behind the lower teeth, filling the cavity's floor.
    img[(v >= cav0 + 0.6 * (cav1 - cav0)) & (v < cav1)] = tongue
    img[v >= cav1 + 0.10] = tongue * 0.8
    # Gaps between teeth: faint vertical lines, wider apart toward the middle.
    gaps = np.abs(np.sin(np.pi * (u - 0.5) * 9.0)) < 0.12
    img[np.ix_(upper_teeth | lower_teeth, gaps)] *= 0.82
    # The mouth is darker toward its corners and at the back.
    side = (1.0 - 0.65 * np.abs(u - 0.5) * 2) ** 1.5
    img *= side[None, :, None]
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    return np.clip(img, 0, 255).astype(np.uint8)


def mouth_from_portrait(
    synthetic: np.ndarray,
    crop: np.ndarray,
    hole: np.ndarray,
    grid_tex: np.ndarray,
    grid_src: np.ndarray,
    quads: np.ndarray,
) -> np.ndarray:
    """The mouth texture with the portrait's visible mouth interior copied in.

    ``grid_tex`` are the interior grid's texture positions, ``grid_src`` where the same grid
    points sit in the crop; each texture pixel whose grid point falls inside the portrait's
    open mouth (``hole``) takes that crop pixel, the rest stays synthetic.
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
    inside = np.where(map_x >= 0, inside, 0.0)[..., None]
    return np.clip(synthetic * (1 - inside) + sampled * inside, 0, 255).astype(np.uint8)
