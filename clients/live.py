"""The live commands: `posetalk serve` (the server and its browser page), `posetalk client`
(a recording over WebRTC, what comes back to an mp4) and `posetalk live` (a local microphone or a
file straight into an engine session, out to an mp4 and/or a virtual camera)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from posetalk.streaming.errors import StreamingError


def _engine_config(args: argparse.Namespace, max_sessions: int):  # type: ignore[no-untyped-def]
    from posetalk.engine import EngineConfig

    processes = getattr(args, "render_processes", None)
    if processes is None:  # serve: one render process per core, at most one per session
        processes = min(os.cpu_count() or 1, max_sessions) if max_sessions > 1 else 0
    return EngineConfig(backend=args.backend, max_sessions=max_sessions, head=args.head, render_processes=processes)


def serve(args: argparse.Namespace) -> None:
    from posetalk.engine import run
    from posetalk.streaming.avatars import UploadLimits
    from posetalk.streaming.server import Server, ServerConfig
    from posetalk.streaming.server import serve as serve_forever

    token = args.token or os.environ.get("POSETALK_TOKEN") or None
    config = ServerConfig(
        host=args.host, port=args.port, token=token, size=args.size, image=args.image,
        max_sessions=args.max_sessions, ice=args.ice, margin_ms=args.margin_ms, idle_timeout_s=args.idle_timeout,
        limits=UploadLimits(max_bytes=args.max_upload_mb * 2**20, max_side=args.max_image_side),
        cert=args.cert, key=args.key, self_signed=args.self_signed, alpha=args.alpha,
    )  # fmt: skip
    config.check()  # before loading anything: an unsafe setting fails at once

    def ready(server: Server) -> None:
        print(f"posetalk is serving: open {server.url}", flush=True)
        if server.tls is not None:
            print(f"  certificate {server.tls.cert}", flush=True)
            print(f"  SHA-256 fingerprint {server.tls.fingerprint}", flush=True)
            if args.self_signed:
                print("  (self-signed: the browser warns once; check that it shows this fingerprint)", flush=True)
        print(f"  overlay for OBS (Browser Source): {server.overlay_url}", flush=True)
        print("  (Ctrl-C stops it)", flush=True)

    print("loading the models and preparing the portrait…", flush=True)
    run(serve_forever(config, _engine_config(args, args.max_sessions), on_ready=ready))


def client(args: argparse.Namespace) -> None:
    from posetalk.clients.rtc_client import run_client
    from posetalk.engine import run

    t0 = time.perf_counter()
    result = run(run_client(args.url, args.audio, args.out, prompt=args.prompt, avatar=args.avatar, token=args.token,
                            lead_s=args.lead, tail_s=args.tail, ice_mode=args.ice, cafile=args.ca))  # fmt: skip
    m = result.mp4
    print(f"wrote {m.path}: {m.frames} frames ({m.filled} filled), {m.audio_samples / 48000:.2f} s of audio; "
          f"received {result.frames} frames at {result.fps:.2f} fps by their timestamps "
          f"in {time.perf_counter() - t0:.1f} s (session {result.session})")  # fmt: skip


def live(args: argparse.Namespace) -> None:
    from posetalk.engine import run

    if not args.audio and not args.mic:
        raise StreamingError("give --audio FILE or --mic")
    if not args.out and not args.virtual_camera:
        raise StreamingError("give --out FILE.mp4 and/or --virtual-camera")
    if args.alpha:
        from posetalk.clients.render import check_alpha_out

        if args.virtual_camera or not args.out:
            raise StreamingError("--alpha writes a file (--out .webm or .mov); a virtual camera takes no alpha")
        check_alpha_out(args.out, "cpu")
    run(_live(args))


async def _live(args: argparse.Namespace) -> None:
    from posetalk.clients.render import load_portrait
    from posetalk.engine import Engine
    from posetalk.streaming.inputs import Microphone, play_file
    from posetalk.streaming.outputs import Mp4Sink, VirtualCameraSink
    from posetalk.streaming.tracks import SessionMedia

    avatar = await asyncio.get_running_loop().run_in_executor(None, load_portrait, args.image, args.size)
    async with Engine(_engine_config(args, 1)) as engine:
        session = await engine.open_session(avatar, prompt=args.prompt, alpha=args.alpha)
        media = SessionMedia(session, engine.clock)
        mp4 = Mp4Sink(args.out) if args.out else None
        camera = VirtualCameraSink(args.size) if args.virtual_camera else None
        media.sinks += [s for s in (mp4, camera) if s is not None]
        media.start()
        try:
            if args.mic:
                async with Microphone(session, device=args.device):
                    print(f"listening for {args.seconds:g} s (Ctrl-C stops)", file=sys.stderr, flush=True)
                    await asyncio.sleep(args.seconds)
            else:
                seconds = await play_file(session, args.audio, realtime=True)
                print(f"played {seconds:.1f} s of {args.audio}", file=sys.stderr, flush=True)
                await asyncio.sleep(0.5)  # the pipeline's delay, and a breath after the last word
        except BaseException:
            await _finish(media, session, mp4, camera, quiet=True)  # the first error is the one to report
            raise
        await _finish(media, session, mp4, camera, quiet=False)


async def _finish(media: Any, session: Any, mp4: Any, camera: Any, *, quiet: bool) -> None:
    await media.close()
    await session.close()
    if camera is not None:
        camera.close()
    if mp4 is not None:
        try:
            s = mp4.close()
        except StreamingError:
            if quiet:
                return
            raise
        print(f"wrote {s.path}: {s.frames} frames, {s.audio_samples / 48000:.2f} s of audio")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`serve`, `client` and `live` (clients/cli.py calls this)."""
    s = sub.add_parser("serve", help="the live server: WebRTC, WebSocket and the browser page")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (anything but loopback needs --token)")
    s.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    s.add_argument("--token", help="required on every request (default: $POSETALK_TOKEN)")
    s.add_argument("--image", help="the default portrait (default: the bundled astronaut)")
    s.add_argument("--size", type=int, default=512, help="video side in pixels")
    s.add_argument("--max-sessions", type=int, default=4)
    s.add_argument("--max-upload-mb", type=int, default=10, help="largest portrait upload")
    s.add_argument("--max-image-side", type=int, default=4096, help="largest portrait width or height, pixels")
    s.add_argument("--ice", default="host", choices=["host", "loopback"],
                   help="media addresses: host (network interfaces + 127.0.0.1) or loopback only")  # fmt: skip
    s.add_argument("--margin-ms", type=float, default=40.0,
                   help="send each frame this long after it is due: slack for a busy machine")  # fmt: skip
    s.add_argument("--idle-timeout", type=float, default=10.0,
                   help="release a WebRTC peer whose microphone has sent nothing for this many seconds")  # fmt: skip
    s.add_argument("--cert", help="PEM certificate (chain): serve https:// (needs --key)")
    s.add_argument("--key", help="PEM private key of --cert")
    s.add_argument("--self-signed", action="store_true",
                   help="serve https:// with a self-signed certificate (kept in the posetalk cache)")  # fmt: skip
    s.add_argument("--alpha", action="store_true",
                   help="every session renders the person on a transparent background, for the overlay page "
                        "(otherwise only sessions that ask: alpha=1)")  # fmt: skip
    s.add_argument("--render-processes", type=int,
                   help="render processes (default: one per core, at most --max-sessions; 0: threads)")  # fmt: skip
    _engine_args(s)
    s.set_defaults(func=serve)

    c = sub.add_parser("client", help="send a recording to a server over WebRTC and record what comes back")
    c.add_argument("--url", required=True, help="the server's address, as `posetalk serve` prints it")
    c.add_argument("--audio", required=True, help="speech to send as the microphone (any audio file)")
    c.add_argument("--out", default="received.mp4", help="the mp4 to record the avatar's video and audio to")
    c.add_argument("--prompt", default="", help="how the head moves")
    c.add_argument("--avatar", help="a portrait id on the server (default: its default portrait)")
    c.add_argument("--token", help="the server's token (or put ?token=... in --url)")
    c.add_argument("--lead", type=float, default=0.5, help="seconds of silence before the recording")
    c.add_argument("--tail", type=float, default=1.5, help="seconds to keep recording after it")
    c.add_argument("--ice", choices=["host", "loopback"], help="default: loopback for a loopback URL")
    c.add_argument("--ca", help="a PEM certificate to trust for https:// (the one `serve --self-signed` prints)")
    c.set_defaults(func=client)

    v = sub.add_parser("live", help="microphone or file into a local session, out to an mp4 or a virtual camera")
    v.add_argument("--audio", help="a recording to play in real time")
    v.add_argument("--mic", action="store_true", help="this machine's microphone (sounddevice)")
    v.add_argument("--device", help="microphone device (name or index; default: the system's)")
    v.add_argument("--seconds", type=float, default=30.0, help="how long to listen to the microphone")
    v.add_argument("--out", help="mp4 to write (.webm or .mov with --alpha)")
    v.add_argument("--virtual-camera", action="store_true", help="send frames to a virtual camera (pyvirtualcam)")
    v.add_argument("--alpha", action="store_true", help="the person alone on a transparent background, for "
                   "overlays: --out .webm (VP9 with alpha) or .mov (ProRes 4444)")  # fmt: skip
    v.add_argument("--image", help="portrait (default: the bundled astronaut)")
    v.add_argument("--size", type=int, default=512)
    v.add_argument("--prompt", default="", help="how the head moves")
    _engine_args(v)
    v.set_defaults(func=live)


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="cpu", choices=["cpu", "cuda"], help="renderer device")
    p.add_argument("--head", default="auto", choices=["auto", "procedural", "pose"],
                   help="head motion: the pose model when its weights ship (auto), or the procedural head")  # fmt: skip
