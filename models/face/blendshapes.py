"""The 21 ARKit blendshapes as displacement fields on the 478-point face mesh.

Each field is built from the geometry of a neutral face shape in canonical units (face width 1,
x right, y down, z away from the camera): anchors on the lip, eyelid and brow contours move as
the ARKit name says, and nearby skin follows with a Gaussian falloff. A shape is then
``neutral + Σ w_i · basis[i]``: linear, so fitting is least squares and rendering a matmul.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from posetalk.models.face import topology as T
from posetalk.models.face.params import BLENDSHAPE_NAMES, N_BLENDSHAPES

JAW_ANGLE = 0.55  # radians of jaw rotation at jawOpen = 1
BLINK_MEET = 0.3  # where the lids meet: fraction of the way from the lower lid to the upper
BLINK_OVERLAP = 0.05  # how far past that line the upper lid goes, as a fraction of the opening
BLINK_SKIN_RADIUS = 0.02  # how far up the lid skin follows the closing lid (face widths)


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test in 2D (pts (N,2), poly (M,2))."""
    x, y = pts[:, 0:1], pts[:, 1:2]
    x0, y0 = poly[:, 0][None], poly[:, 1][None]
    x1, y1 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    cond = (y0 > y) != (y1 > y)
    xc = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-12, y1 - y0)
    return ((cond & (x < xc)).sum(1) % 2) == 1


def lip_sets(shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (len(shape),) of upper-lip and lower-lip points, contours included.

    Which point is on which lip is read off the canonical face (a symmetric neutral face) by
    point index, not off ``shape``: a portrait's own neutral face can put an upper-lip point
    below the line between the lips (a smile's raised corners; on the astronaut, point 271),
    and the jaw then dragged a flap of upper lip across the open mouth."""
    upper, lower = _canonical_lip_sets()
    return upper[: len(shape)].copy(), lower[: len(shape)].copy()


@lru_cache(maxsize=1)
def _canonical_lip_sets() -> tuple[np.ndarray, np.ndarray]:
    from posetalk.models.face.canonical import load

    return _lip_sets_of(load().vertices)


def _lip_sets_of(shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lip by the geometry of ``shape`` (478, 3): inside the outer contour,
    above or below the line half-way between the inner contours."""
    outer = shape[list(T.LIP_OUTER_UPPER) + list(T.LIP_OUTER_LOWER[::-1][1:-1]), :2]
    inside = _inside(outer, shape[:, :2])
    inside[list(T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER)] = True
    # Split by the line half-way between the inner contours, interpolated at each x.
    mid = (shape[list(T.LIP_INNER_UPPER), :2] + shape[list(T.LIP_INNER_LOWER), :2]) / 2
    order = np.argsort(mid[:, 0])
    line_y = np.interp(shape[:, 0], mid[order, 0], mid[order, 1])
    upper = inside & (shape[:, 1] <= line_y)
    lower = inside & (shape[:, 1] > line_y)
    upper[list(T.LIP_INNER_UPPER + T.LIP_OUTER_UPPER)] = True
    lower[list(T.LIP_INNER_LOWER + T.LIP_OUTER_LOWER)] = True
    for c in (61, 291, 78, 308):  # the corners belong to neither
        upper[c] = lower[c] = False
    return upper, lower


def _spread(shape: np.ndarray, anchors: list[int], disp: np.ndarray, radius: float, allowed: np.ndarray) -> np.ndarray:
    """Displacement (478,3): anchors move by ``disp``; allowed points follow the nearest anchors
    with a Gaussian falloff of ``radius``; other points stay."""
    out = np.zeros_like(shape)
    a = shape[anchors]
    d2 = ((shape[:, None, :2] - a[None, :, :2]) ** 2).sum(-1)  # (478, A)
    k = np.exp(-d2 / (2 * radius**2))
    w = k / (k.sum(1, keepdims=True) + 1e-12)
    fall = np.exp(-d2.min(1) / (2 * radius**2))
    out[allowed] = ((w @ disp) * fall[:, None])[allowed]
    out[anchors] = disp
    return out


def _side_ramp(shape: np.ndarray, center_x: float, half_width: float, side: int) -> np.ndarray:
    """0 at the centre line rising to 1 at ``half_width`` toward ``side`` (+1 image right)."""
    return np.clip(side * (shape[:, 0] - center_x) / half_width, 0.0, 1.0)


def jaw_displacement(shape: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Where ``points`` (N, 3) go when the jaw of neutral ``shape`` opens fully, as displacements:
    a rotation by JAW_ANGLE about a hinge behind the cheeks at eye-nose level, chin moving down."""
    s = shape.astype(np.float64)
    corners_x = (s[291, 0] + s[61, 0]) / 2
    hinge = np.array([corners_x, (s[1, 1] + s[168, 1]) / 2, float(s[: T.N_MESH, 2].max()) + 0.1])
    c, si = np.cos(JAW_ANGLE), np.sin(JAW_ANGLE)
    rel = points - hinge
    # Rotation about the x axis; with y down and z away from the camera this sign sends points
    # in front of the hinge (z < hinge) downward.
    rot = np.stack([rel[:, 0], c * rel[:, 1] - si * rel[:, 2], si * rel[:, 1] + c * rel[:, 2]], 1)
    return rot - rel


def basis(shape: np.ndarray) -> np.ndarray:
    """Blendshape displacement fields (21, 478, 3) for a neutral ``shape`` (478, 3)."""
    s = shape.astype(np.float64)
    out = np.zeros((N_BLENDSHAPES, len(s), 3))
    put = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
    upper, lower = lip_sets(s)
    lips = upper | lower
    corner_l, corner_r = s[291], s[61]  # subject's left corner is on the image's right
    cx = float((corner_l[0] + corner_r[0]) / 2)
    mouth_w = float(corner_l[0] - corner_r[0])
    corner_y = float((corner_l[1] + corner_r[1]) / 2)
    below = s[:, 1] > corner_y - 0.03
    above = s[:, 1] < corner_y + 0.03

    # jawOpen: the lower face rotates about a hinge behind the cheeks at eye-nose level.
    wj = np.clip((s[:, 1] - (corner_y - 0.02)) / 0.14, 0.0, 1.0) ** 1.2
    wj[upper] = 0.0
    # The lower lip follows the jaw fully in the middle and less toward the corners (0.35 there),
    # so the mouth opens rounded and the cheeks beside the corners are not sheared.
    across = np.clip(1 - (np.abs(s[:, 0] - cx) / (0.5 * mouth_w)) ** 2, 0.0, 1.0) ** 0.5
    with_lip = 0.35 + 0.65 * across
    wj[lower] = with_lip[lower]
    # The skin under the lower lip goes with it (else the lip slides over the chin and the fold
    # shows the mouth behind): at least the lip's weight, reached 0.04 below the corners' line.
    chin = ~upper & ~lower & (s[:, 1] > corner_y)
    wj[chin] = np.maximum(wj, with_lip * np.clip((s[:, 1] - corner_y) / 0.04, 0.0, 1.0))[chin]
    wj[[61, 291, 78, 308]] = 0.35
    out[put["jawOpen"]] = wj[:, None] * jaw_displacement(s, s)

    # mouthClose: lips meet while the jaw is open (upper down, lower up, half the jaw gap each).
    gap = out[put["jawOpen"], 14] - out[put["jawOpen"], 13]
    lip_c = np.clip(1 - np.abs(s[:, 0] - cx) / (0.55 * mouth_w), 0.0, 1.0) ** 0.5
    out[put["mouthClose"]][upper] = (0.5 * gap * lip_c[:, None])[upper]
    out[put["mouthClose"]][lower] = (-0.5 * gap * lip_c[:, None])[lower]

    # mouthFunnel: lips push forward and open into an O, corners draw in.
    funnel = np.zeros_like(s)
    funnel[lips, 2] = -0.04
    funnel[lips, 0] = -(s[lips, 0] - cx) * 0.22
    funnel[list(T.LIP_INNER_UPPER), 1] -= 0.035 * lip_c[list(T.LIP_INNER_UPPER)]
    funnel[list(T.LIP_INNER_LOWER), 1] += 0.035 * lip_c[list(T.LIP_INNER_LOWER)]
    out[put["mouthFunnel"]] = _spread(s, list(np.flatnonzero(lips)), funnel[lips], 0.05, ~lips)

    # mouthPucker: lips pressed together and pushed forward, mouth narrows strongly.
    pucker = np.zeros_like(s)
    pucker[lips, 2] = -0.05
    pucker[lips, 0] = -(s[lips, 0] - cx) * 0.38
    for i in (61, 291, 78, 308):
        pucker[i] = [-(s[i, 0] - cx) * 0.38, 0.0, -0.03]
    idx = list(np.flatnonzero(lips)) + [61, 291, 78, 308]
    out[put["mouthPucker"]] = _spread(s, idx, pucker[idx], 0.05, ~lips)

    for side, suffix, corners in ((+1, "Left", (291, 308)), (-1, "Right", (61, 78))):
        ramp = _side_ramp(s, cx, 0.5 * mouth_w, side)
        # mouthStretch: the corner pulls outward and slightly down; that half of the lips follows.
        st = np.zeros_like(s)
        st[:, 0] = side * 0.05 * ramp
        st[:, 1] = 0.02 * ramp
        idx = list(np.flatnonzero(lips)) + list(corners)
        out[put["mouthStretch" + suffix]] = _spread(s, idx, st[idx], 0.06, ~lips)
        # mouthSmile: the corner rises, moves out and back; the cheek above it lifts.
        sm = np.zeros_like(s)
        sm[:, 0] = side * 0.045 * ramp**1.5
        sm[:, 1] = -0.06 * ramp**1.5
        sm[:, 2] = 0.02 * ramp**1.5
        out[put["mouthSmile" + suffix]] = _spread(s, idx, sm[idx], 0.08, ~lips)
        # mouthUpperUp: that side of the upper lip rises (showing the upper teeth).
        uu = np.zeros_like(s)
        uu[:, 1] = -0.06 * np.clip(ramp * 1.6, 0, 1) * (1 - 0.5 * ramp**4)
        idx = list(np.flatnonzero(upper))
        out[put["mouthUpperUp" + suffix]] = _spread(s, idx, uu[idx], 0.04, ~lips & above)
        # mouthLowerDown: that side of the lower lip drops (showing the lower teeth).
        ld = np.zeros_like(s)
        ld[:, 1] = 0.045 * np.clip(ramp * 1.6, 0, 1) * (1 - 0.5 * ramp**4)
        idx = list(np.flatnonzero(lower))
        out[put["mouthLowerDown" + suffix]] = _spread(s, idx, ld[idx], 0.04, ~lips & below)

    # mouthRoll: the red of the lip rolls inward: the outer contour moves toward the inner one.
    for name, outer_c, inner_c, group in (
        ("mouthRollLower", T.LIP_OUTER_LOWER, T.LIP_INNER_LOWER, lower),
        ("mouthRollUpper", T.LIP_OUTER_UPPER, T.LIP_INNER_UPPER, upper),
    ):
        roll = np.zeros_like(s)
        for o, i in zip(outer_c[1:-1], inner_c[1:-1], strict=True):
            roll[o, :2] = 0.9 * (s[i, :2] - s[o, :2])
            roll[o, 2] = 0.015
            roll[i, 2] = 0.02
        idx = list(np.flatnonzero(group))
        ctr = s[list(inner_c)].mean(0)
        # Points between the contours move in proportion to their distance from the inner line.
        thick = np.abs(s[list(outer_c), 1] - s[list(inner_c), 1]).mean() + 1e-6
        for j in idx:
            if j in outer_c or j in inner_c:
                continue
            f = np.clip(abs(s[j, 1] - ctr[1]) / thick, 0, 1)
            roll[j, 1] = -np.sign(s[j, 1] - ctr[1]) * 0.9 * f * thick
            roll[j, 2] = 0.015
        out[put[name]] = _spread(s, idx, roll[idx], 0.03, ~lips)

    # eyeBlink: upper lid sweeps down to meet a slightly raised lower lid; lid skin follows.
    for suffix, up_c, lo_c, brow in (
        ("Left", T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER, T.LEFT_BROW_LOWER),
        ("Right", T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER, T.RIGHT_BROW_LOWER),
    ):
        bl = np.zeros_like(s)
        for u, lo in zip(up_c[1:-1], lo_c[1:-1], strict=True):
            meet = s[lo] + BLINK_MEET * (s[u] - s[lo])
            # The upper lid closes a little past the meeting line so that the lids still
            # overlap when other shapes (brows, squint) nudge them apart.
            bl[u] = meet - s[u] + BLINK_OVERLAP * (s[lo] - s[u])
            bl[lo] = meet - s[lo]
        idx = list(up_c[1:-1]) + list(lo_c[1:-1])
        eye_y = s[list(up_c), 1].mean()
        brow_y = s[list(brow), 1].mean()
        lid_skin = (s[:, 1] < eye_y) & (s[:, 1] > brow_y)
        field = _spread(s, idx, bl[idx], BLINK_SKIN_RADIUS, lid_skin)
        field[list(lo_c[1:-1])] = bl[list(lo_c[1:-1])]
        field[T.N_MESH :] = 0.0  # the iris is on the eyeball, not the lid
        out[put["eyeBlink" + suffix]] = field

    # Brows.
    brow_pts = {
        "Left": list(T.LEFT_BROW_UPPER + T.LEFT_BROW_LOWER),
        "Right": list(T.RIGHT_BROW_UPPER + T.RIGHT_BROW_LOWER),
    }
    eyes_y = max(s[list(T.LEFT_EYE_UPPER), 1].max(), s[list(T.RIGHT_EYE_UPPER), 1].max())
    over_eyes = s[:, 1] < eyes_y
    face_cx = float((s[T.CHEEK_LEFT, 0] + s[T.CHEEK_RIGHT, 0]) / 2)
    both = brow_pts["Left"] + brow_pts["Right"]
    inner_w = np.clip(1 - np.abs(s[both, 0] - face_cx) / 0.4, 0, 1)
    d = np.zeros((len(both), 3))
    d[:, 1] = -0.07 * inner_w
    out[put["browInnerUp"]] = _spread(s, both, d, 0.07, over_eyes)
    for side, suffix in ((+1, "Left"), (-1, "Right")):
        idx = brow_pts[suffix]
        d = np.zeros((len(idx), 3))
        d[:, 1] = 0.035
        d[:, 0] = -side * 0.012
        out[put["browDown" + suffix]] = _spread(s, idx, d, 0.06, over_eyes)
        outer_w = np.clip(side * (s[idx, 0] - face_cx) / 0.35, 0, 1) ** 1.5
        d = np.zeros((len(idx), 3))
        d[:, 1] = -0.05 * outer_w
        out[put["browOuterUp" + suffix]] = _spread(s, idx, d, 0.07, over_eyes)
    return out.astype(np.float32)
