"""`posetalk bench …`: speed figures, medians of repeats, all measured in one process."""

from __future__ import annotations

import statistics
import time

import numpy as np


def _motion(avatar, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    t = np.arange(n) / 25.0
    pose = np.repeat(avatar.pose[None], n, 0)
    pose[:, 0] += 0.3 * np.sin(2 * np.pi * 0.5 * t)
    pose[:, 1] += 0.1 * np.sin(2 * np.pi * 0.8 * t)
    gaze = np.zeros((n, 2), np.float32)
    expr = np.clip(rng.uniform(0, 0.6, (n, 21)), 0, 1).astype(np.float32)
    return pose, gaze, expr


def bench_render(size: int = 512, frames: int = 50, repeats: int = 5) -> dict[str, float]:
    import cv2
    import skimage.data
    import torch
    from posetalk.models.render import make_renderer, prepare

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    img = skimage.data.astronaut()
    prepare(img, size=size, use_cache=False)  # warm mediapipe
    prep = []
    for _ in range(3):
        t0 = time.perf_counter()
        avatar = prepare(img, size=size, use_cache=False)
        prep.append(time.perf_counter() - t0)
    pose, gaze, expr = _motion(avatar, frames)
    results: dict[str, float] = {"prepare_s": statistics.median(prep)}

    def fps(renderer, batch: int) -> float:  # type: ignore[no-untyped-def]
        renderer.render(pose[:batch], gaze[:batch], expr[:batch])  # warm up
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(0, frames, batch):
                renderer.render(pose[i : i + batch], gaze[i : i + batch], expr[i : i + batch])
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            runs.append(frames / (time.perf_counter() - t0))
        return statistics.median(runs)

    results["cpu_opencv_fps_1core"] = fps(make_renderer(avatar, "cpu"), 1)
    results["torch_cpu_fps_1thread_batch8"] = fps(make_renderer(avatar, "torch", device="cpu"), 8)
    if torch.cuda.is_available():
        gpu = make_renderer(avatar, "torch", device="cuda")
        for batch in (1, 16, 64):
            results[f"torch_cuda_fps_batch{batch}"] = fps(gpu, batch)
    print(f"posetalk bench render: {size}×{size}, {frames} frames × {repeats} repeats (medians)")
    for k, v in results.items():
        print(f"  {k:32s} {v:10.3f}")
    return results


def bench_data(seconds: float = 1200.0) -> dict[str, float]:
    """Build ``seconds`` of corpus in a temporary folder with one worker per core and print the
    speed as a multiple of real time; then each TTS engine's and augmentation's own speed."""
    import os
    import tempfile

    from posetalk.models.data import augment, tts
    from posetalk.models.data.synth import build

    with tempfile.TemporaryDirectory() as tmp:
        s = build(tmp, seconds / 3600, seed=0)
    results = {"corpus_realtime_factor": float(s["realtime_factor"] or 0.0)}
    print(f"posetalk bench data: {s['seconds_built_now']:.0f} s of corpus in {s['wall_s']:.1f} s "
          f"on {os.cpu_count()} cores: {results['corpus_realtime_factor']:.1f}× real time")  # fmt: skip
    results.update({f"tts_{k}": v for k, v in tts.bench_tts().items()})
    results.update({f"augment_{k}": v for k, v in augment.bench_augment().items()})
    return results


def bench_motion(frames: int = 250, repeats: int = 5) -> dict[str, float]:
    """Per-frame cost of CoarseNet + RefineNet on one CPU thread: offline over a whole
    utterance, and streaming one frame at a time (the window a live stream recomputes)."""
    import torch
    from posetalk.models.motion.infer import MotionModel
    from posetalk.models.motion.stream import MotionStream

    torch.set_num_threads(1)
    model = MotionModel.load()
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(frames * 640) * 0.1).astype(np.float32)
    model.predict(audio)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(audio)
        runs.append((time.perf_counter() - t0) / frames * 1000)
    results = {"offline_ms_per_frame_1thread": statistics.median(runs)}
    stream = MotionStream(model)
    for i in range(20):
        stream.push(audio[i * 640 : (i + 1) * 640])
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(20, 70):
            stream.push(audio[i * 640 : (i + 1) * 640])
        runs.append((time.perf_counter() - t0) / 50 * 1000)
    results["stream_ms_per_frame_batch1_1thread"] = statistics.median(runs)
    if torch.cuda.is_available():
        results["cuda"] = float("nan")  # measured by tests/gpu when a GPU is present
    print("posetalk bench motion: CoarseNet + RefineNet, one CPU thread (medians)")
    for k, v in results.items():
        print(f"  {k:40s} {v:8.3f}")
    return results
