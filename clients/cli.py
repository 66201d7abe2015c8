"""The `posetalk` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from posetalk.models.errors import PosetalkError


def _animate(args: argparse.Namespace) -> None:
    import cv2
    import numpy as np
    from posetalk.models.face.motion_file import load_motion
    from posetalk.models.face.motions import BUILTIN, builtin_motion
    from posetalk.models.face.params import clip_motion
    from posetalk.models.render import make_renderer, prepare
    from posetalk.models.render.video import contact_sheet, write_mp4

    if args.image is None:
        import skimage.data

        image: object = skimage.data.astronaut()
        print("portrait: scikit-image's astronaut (pass --image to use your own)")
    else:
        image = Path(args.image)
    avatar = prepare(image, size=args.size)  # type: ignore[arg-type]
    if avatar.faces_seen > 1:
        print(f"{avatar.faces_seen} faces in the image: animating the largest")
    if args.motion in BUILTIN:
        motion = builtin_motion(args.motion, avatar.pose, avatar.gaze, avatar.expression, args.seconds)
    else:
        motion = load_motion(args.motion)
    pose, gaze, expr = clip_motion(motion.pose, motion.gaze, motion.expression)
    renderer = make_renderer(avatar, args.backend)
    frames = np.concatenate(
        [renderer.render(pose[i : i + 25], gaze[i : i + 25], expr[i : i + 25]) for i in range(0, len(pose), 25)]
    )
    n = write_mp4(args.out, frames, motion.fps)
    print(f"wrote {args.out}: {n} frames, {args.size}×{args.size}, {motion.fps:g} fps")
    if args.contact_sheet:
        sheet = contact_sheet(frames)
        cv2.imwrite(str(args.contact_sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"wrote {args.contact_sheet}")


def _bench(args: argparse.Namespace) -> None:
    from posetalk.clients import bench

    if args.what == "render":
        bench.bench_render(size=args.size, frames=args.frames, repeats=args.repeats)
    elif args.what == "data":
        bench.bench_data(seconds=args.seconds)


def _data(args: argparse.Namespace) -> None:
    if args.action == "synth":
        from posetalk.models.data.synth import build

        engines = args.engines.split(",") if args.engines else None
        s = build(args.out, args.hours, args.seed, engines=engines, workers=args.workers)
        print(f"wrote {args.out}: {s['seconds_built_now'] / 3600:.3f} h built now at {s['realtime_factor']}× real time")
    elif args.action == "track":
        from posetalk.models.data.tracked import build_from_videos

        n = build_from_videos(args.videos, args.out)
        print(f"wrote {args.out}: {n} videos tracked")
    elif args.action == "inspect":
        from posetalk.models.data.report import inspect

        inspect(args.dir, plot=args.plot, record=args.record)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="posetalk", description="Real-time talking-head engine.")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("animate", help="render a portrait moved by a motion file or built-in motion")
    a.add_argument("--image", help="portrait photo (default: the bundled astronaut)")
    a.add_argument("--motion", default="talk",
                   help="motion .npz/.json, or one of nod, shake, look-around, talk, blink")  # fmt: skip
    a.add_argument("--out", default="out.mp4", help="output mp4")
    a.add_argument("--size", type=int, default=512, help="output frame side in pixels")
    a.add_argument("--seconds", type=float, default=4.0, help="length of a built-in motion")
    a.add_argument("--backend", default="cpu", choices=["cpu", "torch"])
    a.add_argument("--contact-sheet", help="also write a PNG grid of frames")
    a.set_defaults(func=_animate)

    b = sub.add_parser("bench", help="print speed figures")
    b.add_argument("what", choices=["render", "data"])
    b.add_argument("--size", type=int, default=512)
    b.add_argument("--frames", type=int, default=50)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--seconds", type=float, default=1200.0, help="data: seconds of corpus to build")
    b.set_defaults(func=_bench)

    d = sub.add_parser("data", help="build and inspect training corpora")
    dsub = d.add_subparsers(dest="action", required=True)
    ds = dsub.add_parser("synth", help="synthetic speech with lip targets and head motion with descriptions")
    ds.add_argument("--out", required=True, help="corpus folder (an interrupted build resumes there)")
    ds.add_argument("--hours", type=float, default=1.0)
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--engines", help="comma-separated subset of espeak-ng,festival,flite,piper (default: all found)")
    ds.add_argument("--workers", type=int, help="processes (default: one per core)")
    dt = dsub.add_parser("track", help="talking-head videos (mp4, mov, webm) into the same record format")
    dt.add_argument("--videos", required=True, help="folder of videos; a .txt beside a video is its description")
    dt.add_argument("--out", required=True)
    di = dsub.add_parser("inspect", help="counts, hours per voice, phone coverage and a plot of one record")
    di.add_argument("dir")
    di.add_argument("--plot", help="PNG path for a record's spectrogram with its curves")
    di.add_argument("--record", type=int, default=0, help="which record to plot")
    d.set_defaults(func=_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        args.func(args)
    except PosetalkError as exc:
        print(f"posetalk: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
