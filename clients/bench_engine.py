"""`posetalk bench engine`: the live engine's speed on this machine, in three parts.

1. One session in real time (the portrait at ``size``², speech pushed as 20 ms chunks of 48 kHz
   int16, as a WebRTC microphone delivers it): per-stage p50/p95 and audio-in to frame-out
   latency (from the push that completes a frame's audio to the frame's publication).
2. How many such sessions keep up in real time: 1, 2, ... sessions at once until one no longer
   does. Keeping up means at least 98 % of frames rendered on time (the rest go out repeating the
   previous picture: the scheduler's catch-up) and audio-in to frame-out p95 under 150 ms.
3. A session of ``hours`` simulated on a fast clock (a VirtualClock: no waiting), speech pushed in
   real-time chunks throughout: every frame's audio is checked against the samples pushed, and
   the offsets between input and output audio, video pts and the clock are printed at the first
   and the last minute (they must be equal: no drift). No pictures are rendered there (a motion-only
   session): rendering cannot move a timestamp, and an hour of it would take an hour.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np

CHUNK_48K = 960  # 20 ms at 48 kHz
KEEP_UP = 0.98  # fraction of frames rendered on time for a session count to count as real time
LATENCY_GOAL_MS = 150.0


SENTENCE = "Hello! I am a talking portrait made from one photo, and I move my lips with your voice."


def _speech() -> np.ndarray:
    """A few seconds of 16 kHz speech and a second of silence after it (espeak-ng when present)."""
    from posetalk.models.data import tts

    if tts.available_engines().get("espeak-ng") is None:
        audio = np.asarray(tts.synthesize(tts.Voice("espeak-ng", "en-us"), SENTENCE).audio, np.float32)
    else:  # syllable-like bursts of a buzz
        t = np.arange(16000 * 4) / 16000
        audio = (0.2 * (np.sin(2 * np.pi * 4 * t) > 0.2) * np.sign(np.sin(2 * np.pi * 140 * t))).astype(np.float32)
    return np.concatenate([audio, np.zeros(16000, np.float32)])


def _to_48k_int16(audio: np.ndarray) -> np.ndarray:
    from scipy.signal import resample_poly

    pcm: np.ndarray = (np.clip(resample_poly(audio, 3, 1), -1, 1) * 32767).astype(np.int16)
    return pcm


async def _realtime(
    avatar: Any, motion_model: Any, sessions: int, seconds: float, render_processes: int = 0, known: str = "none",
    backend: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """``sessions`` sessions fed in real time for ``seconds``; their figures. ``known``: "text"
    or "words" pushes the sentence's text (or its timed words) before each time it is spoken."""
    from posetalk.engine import Engine, EngineConfig

    speech = _speech()
    pcm = _to_48k_int16(speech)
    words = []
    if known == "words":
        from posetalk.models.motion.words import align_text

        words = [(w.text, w.start, w.end) for w in align_text(speech, SENTENCE, confidence=False).words]
    cfg = EngineConfig(max_sessions=sessions, head="auto", render_processes=render_processes, backend=backend)
    async with Engine(cfg, motion_model=motion_model) as e:
        opened = [await e.open_session(avatar) for _ in range(sessions)]
        await asyncio.sleep(1.0)  # warm up: first renders, caches
        e.stats.reset()
        start_frames = [s.frames_out for s in opened]
        start_repeated = [s.repeated for s in opened]
        late0 = e.stats.counters.get("late_ticks", 0)

        # Pushes start 10 ms after a tick: the phase of the 20 ms pushes against the 40 ms ticks
        # moves audio-in to frame-out by up to a push (120 or 132 ms p50 from run to run), which
        # would swamp a comparison between runs.
        await e.clock.sleep_until(e.timeline.tick_time(e.timeline.tick_at(e.clock.now()) + 1) + 0.010)

        async def feed(s: Any, phase: int) -> None:
            t0, i = time.monotonic(), 0
            while time.monotonic() - t0 < seconds:
                j = (phase + i) * CHUNK_48K % len(pcm)
                if j < CHUNK_48K and known == "text":
                    s.push_text(SENTENCE)
                elif j < CHUNK_48K and known == "words":
                    s.push_words(words)
                s.push_audio(pcm[j : j + CHUNK_48K], 48000)
                i += 1
                await asyncio.sleep(max(0.0, t0 + i * 0.02 - time.monotonic()))

        lips: dict[str, int] = {}  # which lips the speaking frames showed

        async def consume(s: Any) -> None:
            async for out in s.frames():
                if out.speaking:
                    lips[out.lips] = lips.get(out.lips, 0) + 1

        consumers = [asyncio.create_task(consume(s)) for s in opened]
        await asyncio.gather(*(feed(s, 37 * k) for k, s in enumerate(opened)))
        frames = sum(s.frames_out - f for s, f in zip(opened, start_frames, strict=True))
        repeated = sum(s.repeated - r for s, r in zip(opened, start_repeated, strict=True))
        snap = e.snapshot()
        late = e.stats.counters.get("late_ticks", 0) - late0
        for s in opened:
            await s.close()
        await asyncio.gather(*consumers)
    lat = snap.stages.get("latency")
    return {"sessions": sessions, "frames": frames, "rendered": 1 - repeated / max(1, frames), "late_ticks": late,
            "latency_p95_ms": lat.p95_ms if lat else float("nan"), "stages": snap.stages,
            "stated_latency_ms": snap.latency_ms, "lips": lips}  # fmt: skip


async def _simulated_hour(motion_model: Any, hours: float) -> dict[str, float]:
    """A motion-only session on a VirtualClock for ``hours``, speech pushed in 20 ms chunks in
    (simulated) real time; every frame's audio is checked against what was pushed."""
    from posetalk.engine import Engine, EngineConfig, VirtualClock
    from posetalk.engine.clock import FRAME

    speech = _speech()
    n = len(speech)
    chunk = 320  # 20 ms at 16 kHz: checking the audio sample by sample needs no resampler here
    clock = VirtualClock()
    async with Engine(EngineConfig(head="procedural", output_queue=64), clock=clock, motion_model=motion_model) as e:
        s = await e.open_session(None)
        t0 = e.timeline.origin
        offset: int | None = None  # output pts minus input sample index: fixed once found
        frames = gaps = mismatched = 0
        delays: dict[int, list[float]] = {}  # minute -> push-to-due delays (ms) of its frames
        steps = int(hours * 3600 * 50)
        last_minute = int(hours * 60) - 1
        for step in range(steps):
            s.push_audio(speech[(step * chunk + np.arange(chunk)) % n], 16000)  # pushed at t0 + step * 20 ms
            await e.advance(t0 + (step + 1) * 0.02 - clock.now())
            for out in s.drain():
                gaps += out.index != frames
                frames = out.index + 1
                if offset is None:
                    if not out.audio.any():
                        continue
                    offset = out.pts - _locate(out.audio, speech)
                q = out.pts - offset  # the input sample index this frame must start at
                want = speech[(q + np.arange(FRAME)) % n] if q >= 0 else np.zeros(FRAME, np.float32)
                if not np.array_equal(out.audio, want):
                    mismatched += 1
                minute = int((out.due - t0) // 60)
                if minute in (1, last_minute) and q >= 0:
                    pushed_at = (q + FRAME - 1) // chunk * 0.02  # the push that completed the frame
                    delays.setdefault(minute, []).append(1000 * (out.due - t0 - pushed_at))
            if step and step % (50 * 600) == 0:
                print(f"    simulated {step / 50 / 60:5.1f} min", flush=True)
    first, last = np.array(delays.get(1, [np.nan])), np.array(delays.get(last_minute, [np.nan]))
    return {"frames": float(frames), "pts_gaps": float(gaps), "audio_mismatches": float(mismatched),
            "av_offset_samples": float(offset if offset is not None else -1),
            "push_to_due_ms_minute_1_min": float(first.min()), "push_to_due_ms_minute_1_max": float(first.max()),
            "push_to_due_ms_last_minute_min": float(last.min()),
            "push_to_due_ms_last_minute_max": float(last.max())}  # fmt: skip


def _locate(frame_audio: np.ndarray, source: np.ndarray) -> int:
    """Where in ``source`` ``frame_audio`` starts (by its first non-zero sample)."""
    k = int(np.flatnonzero(frame_audio)[0])
    for h in np.flatnonzero(source == frame_audio[k]):
        start = int(h) - k
        if start >= 0 and np.array_equal(source[start : start + len(frame_audio)], frame_audio):
            return start
    raise RuntimeError("a frame's audio is not in what was pushed")


def _model_steps(motion_model: Any, repeats: int = 200) -> None:
    """The two networks the ticks run, per call on ONNX Runtime (one thread), alone and batched as
    the engine batches sessions: the motion step every frame, the pose student's hop every 8."""
    from posetalk.models.motion.runtime import MotionRunner
    from posetalk.models.pld.evaluate import default_weights
    from posetalk.models.pld.hop import PoseHop
    from posetalk.models.pld.stream import PoseModel

    rng = np.random.default_rng(0)
    runner = MotionRunner(motion_model)
    pose = PoseModel.load(default_weights())
    print("  the networks on ONNX Runtime, one thread, ms per call (median):")
    for b in (1, 4, 16):
        states = [runner.new_state() for _ in range(b)]
        mel, pg = (rng.standard_normal((b, 4, 80)) - 4).astype(np.float32), np.zeros((b, 8), np.float32)
        ms = _median_ms(lambda: runner.step(states, mel, pg), repeats)  # noqa: B023
        hop = PoseHop(pose.net, pose.vae, pose.default_steps)
        session = pose.runtime(pose.default_steps)
        feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), hop.example(b), strict=True)}
        hop_ms = _median_ms(lambda: session.run(None, feeds), max(10, repeats // 10))  # noqa: B023
        print(f"    batch {b:2d}: motion step {ms:6.3f} ({ms / b:.3f} per session)   pose hop "
              f"({pose.default_steps} steps) {hop_ms:6.2f} ({hop_ms / b:.2f} per session)")  # fmt: skip


def _median_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def bench_engine(
    size: int = 512, hours: float = 1.0, max_sessions: int = 6, seconds: float = 8.0, render_processes: int = 0,
    known: bool = False, device: str = "cpu", counts: list[int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run the three parts and print their numbers (see the module docstring); ``render_processes``
    as EngineConfig's (0: render in the engine's threads); ``hours`` 0 skips the simulated session;
    ``known``: part 1 again with the sentence's text, then its timed words, pushed ahead;
    ``device`` "cuda": render on the GPU (EngineConfig backend); ``counts``: the session counts to
    try, in order, until one is not real time (default 1 .. ``max_sessions``)."""
    import skimage.data
    from posetalk.engine import run
    from posetalk.models.motion.infer import MotionModel
    from posetalk.models.render import prepare

    avatar = prepare(skimage.data.astronaut(), size=size)  # type: ignore[no-untyped-call]
    motion_model = MotionModel.load()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where = f"{render_processes} render processes" if render_processes else "rendering in the engine's threads"
    if device == "cuda":
        import torch

        where = f"rendering on {torch.cuda.get_device_name()} (CUDA graphs, the Triton kernel)"
    print(f"posetalk bench engine: {size}×{size} portrait, {os.cpu_count()} CPU cores (load average {load:.2f}), "
          f"{where}")  # fmt: skip
    _model_steps(motion_model)
    one = run(_realtime(avatar, motion_model, 1, seconds, render_processes, backend=device))
    print(f"  one session, {seconds:g} s of speech pushed in real time (20 ms chunks, 48 kHz int16):")
    for name, st in one["stages"].items():
        print(f"    {name:8s} {st}")
    print(f"    pipeline latency stated: {one['stated_latency_ms']:.0f} ms (lookahead 80 + frame 40 + budget 20)")
    print(f"    audio in -> frame out p95: {one['latency_p95_ms']:.1f} ms (goal < {LATENCY_GOAL_MS:.0f} ms); "
          f"frames rendered on time: {100 * one['rendered']:.1f} %")  # fmt: skip
    results: dict[str, Any] = {"one": one, "realtime_sessions": 0}
    if known:
        for mode in ("text", "words"):
            r = run(_realtime(avatar, motion_model, 1, seconds, render_processes, mode, device))
            shown = sum(r["lips"].values()) or 1
            share = ", ".join(f"{k} {100 * v / shown:.0f} %" for k, v in sorted(r["lips"].items()))
            print(f"    with {mode} pushed ahead: audio in -> frame out p95 {r['latency_p95_ms']:.1f} ms "
                  f"(without: {one['latency_p95_ms']:.1f} ms); speaking frames' lips: {share}")  # fmt: skip
            results[f"known_{mode}"] = r
    print("  sessions in real time:")
    for n in counts or range(1, max_sessions + 1):
        r = one if n == 1 else run(_realtime(avatar, motion_model, n, seconds, render_processes, backend=device))
        ok = r["rendered"] >= KEEP_UP and r["latency_p95_ms"] < LATENCY_GOAL_MS
        tick = r["stages"].get("tick")
        print(f"    {n} session(s): rendered on time {100 * r['rendered']:5.1f} %, latency p95 "
              f"{r['latency_p95_ms']:6.1f} ms, tick p95 {tick.p95_ms if tick else float('nan'):6.1f} ms, "
              f"late ticks {r['late_ticks']}: {'real time' if ok else 'NOT real time'}")  # fmt: skip
        if not ok:
            break
        results["realtime_sessions"] = n
    print(f"    -> {results['realtime_sessions']} session(s) of {size}×{size} in real time on this machine")
    work = sum(one["stages"][k].p50_ms for k in ("prepare", "lips", "render") if k in one["stages"])
    print(f"    (one session's work per frame, p50: {work:.1f} ms of the 40 ms a frame lasts: about "
          f"{40 / work:.1f} sessions per otherwise idle core, before the GIL's share)")  # fmt: skip
    if hours <= 0:
        return results
    print(f"  a {hours:g} h session on a fast clock (motion only, speech pushed in 20 ms chunks):")
    t0 = time.perf_counter()
    hour = run(_simulated_hour(motion_model, hours))
    for k, v in hour.items():
        print(f"    {k:36s} {v:14.2f}")
    print(f"    ({time.perf_counter() - t0:.0f} s of wall time)")
    results["hour"] = hour
    return results
