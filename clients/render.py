"""`posetalk render` and `posetalk motion`: the offline pipeline, one audio file in, an mp4 (or a
motion file) out; and the pieces `posetalk animate` shares with it.

    audio ──► MotionModel (CoarseNet + RefineNet) ──────────────► 21 blendshapes ──┐
      │                                        ▲ pose + gaze                        ├─► renderer ─► mp4 + audio
      └──► PoseModel (PLD: audio + prompt) ────┴─────────────────► pose + gaze ────┘
           or a video's tracked head (--pose-from)
           or calm procedural motion (no PLD weights shipped yet; `motion`: neutral)

Why clients/ and not engine/: this is whole arrays plus file I/O (portrait, TTS, audio file,
tracked video, mp4, contact sheet), run once per command; DESIGN.md's engine/ is the live path's
sessions, clock and batching scheduler. Both paths run the same models (``PoseModel.generate``
is ``PoseStream`` over the whole file, ``MotionModel.predict`` equals ``MotionStream``), so the
live engine needs nothing from here.

Head motion here is relative: zeros mean "as in the portrait". The renderer gets the portrait's
own pose and gaze plus it (a motion file stores it as it is: 0 = facing the camera), and
CoarseNet sees it as in training. ``motion_scale`` multiplies it, whatever its source."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from posetalk.models.errors import InputError
from posetalk.models.face.motion_file import Motion

if TYPE_CHECKING:
    from posetalk.models.pld.stream import PoseModel
    from posetalk.models.render import Avatar

FPS = 25.0
CHUNK = 25  # frames rendered per call: a second of video in memory at a time, however long the file
DEFAULT_LINE = (
    "Hello! I am a talking portrait made from one photo. Give me any voice, and I will move my lips, "
    "blink, and nod along with it."
)


def speak(text: str) -> Spoken:
    """16 kHz speech for ``text`` from the best installed voice (Piper if present, else espeak-ng),
    with the voice's own phone timings."""
    from posetalk.models.data import tts

    found = tts.available_engines()
    voice = tts.Voice("piper", "joe") if found.get("piper") is None else tts.Voice("espeak-ng", "en-us+m3")
    utt = tts.synthesize(voice, text)
    return Spoken(np.asarray(utt.audio, np.float32), utt.phones)


@dataclass
class Spoken:
    """Speech and, where known, its words: text, timed Words or the TTS's own Phones."""

    audio: np.ndarray  # 16 kHz float32
    known: Any = None  # str | list[Word] | list[Phone] | None


def speech_from_args(audio: str | None, text: str | None = None, text_file: str | None = None) -> Spoken | None:
    """The --audio file with its --text / --text-file (plain text, or JSON timed words); None
    without --audio. Bad files fail here, before any slow work."""
    from posetalk.models.audio.io import load_audio

    if text is not None and text_file is not None:
        raise InputError("give --text or --text-file, not both")
    if text is not None and not text.strip():
        raise InputError("--text is empty")
    known: Any = text
    if text_file is not None:
        from posetalk.models.motion.words import load_words

        known = load_words(text_file)
    if audio is None:
        if known is not None:
            raise InputError("--text and --text-file need --audio (the built-in voice, --say, knows its own words)")
        return None
    return Spoken(load_audio(audio), known)


def load_portrait(image: str | Path | None, size: int) -> Avatar:
    """The prepared Avatar of ``image``, or of the bundled astronaut when None."""
    from posetalk.models.render import prepare

    if image is None:
        import skimage.data

        source: np.ndarray | Path = skimage.data.astronaut()  # type: ignore[no-untyped-call]
        print("portrait: scikit-image's astronaut (pass --image to use your own)")
    else:
        source = Path(image)
    avatar = prepare(source, size=size)
    if avatar.faces_seen > 1:
        print(f"{avatar.faces_seen} faces in the image: animating the largest")
    return avatar


def say_line(text: str | None) -> Spoken:
    """The built-in voice speaking ``text`` (default: a greeting), with its phones."""
    text = text or DEFAULT_LINE
    print(f"speaking: {text!r}")
    return speak(text)


# --- head motion -----------------------------------------------------------------------------------


@dataclass
class Head:
    pose: np.ndarray  # (T, 6) float32, relative to the portrait's own pose
    gaze: np.ndarray  # (T, 2) float32, relative to the portrait's own gaze
    source: str  # what made it, for the summary line


def pose_model(folder: str | Path | None = None, instead: str = "calm procedural head motion") -> PoseModel | None:
    """The PLD in ``folder`` (it must load: CheckpointError otherwise), or the shipped one when
    None; None, with a one-line notice naming ``instead``, while no weights have shipped."""
    from posetalk.models.pld import weights

    if folder is None:
        folder = weights.WEIGHTS
        if weights.missing(folder):
            print(f"notice: no pose model weights in {folder} yet: {instead}")
            return None
    from posetalk.models.pld.stream import PoseModel

    return PoseModel.load(folder)


def head_motion(
    audio: np.ndarray, frames: int, *, prompt: str = "", seed: int = 0, steps: int | None = None,
    guidance: float | None = None, motion_scale: float = 1.0, lookahead: int = 2,
    pose_weights: str | Path | None = None, pose_from: str | Path | None = None, fallback: str = "calm",
) -> Head:  # fmt: skip
    """Pose + gaze for ``frames`` frames of 16 kHz ``audio``: tracked from ``pose_from`` when
    given, else from the PLD (``prompt``, ``seed``, ``steps``, ``guidance``, ``lookahead``); with
    no PLD weights, ``fallback`` "calm" (procedural, following the speech's rhythm) or "neutral"."""
    if not (np.isfinite(motion_scale) and motion_scale >= 0):
        raise InputError(f"--motion-scale must be a number ≥ 0, got {motion_scale}")
    if pose_from is not None:
        from posetalk.clients.copy_head import head_from_video

        pose, gaze = head_from_video(pose_from, frames)
        source = f"copied from {pose_from}" + (f" (prompt {prompt!r} ignored)" if prompt else "")
    else:
        instead = "neutral pose and gaze" if fallback == "neutral" else "calm procedural head motion"
        model = pose_model(pose_weights, instead + (f" (prompt {prompt!r} ignored)" if prompt else ""))
        if model is not None:
            lookahead = min(lookahead, model.cfg.max_lookahead)
            pose, gaze = model.generate(audio, prompt, seed=seed, steps=steps, guidance=guidance, lookahead=lookahead)
            kind = "student" if model.cfg.consistency else "teacher"
            source = f"pose model ({kind}, {steps or model.default_steps} steps), prompt {prompt!r}"
        elif fallback == "neutral":
            pose, gaze, source = np.zeros((frames, 6)), np.zeros((frames, 2)), "neutral (no pose model)"
        else:
            pose, gaze = calm_head(audio, frames, seed)
            source = "calm procedural (no pose model)"
    if motion_scale != 1.0:
        source += f", motion scale {motion_scale:g}"
    pose = (np.asarray(pose, np.float32) * motion_scale)[:frames]
    gaze = (np.asarray(gaze, np.float32) * motion_scale)[:frames]
    return Head(pose, gaze, source)


def calm_head(audio: np.ndarray, frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The corpus's calm style, coupled to the speech's rhythm (what heads did before the PLD)."""
    from posetalk.models.data import head_motion as procedural

    rng = np.random.default_rng(seed)
    plan = procedural.Plan((procedural.make_segment("calm", 0, frames, rng),))
    pose, gaze, _ = procedural.generate(frames, rng, rhythm=procedural.rhythm(audio, frames), plan=plan)
    return pose, gaze


def speech_motion(
    audio: np.ndarray, *, seed: int = 0, lookahead: int = 2, motion_weights: str | Path | None = None,
    known: Any = None, **head: Any,
) -> tuple[Motion, str]:  # fmt: skip
    """Relative pose, gaze (``head_motion(**head)``) and absolute blendshapes for 16 kHz
    ``audio`` at 25 fps, and what made the head motion. ``known``: the speech's words (text,
    timed Words or Phones: models/motion/words.py), whose shapes join the audio model's lips."""
    from posetalk.models.motion.infer import SAMPLES_PER_FRAME, MotionModel, add_blinks

    frames = -(-len(audio) // SAMPLES_PER_FRAME)
    h = head_motion(audio, frames, seed=seed, lookahead=lookahead, **head)
    model = MotionModel.load(motion_weights) if motion_weights else MotionModel.load()
    expr = model.predict(audio, lookahead=lookahead, pose_gaze=np.concatenate([h.pose, h.gaze], 1))
    if known is not None:
        from posetalk.models.motion.words import known_lips

        expr, summary = known_lips(audio, expr, known)
        print(summary)
    return Motion(h.pose, h.gaze, add_blinks(expr, audio, seed), FPS), h.source


# --- video out -------------------------------------------------------------------------------------


def check_alpha_out(out: str | Path, backend: str) -> None:
    """InputError unless ``out`` can hold video with alpha and ``backend`` renders it."""
    from posetalk.models.render.video import ALPHA_SUFFIXES

    if Path(out).suffix.lower() not in ALPHA_SUFFIXES:
        raise InputError(f"--alpha needs a .webm (VP9 with alpha) or .mov (ProRes 4444) --out, not {out}")
    if backend != "cpu":
        raise InputError("--alpha renders with the cpu backend")


def write_video(
    avatar: Avatar, pose: np.ndarray, gaze: np.ndarray, expression: np.ndarray, out: str | Path, *,
    fps: float = FPS, audio: np.ndarray | None = None, backend: str = "cpu", contact_sheet: str | Path | None = None,
    alpha: bool = False,
) -> int:  # fmt: skip
    """Render absolute motion on ``avatar`` into ``out`` (H.264, the audio muxed in), a second at a
    time; a grid of evenly spaced frames to ``contact_sheet``. Returns the frame count. ``alpha``:
    the person alone on a transparent background (straight alpha; ``out`` .webm or .mov), for
    live-stream overlays."""
    import cv2
    from posetalk.models.face.params import clip_motion
    from posetalk.models.render import make_renderer
    from posetalk.models.render.video import contact_sheet as sheet_of
    from posetalk.models.render.video import sheet_frames, write_mp4

    pose, gaze, expression = clip_motion(pose, gaze, expression)
    renderer = make_renderer(avatar, backend)
    keep = set(sheet_frames(len(pose)).tolist()) if contact_sheet else set()
    kept: dict[int, np.ndarray] = {}

    if alpha:
        check_alpha_out(out, backend)

    def frames() -> Iterator[np.ndarray]:
        for i in range(0, len(pose), CHUNK):
            if alpha:
                rows = zip(pose[i : i + CHUNK], gaze[i : i + CHUNK], expression[i : i + CHUNK], strict=True)
                chunk = np.stack([renderer.render_rgba(p, g, e) for p, g, e in rows])  # type: ignore[attr-defined]
            else:
                chunk = renderer.render(pose[i : i + CHUNK], gaze[i : i + CHUNK], expression[i : i + CHUNK])
            for j, frame in enumerate(chunk):
                if i + j in keep:
                    kept[i + j] = frame[..., :3]
                yield frame

    n = int(write_mp4(out, frames(), fps, audio=audio))
    sound = f", with {len(audio) / 16000:.2f} s of audio" if audio is not None else ""
    print(f"wrote {out}: {n} frames, {avatar.size}×{avatar.size}, {fps:g} fps{sound}")
    if contact_sheet and kept:
        order = sorted(kept)
        sheet = sheet_of(np.stack([kept[i] for i in order]), labels=order)
        cv2.imwrite(str(contact_sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"wrote {contact_sheet}")
    return n


# --- the commands ----------------------------------------------------------------------------------


def _head_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "prompt": args.prompt, "steps": args.steps, "guidance": args.guidance, "motion_scale": args.motion_scale,
        "pose_weights": args.pose_weights, "pose_from": args.pose_from,
    }  # fmt: skip


def render(args: argparse.Namespace) -> None:
    """`posetalk render`: portrait + speech (+ prompt) -> mp4 with the speech."""
    speech = speech_from_args(args.audio, args.text, args.text_file)  # a bad file fails before any slow work
    if args.alpha:
        check_alpha_out(args.out, args.backend)
    avatar = load_portrait(args.image, args.size)
    if speech is None:
        speech = say_line(args.say)
    motion, source = speech_motion(speech.audio, seed=args.seed, known=speech.known, **_head_options(args))
    print(f"head motion: {source}")
    write_video(avatar, motion.pose + avatar.pose, motion.gaze + avatar.gaze, motion.expression, args.out,
                audio=speech.audio, backend=args.backend, contact_sheet=args.contact_sheet,
                alpha=args.alpha)  # fmt: skip


def motion(args: argparse.Namespace) -> None:
    """`posetalk motion`: speech (+ prompt) -> a motion file (pose, gaze, 21 blendshapes per frame)."""
    from posetalk.models.face.motion_file import save_motion

    speech = speech_from_args(args.audio, args.text, args.text_file)
    assert speech is not None  # --audio is required
    m, source = speech_motion(speech.audio, seed=args.seed, lookahead=round(args.lookahead_ms / 40),
                              motion_weights=args.weights, fallback="neutral", known=speech.known,
                              **_head_options(args))  # fmt: skip
    save_motion(m, args.out)
    t = len(m)
    print(f"wrote {args.out}: {t} frames at 25 fps ({t / 25:.2f} s), 21 blendshapes; head motion: {source}")
