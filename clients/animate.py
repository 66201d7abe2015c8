"""`posetalk animate`: a portrait moved by a motion file, a built-in motion, or speech (an audio
file, or a line spoken by the built-in TTS) with the audio muxed into the mp4. Speech goes
through the same pipeline as `posetalk render` (clients/render.py), with no prompt."""

from __future__ import annotations

import argparse

from posetalk.clients.render import (
    check_alpha_out,
    load_portrait,
    say_line,
    speech_from_args,
    speech_motion,
    write_video,
)


def animate(args: argparse.Namespace) -> None:
    from posetalk.models.face.motion_file import load_motion
    from posetalk.models.face.motions import BUILTIN, builtin_motion

    speech = speech_from_args(args.audio, args.text, args.text_file)
    if args.alpha:
        check_alpha_out(args.out, args.backend)
    avatar = load_portrait(args.image, args.size)
    if speech is None and args.motion is None:
        speech = say_line(args.say)
    audio = speech.audio if speech is not None else None
    fps = 25.0
    if args.motion in BUILTIN:
        seconds = len(audio) / 16000 if audio is not None else args.seconds
        m = builtin_motion(args.motion, avatar.pose, avatar.gaze, avatar.expression, seconds)
        pose, gaze, expr, fps = m.pose, m.gaze, m.expression, m.fps
    elif args.motion is not None:
        m = load_motion(args.motion)
        pose, gaze, expr, fps = m.pose, m.gaze, m.expression, m.fps
    else:
        m, source = speech_motion(audio, known=speech.known)
        print(f"head motion: {source}")
        pose, gaze, expr = m.pose + avatar.pose, m.gaze + avatar.gaze, m.expression
    write_video(avatar, pose, gaze, expr, args.out, fps=fps, audio=audio, backend=args.backend,
                contact_sheet=args.contact_sheet, alpha=args.alpha)  # fmt: skip
