"""`posetalk data track`: a folder of talking-head videos into the corpus record format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from posetalk.models.data import records
from posetalk.models.data.track import TrackedVideo, track_folder

VIDEOS_PER_SHARD = 16


def to_record(video: TrackedVideo, index: int) -> records.Record:
    """A tracked video as a record: the words are unknown (text ""), phones unknown (-1)."""
    stem = Path(video.source).stem
    t = len(video.expression)
    return records.Record(
        id=f"video-{index:05d}", split="train", source="video", voice=f"video:{stem}", text="",
        description=video.text, audio=video.audio, expression=video.expression, pose=video.pose, gaze=video.gaze,
        phone=np.full(t, -1, np.int8), meta={"path": str(video.source), "faces": video.frames_with_face},
    )  # fmt: skip


def build_from_videos(videos: str | Path, out: str | Path) -> int:
    """Track every video in ``videos`` and write them as a complete corpus in ``out``."""
    root = Path(out)
    batch: list[records.Record] = []
    shard = n = 0
    for video in track_folder(videos):
        batch.append(to_record(video, n))
        n += 1
        if len(batch) == VIDEOS_PER_SHARD:
            records.write_shard(root, shard, batch)
            shard, batch = shard + 1, []
    if batch:
        records.write_shard(root, shard, batch)
    records.finish(root, {"source": "video", "videos": str(videos), "records": n})
    return n
