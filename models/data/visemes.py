"""Per-frame ARKit blendshape targets from timed phones: a viseme table blended with
coarticulation (each phone's influence rises before it and fades after it, weighted by how
strongly that phone controls each part of the mouth), blinks as a random process and brow
raises on stressed syllables and pitch peaks.

The blending is a dominance model (Cohen and Massaro's idea): at time t each parameter is the
dominance-weighted mean of the phones' targets. Bilabials dominate the jaw and lips so that the
lips really meet on p/b/m; t/d/k/g/h barely control rounding, so the rounding of a following
"oo" shows through them (anticipation), and a vowel's shape lingers into the next consonant
(carry-over)."""

from __future__ import annotations

import numpy as np
from posetalk.models.data.phones import FPS, PHONE_ID, SILENCE, Phone
from posetalk.models.face.params import INDEX, N_BLENDSHAPES
from posetalk.models.rates import n_frames  # noqa: F401  (the corpus reads it from here)

GRID_HZ = 100  # blending grid; frames average GRID_HZ / FPS grid points
ANTICIPATION_S = 0.06  # time constant of a phone's influence before it starts
CARRY_OVER_S = 0.05  # and after it ends

# Mouth parameter groups (each phone's dominance is given per group).
JAW = ("jawOpen", "mouthClose", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight")
ROUND = ("mouthFunnel", "mouthPucker")
SPREAD = ("mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight")
ROLL = ("mouthRollLower", "mouthRollUpper")
GROUPS = (JAW, ROUND, SPREAD, ROLL)
MOUTH = JAW + ROUND + SPREAD + ROLL


def _v(jaw: float = 0.0, close: float = 0.0, funnel: float = 0.0, pucker: float = 0.0, stretch: float = 0.0,
       smile: float = 0.0, upper_up: float = 0.0, lower_down: float = 0.0, roll_lower: float = 0.0,
       roll_upper: float = 0.0) -> dict[str, float]:  # fmt: skip
    return {
        "jawOpen": jaw, "mouthClose": close, "mouthFunnel": funnel, "mouthPucker": pucker,
        "mouthStretchLeft": stretch, "mouthStretchRight": stretch, "mouthSmileLeft": smile, "mouthSmileRight": smile,
        "mouthUpperUpLeft": upper_up, "mouthUpperUpRight": upper_up, "mouthLowerDownLeft": lower_down,
        "mouthLowerDownRight": lower_down, "mouthRollLower": roll_lower, "mouthRollUpper": roll_upper,
    }  # fmt: skip


# Targets for each phone (mouth shapes only) and dominance per group (JAW, ROUND, SPREAD, ROLL).
VISEMES: dict[str, tuple[dict[str, float], tuple[float, float, float, float]]] = {
    SILENCE: (_v(), (0.6, 0.6, 0.6, 0.6)),
    # Open vowels: the jaw drops.
    "AA": (_v(jaw=0.55, lower_down=0.25), (1.0, 0.5, 0.5, 0.5)),
    "AE": (_v(jaw=0.45, stretch=0.25, lower_down=0.2, upper_up=0.1), (1.0, 0.5, 0.8, 0.5)),
    "AH": (_v(jaw=0.38, lower_down=0.15), (0.9, 0.4, 0.4, 0.4)),
    "AO": (_v(jaw=0.45, funnel=0.35, pucker=0.1), (1.0, 0.9, 0.5, 0.5)),
    "AW": (_v(jaw=0.45, funnel=0.25, pucker=0.25), (1.0, 0.9, 0.5, 0.5)),
    "AY": (_v(jaw=0.48, stretch=0.15, lower_down=0.15), (1.0, 0.5, 0.6, 0.5)),
    "EH": (_v(jaw=0.32, stretch=0.25, lower_down=0.1), (0.9, 0.5, 0.8, 0.5)),
    "ER": (_v(jaw=0.22, funnel=0.3, pucker=0.2), (0.8, 0.9, 0.5, 0.5)),
    "EY": (_v(jaw=0.28, stretch=0.35, smile=0.1), (0.9, 0.5, 0.9, 0.5)),
    "IH": (_v(jaw=0.2, stretch=0.3), (0.8, 0.5, 0.8, 0.5)),
    "IY": (_v(jaw=0.14, stretch=0.5, smile=0.2), (0.8, 0.6, 1.0, 0.5)),
    "OW": (_v(jaw=0.3, funnel=0.45, pucker=0.3), (0.9, 1.0, 0.6, 0.5)),
    "OY": (_v(jaw=0.32, funnel=0.35, pucker=0.25), (0.9, 1.0, 0.6, 0.5)),
    "UH": (_v(jaw=0.2, funnel=0.3, pucker=0.3), (0.8, 0.9, 0.5, 0.5)),
    "UW": (_v(jaw=0.14, funnel=0.3, pucker=0.65), (0.8, 1.0, 0.8, 0.5)),
    # Bilabials: the lips meet (the jaw barely open, mouthClose cancels it) and press a little.
    "B": (_v(jaw=0.06, close=0.06, roll_lower=0.2, roll_upper=0.15), (1.5, 0.3, 0.8, 1.0)),
    "M": (_v(jaw=0.05, close=0.05, roll_lower=0.2, roll_upper=0.15), (1.5, 0.3, 0.8, 1.0)),
    "P": (_v(jaw=0.06, close=0.06, roll_lower=0.25, roll_upper=0.2), (1.5, 0.3, 0.8, 1.0)),
    # Labiodentals: the lower lip tucks up under the upper teeth.
    "F": (_v(jaw=0.1, roll_lower=0.6, upper_up=0.2), (1.2, 0.3, 0.5, 1.0)),
    "V": (_v(jaw=0.1, roll_lower=0.55, upper_up=0.2), (1.2, 0.3, 0.5, 1.0)),
    # Rounded consonants.
    "W": (_v(jaw=0.1, funnel=0.3, pucker=0.75), (1.0, 2.0, 1.0, 0.5)),
    "R": (_v(jaw=0.14, funnel=0.25, pucker=0.3), (0.6, 1.0, 0.5, 0.3)),
    "SH": (_v(jaw=0.12, funnel=0.5, pucker=0.25, upper_up=0.15), (1.0, 1.5, 0.8, 0.5)),
    "ZH": (_v(jaw=0.12, funnel=0.5, pucker=0.25, upper_up=0.15), (1.0, 1.5, 0.8, 0.5)),
    "CH": (_v(jaw=0.12, funnel=0.45, pucker=0.25, upper_up=0.15), (1.2, 1.5, 0.8, 0.5)),
    "JH": (_v(jaw=0.12, funnel=0.45, pucker=0.25, upper_up=0.15), (1.2, 1.5, 0.8, 0.5)),
    # Teeth close, tongue does the work: weak control of the lips' shape.
    "S": (_v(jaw=0.08, stretch=0.2), (1.5, 0.2, 0.3, 0.3)),
    "Z": (_v(jaw=0.08, stretch=0.2), (1.5, 0.2, 0.3, 0.3)),
    "T": (_v(jaw=0.14), (0.8, 0.1, 0.2, 0.2)),
    "D": (_v(jaw=0.14), (0.8, 0.1, 0.2, 0.2)),
    "N": (_v(jaw=0.12), (0.7, 0.1, 0.2, 0.2)),
    "L": (_v(jaw=0.18), (0.6, 0.1, 0.2, 0.2)),
    "TH": (_v(jaw=0.14, lower_down=0.1), (0.8, 0.1, 0.3, 0.2)),
    "DH": (_v(jaw=0.12, lower_down=0.1), (0.7, 0.1, 0.3, 0.2)),
    "K": (_v(jaw=0.2), (0.5, 0.1, 0.2, 0.2)),
    "G": (_v(jaw=0.2), (0.5, 0.1, 0.2, 0.2)),
    "NG": (_v(jaw=0.18), (0.5, 0.1, 0.2, 0.2)),
    "Y": (_v(jaw=0.14, stretch=0.35, smile=0.1), (0.6, 0.5, 0.8, 0.3)),
    "HH": (_v(jaw=0.25), (0.3, 0.1, 0.1, 0.1)),
}
BILABIALS = ("P", "B", "M")
BILABIAL_JAW = 0.06  # the most jaw opening left at a bilabial closure

_TARGET = np.zeros((len(PHONE_ID), N_BLENDSHAPES), np.float32)
_DOMINANCE = np.zeros((len(PHONE_ID), N_BLENDSHAPES), np.float32)
for _p, (_t, _d) in VISEMES.items():
    for _name, _w in _t.items():
        _TARGET[PHONE_ID[_p], INDEX[_name]] = _w
    for _group, _dom in zip(GROUPS, _d, strict=True):
        for _name in _group:
            _DOMINANCE[PHONE_ID[_p], INDEX[_name]] = _dom
_MOUTH_IDX = np.array([INDEX[n] for n in MOUTH])


def frame_phones(phones: list[Phone], frames: int) -> np.ndarray:
    """(T,) phone id (models/data/phones.PHONE_ID) at each frame's centre."""
    centres = (np.arange(frames) + 0.5) / FPS
    ends = np.array([p.end for p in phones])
    k = np.minimum(np.searchsorted(ends, centres, side="right"), len(phones) - 1)
    return np.array([PHONE_ID[phones[i].label] for i in k], np.int8)


def lip_targets(phones: list[Phone], frames: int, articulation: float = 1.0) -> np.ndarray:
    """(T, 21) mouth blendshape weights (other columns 0), coarticulated.
    ``articulation`` scales how far the jaw and lips move (a speaker's style, 0.6–1.4)."""
    t = (np.arange(frames * GRID_HZ // FPS) + 0.5) / GRID_HZ  # (G,)
    ids = np.array([PHONE_ID[p.label] for p in phones])
    start = np.array([p.start for p in phones])[:, None]
    end = np.array([p.end for p in phones])[:, None]
    # Influence: 1 inside the phone, decaying exponentially before (anticipation) and after.
    before = np.clip(start - t[None], 0, None) / ANTICIPATION_S
    after = np.clip(t[None] - end, 0, None) / CARRY_OVER_S
    influence = np.exp(-(before + after))  # (P, G)
    dom = influence[:, :, None] * _DOMINANCE[ids][:, None, :] + 1e-6  # (P, G, 21)
    grid = (dom * _TARGET[ids][:, None, :]).sum(0) / dom.sum(0)  # (G, 21)
    out = grid.reshape(frames, GRID_HZ // FPS, N_BLENDSHAPES).mean(1)
    scale = np.ones(N_BLENDSHAPES, np.float32)
    scale[_MOUTH_IDX] = articulation
    out = out * scale
    _close_bilabials(out, phones)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _close_bilabials(out: np.ndarray, phones: list[Phone]) -> None:
    """On the frame nearest each p/b/m's middle the lips meet: jaw nearly shut, mouthClose
    cancelling whatever jaw opening remains (averaging over a 40 ms frame would leave a gap), and
    no mouthFunnel (it parts the lips: a rounded neighbour's funnel left 36 % of closures open)."""
    jaw, close, funnel = INDEX["jawOpen"], INDEX["mouthClose"], INDEX["mouthFunnel"]
    for p in phones:
        if p.label in BILABIALS:
            f = min(int((p.start + p.end) / 2 * FPS), len(out) - 1)
            out[f, jaw] = min(out[f, jaw], BILABIAL_JAW)
            out[f, close] = out[f, jaw]
            out[f, funnel] = 0.0


def blinks(phones: list[Phone], frames: int, rng: np.random.Generator, rate_per_min: float = 17.0) -> np.ndarray:
    """(T, 2) eyeBlinkLeft/Right: a Poisson process, three times as likely in pauses, at least
    0.6 s apart; each blink closes in ~80 ms and opens in ~150 ms."""
    pause = frame_phones(phones, frames) == PHONE_ID[SILENCE] if phones else np.ones(frames, bool)
    p = rate_per_min / 60.0 / FPS * np.where(pause, 2.0, 0.7)
    profile = np.array([0.35, 0.9, 1.0, 0.7, 0.35, 0.12])
    out = np.zeros((frames, 2), np.float32)
    last = -100
    for f in range(frames):
        if f - last >= 0.6 * FPS and rng.random() < p[f]:
            last = f
            depth = rng.uniform(0.85, 1.0)
            seg = profile[: frames - f] * depth
            out[f : f + len(seg), 0] = np.maximum(out[f : f + len(seg), 0], seg)
            out[f : f + len(seg), 1] = np.maximum(out[f : f + len(seg), 1], seg * rng.uniform(0.93, 1.0))
    return out


def brow_raises(
    phones: list[Phone], frames: int, rng: np.random.Generator, peaks: np.ndarray | None = None, expressive: float = 0.5
) -> np.ndarray:
    """(T, 21) brow weights (browInnerUp, browOuterUp*) rising on some primary-stressed vowels
    and on pitch peaks (``peaks``: frame indices), 0.1 s up and 0.35 s down."""
    out = np.zeros((frames, N_BLENDSHAPES), np.float32)
    onsets = [int(p.start * FPS) for p in phones if p.stress == 1 and rng.random() < 0.25 * expressive * 2]
    if peaks is not None:
        onsets += [int(f) for f in peaks if rng.random() < 0.6 * expressive * 2]
    up, down = int(0.1 * FPS), int(0.35 * FPS)
    shape = np.concatenate([np.linspace(0.3, 1, up), np.linspace(1, 0, down + 1)[1:]])
    for f0 in sorted(onsets):
        amp = rng.uniform(0.15, 0.55) * expressive * 2
        seg = shape[: max(0, frames - f0)] * amp
        sl = slice(f0, f0 + len(seg))
        out[sl, INDEX["browInnerUp"]] = np.maximum(out[sl, INDEX["browInnerUp"]], seg)
        outer = seg * rng.uniform(0.5, 1.0)
        for side in ("Left", "Right"):
            col = INDEX["browOuterUp" + side]
            out[sl, col] = np.maximum(out[sl, col], outer * rng.uniform(0.85, 1.0))
    return np.clip(out, 0, 1)


def expression_track(
    phones: list[Phone], frames: int, rng: np.random.Generator, peaks: np.ndarray | None = None,
    articulation: float | None = None,
) -> tuple[np.ndarray, dict[str, float]]:  # fmt: skip
    """(T, 21) targets for one utterance: coarticulated lips with a per-utterance articulation
    and resting smile, blinks, brow raises. Returns the targets and the style drawn. With
    ``articulation`` given (a real recording's phones: its speaker's style is not known), that
    articulation and no smile."""
    style = {
        "articulation": float(rng.uniform(0.7, 1.3)),
        "smile": float(rng.choice([0.0, 0.0, rng.uniform(0.05, 0.35)])),
        "expressive": float(rng.uniform(0.2, 0.8)),
    }
    if articulation is not None:
        style.update(articulation=articulation, smile=0.0)
    out = lip_targets(phones, frames, style["articulation"])
    if style["smile"] > 0:
        drift = 1 + 0.3 * np.sin(2 * np.pi * (np.arange(frames) / FPS / rng.uniform(3, 8) + rng.random()))
        for side in ("Left", "Right"):
            col = INDEX["mouthSmile" + side]
            out[:, col] = np.maximum(out[:, col], style["smile"] * drift * rng.uniform(0.85, 1.0))
    out[:, [INDEX["eyeBlinkLeft"], INDEX["eyeBlinkRight"]]] = blinks(phones, frames, rng)
    out = np.maximum(out, brow_raises(phones, frames, rng, peaks, style["expressive"]))
    return np.clip(out, 0, 1).astype(np.float32), style
