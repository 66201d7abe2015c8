"""The rates every part of posetalk shares: model audio at 16 kHz, video at 25 frames a second,
640 samples of audio per frame. One small module so that the runtime (engine, models) and the
corpus builder read them from the same place without importing each other."""

import math

SAMPLE_RATE = 16_000  # model audio: 16 kHz mono float32 (DESIGN.md); the engine's unit of time
FPS = 25  # video frames per second
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640


def n_frames(duration: float) -> int:
    """Frames of video for ``duration`` seconds of audio (the last partial frame included)."""
    return math.ceil(round(duration * FPS, 6))
