"""`posetalk animate`: a portrait moved by a motion file, a built-in motion, or speech (an audio
file, or a line spoken by the built-in TTS) with the audio muxed into the mp4."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_LINE = (
    "Hello! I am a talking portrait made from one photo. Give me any voice, and I will move my lips, "
    "blink, and nod along with it."
)


def speak(text: str) -> np.ndarray:
    """16 kHz speech for ``text`` from the best installed voice (Piper if present, else espeak-ng)."""
    from posetalk.models.data import tts

    found = tts.available_engines()
    voice = tts.Voice("piper", "joe") if found.get("piper") is None else tts.Voice("espeak-ng", "en-us+m3")
    return tts.synthesize(voice, text).audio


def motion_from_audio(avatar, audio: np.ndarray, seed: int = 0):  # type: ignore[no-untyped-def]
    """Pose, gaze and expression for ``audio``: blendshapes from the shipped motion model, calm
    head motion coupled to the speech's rhythm around the portrait's own pose (until the pose
    model lands)."""
    from posetalk.models.data import head_motion
    from posetalk.models.data.head_motion import make_segment
    from posetalk.models.motion.infer import MotionModel, add_blinks

    expr = add_blinks(MotionModel.load().predict(audio, lookahead=2), audio, seed)
    t = len(expr)
    rng = np.random.default_rng(seed)
    plan = head_motion.Plan((make_segment("calm", 0, t, rng),))
    pose, gaze, _ = head_motion.generate(t, rng, rhythm=head_motion.rhythm(audio, t), plan=plan)
    return pose + avatar.pose, gaze + avatar.gaze, expr


def animate(args: argparse.Namespace) -> None:
    import cv2
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
    audio = None
    if args.audio:
        from posetalk.models.audio.io import load_audio

        audio = load_audio(args.audio)
    elif args.motion is None:
        text = args.say or DEFAULT_LINE
        print(f"speaking: {text!r}")
        audio = speak(text)
    fps = 25.0
    if args.motion in BUILTIN:
        seconds = len(audio) / 16000 if audio is not None else args.seconds
        m = builtin_motion(args.motion, avatar.pose, avatar.gaze, avatar.expression, seconds)
        pose, gaze, expr, fps = m.pose, m.gaze, m.expression, m.fps
    elif args.motion is not None:
        m = load_motion(args.motion)
        pose, gaze, expr, fps = m.pose, m.gaze, m.expression, m.fps
    else:
        pose, gaze, expr = motion_from_audio(avatar, audio)  # type: ignore[arg-type]
    pose, gaze, expr = clip_motion(pose, gaze, expr)
    renderer = make_renderer(avatar, args.backend)
    frames = np.concatenate(
        [renderer.render(pose[i : i + 25], gaze[i : i + 25], expr[i : i + 25]) for i in range(0, len(pose), 25)]
    )
    n = write_mp4(args.out, frames, fps, audio=audio)
    sound = f", with {len(audio) / 16000:.2f} s of audio" if audio is not None else ""
    print(f"wrote {args.out}: {n} frames, {args.size}×{args.size}, {fps:g} fps{sound}")
    if args.contact_sheet:
        sheet = contact_sheet(frames)
        cv2.imwrite(str(args.contact_sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"wrote {args.contact_sheet}")
