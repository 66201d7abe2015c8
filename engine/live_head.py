"""Procedural head motion made one frame at a time, for live sessions while no pose model ships.

head_motion.py draws a whole utterance's motion at once (it smooths over the whole file and finds
beats with a look at the whole second around them); a live stream has only the audio heard so far
plus a couple of frames of lookahead. ``LiveHead`` keeps the same vocabulary (the corpus's styles,
sway, rhythm nods, gaze fixations, blinks) but every part of it is causal:

- sway is a sum of slow sinusoids per axis (random frequencies and phases per session): smooth at
  every frame by construction, so a listening head never jitters;
- the style's own motion (a nod, a shake, a look down...) is a function of time scaled by a speech
  activity envelope, so it shows while speaking and fades to calm idle in silence; a new style
  takes over at the next hop boundary (``HOP`` frames) with a raised-cosine crossfade over a hop,
  the way a prompt change reaches the pose model's next hop;
- rhythm nods start on loud local peaks of the frame level (one frame of lookahead is enough);
- gaze holds fixations and moves between them with short smooth saccades; blinks come from a
  renewal process. Everything is drawn from one seeded generator, so a session replays exactly.

Units are those of models.face.params: pose (yaw, pitch, roll, tx, ty, scale) and gaze (yaw,
pitch) relative to the portrait's own, radians; frame 0 is exactly neutral (motion ramps in over
the first second), so a session starts on the portrait as it is."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
from posetalk.models.rates import FPS

HOP = 8  # frames between points where a new style may start (the pose model's hop)
_DEG = np.pi / 180
# Sway standard deviation per pose axis (as head_motion's idle sway): radians, radians, radians, fractions.
_SWAY = np.array([2.5 * _DEG, 1.5 * _DEG, 1.2 * _DEG, 0.008, 0.006, 0.01])
_LISTEN_SWAY = 0.6  # calm idle: the sway gain whatever the style
_ATTACK, _RELEASE = 0.15, 0.6  # seconds: speech activity envelope time constants
BLINK_SHAPE = np.array([0.5, 1.0, 0.9, 0.5, 0.2], np.float32)  # eyeBlink weight over a blink's frames
_BEAT_GAP = 6  # frames between rhythm nods at least
_LOUD_DBFS = -35.0  # a rhythm nod needs a frame at least this loud


@dataclass(frozen=True)
class Style:
    """One motion style: sway gain and rhythm-nod gain while speaking, an oscillation (pose axis,
    amplitude in degrees, Hz; axis -1 for none), a steady pose offset (yaw, pitch, roll degrees),
    gaze wander gain and gaze offset (yaw, pitch degrees)."""

    name: str
    sway: float = 0.8
    beats: float = 0.7
    axis: int = -1
    amp_deg: float = 0.0
    hz: float = 0.0
    offset_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wander: float = 1.0
    gaze_deg: tuple[float, float] = (0.0, 0.0)
    sway_speed: float = 1.0  # multiplies the sway frequencies


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("calm"),
        Style("still", sway=0.15, beats=0.1, wander=0.4),
        Style("energetic", sway=1.6, beats=2.0, wander=1.3, sway_speed=2.5),
        Style("nodding", sway=0.4, beats=0.3, axis=1, amp_deg=6.0, hz=1.0, wander=0.6),
        Style("shaking", sway=0.4, beats=0.3, axis=0, amp_deg=8.0, hz=1.0, wander=0.6),
        Style("tilting", sway=0.4, beats=0.4, axis=2, amp_deg=6.0, hz=0.45, wander=0.8),
        Style("looking_around", sway=0.5, beats=0.4, axis=0, amp_deg=10.0, hz=0.3, wander=0.3),
        Style("looking_down", sway=0.5, beats=0.5, offset_deg=(0.0, 10.0, 0.0), gaze_deg=(0.0, 8.0)),
        Style("turning", sway=0.4, beats=0.5, offset_deg=(14.0, 0.0, 0.0), wander=0.6),
        Style("emphatic", sway=0.5, beats=2.5, wander=0.8),
    )
}
# Words that name a style, searched in the prompt; the earliest match wins.
_KEYWORDS: tuple[tuple[str, str], ...] = (
    (r"\bnod", "nodding"), (r"\bshak", "shaking"), (r"\btilt", "tilting"),
    (r"\blooks? around|\bglanc", "looking_around"), (r"\blooks? down|\bdownward", "looking_down"),
    (r"\bturn", "turning"), (r"\benerget|\bexcit|\blivel|\banimat|\benthusi", "energetic"),
    (r"\bstill\b|\bmotionless|\bsteady|\bstiff", "still"), (r"\bemphati|\bemphasi|\bassert", "emphatic"),
    (r"\bcalm|\brelax|\bgentl|\bquiet", "calm"),
)  # fmt: skip


def style_for_prompt(prompt: str) -> Style:
    """The procedural style a prompt asks for: the earliest style word in it ("nods slowly" ->
    nodding), with "slow"/"fast" scaling the oscillation rate, "small"/"large" its amplitude and
    "left"/"right" the side of a turn (the speaker's own); calm when no style word is found."""
    text = prompt.lower()
    found = [(m.start(), name) for pattern, name in _KEYWORDS if (m := re.search(pattern, text))]
    style = STYLES[min(found)[1]] if found else STYLES["calm"]
    pace = 0.65 if re.search(r"\bslow", text) else 1.6 if re.search(r"\bfast|\bquick|\brapid", text) else 1.0
    size = (
        0.6
        if re.search(r"\bsmall|\bslight|\bsubtl", text)
        else 1.5
        if re.search(r"\bbig|\blarge|\bwide", text)
        else 1.0
    )
    side = -1.0 if re.search(r"\bright\b", text) else 1.0  # the speaker's left is yaw > 0
    yaw, pitch, roll = style.offset_deg
    return replace(
        style, hz=style.hz * pace, amp_deg=style.amp_deg * size, offset_deg=(side * yaw * size, pitch * size, roll)
    )


@dataclass(frozen=True)
class HeadFrame:
    """One frame of live head motion: pose (6,), gaze (2,) float32 relative to the portrait's own,
    and the eyeBlink weight in [0, 1] (both eyes)."""

    pose: np.ndarray
    gaze: np.ndarray
    blink: float


def _minjerk(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x**3 * (10 - 15 * x + 6 * x * x)


class Blinker:
    """Blinks as a renewal process: gaps drawn from a gamma distribution (mean ``mean_s``, at
    least one second), each blink ``BLINK_SHAPE`` long."""

    def __init__(self, rng: np.random.Generator, mean_s: float = 3.5) -> None:
        self.rng, self.mean_s = rng, mean_s
        self.next = int(rng.uniform(1.0, 3.0) * FPS)  # frames until the next blink starts
        self.phase = -1  # index into BLINK_SHAPE while blinking

    def step(self) -> float:
        if self.phase < 0:
            self.next -= 1
            if self.next > 0:
                return 0.0
            self.phase = 0
        weight = float(BLINK_SHAPE[self.phase])
        self.phase += 1
        if self.phase == len(BLINK_SHAPE):
            self.phase = -1
            self.next = int(FPS * max(1.0, self.rng.gamma(2.0, self.mean_s / 2)))
        return weight


class LiveHead:
    """Per-frame procedural pose, gaze and blinks; ``step`` once per frame, in order.

    ``set_style`` may be called at any time; the new style starts at the next multiple of HOP
    frames and crossfades in over HOP frames. ``source`` names the style in effect."""

    def __init__(self, seed: int = 0, style: Style | str = "calm") -> None:
        self.rng = np.random.default_rng(seed)
        # Three sinusoids per pose axis, 0.05-0.3 Hz, amplitudes giving the axis its sway std.
        self.freqs = np.exp(self.rng.uniform(np.log(0.05), np.log(0.3), (6, 3)))
        self.phases = self.rng.uniform(0, 2 * np.pi, (6, 3))
        amps = self.rng.uniform(0.5, 1.0, (6, 3))
        self.amps = amps * (_SWAY / np.sqrt((amps**2).sum(1) / 2))[:, None]
        self.blinker = Blinker(self.rng)
        self.frame = 0
        self.style = STYLES[style] if isinstance(style, str) else style
        self.previous: Style | None = None  # the style fading out
        self.switch_at = 0  # frame the current style started (its crossfade runs HOP frames)
        self.pending: Style | None = None
        self.activity = 0.0  # speech activity envelope in [0, 1]
        self.peak_db = -60.0
        self.prev_db = -120.0  # the previous frame's level
        self.last_beat = -_BEAT_GAP
        self.nods: list[tuple[int, float, float]] = []  # (start frame, pitch amplitude, yaw amplitude)
        self.gaze_from = np.zeros(2)
        self.gaze_to = np.zeros(2)
        self.saccade_at = 0
        self.fixation_end = int(self.rng.uniform(0.8, 2.5) * FPS)

    @property
    def source(self) -> str:
        """What makes the head motion now, e.g. "procedural:nodding"."""
        return f"procedural:{(self.pending or self.style).name}"

    def set_style(self, style: Style | str) -> None:
        self.pending = STYLES[style] if isinstance(style, str) else style

    def step(self, level_db: float, next_db: float, speaking: bool) -> HeadFrame:
        """The next frame's motion. ``level_db`` is this frame's RMS level (dB full scale),
        ``next_db`` the next frame's (the lookahead that tells a local peak), ``speaking`` whether
        this frame is speech (the voice-activity gate's decision)."""
        f, t = self.frame, self.frame / FPS
        if self.pending is not None and f % HOP == 0:
            self.previous, self.style, self.switch_at, self.pending = self.style, self.pending, f, None
        tau = 1 / (_ATTACK if speaking else _RELEASE) / FPS
        self.activity += (float(speaking) - self.activity) * min(1.0, tau)
        fade = 1.0
        if self.previous is not None:
            fade = 0.5 - 0.5 * np.cos(np.pi * min(1.0, (f - self.switch_at + 1) / HOP))
            if fade >= 1.0:
                self.previous = None
        styles = [(self.style, fade)] + ([(self.previous, 1.0 - fade)] if self.previous is not None else [])
        pose = np.zeros(6)
        gaze_gain = 0.0
        for style, weight in styles:
            sway_gain = _LISTEN_SWAY + (style.sway - _LISTEN_SWAY) * self.activity
            pose += weight * sway_gain * self._sway(t, style.sway_speed)
            pose[:3] += weight * self.activity * self._style_pose(style, t)
            gaze_gain += weight * (0.5 + (style.wander - 0.5) * self.activity)
        pose += self._nods(f, level_db, next_db, speaking, styles)
        pose[3] += 0.1 * (pose[0] + pose[2])  # the face centre follows turns and tilts (as head_motion)
        pose[4] += 0.12 * pose[1]
        gaze = self._gaze(f, gaze_gain)
        for style, weight in styles:
            gaze += weight * self.activity * np.array(style.gaze_deg) * _DEG
            if style.name == "looking_around":  # the eyes lead the head's sweep
                gaze[0] += weight * self.activity * 0.4 * style.amp_deg * _DEG * np.sin(2 * np.pi * style.hz * t + 0.8)
        ramp = _minjerk(t)  # 0 at frame 0: a session starts on the portrait's own pose
        blink = self.blinker.step()
        self.frame += 1
        return HeadFrame((pose * ramp).astype(np.float32), (gaze * ramp).astype(np.float32), blink)

    def _sway(self, t: float, speed: float) -> np.ndarray:
        out: np.ndarray = (self.amps * np.sin(2 * np.pi * self.freqs * speed * t + self.phases)).sum(1)
        return out

    @staticmethod
    def _style_pose(style: Style, t: float) -> np.ndarray:
        out = np.array(style.offset_deg, np.float64) * _DEG
        if style.axis >= 0:
            a = style.amp_deg * _DEG
            if style.name == "nodding":  # down and back up to neutral, never above it
                out[style.axis] += a * (0.5 - 0.5 * np.cos(2 * np.pi * style.hz * t))
            else:
                out[style.axis] += a * np.sin(2 * np.pi * style.hz * t)
            if style.name == "looking_around":
                out[1] += 0.3 * a * np.sin(2 * np.pi * 0.7 * style.hz * t + 1.3)
        return out

    def _nods(
        self, f: int, level: float, next_level: float, speaking: bool, styles: list[tuple[Style, float]]
    ) -> np.ndarray:
        """Small nods (and a little turn) starting on loud local peaks of the level while speaking."""
        self.peak_db = max(level, self.peak_db - 0.25)  # a peak tracker decaying 6 dB a second
        gain = sum(s.beats * w for s, w in styles)
        prev, self.prev_db = self.prev_db, level
        if (
            speaking and level >= prev and level > next_level and level > _LOUD_DBFS
            and level >= self.peak_db - 6.0 and f - self.last_beat >= _BEAT_GAP
        ):  # fmt: skip
            self.last_beat = f
            g = gain * self.rng.uniform(0.7, 1.2)
            self.nods.append((f, 1.5 * _DEG * g, 1.2 * _DEG * g * self.rng.uniform(-1, 1)))
        out = np.zeros(6)
        length = int(0.5 * FPS)
        self.nods = [n for n in self.nods if f - n[0] < length]
        for start, pitch, yaw in self.nods:
            shape = np.sin(np.pi * (f - start) / length) ** 2
            out[1] += pitch * shape
            out[0] += yaw * shape
        return out

    def _gaze(self, f: int, gain: float) -> np.ndarray:
        """Fixations held 0.8-2.5 s, joined by three-frame minimum-jerk saccades."""
        if f >= self.fixation_end:
            self.gaze_from = self._gaze_at(f)
            self.gaze_to = self.rng.normal(0, [2.0 * _DEG, 1.2 * _DEG])
            self.saccade_at = f
            self.fixation_end = f + int(self.rng.uniform(0.8, 2.5) * FPS)
        return self._gaze_at(f) * gain

    def _gaze_at(self, f: int) -> np.ndarray:
        s = _minjerk((f - self.saccade_at) / 3)
        return self.gaze_from + (self.gaze_to - self.gaze_from) * s
