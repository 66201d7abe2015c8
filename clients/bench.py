"""`posetalk bench …`: speed figures, medians of repeats, all measured in one process."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np


def _median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, in seconds."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


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


def _motion_cuda(
    folder: str | None, audio: np.ndarray, frames: int, repeats: int, streams: int = 64
) -> dict[str, float]:
    """Both nets over ``streams`` utterances at once on CUDA: milliseconds per stream-frame."""
    import torch
    from posetalk.models.audio.mel import log_mel
    from posetalk.models.motion.infer import WEIGHTS, MotionModel
    from posetalk.models.motion.nets import N_MOUTH

    model = MotionModel.load(folder or WEIGHTS, device="cuda")
    batch = torch.from_numpy(np.tile(audio[: frames * 640], (streams, 1))).cuda()
    pose_gaze = torch.zeros(streams, frames, 8, device="cuda")

    @torch.no_grad()
    def run() -> None:
        mel = log_mel(batch)
        y, _, _ = model.coarse(mel, pose_gaze, 2)
        model.refine(mel, y[..., :N_MOUTH], 2)
        torch.cuda.synchronize()

    run()
    return {f"cuda_ms_per_frame_batch{streams}": _median_s(run, repeats) / (frames * streams) * 1000}


def bench_motion(folders: list[str] | None = None, frames: int = 250, repeats: int = 5) -> dict[str, float]:
    """Per-frame cost of CoarseNet + RefineNet on one CPU thread: offline over a whole
    utterance, and streaming one frame at a time (what a live stream does); for each of
    ``folders`` (motion models to compare in one run; default: the shipped one)."""
    out: dict[str, float] = {}
    for folder in folders or [None]:
        results = _bench_one_motion(folder, frames, repeats)
        print(f"posetalk bench motion: {folder or 'shipped weights'}, CoarseNet + RefineNet, one CPU thread (medians)")
        for k, v in results.items():
            print(f"  {k:40s} {v:8.3f}")
        out.update({k if folder is None else f"{folder}/{k}": v for k, v in results.items()})
    return out


def _bench_one_motion(folder: str | None, frames: int, repeats: int) -> dict[str, float]:
    import torch
    from posetalk.models.motion.infer import WEIGHTS, MotionModel
    from posetalk.models.motion.stream import MotionStream

    torch.set_num_threads(1)
    model = MotionModel.load(folder or WEIGHTS)
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(frames * 640) * 0.1).astype(np.float32)
    model.predict(audio)
    results = {"offline_ms_per_frame_1thread": _median_s(lambda: model.predict(audio), repeats) / frames * 1000}
    stream = MotionStream(model)
    for i in range(20):
        stream.push(audio[i * 640 : (i + 1) * 640])

    def fifty_frames() -> None:
        for i in range(20, 70):
            stream.push(audio[i * 640 : (i + 1) * 640])

    results["stream_ms_per_frame_batch1_1thread"] = _median_s(fifty_frames, repeats) / 50 * 1000
    if torch.cuda.is_available():
        results.update(_motion_cuda(folder, audio, frames, repeats))
    return results


def _pose_batch_hop(model, streams: int, repeats: int, device: str) -> float:  # type: ignore[no-untyped-def]
    """Milliseconds for one hop of ``streams`` pose streams at once on ``device``: the work each
    PoseStream hop does (window log-mel and conditioning, the sampler's denoiser calls, the VAE
    decode), batched as a scheduler that serves many sessions per tick would run it."""
    import torch
    from posetalk.models.pld.cond import make_cond, visibility
    from posetalk.models.pld.samplers import Denoiser, consistency_sigmas, karras_sigmas, sample

    cfg = model.cfg
    n = cfg.context + cfg.window
    gen = torch.Generator(device="cpu").manual_seed(0)
    audio = (torch.randn(streams, n * 640, generator=gen) * 0.1).to(device)
    context = torch.randn(streams, cfg.context, cfg.channels, generator=gen).to(device)
    prompt = torch.nn.functional.normalize(torch.randn(streams, 384, generator=gen), dim=1).to(device)
    steps = model.default_steps
    sigmas = (consistency_sigmas(steps) if cfg.consistency else karras_sigmas(steps)).to(device)
    shape = (streams, cfg.window // 4, cfg.latent)
    noise = torch.randn((max(0, steps - 1), *shape), generator=gen).to(device)
    x = torch.randn(shape, generator=gen).to(device) * float(sigmas[0])
    d, vae = Denoiser(model.net), model.vae
    heard_to = torch.full((streams,), cfg.context + cfg.hop + 2, device=device)

    @torch.no_grad()
    def hop() -> None:
        vis = visibility(cfg, torch.zeros(streams, device=device), heard_to)
        cond = make_cond(cfg, audio, context, torch.ones(streams, device=device), vis, prompt, model.guidance_at(steps))
        z = sample(d, x, sigmas, cond=cond, noise=noise)
        vae.decode_raw(z * vae.z_std + vae.z_mean)
        if device == "cuda":
            torch.cuda.synchronize()

    hop()
    return _median_s(hop, repeats) * 1000


def bench_pose(
    weights: str | None = None, seconds: float = 8.0, repeats: int = 5, streams: int = 64
) -> dict[str, float]:
    """The pose model (the student, or the teacher when the folder has no student): cost per
    8-frame hop of a live PoseStream at batch 1 on one CPU thread, per denoiser call, offline
    generation as a multiple of real time, and batched hops on CUDA when there is a GPU."""
    from pathlib import Path

    import torch
    from posetalk.models.pld.cond import make_cond, visibility
    from posetalk.models.pld.evaluate import default_weights
    from posetalk.models.pld.samplers import Denoiser
    from posetalk.models.pld.stream import PoseModel

    torch.set_num_threads(1)
    folder = Path(weights) if weights else default_weights()
    model = PoseModel.load(folder)
    cfg = model.cfg
    kind = "student" if cfg.consistency else "teacher"
    prompt = "She nods slowly and calmly while she talks."
    model.prompts.embed([prompt])  # load the sentence encoder before any timing
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    audio = ((np.sin(2 * np.pi * 4 * t) > 0.2) * 0.2 * np.sign(np.sin(2 * np.pi * 140 * t))).astype(np.float32)
    audio += (0.01 * rng.standard_normal(len(t))).astype(np.float32)
    chunk = cfg.hop * 640

    def hop_ms(onnx: bool, steps: int | None = None) -> float:
        hops: list[float] = []
        for r in range(repeats):
            s = model.stream(prompt, seed=r, onnx=onnx, steps=steps)
            s.push(audio[:chunk])  # the first hop (no committed frames yet) is not typical
            s.push(audio[chunk : 2 * chunk])
            for i in range(2 * chunk, len(audio) - chunk + 1, chunk):
                t0 = time.perf_counter()
                pose, _ = s.push(audio[i : i + chunk])
                if len(pose):
                    hops.append((time.perf_counter() - t0) * 1000)
        return statistics.median(hops)

    # The stream's hop as it runs (a student's on ONNX Runtime), then all in PyTorch.
    results = {"steps": float(model.default_steps), "hop_ms_batch1_1thread": hop_ms(True),
               "hop_ms_batch1_1thread_pytorch": hop_ms(False)}  # fmt: skip
    for steps in (1, 2):
        if cfg.consistency and steps < model.default_steps:
            results[f"hop_ms_batch1_1thread_{steps}steps"] = hop_ms(True, steps)
    d = Denoiser(model.net)
    vis = visibility(cfg, torch.zeros(1), torch.full((1,), cfg.context + cfg.hop + 2))
    layout = np.resize(audio, (cfg.context + cfg.window) * 640)  # one window's audio, repeated if short
    prompt_vec = torch.from_numpy(model.prompts.embed([prompt]))
    cond = make_cond(cfg, torch.from_numpy(layout)[None], torch.zeros(1, cfg.context, cfg.channels), torch.ones(1), vis,
                     prompt_vec, model.guidance_at(model.default_steps))  # fmt: skip
    x = torch.randn(1, cfg.window // 4, cfg.latent)
    calls = []
    with torch.no_grad():
        d(x, 1.0, cond)
        for _ in range(20 * repeats):
            t0 = time.perf_counter()
            d(x, 1.0, cond)
            calls.append((time.perf_counter() - t0) * 1000)
    results["denoiser_call_ms_batch1_1thread"] = statistics.median(calls)
    offline = []
    for r in range(max(1, repeats // 2)):
        t0 = time.perf_counter()
        model.generate(audio, prompt, seed=r)
        offline.append(seconds / (time.perf_counter() - t0))
    results["offline_realtime_factor_1thread"] = statistics.median(offline)
    # A prompt the encoder has not seen (the engine encodes it off the tick, then switches).
    encode = []
    for i in range(10 * repeats):
        t0 = time.perf_counter()
        model.prompts.embed([f"Take {i}: she tilts her head a little and looks around the room."])
        encode.append((time.perf_counter() - t0) * 1000)
    results["prompt_encode_ms_1thread"] = statistics.median(encode)
    ms = _pose_batch_hop(model, streams, repeats, "cpu")
    results[f"cpu_hop_ms_batch{streams}_1thread"] = ms
    # A hop is 8 frames = 320 ms of audio: how many streams one thread keeps up with at this batch.
    results[f"cpu_realtime_streams_batch{streams}_1thread"] = streams * cfg.hop / 25 * 1000 / ms
    if torch.cuda.is_available():
        gpu = PoseModel.load(folder, device="cuda")
        results["cuda_hop_ms_batch1"] = _pose_batch_hop(gpu, 1, repeats, "cuda")
        ms = _pose_batch_hop(gpu, streams, repeats, "cuda")
        results[f"cuda_hop_ms_batch{streams}"] = ms
        results[f"cuda_realtime_streams_batch{streams}"] = streams * cfg.hop / 25 * 1000 / ms
    print(f"posetalk bench pose: the {kind} of {folder} at {model.default_steps} steps, "
          f"guidance {model.guidance_at(model.default_steps)} (medians of {repeats} repeats)")  # fmt: skip
    for k, v in results.items():
        print(f"  {k:40s} {v:10.3f}")
    return results
