"""Real talking-head videos as training data, in the same terms as the synthetic corpus.

track_video(path) decodes a video a user owns with PyAV, tracks every frame with mediapipe's face
mesh, fits head pose, gaze and the 21 blendshape weights (models/face/fit.py), and hands back the
sound as 16 kHz mono float32 with the per-frame arrays at 25 fps on the sound's clock.
track_folder(folder) does that for every video in a folder.

Conventions (models/face/params.py):
  pose[:, :3]  yaw, pitch, roll in radians, absolute (0 = facing the camera).
  pose[:, 3:5] tx, ty: where the head's pivot (the top of the neck, as the renderer turns the head
               about it) sits against its median over the video, in median face widths.
  pose[:, 5]   scale: log of the face's size against its median over the video.
  gaze         eye yaw, pitch relative to the head, radians (absolute, as fitted).
  expression   blendshape weights in [0, 1], relative to the video's relaxed face (see below).

The relaxed face. Fitted against the canonical neutral face, a real face gives weights that are
not zero at rest: its own shape differs from the canonical one. On the still astronaut portrait
fit_face reports jawOpen 0.36 and mouthSmile 0.53-0.59 (true: she smiles with teeth), but a
frame the renderer draws with all weights 0 re-tracks as mouthRollLower 0.56, mouthUpperUp 0.26,
browOuterUpRight 0.35, jawOpen 0.14 as well, with no such movement in it. These offsets are the
person, not the speech, and a model trained on them alongside the synthetic corpus (where 0 is
rest) would learn a different rest face for every speaker. So by default each video's weights
are refitted against its own relaxed face: the canonical neutral moved by BASELINE_PERCENTILE of
every weight over the video's frames (eyes are mostly open, the jaw closes at pauses). The
price: an expression held for the whole video (a constant smile) becomes its rest. The weights
as fitted stay available with ``relative=False``; ``TrackedVideo.baseline`` says what was removed.
On the rendered test video (tests/test_data_track.py) the baseline is small (jawOpen 0.07,
browOuterUp 0.04, the rest about 0) and changes no correlation: there, most of the weight on
shapes that were never commanded (0.1-0.5 on average) comes and goes with the head turns and the
jaw, which no constant removes. That crosstalk is fit_expression's, and this module passes it on.
Blinks are the exception: they are measured from the lid gaps (_ExpressionSolver), which took
their correlation with the commanded blinks from 0.81-0.83 to 0.95-0.97.

Frames: every decoded frame is tracked (no frames are skipped); frames with no face are filled by
interpolation in time. Gaps up to MAX_GAP_S are ordinary tracking dropouts; longer ones are
filled too, so the arrays stay continuous, but ``face_mask`` marks them False so that loaders can
leave those windows out. A video whose frames mostly show no face is rejected. Frame rates other
than 25 fps are resampled by linear interpolation on time; the sound decides the duration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from posetalk.models.data.phones import FPS, SAMPLE_RATE
from posetalk.models.errors import NoVideosError, VideoError
from posetalk.models.face import canonical
from posetalk.models.face import topology as T
from posetalk.models.face.fit import canonical_basis, fit_gaze, fit_pose
from posetalk.models.face.geometry import angles_from_matrix
from posetalk.models.face.params import INDEX, N_BLENDSHAPES
from posetalk.models.face.tracker import track
from posetalk.models.render.prepare import PIVOT as RENDER_PIVOT
from posetalk.models.render.video import decode_audio, iter_frames

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm")
MAX_GAP_S = 0.5  # gaps without a face up to this long are tracking dropouts, filled and kept
MIN_FACE_FRACTION = 0.5  # below this share of frames with a face the video is rejected
BASELINE_PERCENTILE = 5.0  # per weight: the video's relaxed face
MAX_SIDE = 1280  # frames larger than this are shrunk before tracking (mediapipe works at 192²)
HOP = SAMPLE_RATE // FPS  # audio samples per video frame
PIVOT = RENDER_PIVOT.astype(np.float64)  # canonical head pivot: the renderer turns the head about it


@dataclass
class TrackedVideo:
    """One tracked video on a 25 fps grid: frame k covers [k/25, (k+1)/25) s of ``audio``."""

    audio: np.ndarray  # (T·640,) float32, 16 kHz mono
    pose: np.ndarray  # (T, 6) float32: yaw, pitch, roll, tx, ty, scale
    gaze: np.ndarray  # (T, 2) float32: yaw, pitch
    expression: np.ndarray  # (T, 21) float32 blendshape weights in BLENDSHAPE_NAMES order
    text: str  # the sidecar .txt's contents, "" without one
    source: Path
    frames_with_face: float  # share of the source video's frames in which a face was found
    face_mask: np.ndarray  # (T,) bool: False where a long gap without a face was filled in
    baseline: np.ndarray  # (21,) the relaxed-face weights removed from the fit (0 if absolute)
    fps: int = FPS

    @property
    def frames(self) -> int:
        return len(self.pose)

    @property
    def duration(self) -> float:
        return float(len(self.audio) / SAMPLE_RATE)


def video_files(videos_dir: str | Path) -> list[Path]:
    """The folder's .mp4, .mov and .webm files (any letter case), sorted by name."""
    folder = Path(videos_dir)
    if not folder.is_dir():
        raise NoVideosError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not files:
        raise NoVideosError(f"{folder}: no .mp4, .mov or .webm videos in it")
    return files


def track_folder(
    videos_dir: str | Path, *, strict: bool = False, skipped: list[tuple[Path, str]] | None = None
) -> Iterator[TrackedVideo]:
    """Track every video in ``videos_dir`` (sorted by name), one at a time.

    A video that cannot be used (unreadable, no audio track, no face) is skipped with a warning
    naming it and the reason, and appended to ``skipped`` when a list is given: one bad file
    should not cost a corpus build its other videos. ``strict=True`` raises on the first one
    instead. If no video at all could be used, VideoError says why for each.
    Raises NoVideosError for a missing folder or one without videos.
    """
    files = video_files(videos_dir)
    failures: list[tuple[Path, str]] = []
    for path in files:
        try:
            tracked = track_video(path)
        except VideoError as exc:
            if strict:
                raise
            log.warning("skipping %s", exc)
            failures.append((path, str(exc)))
            if skipped is not None:
                skipped.append((path, str(exc)))
            continue
        yield tracked
    if len(failures) == len(files):
        reasons = "; ".join(reason for _, reason in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        raise VideoError(f"{videos_dir}: none of the {len(files)} videos could be used: {reasons}{more}")


def read_text(path: str | Path) -> str:
    """The description beside a video: ``clip.txt`` for ``clip.mp4``, stripped; "" without one."""
    sidecar = Path(path).with_suffix(".txt")
    if not sidecar.is_file():
        return ""
    return sidecar.read_text(encoding="utf-8", errors="replace").strip()


def track_video(path: str | Path, *, relative: bool = True) -> TrackedVideo:
    """Sound, head pose, gaze and blendshape weights of one talking-head video at 25 fps.

    ``relative``: fit the weights against the video's own relaxed face (the default; see the
    module docstring) rather than report them as fitted against the canonical face.
    Raises VideoError naming the file if it cannot be read, has no audio track, or shows no face
    in most of its frames.
    """
    path = Path(path)
    audio, audio_start = decode_audio(path, SAMPLE_RATE)
    raw = track_frames(path)
    n_src = len(raw.times)
    if n_src == 0:
        raise VideoError(f"{path}: the video has no frames")
    found = raw.found
    share = float(found.mean())
    if share < MIN_FACE_FRACTION:
        raise VideoError(
            f"{path}: a face was found in {found.sum()} of {n_src} frames ({share:.0%}); "
            f"at least {MIN_FACE_FRACTION:.0%} are needed"
        )
    log.info(
        "%s: %d frames tracked in %.1f s (%.0f frames/s), a face in %.0f%%",
        path.name, n_src, raw.seconds, n_src / max(raw.seconds, 1e-9), 100 * share,
    )  # fmt: skip

    # Per source frame with a face: pose, gaze, weights.
    ref_log_scale = float(np.median(raw.log_scale[found]))
    ref_xy = np.median(raw.pivot_xy[found], 0)
    pose = np.column_stack(
        [
            raw.angles[found],
            (raw.pivot_xy[found] - ref_xy) / np.exp(ref_log_scale),  # median face widths
            raw.log_scale[found] - ref_log_scale,
        ]
    )
    solver = _solver()
    points = raw.points[found]
    weights = solver.solve(points)
    baseline = np.zeros(N_BLENDSHAPES, np.float32)
    if relative:
        baseline = np.percentile(weights, BASELINE_PERCENTILE, axis=0).astype(np.float32)
        weights = solver.solve(points, baseline)
    values = np.column_stack([pose, raw.gaze[found], weights])  # (F, 6 + 2 + 21)

    # Onto the 25 fps grid of the sound (its first sample is t = 0): linear in time between the
    # frames with a face, which also fills the frames without one.
    times = raw.times - audio_start
    n_out = max(1, round(len(audio) / HOP))
    grid = np.arange(n_out) / FPS
    out = np.column_stack([np.interp(grid, times[found], v) for v in values.T])
    mask = _face_mask(times, found, grid)
    audio = np.pad(audio, (0, max(0, n_out * HOP - len(audio))))[: n_out * HOP]
    return TrackedVideo(
        audio=audio.astype(np.float32),
        pose=out[:, :6].astype(np.float32),
        gaze=out[:, 6:8].astype(np.float32),
        expression=np.clip(out[:, 8:], 0.0, 1.0).astype(np.float32),
        text=read_text(path),
        source=path,
        frames_with_face=share,
        face_mask=mask,
        baseline=baseline,
    )


@dataclass
class RawTrack:
    times: np.ndarray  # (n,) seconds on the file's clock, increasing
    found: np.ndarray  # (n,) bool
    angles: np.ndarray  # (n, 3) yaw, pitch, roll
    pivot_xy: np.ndarray  # (n, 2) pixels: where the head pivot projects
    log_scale: np.ndarray  # (n,) log of the face width in pixels
    gaze: np.ndarray  # (n, 2)
    points: np.ndarray  # (n, 468, 3) float32 mesh points in the canonical frame (pose removed)
    seconds: float  # wall time spent


def track_frames(path: Path) -> RawTrack:
    """Track and fit every frame of the video (rows without a face stay zero). Needs no sound
    track: `posetalk render --pose-from` copies head motion from silent videos with it."""
    start = time.perf_counter()
    times: list[float] = []
    found: list[bool] = []
    rows: list[tuple[np.ndarray, ...]] = []
    empty = (np.zeros(3), np.zeros(2), np.zeros(1), np.zeros(2), np.zeros((T.N_MESH, 3), np.float32))
    for t, rgb in iter_frames(path):
        times.append(t)
        k = min(1.0, MAX_SIDE / max(rgb.shape[:2]))
        if k < 1.0:
            rgb = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        face = track(rgb)  # static mode: every frame on its own, no state carried between videos
        found.append(face is not None)
        if face is None:
            rows.append(empty)
            continue
        lm = face.landmarks.astype(np.float64) / k
        s, r, offset = fit_pose(lm)
        p = ((lm - offset) @ r) / s  # the canonical frame: R^T (lm - offset) / s, as fit_face
        rows.append(
            (
                np.array(angles_from_matrix(r)),
                (s * r @ PIVOT + offset)[:2],
                np.array([np.log(s)]),
                fit_gaze(p),
                p[: T.N_MESH].astype(np.float32),
            )
        )
    order = np.argsort(np.array(times), kind="stable")  # decoders hand frames out in pts order; be sure
    cols = [np.array([row[i] for row in rows])[order] if rows else np.zeros((0,) + empty[i].shape) for i in range(5)]
    return RawTrack(
        times=np.array(times, np.float64)[order],
        found=np.array(found, bool)[order],
        angles=cols[0].reshape(-1, 3),
        pivot_xy=cols[1].reshape(-1, 2),
        log_scale=cols[2].reshape(-1),
        gaze=cols[3].reshape(-1, 2),
        points=cols[4].reshape(-1, T.N_MESH, 3),
        seconds=time.perf_counter() - start,
    )


def _face_mask(times: np.ndarray, found: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(len(grid),) bool: True where the source frame showing at that time had a face or lies in
    a gap up to MAX_GAP_S; False in longer gaps and where the grid runs past the video's frames
    (sound without picture)."""
    period = _frame_period(times)
    ok = found.copy()
    i = 0
    while i < len(found):  # each run of frames without a face
        if found[i]:
            i += 1
            continue
        j = i
        while j < len(found) and not found[j]:
            j += 1
        ok[i:j] = (j - i) * period <= MAX_GAP_S + 1e-6
        i = j
    showing = np.clip(np.searchsorted(times, grid + 1e-6, side="right") - 1, 0, len(times) - 1)
    inside = (grid > times[0] - period) & (grid < times[-1] + 1.5 * period)
    return ok[showing] & inside


def _frame_period(times: np.ndarray) -> float:
    d = np.diff(times)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 1.0 / FPS


class _ExpressionSolver:
    """fit_expression (models/face/fit.py) for many frames at once, against a moved neutral face,
    with blinks measured from the lid gaps.

    The bounded least-squares problem of fit_expression, reduced once through a QR factorisation
    of its fixed matrix: ||A·w - r||² = ||R·w - Qᵀr||² + const, so each frame solves 21 rows
    instead of about 1200. With ``blinks=False`` and no baseline it is fit_expression (a test
    holds them equal); fit_expression stays the readable reference.

    Blinks: fitted jointly, the lids' motion is shared out among eyeBlink and the brow shapes
    (whose fields reach the lids), and head turns leak into eyeBlink: on a rendered test video
    eyeBlink correlated 0.81-0.83 with the commanded blinks. The gap between paired upper and
    lower lid points, projected on what eyeBlink does to that gap, correlates 0.94-0.96. So
    with ``blinks=True`` each eyeBlink weight comes from its eye's lid gaps, and the other 19
    weights are fitted with the blinks held at those values.
    """

    def __init__(self) -> None:
        c = canonical.load()
        b = canonical_basis()[:, : T.N_MESH].astype(np.float64)  # (21, 468, 3)
        moving = np.ones(T.N_MESH, bool)
        moving[c.rigid] = False
        self.wz = np.array([1.0, 1.0, 0.3])  # as fit_expression: depth weighted down
        self.lam = 1e-3  # as fit_expression: the ridge
        self.moving = moving
        self.basis = b
        self.neutral = c.vertices[: T.N_MESH].astype(np.float64)
        self.a = (b[:, moving] * self.wz).reshape(len(b), -1).T  # (3·n, 21)
        self._qr: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        # Per eye: the eyeBlink index, the upper and lower lid points paired (corners left out).
        self.eyes = [
            (INDEX["eyeBlinkLeft"], list(T.LEFT_EYE_UPPER[1:-1]), list(T.LEFT_EYE_LOWER[1:-1])),
            (INDEX["eyeBlinkRight"], list(T.RIGHT_EYE_UPPER[1:-1]), list(T.RIGHT_EYE_LOWER[1:-1])),
        ]

    def _reduced(self, free: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Q, R of the weighted, ridged system in the ``free`` weights."""
        if free not in self._qr:
            a = np.vstack([self.a[:, free], np.sqrt(self.lam) * np.eye(len(free))])
            self._qr[free] = np.linalg.qr(a)  # (3·n + k, k), (k, k)
        return self._qr[free]

    def blink(self, points: np.ndarray, neutral: np.ndarray) -> np.ndarray:
        """(F, 2) eyeBlink weights, unclipped, from the lid gaps of (F, ≥468, 3) points."""
        out = []
        for k, upper, lower in self.eyes:
            gap = points[:, upper, :2] - points[:, lower, :2]  # (F, 7, 2)
            rest = neutral[upper, :2] - neutral[lower, :2]
            d = self.basis[k, upper, :2] - self.basis[k, lower, :2]  # what a full blink does to them
            out.append(((gap - rest) * d).sum((1, 2)) / (d * d).sum())
        return np.stack(out, 1)

    def solve(self, points: np.ndarray, baseline: np.ndarray | None = None, blinks: bool = True) -> np.ndarray:
        """(F, 21) weights in [0, 1] for (F, ≥468, 3) canonical-frame points, fitted against the
        canonical neutral face moved by ``baseline`` (21,) weights."""
        from scipy.optimize import lsq_linear

        n_w = len(self.basis)
        neutral = self.neutral
        if baseline is not None:
            neutral = neutral + np.tensordot(baseline.astype(np.float64), self.basis, 1)
        fixed = np.zeros((len(points), n_w))
        held = [k for k, _, _ in self.eyes] if blinks else []
        if blinks:
            fixed[:, held] = np.clip(self.blink(points, neutral), 0.0, 1.0)
        free = tuple(k for k in range(n_w) if k not in held)
        q, r = self._reduced(free)
        diff = (points[:, : T.N_MESH][:, self.moving] - neutral[self.moving]) * self.wz
        rhs = np.zeros((len(points), q.shape[0]))
        rhs[:, : self.a.shape[0]] = diff.reshape(len(points), -1) - fixed @ self.a.T
        proj = rhs @ q  # (F, k): Qᵀr per frame
        out = fixed.astype(np.float32)
        for i in range(len(points)):
            out[i, list(free)] = lsq_linear(r, proj[i], bounds=(0.0, 1.0), method="bvls").x
        return out


@lru_cache(maxsize=1)
def _solver() -> _ExpressionSolver:
    return _ExpressionSolver()
