"""prepare(image) -> Avatar: runs once per portrait (and is cached on disk by the image's hash).

Face mesh, person matte, the portrait's own pose/expression/gaze, the control mesh (face, hair
and head outline, neck, shoulders, border), the background plate and the textures for what
the photo does not show (eyeballs behind the irises, whole irises, the mouth interior).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from posetalk.models.errors import FaceTooSmallError, ImageTooLargeError, NoFaceError, NotAnImageError
from posetalk.models.face import topology as T
from posetalk.models.face.blendshapes import basis, jaw_displacement
from posetalk.models.face.fit import EYE_RADIUS, canonical_basis, fit_face
from posetalk.models.face.geometry import rotation_matrix
from posetalk.models.face.params import BLENDSHAPE_NAMES
from posetalk.models.face.tracker import segment_person, track
from posetalk.models.render import textures
from posetalk.models.render.avatar import CLEAN_BAND, Avatar, cache_dir, cache_key
from scipy.spatial import Delaunay

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000  # refuse to decode anything larger (a 40-megapixel photo)
MIN_FACE_PX = 64  # face width below which there is too little to animate
CROP_FACE_WIDTHS = 3.0  # the crop's side in face widths
PIVOT = np.array([0.0, 0.25, 0.65], np.float32)  # canonical head pivot: the top of the neck
MOUTH_COLS = 9
# Mouth interior rows, as offsets below the closed-lip line (face widths). On the skull: the gum's
# top and the upper teeth's roots, then their edge (TEETH_EDGE below the line unless the photo
# shows where it is) and the cavity's top just under it. On the jaw, a little behind: the tongue's
# top, the lower teeth's edge (just over the lower lip's inner edge), their roots, the floor.
MOUTH_UPPER_DY = (-0.10, -0.055)
TEETH_EDGE = 0.03
TEETH_EDGE_RANGE = (0.005, 0.07)
CAVITY_BELOW_EDGE = 0.004
MOUTH_LOWER_DY = (-0.06, -0.012, 0.03, 0.10)
JAW_ROWS_BEHIND = 0.01  # the lower rows sit deeper, so the upper teeth are drawn over them
RING_FACTORS = (1.25, 1.6, 2.1)  # head-outline rings, in multiples of the face-oval radius
LIP_CREASE_SHADE = 0.8  # the line between closed lips, as a fraction of the lip colour
RING_DEPTH = (0.45, 0.55, 0.6)  # their canonical depth


def decode_image(data: bytes) -> np.ndarray:
    """RGB uint8 from encoded image bytes, with size checks before the full decode."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below, with our own error
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageTooLargeError(
                    f"image is {w}×{h} = {w * h / 1e6:.0f} MP; the limit is {MAX_PIXELS / 1e6:.0f} MP"
                )
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise NotAnImageError(f"not a readable image ({exc.__class__.__name__})") from exc
    return np.ascontiguousarray(rgb)


def load_image(path: str | Path) -> tuple[np.ndarray, bytes]:
    """Read an image file; returns RGB uint8 and the raw bytes (the cache key)."""
    path = Path(path)
    if not path.is_file():
        raise NotAnImageError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        return decode_image(data), data
    except NotAnImageError as exc:
        raise NotAnImageError(f"{path}: {exc}") from None


def _crop(rgb: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A square crop around the head resized to size; returns (crop, 2×3 image->crop matrix)."""
    fit = fit_face(landmarks)
    centre = landmarks[list(T.FACE_OVAL), :2].mean(0) + [0.0, 0.3 * fit.scale]
    side = CROP_FACE_WIDTHS * fit.scale
    k = size / side
    m = np.array([[k, 0, size / 2 - k * centre[0]], [0, k, size / 2 - k * centre[1]]])
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return crop, m


def _solve_xy(av_s: float, r: np.ndarray, t: np.ndarray, xy: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Canonical points (N, 3) with given canonical depth z that project onto crop pixels xy."""
    # crop_xy = s·(R[:2,:2]·[a, b] + R[:2,2]·z) + t[:2]  ->  solve for (a, b)
    rhs = (xy - t[:2]) / av_s - np.outer(z, r[:2, 2])
    ab = np.linalg.solve(r[:2, :2], rhs.T).T
    return np.column_stack([ab, z])


def _loop(upper: tuple[int, ...], lower: tuple[int, ...]) -> list[int]:
    return list(upper) + list(lower[-2:0:-1])


def prepare(image: np.ndarray | str | Path, size: int = 512, *, use_cache: bool = True) -> Avatar:
    """Everything the renderer needs about one portrait. ``image``: a path or RGB uint8 array."""
    if isinstance(image, (str, Path)):
        rgb, data = load_image(image)
    else:
        rgb = np.asarray(image)
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.dtype != np.uint8:
            raise NotAnImageError(f"expected an RGB uint8 array, got {rgb.dtype} {rgb.shape}")
        if rgb.shape[0] * rgb.shape[1] > MAX_PIXELS:
            raise ImageTooLargeError(f"image is {rgb.shape[1]}×{rgb.shape[0]}")
        rgb = np.ascontiguousarray(rgb[..., :3])
        data = rgb.tobytes() + str(rgb.shape).encode()
    if size < 64 or size > 2048:
        raise ValueError(f"size must be within 64..2048, got {size}")
    path = cache_dir() / f"{cache_key(data, size)}.npz" if use_cache else None
    if path is not None and path.exists():
        try:
            return Avatar.load(path)
        except Exception as exc:  # a stale or damaged cache entry is rebuilt, never fatal
            log.warning("rebuilding avatar cache entry %s: %s", path.name, exc)
    avatar = _build(rgb, size)
    if path is not None:
        avatar.save(path)
    return avatar


def _build(rgb: np.ndarray, size: int) -> Avatar:
    found = track(rgb)
    if found is None:
        raise NoFaceError("no face found in the image")
    if found.width < MIN_FACE_PX:
        raise FaceTooSmallError(f"the face is {found.width:.0f} px wide; at least {MIN_FACE_PX} px are needed")
    if found.faces_seen > 1:
        log.warning("%d faces in the image; using the largest", found.faces_seen)
    crop, m = _crop(rgb, found.landmarks, size)
    k = m[0, 0]
    again = track(crop)
    if again is not None:
        lm = again.landmarks
    else:  # fall back to the first detection mapped into the crop
        lm = found.landmarks * k
        lm[:, :2] += m[:, 2]
    fit = fit_face(lm)
    s, r, t = fit.scale, fit.rotation, fit.offset
    basis_face = canonical_basis()
    src = fit.points.astype(np.float32)  # the portrait's own shape, canonical frame
    # Its neutral face, with the blendshape fields rebuilt on its own geometry (so that lids
    # and lips meet exactly on this face): a fixed point of ident = src - basis(ident)·w.
    ident = src - np.tensordot(fit.expression, basis_face, 1)
    for _ in range(2):
        basis_face = basis(ident)
        ident = src - np.tensordot(fit.expression, basis_face, 1)
    # The fit leaves a little of the portrait's own lip gap in its neutral face: close it, so
    # that all-zero weights give closed lips (the portrait's own weights then differ from the
    # photo by this snap at the inner lip line, about a pixel at 512²).
    for u, lo in zip(T.LIP_INNER_UPPER[1:-1], T.LIP_INNER_LOWER[1:-1], strict=True):
        mid = (ident[u] + ident[lo]) / 2
        ident[u], ident[lo] = mid, mid
    basis_face = basis(ident)

    def project(p: np.ndarray) -> np.ndarray:
        return (s * p @ r.T + t)[:, :2]

    verts: list[np.ndarray] = [ident]
    fields: list[np.ndarray] = [basis_face]
    uvs: list[np.ndarray] = [lm[:, :2]]
    tris: list[np.ndarray] = [T.triangles()]
    layers: list[int] = [3] * len(T.triangles())
    n = T.N_POINTS

    def add(v: np.ndarray, f: np.ndarray, uv: np.ndarray, tri: np.ndarray, layer: int) -> int:
        nonlocal n
        start = n
        verts.append(v.astype(np.float32))
        fields.append(f.astype(np.float32))
        uvs.append(uv.astype(np.float32))
        tris.append(tri + start)
        layers.extend([layer] * len(tri))
        n += len(v)
        return start

    def fan(count: int) -> np.ndarray:
        i = np.arange(count)
        return np.column_stack([np.zeros(count, int), 1 + i, 1 + (i + 1) % count])

    # Eyeballs: a fan under each eye opening, rigid with the head, textured without the iris.
    eye_loops = [
        _loop(T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER),
        _loop(T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER),
    ]
    iris_sets = [T.RIGHT_IRIS, T.LEFT_IRIS]
    eye_polys = [lm[loop, :2] for loop in eye_loops]
    iris_px = [
        (lm[ids[0], :2], float(np.linalg.norm(lm[list(ids[1:]), :2] - lm[ids[0], :2], axis=1).mean()))
        for ids in iris_sets
    ]
    for loop in eye_loops:
        ring = src[loop]
        centre = ring.mean(0)
        ring = centre + (ring - centre) * [1.35, 1.6, 1.0] + [0, 0, 0.01]
        pts = np.vstack([centre + [0, 0, 0.01], ring])
        add(pts, np.zeros((21, len(pts), 3)), project(pts) + [0, size], fan(len(loop)), 1)

    # Irises: a disk on each eyeball, rotated by gaze about the eyeball centre.
    iris_idx, centres = [], []
    rg = rotation_matrix(float(fit.gaze[0]), float(fit.gaze[1]), 0.0)
    for ids in iris_sets:
        c = src[ids[0]]
        rad = float(np.linalg.norm(src[list(ids[1:]), :2] - c[:2], axis=1).mean())
        ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        disk = np.vstack([c, c + np.column_stack([rad * np.cos(ang), rad * np.sin(ang), 0 * ang])])
        eye_centre = c - rg @ np.array([0.0, 0.0, -EYE_RADIUS])
        ahead = (disk - eye_centre) @ rg + eye_centre  # undo the portrait's own gaze
        start = add(ahead, np.zeros((21, len(disk), 3)), project(disk) + [0, 2 * size], fan(16), 2)
        iris_idx.append(np.arange(start, start + len(disk)))
        centres.append(eye_centre)

    # Upper lids in a blink: the photo's lash band rides down with each lid's edge, and between it
    # and where it was the lid's own skin unrolls (a strip drawn over the face, no height while
    # the eye is open), instead of the lashes and the crease's shadow sliding down as one dark
    # band that reads as a slit.
    lids = []
    for upper_ids, lower_ids, name in (
        (T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER, "eyeBlinkRight"),
        (T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER, "eyeBlinkLeft"),
    ):
        ids = list(upper_ids)
        band_px = _lash_band(crop, lm, ids, s)
        lifted = ident[ids] - [0.0, band_px / s, 0.0]
        still = basis_face[:, ids].copy()
        still[BLENDSHAPE_NAMES.index(name)] = 0.0
        edge_uv = lm[ids, :2] + [0, CLEAN_BAND * size]
        k = len(ids)
        quads = [[r * k + i, r * k + i + 1, (r + 1) * k + i] for r in range(2) for i in range(k - 1)]
        quads += [[r * k + i + 1, (r + 1) * k + i + 1, (r + 1) * k + i] for r in range(2) for i in range(k - 1)]
        skin_px = float(np.ptp(lm[ids, 1]) + np.ptp(lm[list(lower_ids), 1]))  # the eye's opening
        uv = np.vstack([edge_uv - [0, band_px + skin_px], edge_uv - [0, band_px], edge_uv])
        add(np.vstack([lifted, lifted, ident[ids]]), np.concatenate([still, basis_face[:, ids], basis_face[:, ids]], 1),
            uv, np.array(quads), 4)  # fmt: skip
        lids.append((lm[ids, :2], band_px, skin_px))

    # Mouth interior: rows behind the lips; upper rows ride with the skull, lower with the jaw.
    mid = (ident[list(T.LIP_INNER_UPPER)] + ident[list(T.LIP_INNER_LOWER)]) / 2
    xs = np.linspace(ident[61, 0] - 0.02, ident[291, 0] + 0.02, MOUTH_COLS)
    line = np.column_stack([xs, np.interp(xs, mid[:, 0], mid[:, 1]), np.interp(xs, mid[:, 0], mid[:, 2]) + 0.03])
    edge, photo_teeth = _teeth_edge(crop, lm, line, project)
    upper_dy = [np.full(MOUTH_COLS, d) for d in MOUTH_UPPER_DY] + [edge, edge + CAVITY_BELOW_EDGE]
    lower_dy = [np.full(MOUTH_COLS, d) for d in MOUTH_LOWER_DY]
    on_jaw = np.arange(len(upper_dy) + len(lower_dy)) >= len(upper_dy)
    v_rows = (textures.V_GUM, textures.V_ROOT, textures.V_EDGE, textures.V_CAVITY,
              textures.V_TONGUE, textures.V_LOWER_EDGE, textures.V_LOWER_ROOT, textures.V_FLOOR)  # fmt: skip
    grid = np.vstack([line + np.column_stack([0 * xs, dy, 0 * xs + JAW_ROWS_BEHIND * jaw])
                      for jaw, dy in zip(on_jaw, upper_dy + lower_dy, strict=True)])  # fmt: skip
    grid_fields = np.zeros((21, len(grid), 3))
    jaw_rows = np.repeat(on_jaw, MOUTH_COLS)
    grid_fields[0, jaw_rows] = jaw_displacement(ident, grid[jaw_rows])
    tex_w, tex_h = size // 2, size // 4
    tex_x0, tex_y0 = 4, size - tex_h - 4  # inside the third band
    us = tex_x0 + np.linspace(0, tex_w - 1, MOUTH_COLS)
    grid_uv = np.array([[u, 2 * size + tex_y0 + v * (tex_h - 1)] for v in v_rows for u in us])
    quads = []
    for rrow in range(len(v_rows) - 1):
        for col in range(MOUTH_COLS - 1):
            a = rrow * MOUTH_COLS + col
            quads += [[a, a + 1, a + MOUTH_COLS], [a + 1, a + MOUTH_COLS + 1, a + MOUTH_COLS]]
    add(grid, grid_fields, grid_uv, np.array(quads), 1)

    # Outer control points: head-outline rings that follow the head, and a fixed border.
    oval = np.array(T.FACE_OVAL)
    c2 = lm[oval, :2].mean(0)
    chin_y = lm[T.CHIN, 1]
    pts, depth = [], []
    for f, z in zip(RING_FACTORS, RING_DEPTH, strict=True):
        for p in lm[oval, :2]:
            pts.append(c2 + f * (p - c2))
            depth.append(z)
    ring = np.array(pts)
    keep = (ring >= 2).all(1) & (ring <= size - 3).all(1)
    ring, ring_z = ring[keep], np.array(depth)[keep]
    step = size / 8
    b = np.arange(0, size, step)
    edge = size - 1
    border = np.vstack(
        [
            np.column_stack([b, 0 * b]),
            np.column_stack([0 * b + edge, b]),
            np.column_stack([edge - b, 0 * b + edge]),
            np.column_stack([0 * b, edge - b]),
        ]
    )
    outer_src = np.vstack([ring, border]).astype(np.float32)
    head = np.clip(1.0 - (outer_src[:, 1] - chin_y) / (0.8 * s), 0.0, 1.0)
    head[len(ring) :] = 0.0
    outer_z = np.concatenate([ring_z, np.full(len(border), 0.7)])
    outer_can = _solve_xy(s, r, t, outer_src, outer_z).astype(np.float32)
    n_def = n
    pts2 = np.vstack([lm[oval, :2], outer_src])
    dl = Delaunay(pts2).simplices
    cent = pts2[dl].mean(1)
    inside = textures._polygon_mask((size, size), lm[oval, :2])
    ci = np.clip(np.round(cent).astype(int), 0, size - 1)
    dl = dl[~inside[ci[:, 1], ci[:, 0]]]
    index = np.concatenate([oval, n_def + np.arange(len(outer_src))])
    outer_tris = index[dl]
    tris.append(outer_tris)
    layers.extend([0] * len(outer_tris))
    uvs.append(outer_src)

    # Textures.
    alpha = segment_person(crop)
    face_region = cv2.dilate(inside.astype(np.uint8), np.ones((15, 15), np.uint8))
    alpha = np.maximum(alpha, face_region.astype(np.float32))
    plate = textures.background_plate(crop, alpha)
    # Store the foreground colour so that F·a + plate·(1-a) gives the crop back exactly.
    a3 = alpha[..., None]
    fg = np.where(a3 > 0.02, (crop - plate * (1 - a3)) / np.maximum(a3, 0.02), crop)
    fg = np.clip(np.round(fg), 0, 255).astype(np.uint8)
    # Face triangles never cover the eye and mouth openings, but when lids close or lips meet
    # they stretch and sample the pixels at the openings' edges. Fill the eye openings with the
    # surrounding lid colours, so that no eye white shows along the closed lids, and the mouth
    # opening with a dark lip crease, as between real closed lips, instead of teeth.
    eyes = np.any([textures._polygon_mask((size, size), poly) for poly in eye_polys], 0)
    fg = cv2.inpaint(fg, eyes.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    lips_px = np.median(crop[textures._polygon_mask((size, size), lm[list(T.LIP_OUTER_LOWER), :2])], 0)
    mouth_hole = _mouth_hole((size, size), lm)
    lips = cv2.inpaint(fg, mouth_hole.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32)
    shade = 1.0 - (1.0 - LIP_CREASE_SHADE) * cv2.GaussianBlur(mouth_hole.astype(np.float32), (3, 3), 0)
    fg = np.where(mouth_hole[..., None], np.round(lips * shade[..., None]), fg).astype(np.uint8)
    opaque = np.full((size, size, 1), 255, np.uint8)
    band1 = textures.eyeball_texture(crop, eye_polys, iris_px)
    band2 = textures.iris_texture(crop, eye_polys, iris_px)
    teeth_px = photo_teeth if photo_teeth is not None else _teeth_colour(crop, lm)
    corner_u = 0.02 / float(xs[-1] - xs[0])  # the grid reaches 0.02 past each corner
    mouth = textures.mouth_texture(tex_w, tex_h, teeth_px, lips_px, corner_u)
    if photo_teeth is not None:
        # The photo's own upper teeth, as the row they are: sample the crop where each texture
        # pixel's grid point sits in the portrait (the edge row was put at their edge).
        grid_src = project(grid + np.tensordot(fit.expression, grid_fields, 1))
        grid_tex = grid_uv - [tex_x0, 2 * size + tex_y0]
        mouth = textures.mouth_from_portrait(mouth, crop, _mouth_hole(crop.shape[:2], lm), grid_tex, grid_src,
                                             np.array(quads))  # fmt: skip
    band2[tex_y0 : tex_y0 + tex_h, tex_x0 : tex_x0 + tex_w] = mouth
    matte = np.round(alpha * 255).astype(np.uint8)[..., None]
    atlas = np.concatenate(
        [
            np.concatenate([fg, matte], 2),
            np.concatenate([band1, opaque], 2),
            np.concatenate([band2, opaque], 2),
            np.concatenate([_lid_skin(_clean_mouth(fg, lm, s), lids, s), matte], 2),
        ],
        0,
    )
    yaw, pitch, roll = fit.angles
    return Avatar(
        size=size,
        atlas=atlas,
        plate=plate,
        crop=crop,
        landmarks=lm.astype(np.float32),
        verts=np.vstack(verts).astype(np.float32),
        basis=np.concatenate(fields, 1).astype(np.float32),
        iris=np.array(iris_idx, np.int32),
        eye_centres=np.array(centres, np.float32),
        outer_can=outer_can,
        outer_src=outer_src,
        outer_head=head.astype(np.float32),
        uv=np.vstack(uvs).astype(np.float32),
        triangles=np.vstack(tris).astype(np.int32),
        layer=np.array(layers, np.int32),
        scale=float(s),
        rotation=r.astype(np.float32),
        offset=t.astype(np.float32),
        pivot=PIVOT.copy(),
        pose=np.array([yaw, pitch, roll, 0, 0, 0], np.float32),
        gaze=fit.gaze.astype(np.float32),
        expression=fit.expression.astype(np.float32),
        faces_seen=found.faces_seen,
    )


def _lash_band(crop: np.ndarray, lm: np.ndarray, upper: list[int], face_px: float) -> float:
    """Height in pixels of the dark band (lashes, liner, the crease's shadow) right above an upper
    lid's edge, at its middle: rows darker than 0.8 of the skin above it, 2 px to 0.03 face widths."""
    lum = textures.lum_sat(crop)[0]
    mid = lm[upper[len(upper) // 2], :2]
    x, y = int(round(mid[0])), int(round(mid[1]))
    col = lum[:, max(x - 2, 0) : x + 3].mean(1)
    top = int(max(y - 0.08 * face_px, 0))
    skin = float(np.median(col[top : max(int(y - 0.04 * face_px), top + 1)]))
    most = int(round(0.03 * face_px))
    rows = 0
    while rows < most and y - rows - 1 >= 0 and col[y - rows - 1] < 0.8 * skin:
        rows += 1
    return float(max(rows, 2))


def _lid_skin(band: np.ndarray, lids: list[tuple[np.ndarray, float, float]], face_px: float) -> np.ndarray:
    """Paint into ``band`` (the clean portrait) the skin each unrolling lid shows above its lash
    band (``lids``: the lid's edge in the crop, the band's and the skin's heights in pixels): the
    colour of the photo's lid skin a little above the crease's shadow, column by column, smoothed,
    a shade darker toward the lashes and the fold. The band's own top 2 px keep the photo: the
    open eye's strip is drawn over them and samples their edge (pale specks along the crease)."""
    out = band.copy()
    gap = max(2, int(round(0.012 * face_px)))
    rgb = band.astype(np.float32)
    for edge, band_px, skin_px in lids:
        lo, hi = edge - [0, band_px + 2], edge - [0, band_px + skin_px + 2]
        area = textures._polygon_mask(band.shape[:2], np.vstack([lo, hi[::-1]]))
        ys, xs = np.nonzero(area)
        if not len(xs):
            continue
        order = np.argsort(edge[:, 0])
        top_y = np.interp(np.arange(band.shape[1]), edge[order, 0], edge[order, 1]) - band_px - gap
        cols = np.arange(xs.min(), xs.max() + 1)
        samples = np.stack(
            [rgb[np.clip(np.round(top_y[c] - np.arange(4)).astype(int), 0, band.shape[0] - 1), c] for c in cols]
        )
        colour = cv2.GaussianBlur(np.median(samples, 1)[None], (0, 0), sigmaX=max(1.0, 0.02 * face_px))[0]
        t = np.clip((np.interp(xs, edge[order, 0], edge[order, 1]) - band_px - ys) / max(skin_px, 1.0), 0, 1)
        shade = 0.94 + 0.06 * np.sin(np.pi * t)  # darker at the lashes and at the fold
        out[ys, xs] = np.clip(colour[xs - cols[0]] * shade[:, None], 0, 255).astype(np.uint8)
    return out


def _clean_mouth(fg: np.ndarray, lm: np.ndarray, face_px: float) -> np.ndarray:
    """The portrait with what its open mouth shows around the lips (dark creases at a smile's
    corners, the shadow between lips, teeth the inner-lip outline missed) painted over from the
    lips and skin around them: what a folded lip triangle shows (``mesh.affines``)."""
    size = fg.shape[:2]
    lips = textures._polygon_mask(size, lm[_loop(T.LIP_OUTER_UPPER, T.LIP_OUTER_LOWER), :2])
    reach = max(3, int(round(0.04 * face_px)))
    region = cv2.dilate(lips.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)).astype(bool)
    lum, sat = textures.lum_sat(fg)
    typical = float(np.median(lum[region]))
    odd = region & ((lum < 0.75 * typical) | ((lum > 1.1 * typical) & (sat < 0.2)))
    odd = cv2.dilate(odd.astype(np.uint8), np.ones((3, 3), np.uint8))
    return cv2.inpaint(fg, odd, 3, cv2.INPAINT_TELEA)


def _mouth_hole(shape: tuple[int, int], lm: np.ndarray) -> np.ndarray:
    return textures._polygon_mask(shape, lm[_loop(T.LIP_INNER_UPPER, T.LIP_INNER_LOWER), :2])


def _teeth_colour(crop: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Teeth for a photo that shows none: off-white scaled to the portrait's brightness."""
    skin = crop[textures._polygon_mask(crop.shape[:2], lm[list(T.FACE_OVAL), :2])].astype(np.float32)
    return np.clip(np.array([238, 228, 205]) * min(1.0, skin.mean() / 150 + 0.3), 0, 255)


def _teeth_edge(
    crop: np.ndarray, lm: np.ndarray, line: np.ndarray, project: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Where the upper teeth end below the closed-lip ``line`` (face widths, one per interior
    column) and their colour, from the teeth the photo shows between its lips: pale, unsaturated
    pixels inside the inner lips, the lowest of them in each column. Without teeth in the photo
    (fewer than a quarter of the opening), TEETH_EDGE everywhere and no colour."""
    hole = _mouth_hole(crop.shape[:2], lm)
    rgb = crop.astype(np.float32)
    lum, sat = textures.lum_sat(rgb)
    skin = lum[textures._polygon_mask(crop.shape[:2], lm[list(T.FACE_OVAL), :2])]
    teeth = hole & (lum > 0.6 * float(np.median(skin))) & (sat < 0.35)
    default = np.full(len(line), TEETH_EDGE)
    if teeth.sum() < 30 or teeth.sum() < 0.25 * hole.sum():
        return default, None
    # Skull-fixed rows project linearly in their offset: two of them give each column's scale.
    top, zero = project(line + [0, -0.1, 0]), project(line)
    found = np.full(len(line), np.nan)
    for j, (a, b) in enumerate(zip(top, zero, strict=True)):
        x = int(round(b[0]))
        ys = np.nonzero(teeth[:, max(x - 1, 0) : x + 2].any(1))[0]
        if len(ys) and abs(b[1] - a[1]) > 1e-6:
            found[j] = -0.1 * (ys.max() + 0.5 - b[1]) / (a[1] - b[1])
    if np.isnan(found).all():
        return default, None
    edge = np.where(np.isnan(found), np.nanmedian(found), found)
    return np.clip(edge, *TEETH_EDGE_RANGE), np.median(rgb[teeth], 0)
