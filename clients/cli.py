"""The `posetalk` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from posetalk.models.errors import PosetalkError


def _animate(args: argparse.Namespace) -> None:
    from posetalk.clients.animate import animate

    animate(args)


def _bench(args: argparse.Namespace) -> None:
    from posetalk.clients import bench

    if args.what == "render":
        bench.bench_render(size=args.size, frames=args.frames, repeats=args.repeats)
    elif args.what == "data":
        bench.bench_data(seconds=args.seconds)
    elif args.what == "motion":
        bench.bench_motion(args.weights.split(",") if args.weights else None, repeats=args.repeats)
    elif args.what == "pose":
        bench.bench_pose(args.weights, repeats=args.repeats)
    elif args.what == "kernels":
        from posetalk.kernels.render.bench import bench_kernels

        bench_kernels(size=args.size)
    elif args.what == "engine":
        from posetalk.clients.bench_engine import bench_engine

        counts = [int(n) for n in args.sessions.split(",")] if args.sessions else None
        bench_engine(size=args.size, hours=args.hours, max_sessions=args.max_sessions,
                     render_processes=args.render_processes, known=args.known, device=args.device,
                     counts=counts)  # fmt: skip


def _inspect_render(args: argparse.Namespace) -> None:
    from posetalk.clients.inspect_render import write_sheet
    from posetalk.clients.render import load_portrait

    avatars = [load_portrait(image, args.size) for image in (args.image or [None])]
    print(f"wrote {write_sheet(avatars, args.out, args.scale)}")


def _data(args: argparse.Namespace) -> None:
    if args.action == "synth":
        from posetalk.models.data.synth import build

        engines = args.engines.split(",") if args.engines else None
        s = build(args.out, args.hours, args.seed, engines=engines, workers=args.workers)
        print(f"wrote {args.out}: {s['seconds_built_now'] / 3600:.3f} h built now at {s['realtime_factor']}× real time")
    elif args.action == "real":
        from posetalk.models.data.real import build as build_real

        voices = args.voices.split(",") if args.voices else None
        s = build_real(args.out, voices, limit=args.limit, workers=args.workers)
        minutes = sum(v["minutes"] for v in s["alignment"].values())
        print(f"wrote {args.out}: {minutes:.1f} min of real speech in {s['wall_s']:.0f} s")
    elif args.action == "track":
        from posetalk.models.data.tracked import build_from_videos

        n = build_from_videos(args.videos, args.out)
        print(f"wrote {args.out}: {n} videos tracked")
    elif args.action == "inspect":
        from posetalk.models.data.report import inspect

        inspect(args.dir, plot=args.plot, record=args.record)


def _train_device(args: argparse.Namespace) -> str:
    """The device a `train` command asked for (auto: CUDA when present), with torch's CPU threads
    set. These small nets gain little from more CPU threads, and lose a lot when another process
    shares the cores (measured: 0.2 s/step on one thread, 1.3 s/step on two, contended)."""
    import torch

    torch.set_num_threads(args.threads)
    return ("cuda" if _cuda() else "cpu") if args.device == "auto" else args.device


def _share(text: str) -> float:
    """An argparse type: a share between 0 and 1."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {x}")
    return x


def _context_options(p: argparse.ArgumentParser) -> None:
    """The training mix that makes the prompt, not the stream's own past, decide the motion
    (`train pld` and `train distill`; see models/pld/train.py)."""
    p.add_argument("--p-no-context", type=_share, default=0.1, help="share of windows with no committed context")
    p.add_argument("--p-change", type=_share, default=0.25, help="share of windows told a new style after the context")


def _train(args: argparse.Namespace) -> None:
    from posetalk.models.motion.train import train_motion
    from posetalk.models.motion.voice_norm import VoiceNorm

    device = _train_device(args)
    r = train_motion(args.data, args.out, steps=args.steps, batch=args.batch, seed=args.seed, device=device,
                     noise=args.noise, width=args.width, layers=args.layers, warp=args.warp,
                     smooth=args.smooth, adapt=args.adapt, vocoded=args.vocode, pitch=args.pitch,
                     teachers=args.teacher, distill=args.distill,
                     f0norm=VoiceNorm(args.f0norm, args.f0_lowest) if args.f0norm else None,
                     real=args.real, real_share=args.real_share, init=args.init,
                     adapt_var=args.adapt_var)  # fmt: skip
    print(f"trained {r['steps']} steps in {r['seconds']:.0f} s: checkpoints in {args.out}")


def _train_sync(args: argparse.Namespace) -> None:
    from posetalk.models.motion.sync import train_sync

    device = _train_device(args)
    seconds = args.minutes * 60 if args.minutes else None
    path = train_sync(args.data, args.out, steps=args.steps, seed=args.seed, device=device, max_seconds=seconds)
    print(f"sync expert in {path}")


def _train_pld(args: argparse.Namespace) -> None:
    from posetalk.models.pld.train import train_pld

    device = _train_device(args)
    r = train_pld(args.data, args.out, steps=args.steps, vae_steps=args.vae_steps, batch=args.batch, seed=args.seed,
                  device=device, vae_from=args.vae_from, p_no_context=args.p_no_context,
                  plan_options={"p_change": args.p_change})  # fmt: skip
    print(f"trained {r['steps']} steps in {r['seconds']:.0f} s: checkpoints in {args.out}")


def _train_distill(args: argparse.Namespace) -> None:
    from posetalk.models.pld.distill import distill_pld

    device = _train_device(args)
    r = distill_pld(args.teacher, args.data, args.out, steps=args.steps, student_steps=args.student_steps,
                    batch=args.batch, lr=args.lr, levels=args.levels, seed=args.seed, device=device,
                    init=args.init, noise=args.noise, p_no_context=args.p_no_context,
                    plan_options={"p_change": args.p_change})  # fmt: skip
    print(f"distilled {r['steps']} steps in {r['seconds']:.0f} s: student in {args.out}")


def _train_decoder(args: argparse.Namespace) -> None:
    from posetalk.models.pld.decoder import tune_decoder

    device = _train_device(args)
    r = tune_decoder(args.weights, args.data, args.out, steps=args.steps, latent_noise=args.latent_noise,
                     batch=args.batch, seed=args.seed, device=device)  # fmt: skip
    print(f"decoder tuned {r['steps']} steps in {r['seconds']:.0f} s: a PLD folder in {args.out}")


def _eval_pose(args: argparse.Namespace) -> None:
    from posetalk.models.pld.evaluate import evaluate

    evaluate(args.data, args.weights, args.out, args.limit, teacher_limit=args.teacher_limit, retrain=args.retrain,
             split=args.split)  # fmt: skip


def _eval_words(args: argparse.Namespace) -> None:
    from posetalk.models.motion.eval_words import evaluate_words

    evaluate_words(args.data, args.method, args.split, args.voice, args.limit, args.out)


def _eval(args: argparse.Namespace) -> None:
    from posetalk.models.motion.evaluate import LOOKAHEADS, evaluate

    lookaheads = tuple(ms // 40 for ms in args.lookahead_ms) if args.lookahead_ms else LOOKAHEADS
    evaluate(args.data, args.out, args.weights, args.limit, args.split, lookaheads)


def _motion(args: argparse.Namespace) -> None:
    from posetalk.clients.render import motion

    motion(args)


def _render(args: argparse.Namespace) -> None:
    from posetalk.clients.render import render

    render(args)


def _head_args(p: argparse.ArgumentParser) -> None:
    """The head-motion options `render` and `motion` share."""
    p.add_argument("--prompt", default="", help='how the head moves, in words ("nods slowly, calm")')
    p.add_argument("--steps", type=int, help="pose model sampling steps (default: the model's own, 4 for the student)")
    p.add_argument("--guidance", type=float, help="how strongly the prompt is followed (default: the model's own)")
    p.add_argument("--motion-scale", type=float, default=1.0, help="head motion amplitude (0: a still head)")
    p.add_argument("--pose-from", help="copy the head motion of this video (tracked) instead of the pose model")
    p.add_argument("--pose-weights", help="folder with the pose model's checkpoints (default: the shipped ones)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="posetalk", description="Real-time talking-head engine.")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("animate", help="render a portrait moved by a motion file or built-in motion")
    a.add_argument("--image", help="portrait photo (default: the bundled astronaut)")
    a.add_argument("--motion", help="motion .npz/.json, or one of nod, shake, look-around, talk, blink "
                   "(default: motion from the speech)")  # fmt: skip
    a.add_argument("--audio", help="speech to lip-sync and mux into the mp4 (any audio or video file)")
    a.add_argument("--say", help="a line for the built-in voice to speak (default: a greeting)")
    a.add_argument("--text", help="the words --audio speaks: their mouth shapes join the audio's lips")
    a.add_argument("--text-file", help="the same from a file: plain UTF-8 text, or a JSON list of "
                   '{"word", "start", "end"} (seconds) for timed words')  # fmt: skip
    a.add_argument("--out", default="out.mp4", help="output mp4")
    a.add_argument("--size", type=int, default=512, help="output frame side in pixels")
    a.add_argument("--seconds", type=float, default=4.0, help="length of a built-in motion")
    a.add_argument("--backend", default="cpu", choices=["cpu", "torch"])
    a.add_argument("--contact-sheet", help="also write a PNG grid of frames")
    a.add_argument("--alpha", action="store_true", help="the person alone on a transparent background, for "
                   "overlays: --out .webm (VP9 with alpha) or .mov (ProRes 4444)")  # fmt: skip
    a.set_defaults(func=_animate)

    r = sub.add_parser("render", help="portrait + speech + prompt to an mp4: lip-sync, head motion, sound")
    r.add_argument("--image", help="portrait photo (default: the bundled astronaut)")
    r.add_argument("--audio", help="speech (any audio or video file; default: a line from the built-in voice)")
    r.add_argument("--say", help="a line for the built-in voice to speak when there is no --audio")
    r.add_argument("--text", help="the words --audio speaks: their mouth shapes join the audio's lips")
    r.add_argument("--text-file", help="the same from a file: plain UTF-8 text, or a JSON list of "
                   '{"word", "start", "end"} (seconds) for timed words')  # fmt: skip
    _head_args(r)
    r.add_argument("--seed", type=int, default=0, help="for the head motion and the blinks")
    r.add_argument("--out", default="out.mp4", help="output mp4")
    r.add_argument("--size", type=int, default=512, help="output frame side in pixels")
    r.add_argument("--backend", default="cpu", choices=["cpu", "torch"])
    r.add_argument("--contact-sheet", help="also write a PNG grid of frames")
    r.add_argument("--alpha", action="store_true", help="the person alone on a transparent background, for "
                   "overlays: --out .webm (VP9 with alpha) or .mov (ProRes 4444)")  # fmt: skip
    r.set_defaults(func=_render)

    b = sub.add_parser("bench", help="print speed figures")
    b.add_argument("what", choices=["render", "data", "motion", "pose", "engine", "kernels"])
    b.add_argument("--size", type=int, default=512)
    b.add_argument("--frames", type=int, default=50)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--seconds", type=float, default=1200.0, help="data: seconds of corpus to build")
    b.add_argument("--weights", help="pose: a PLD folder, motion: motion model folders, comma-separated (default: the "
                   "shipped weights)")  # fmt: skip
    b.add_argument("--hours", type=float, default=1.0, help="engine: length of the session simulated on a fast clock")
    b.add_argument("--max-sessions", type=int, default=6, help="engine: most sessions to try at once")
    b.add_argument("--render-processes", type=int, default=0, help="engine: render in this many processes (0: threads)")
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="engine: where sessions render")
    b.add_argument("--sessions", help="engine: session counts to try, comma-separated (default 1 .. --max-sessions)")
    b.add_argument("--known", action="store_true", help="engine: also one session with text / timed words pushed ahead")
    b.set_defaults(func=_bench)

    t = sub.add_parser("train", help="train models")
    tsub = t.add_subparsers(dest="what", required=True)
    tm = tsub.add_parser("motion", help="CoarseNet + RefineNet: audio to the 21 blendshapes")
    tm.add_argument("--data", required=True, help="a corpus built by `posetalk data synth` (or `data track`)")
    tm.add_argument("--out", required=True, help="checkpoint folder (an interrupted run resumes there)")
    tm.add_argument("--steps", type=int, default=4000)
    tm.add_argument("--batch", type=int, default=32)
    tm.add_argument("--seed", type=int, default=0)
    tm.add_argument("--device", default="auto", help="cpu, cuda, or auto (CUDA when present)")
    tm.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    tm.add_argument("--noise", type=float, default=0.0, help="share of windows with noise mixed in on the fly (0-1)")
    tm.add_argument("--warp", type=float, default=0.12, help="speaker warp: frequencies scaled by 1 ± this (0: off)")
    tm.add_argument("--smooth", type=float, default=0.0, help="share of windows with smoothed spectra (0-1)")
    tm.add_argument("--vocode", type=float, default=0.0,
                    help="share of windows re-made by a parametric (pulse/noise) vocoder (0-1)")  # fmt: skip
    tm.add_argument("--pitch", type=float, default=1.0,
                    help="vocoded windows: F0 times a factor from 1/this to this (formants: its 4th root)")  # fmt: skip
    tm.add_argument("--adapt", type=float, default=0.0,
                    help="seconds of a running mean voice spectrum taken off the input (0: off)")  # fmt: skip
    tm.add_argument("--adapt-var", action="store_true",
                    help="with --adapt: the input also divided by the running deviation of each mel bin")  # fmt: skip
    tm.add_argument("--width", type=int, help="CoarseNet's channels and GRU size (default 256)")
    tm.add_argument("--layers", type=int, help="CoarseNet's causal convolutions at the frame rate (default 2)")
    tm.add_argument("--teacher", action="append", help="a trained motion model folder to distil (repeatable: averaged)")
    tm.add_argument("--distill", type=float, default=0.5,
                    help="with --teacher: share of the main losses against the teachers' outputs (0-1)")  # fmt: skip
    tm.add_argument("--f0norm", type=float, nargs="?", const=150.0, metavar="HZ",
                    help="move voices above HZ (default 150) down in frequency by their running median "
                    "pitch")  # fmt: skip
    tm.add_argument("--f0-lowest", type=float, default=0.85, help="with --f0norm: the most a voice is moved (factor)")
    tm.add_argument("--real", help="a `posetalk data real` corpus: its training prompts mixed into the windows")
    tm.add_argument("--real-share", type=float, default=0.3, help="with --real: share of the windows from it (0-1)")
    tm.add_argument("--init", help="start from this trained motion model (fine-tuning; its settings are kept)")
    tm.set_defaults(func=_train)
    tp = tsub.add_parser(
        "pld", help="pose latent diffusion: the pose VAE, then the denoiser (pose + gaze from audio and text)"
    )
    tp.add_argument("--data", required=True, help="a corpus built by `posetalk data synth` (or `data track`)")
    tp.add_argument("--out", required=True, help="checkpoint folder (an interrupted run resumes there)")
    tp.add_argument("--steps", type=int, default=20000, help="VAE and denoiser steps together")
    tp.add_argument("--vae-steps", type=int, help="of which the VAE's (default: a fifth)")
    tp.add_argument("--batch", type=int, default=64)
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("--device", default="auto", help="cpu, cuda, or auto (CUDA when present)")
    tp.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    tp.add_argument("--vae-from", help="a PLD folder whose trained pose VAE is used as is (no VAE phase)")
    _context_options(tp)
    tp.set_defaults(func=_train_pld)
    tdec = tsub.add_parser("decoder", help="the pose VAE's decoder fine-tuned for a few-step sampler's latents")
    tdec.add_argument("--weights", required=True, help="a PLD folder (e.g. models/pld/weights); its encoder stays")
    tdec.add_argument("--data", required=True, help="a corpus built by `posetalk data synth`")
    tdec.add_argument("--out", required=True, help="the new PLD folder (an interrupted run resumes there)")
    tdec.add_argument("--steps", type=int, default=800)
    tdec.add_argument("--latent-noise", type=float, default=0.5, help="extra latent noise, up to this many spreads")
    tdec.add_argument("--batch", type=int, default=64)
    tdec.add_argument("--seed", type=int, default=0)
    tdec.add_argument("--device", default="auto", help="cpu, cuda, or auto (CUDA when present)")
    tdec.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    tdec.set_defaults(func=_train_decoder)
    tsy = tsub.add_parser("sync", help="the sync expert: a contrastive audio/mouth model for lip-sync scores")
    tsy.add_argument("--data", required=True, help="a corpus built by `posetalk data synth`")
    tsy.add_argument("--out", required=True, help="checkpoint folder (an interrupted run resumes there)")
    tsy.add_argument("--steps", type=int, default=8000)
    tsy.add_argument("--minutes", type=float, help="also stop after this much wall time")
    tsy.add_argument("--seed", type=int, default=0)
    tsy.add_argument("--device", default="auto", help="cpu, cuda, or auto (CUDA when present)")
    tsy.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    tsy.set_defaults(func=_train_sync)
    td = tsub.add_parser("distill", help="a 1-4 step PLD student (consistency distillation of a `train pld` teacher)")
    td.add_argument("--teacher", required=True, help="the folder `train pld` wrote")
    td.add_argument("--data", required=True, help="the corpus the teacher was trained on")
    td.add_argument("--out", required=True, help="student folder (an interrupted run resumes there)")
    td.add_argument("--steps", type=int, default=4000)
    td.add_argument("--student-steps", type=int, default=2, choices=[1, 2, 3, 4], help="sampling steps by default")
    td.add_argument("--batch", type=int, default=64)
    td.add_argument("--lr", type=float, default=1e-4)
    td.add_argument("--levels", type=int, default=40, help="noise levels of the discretised teacher ODE")
    td.add_argument("--init", help="start from the student in this folder instead of the teacher")
    td.add_argument("--noise", type=float, default=0.0, help="share of windows with noise mixed into the audio (0-1)")
    td.add_argument("--seed", type=int, default=0)
    td.add_argument("--device", default="auto", help="cpu, cuda, or auto (CUDA when present)")
    td.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    _context_options(td)
    td.set_defaults(func=_train_distill)

    e = sub.add_parser("eval", help="evaluate models on a corpus's held-out test voices")
    esub = e.add_subparsers(dest="what", required=True)
    em = esub.add_parser("motion", help="jawOpen r, lip error, closures, sync; per lookahead; clean and degraded")
    em.add_argument("--data", required=True)
    em.add_argument("--out", help="folder for eval_motion.json and eval_motion.png")
    em.add_argument("--weights", help="folder with the checkpoints (default: the shipped ones)")
    em.add_argument("--limit", type=int, help="at most this many utterances of each voice (default: all)")
    em.add_argument("--split", default="test", choices=["test", "val"], help="held-out voices to measure on")
    em.add_argument("--lookahead-ms", type=int, action="append", choices=[0, 40, 80, 160],
                    help="only this lookahead (repeatable; default: 0, 40, 80 and 160)")  # fmt: skip
    em.set_defaults(func=_eval)
    ew = esub.add_parser("words", help="lips from known words vs audio-only: jawOpen r, closures, trust")
    ew.add_argument("--data", required=True, help="a corpus (`data real` or `data synth`): records with transcripts")
    ew.add_argument("--method", default="align", choices=["align", "words", "wrong"],
                    help="aligned transcript, timed words, or another prompt's transcript")  # fmt: skip
    ew.add_argument("--split", default="test", choices=["test", "val"])
    ew.add_argument("--voice", default="", help="only voices whose name starts so (e.g. asterisk:en)")
    ew.add_argument("--limit", type=int, help="at most this many records")
    ew.add_argument("--out", help="folder for eval_words_<split>_<method>.json")
    ew.set_defaults(func=_eval_words)
    ep = esub.add_parser("pose", help="pose model: prompt adherence, beat alignment, diversity, student vs teacher")
    ep.add_argument("--data", required=True, help="a corpus built by `posetalk data synth`")
    ep.add_argument("--weights", help="PLD folder (default: the shipped models/pld/weights)")
    ep.add_argument("--out", default="eval_pose", help="folder for eval_pose.json, plots and the style classifier")
    ep.add_argument("--limit", type=int, help="at most this many clips (default: all)")
    ep.add_argument("--teacher-limit", type=int, help="clips the 50-step teacher runs on (default: all)")
    ep.add_argument("--retrain", action="store_true", help="retrain the cached style classifier")
    ep.add_argument("--split", default="test", choices=["test", "val"], help="held-out voices to measure on")
    ep.set_defaults(func=_eval_pose)

    m = sub.add_parser("motion", help="audio file to a motion file (.npz or .json): head pose, gaze, 21 blendshapes")
    m.add_argument("--audio", required=True, help="any audio or video file with sound")
    m.add_argument("--text", help="the words --audio speaks: their mouth shapes join the audio's lips")
    m.add_argument("--text-file", help="the same from a file: plain UTF-8 text, or a JSON list of "
                   '{"word", "start", "end"} (seconds) for timed words')  # fmt: skip
    m.add_argument("--out", required=True, help="motion.npz or motion.json")
    m.add_argument("--lookahead-ms", type=int, default=80, choices=[0, 40, 80, 120, 160])
    m.add_argument("--weights", help="folder with coarse/refine.safetensors (default: the shipped ones)")
    m.add_argument("--seed", type=int, default=0, help="for the head motion and the blinks")
    _head_args(m)
    m.set_defaults(func=_motion)

    d = sub.add_parser("data", help="build and inspect training corpora")
    dsub = d.add_subparsers(dest="action", required=True)
    ds = dsub.add_parser("synth", help="synthetic speech with lip targets and head motion with descriptions")
    ds.add_argument("--out", required=True, help="corpus folder (an interrupted build resumes there)")
    ds.add_argument("--hours", type=float, default=1.0)
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--engines", help="comma-separated subset of espeak-ng,festival,flite,piper (default: all found)")
    ds.add_argument("--workers", type=int, help="processes (default: one per core)")
    dr = dsub.add_parser("real", help="real recorded speech from Debian's packages, aligned to its transcripts")
    dr.add_argument("--out", required=True, help="corpus folder (an interrupted build resumes there)")
    dr.add_argument("--voices", help="comma-separated subset of en,es,fr,ru,it,alsa (default: all)")
    dr.add_argument("--limit", type=int, help="at most this many prompts per voice")
    dr.add_argument("--workers", type=int, help="processes (default: one per core)")
    dt = dsub.add_parser("track", help="talking-head videos (mp4, mov, webm) into the same record format")
    dt.add_argument("--videos", required=True, help="folder of videos; a .txt beside a video is its description")
    dt.add_argument("--out", required=True)
    di = dsub.add_parser("inspect", help="counts, hours per voice, phone coverage and a plot of one record")
    di.add_argument("dir")
    di.add_argument("--plot", help="PNG path for a record's spectrogram with its curves")
    di.add_argument("--record", type=int, default=0, help="which record to plot")
    d.set_defaults(func=_data)

    ins = sub.add_parser("inspect", help="contact sheets to look at: the rendered mouth and eyes")
    isub = ins.add_subparsers(dest="what", required=True)
    ir = isub.add_parser("render", help="mouth (rest, /a/, /o/, /u/, /m/, /f/, smile, jaw 0.8, 1) and eyes "
                         "(open, half, shut) of each portrait at 3x")  # fmt: skip
    ir.add_argument("--image", action="append", help="portrait photo, repeatable (default: the bundled astronaut)")
    ir.add_argument("--out", default="sheet.png", help="output PNG")
    ir.add_argument("--size", type=int, default=512, help="rendered frame side in pixels")
    ir.add_argument("--scale", type=int, default=3, help="enlargement of the crops")
    ir.set_defaults(func=_inspect_render)

    from posetalk.clients.export import add_parser as add_export_parser
    from posetalk.clients.live import add_parsers as add_live_parsers  # serve, client, live

    add_export_parser(sub)
    add_live_parsers(sub)
    return p


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if args.verbose:
        os.environ["POSETALK_VERBOSE"] = "1"  # other libraries' start-up logs too (models/face/tracker.py)
    try:
        args.func(args)
    except PosetalkError as exc:
        print(f"posetalk: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
