"""`--pose-from video.mp4`: a real video's head motion (pose + gaze) instead of the pose model's.

Every frame is tracked with the face mesh and fitted as `data track` does (models/data/track.py),
then made relative to the video's median pose and gaze: the portrait keeps its own pose where
the person in the video holds their usual one, and moves as they move from it. The median, not
the first frames, because a clip may start mid-nod: the first frames would offset every frame
after them by that nod. The tracked frames go onto the 25 fps grid by linear interpolation in
time (frames without a face are filled the same way), are smoothed lightly (the tracker jitters
by about a degree from frame to frame, which a still portrait would show as a tremor), and are
cut to the audio's length, or looped back and forth (no jump where the loop turns) when the
video is shorter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from posetalk.models.errors import VideoError

FPS = 25
SMOOTH_FRAMES = 1.0  # Gaussian sigma, in 25 fps frames (40 ms): takes off tracker jitter, keeps nods


def head_from_video(path: str | Path, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Pose (frames, 6) and gaze (frames, 2) float32 of the head in the video at ``path``,
    relative to their medians over the video, at 25 fps. Raises VideoError, naming the file, when
    it cannot be read, has no video frames, or shows a face in fewer than half of them."""
    from posetalk.models.data.track import MIN_FACE_FRACTION, track_frames

    path = Path(path)
    raw = track_frames(path)  # VideoError for a missing or unreadable file
    if len(raw.times) == 0:
        raise VideoError(f"{path}: the video has no frames")
    found = raw.found
    if found.mean() < MIN_FACE_FRACTION:
        raise VideoError(
            f"{path}: a face was found in {found.sum()} of {len(found)} frames; "
            f"at least {MIN_FACE_FRACTION:.0%} are needed to copy its head motion"
        )
    width = np.exp(np.median(raw.log_scale[found]))  # the face's median width in pixels
    values = np.column_stack([raw.angles, raw.pivot_xy / width, raw.log_scale, raw.gaze])[found]  # (F, 8)
    values -= np.median(values, 0)
    times = raw.times[found] - raw.times[0]
    span = raw.times[-1] - raw.times[0]
    grid = np.arange(max(1, round(span * FPS) + 1)) / FPS
    out = np.column_stack([np.interp(grid, times, v) for v in values.T])
    if len(out) > 2:
        from scipy.ndimage import gaussian_filter1d

        out = gaussian_filter1d(out, SMOOTH_FRAMES, axis=0, mode="nearest")
    out = out[back_and_forth(len(out), frames)].astype(np.float32)
    return out[:, :6], out[:, 6:]


def back_and_forth(n: int, frames: int) -> np.ndarray:
    """Indices into ``n`` frames for ``frames`` frames: 0..n-1, then back n-2..1, and again."""
    if n <= 1:
        return np.zeros(frames, int)
    k = np.arange(frames) % (2 * n - 2)
    return np.where(k < n, k, 2 * n - 2 - k)
