"""Synthetic head motion for the pose-diffusion corpus: the rhythm of an utterance, a plan of
motion styles, and a generator that turns plan (+ rhythm) into per-frame pose (T, 6) and gaze (T, 2).

Units and signs are those of posetalk.models.face.params (radians; pitch > 0 tips the nose down;
yaw > 0 turns the nose toward the image's right). Sides in a plan are the speaker's own:
direction +1 is the speaker's left (yaw > 0, roll > 0), -1 the speaker's right, 0 none or
side to side. describe.py turns a plan into text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from posetalk.models.audio.pitch import yin
from posetalk.models.data.phones import FPS, SAMPLE_RATE
from posetalk.models.face.params import clip_motion
from scipy.ndimage import gaussian_filter1d, maximum_filter1d, uniform_filter1d
from scipy.signal import find_peaks

HOP = SAMPLE_RATE // FPS  # 640 audio samples per video frame
WINDOW = 1024  # pitch analysis window (64 ms), centred on the frame
MIN_BEAT_GAP = 6  # frames between beats (0.24 s)

STYLES: tuple[str, ...] = (
    "calm", "energetic", "nodding", "shaking", "tilting", "looking_around", "looking_down", "turning",
    "still", "emphatic",
)  # fmt: skip
SIZES = ("small", "medium", "large")
PACES = ("slow", "medium", "fast")
MIN_SEGMENT = 2 * FPS  # frames; shorter segments are not recognisable as a style
FADE = 8  # half-width in frames of the crossfade between segments

# Main amplitude in degrees per size (small, medium, large); styles with one entry have no size.
_AMP_DEG = {
    "calm": ((2.0, 3.0),), "energetic": ((5.0, 7.0),), "still": ((0.0, 0.0),),
    "nodding": ((4, 6), (7, 10), (11, 14)), "shaking": ((5, 8), (9, 14), (15, 22)),
    "tilting": ((5, 7), (8, 11), (12, 15)), "looking_around": ((7, 11), (12, 17), (18, 24)),
    "looking_down": ((6, 9), (10, 13), (14, 18)), "turning": ((9, 13), (14, 19), (20, 25)),
    "emphatic": ((4, 6), (7, 9), (10, 13)),
}  # fmt: skip
# Rate in Hz per pace (slow, medium, fast): oscillation frequency; for turns and one-sided tilts
# 1 / ramp time; for looking around, gaze shifts per second.
_RATE_HZ = {
    "nodding": ((0.5, 0.8), (0.9, 1.3), (1.5, 2.1)), "shaking": ((0.4, 0.7), (0.8, 1.2), (1.4, 2.0)),
    "tilting": ((0.2, 0.35), (0.4, 0.6), (0.7, 1.0)), "looking_around": ((0.5, 0.8), (0.9, 1.4), (1.6, 2.4)),
    "turning": ((0.3, 0.5), (0.7, 1.0), (1.6, 2.5)),
}  # fmt: skip
# Per style: idle-sway gain, rhythm-accent gain, gaze-wander gain.
_GAINS = {
    "calm": (0.6, 0.7, 1.0), "energetic": (0.8, 2.0, 1.3), "nodding": (0.25, 0.3, 0.6),
    "shaking": (0.25, 0.3, 0.6), "tilting": (0.25, 0.4, 0.8), "looking_around": (0.4, 0.4, 0.3),
    "looking_down": (0.4, 0.5, 0.6), "turning": (0.25, 0.5, 0.6), "still": (0.12, 0.1, 0.4),
    "emphatic": (0.4, 0.6, 0.8),
}  # fmt: skip
_SWAY = np.array([np.radians(2.5), np.radians(1.5), np.radians(1.2), 0.008, 0.006, 0.01])
# Soft limits (start of saturation, hard limit) inside params' POSE_LIMITS / GAZE_LIMITS.
_POSE_SOFT = np.array([[0.40, 0.52], [0.26, 0.35], [0.24, 0.31], [0.04, 0.06], [0.04, 0.06], [0.035, 0.05]])
_GAZE_SOFT = np.array([[0.30, 0.40], [0.22, 0.30]])


@dataclass(frozen=True)
class Rhythm:
    """Per-video-frame prosody of an utterance.

    energy: (T,) float32 in [0, 1], frame RMS in dB mapped linearly from 40 dB below the loudest
        frame (0) to the loudest (1); all zeros for silence.
    pitch: (T,) float32 fundamental frequency in Hz, 0 where unvoiced.
    beats: (K,) int64 sorted frames of emphasis: peaks of energy (within ~3 dB of the loudest in
        the surrounding second) or of pitch (within a semitone of the highest), >= MIN_BEAT_GAP apart.
    """

    energy: np.ndarray
    pitch: np.ndarray
    beats: np.ndarray


@dataclass(frozen=True)
class Segment:
    """One stretch of a plan: frames [start, end) in one style.

    size and pace are the words a description may use ("" where the style has none); amplitude
    (radians of the main motion) and rate (Hz, see _RATE_HZ) are the numbers the generator uses;
    direction is +1 (speaker's left), -1 (speaker's right) or 0.
    """

    style: str
    start: int
    end: int
    size: str = ""
    pace: str = ""
    direction: int = 0
    amplitude: float = 0.0
    rate: float = 0.0


@dataclass(frozen=True)
class Plan:
    """Consecutive segments covering frames [0, n_frames)."""

    segments: tuple[Segment, ...]

    @property
    def n_frames(self) -> int:
        return self.segments[-1].end

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(s.style for s in self.segments)


def rhythm(audio: np.ndarray, n_frames: int) -> Rhythm:
    """Energy, voiced pitch (YIN-style) and beats of 16 kHz mono audio, one value per video frame.

    Frame i is centred on sample (i + 0.5) * HOP; audio shorter than n_frames is zero-padded.
    """
    x = np.zeros(n_frames * HOP + WINDOW, np.float64)
    offset = WINDOW // 2 - HOP // 2
    a = np.asarray(audio, np.float64).reshape(-1)[: n_frames * HOP + WINDOW - offset]
    x[offset : offset + len(a)] = a
    frames = np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::HOP][:n_frames]
    centre = frames[:, offset : offset + HOP]
    db = 10 * np.log10(np.mean(centre**2, axis=1) + 1e-12)
    top = db.max() if n_frames else -120.0
    energy = np.clip((db - top + 40) / 40, 0, 1) if top > -60 else np.zeros(n_frames)
    f0, aperiodicity = yin(frames)
    pitch = np.where((aperiodicity < 0.25) & (energy > 0.25), f0, 0.0)
    return Rhythm(energy.astype(np.float32), pitch.astype(np.float32), _beats(energy, pitch))


def _beats(energy: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Peaks of energy and of pitch (semitones above the median), strongest first, kept apart."""
    e = gaussian_filter1d(energy.astype(np.float64), 1.0) if len(energy) else energy
    peaks, _ = find_peaks(e, height=0.5, prominence=0.12, distance=MIN_BEAT_GAP)
    # Emphasis, not every syllable: within ~3 dB of the loudest peak in the surrounding second.
    peaks = peaks[e[peaks] >= maximum_filter1d(e, FPS + 1)[peaks] - 0.08] if len(peaks) else peaks
    scores = list(zip(e[peaks], peaks, strict=True))
    voiced = pitch > 0
    if voiced.sum() >= 5:
        semis = np.where(voiced, 12 * np.log2(np.maximum(pitch, 1) / np.median(pitch[voiced])), -12.0)
        ppeaks, _ = find_peaks(semis, height=1.5, prominence=1.0, distance=MIN_BEAT_GAP)
        ppeaks = ppeaks[semis[ppeaks] >= maximum_filter1d(semis, FPS + 1)[ppeaks] - 1.0]
        scores += [(e[i] + 0.05 * semis[i], i) for i in ppeaks if e[i] > 0.4]
    kept: list[int] = []
    for _, i in sorted(scores, reverse=True):
        if all(abs(i - k) >= MIN_BEAT_GAP for k in kept):
            kept.append(int(i))
    return np.array(sorted(kept), np.int64)


def make_segment(
    style: str, start: int, end: int, rng: np.random.Generator, *, size: str | None = None,
    pace: str | None = None, direction: int | None = None,
) -> Segment:  # fmt: skip
    """A segment of ``style`` over [start, end), drawing whatever size, pace and direction are not given."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    amps = _AMP_DEG[style]
    size = (size or SIZES[rng.integers(3)]) if len(amps) == 3 else ""
    lo, hi = amps[SIZES.index(size)] if size else amps[0]
    amplitude = float(np.radians(rng.uniform(lo, hi)))
    pace = (pace or PACES[rng.integers(3)]) if style in _RATE_HZ else ""
    rate = float(rng.uniform(*_RATE_HZ[style][PACES.index(pace)])) if pace else 0.0
    if direction is None:
        direction = int(rng.choice([-1, 1])) if style == "turning" else 0
        direction = int(rng.choice([-1, 0, 0, 1])) if style == "tilting" else direction
    seconds = (end - start) / FPS
    if style == "turning" or (style == "tilting" and direction):
        rate = max(rate, 1 / (0.7 * seconds))  # the turn must finish and hold within the segment
    if style == "shaking":  # peak yaw speed at most ~170°/s (+ 20 % from wobble and drift)
        amplitude = min(amplitude, max(np.radians(lo), np.radians(27) / rate))
    return Segment(style, start, end, size, pace, direction, amplitude, rate)


def random_plan(n_frames: int, rng: np.random.Generator, styles: tuple[str, ...] = STYLES) -> Plan:
    """One to three segments of distinct styles, each at least MIN_SEGMENT frames where possible."""
    most = max(1, min(3, n_frames // MIN_SEGMENT))
    count = min(most, int(rng.choice([1, 2, 3], p=[0.55, 0.33, 0.12])))
    names = [str(s) for s in rng.choice(styles, size=count, replace=False)]
    cuts = np.sort(rng.integers(0, n_frames - count * MIN_SEGMENT + 1, count - 1)) if count > 1 else []
    bounds = [0] + [int(c) + (i + 1) * MIN_SEGMENT for i, c in enumerate(cuts)] + [n_frames]
    return Plan(tuple(make_segment(s, bounds[i], bounds[i + 1], rng) for i, s in enumerate(names)))


def plan_labels(plan: Plan) -> np.ndarray:
    """(len(STYLES),) float32: 1 for each style the plan contains, else 0."""
    return np.array([float(s in plan.styles) for s in STYLES], np.float32)


def generate(
    n_frames: int, rng: np.random.Generator, *, rhythm: Rhythm | None = None, plan: Plan | None = None
) -> tuple[np.ndarray, np.ndarray, Plan]:
    """Pose (T, 6) and gaze (T, 2) float32 following ``plan`` (drawn at random when None).

    Every style carries idle sway, small nods and turns on the rhythm's beats when ``rhythm`` is
    given, and a gaze that follows the head with fixations and saccades; segments crossfade over
    2 * FADE frames, and everything is soft-limited inside params' ranges.
    """
    plan = random_plan(n_frames, rng) if plan is None else plan
    if plan.n_frames != n_frames or plan.segments[0].start != 0:
        raise ValueError(f"plan covers [{plan.segments[0].start}, {plan.n_frames}), not [0, {n_frames})")
    t = np.arange(n_frames) / FPS
    beats = rhythm.beats[rhythm.beats < n_frames] if rhythm is not None else np.zeros(0, np.int64)
    energy = None
    if rhythm is not None:
        energy = np.zeros(n_frames)
        energy[: len(rhythm.energy)] = rhythm.energy[:n_frames]
        energy = gaussian_filter1d(energy, 4.0)
    pose, gaze, gains = np.zeros((n_frames, 6)), np.zeros((n_frames, 2)), np.zeros((n_frames, 3))
    up = [np.ones(n_frames)] + [_ramp(t, (s.start - FADE) / FPS, 2 * FADE / FPS) for s in plan.segments[1:]]
    up.append(np.zeros(n_frames))
    for k, seg in enumerate(plan.segments):
        w = up[k] - up[k + 1]
        lo, hi = max(0, seg.start - FADE), min(n_frames, seg.end + FADE)
        mine = beats[(beats >= seg.start) & (beats < seg.end)]
        e = None if energy is None else energy[lo:hi]
        p, g = _style_curve(seg, t[lo:hi] - seg.start / FPS, rng, (mine - seg.start) / FPS, e)
        pose[lo:hi] += w[lo:hi, None] * p
        gaze[lo:hi] += w[lo:hi, None] * g
        gains += w[:, None] * np.array(_GAINS[seg.style])
    activity = 1.0 if energy is None else 0.7 + 0.6 * energy
    sway = _noise(n_frames, rng, 18, 6) + 0.4 * _noise(n_frames, rng, 5, 6)
    pose += sway * _SWAY * (gains[:, 0] * activity)[:, None]
    for b in beats:  # rhythm accents: a small nod and a small turn on each beat
        g = gains[b, 1] * rng.uniform(0.7, 1.2)
        pose[:, 1] += np.radians(1.5) * g * _pulse(t - b / FPS)
        pose[:, 0] += np.radians(1.2) * g * rng.uniform(-1, 1) * _pulse(t - b / FPS)
    pose[:, 3] += 0.1 * (pose[:, 0] + pose[:, 2])  # the face centre follows turns and tilts
    pose[:, 4] += 0.12 * pose[:, 1]  # and drops on the downstroke of a nod
    pose = _soft_clip(pose, _POSE_SOFT)
    slow = gaussian_filter1d(pose[:, :2], 12.0, axis=0, mode="nearest")
    vor = rng.uniform(0.3, 0.6)  # eyes partly counter-rotate against fast head motion
    gaze += _fixations(n_frames, rng, gains[:, 2]) - vor * (pose[:, :2] - slow)
    pose, gaze, _ = clip_motion(pose, _soft_clip(gaze, _GAZE_SOFT), np.zeros(0))
    return pose, gaze, plan


def _style_curve(
    seg: Segment, t: np.ndarray, rng: np.random.Generator, beats: np.ndarray, energy: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The style's own motion over local times t (s, 0 = segment start), before sway and accents."""
    n, a, f, d, s = len(t), seg.amplitude, seg.rate, seg.direction, seg.style
    dur = (seg.end - seg.start) / FPS
    pose, gaze = np.zeros((n, 6)), np.zeros((n, 2))
    if s == "calm":
        pose[:, :3] = a * _noise(n, rng, 20, 3) * (1.0, 0.6, 0.4)
    elif s == "energetic":
        act = 1.0 if energy is None else 0.6 + 0.8 * energy[:, None]
        pose[:, :3] = a * _noise(n, rng, 4, 3) * (1.0, 0.7, 0.5) * act
        pose[:, 3:] = _noise(n, rng, 10, 3) * (0.012, 0.01, 0.02)
    elif s == "nodding":  # down from neutral and slightly past it on the way up
        pose[:, 1] = a * _wobble(n, rng) * (0.4 - 0.6 * np.cos(_phase(t, f, rng)))
    elif s == "shaking":
        pose[:, 0] = a * _wobble(n, rng) * np.sin(_phase(t, f, rng))
        pose[:, 2] = 0.1 * pose[:, 0]
    elif s == "tilting":
        if d == 0:
            pose[:, 2] = a * _wobble(n, rng) * np.sin(_phase(t, f, rng))
        else:
            hold = _ramp(t, rng.uniform(0.05, 0.3), 1 / f)
            pose[:, 2] = d * a * (hold + 0.1 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6.3)) * hold)
        pose[:, 0] = 0.12 * pose[:, 2]
    elif s == "turning":
        pose[:, 0] = d * a * _ramp(t, rng.uniform(0.05, 0.3), 1 / f)
        gaze[:, 0] = 0.6 * (np.interp(t + 0.2, t, pose[:, 0]) - pose[:, 0])  # the eyes lead the turn
    elif s == "looking_down":
        ramp = _ramp(t, rng.uniform(0.05, 0.3), rng.uniform(0.6, 1.0))
        pose[:, 1] = a * ramp * (1 + 0.1 * _noise(n, rng, 15, 1)[:, 0])
        gaze[:, 1] = (0.12 + 0.5 * a) * ramp
        gaze[:, 0] = np.radians(3) * _noise(n, rng, 8, 1)[:, 0] * ramp
    elif s == "looking_around":
        pose[:, :2], gaze[:] = _look_around(t, a, f, dur, rng)
    elif s == "emphatic":
        if len(beats) == 0:  # no audio: pseudo-beats at a speaking pace
            beats = np.cumsum(rng.uniform(0.45, 1.0, int(dur / 0.45) + 1)) - 0.2
            beats = beats[beats < dur - 0.2]
        amps = a * rng.uniform(0.75, 1.15, len(beats))
        nods = (_pulse(t[:, None] - beats[None, :]) * amps).sum(1)
        pose[:, 1] = 1.3 * a * np.tanh(nods / (1.3 * a))  # overlapping nods saturate, not add up
    return pose, gaze


def _look_around(
    t: np.ndarray, a: float, rate: float, dur: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Head (yaw, pitch) moving between random targets; the eyes saccade first and the head follows."""
    head, world = np.zeros((len(t), 2)), np.zeros((len(t), 2))
    prev, side, tk = np.zeros(2), rng.choice([-1, 1]), rng.uniform(0.05, 0.3)
    while tk < dur:
        side = -side if rng.random() < 0.75 else side
        target = np.array([side * a * rng.uniform(0.4, 1.0), a * 0.35 * rng.uniform(-1, 1)])
        move = np.clip(np.degrees(np.abs(target - prev).max()) / 80, 0.3, 0.7)  # <= ~150°/s
        head += (target - prev) * _ramp(t, tk + 0.08, move)[:, None]
        world += 1.15 * (target - prev) * _ramp(t, tk, 0.06)[:, None]
        prev, tk = target, tk + rng.uniform(0.7, 1.3) / rate
    return head, np.clip(world - head, -np.radians([20, 12]), np.radians([20, 12]))


def _fixations(n: int, rng: np.random.Generator, scale: np.ndarray) -> np.ndarray:
    """Gaze offsets held for 0.4-2.2 s with two-frame saccades, and now and then a brief glance away."""
    out, i = np.zeros((n, 2)), 0
    while i < n:
        if rng.random() < 0.12:
            target = np.radians([rng.choice([-1, 1]) * rng.uniform(5, 10), rng.uniform(-3, 4)])
            length = int(FPS * rng.uniform(0.25, 0.6))
        else:
            target, length = rng.normal(0, np.radians([2.0, 1.2])), int(FPS * rng.uniform(0.4, 2.2))
        out[i : i + length] = target * scale[i]
        i += length
    return uniform_filter1d(out, 2, axis=0)


def _ramp(t: np.ndarray, t0: float, length: float) -> np.ndarray:
    """Minimum-jerk step from 0 (t <= t0) to 1 (t >= t0 + length)."""
    x = np.clip((t - t0) / length, 0, 1)
    return x**3 * (10 - 15 * x + 6 * x * x)


def _pulse(tau: np.ndarray) -> np.ndarray:
    """One nod: down over [-0.12, 0.12] s (fastest at 0), back up by 0.42 s."""
    down = 0.5 - 0.5 * np.cos(np.pi * np.clip((tau + 0.12) / 0.24, 0, 1))
    back = 0.5 + 0.5 * np.cos(np.pi * np.clip((tau - 0.12) / 0.3, 0, 1))
    return np.where(tau < 0.12, down, back)


def _noise(n: int, rng: np.random.Generator, sigma: float, k: int) -> np.ndarray:
    """(n, k) Gaussian-smoothed white noise with unit standard deviation."""
    pad = int(4 * sigma)
    white = rng.standard_normal((n + 2 * pad, k))
    return gaussian_filter1d(white, sigma, axis=0)[pad : pad + n] * np.sqrt(2 * np.sqrt(np.pi) * sigma)


def _wobble(n: int, rng: np.random.Generator) -> np.ndarray:
    """Slow ±15 % amplitude variation, so no two cycles are identical."""
    return 1 + 0.15 * np.tanh(_noise(n, rng, 15, 1)[:, 0])


def _phase(t: np.ndarray, f: float, rng: np.random.Generator) -> np.ndarray:
    """Oscillation phase at frequency f with a slow ±5 % drift, 0 at t = 0."""
    ph = 2 * np.pi * np.cumsum(f * (1 + 0.05 * np.tanh(_noise(len(t), rng, 20, 1)[:, 0]))) / FPS
    return ph - ph[np.argmin(np.abs(t))]


def _soft_clip(x: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Identity up to limits[:, 0], then saturating smoothly toward limits[:, 1]."""
    knee, top = limits[:, 0], limits[:, 1]
    over = np.abs(x) - knee
    soft = np.sign(x) * (knee + (top - knee) * np.tanh(np.maximum(over, 0) / (top - knee)))
    return np.where(over > 0, soft, x)
