"""Lips from known words: when the text of the speech is known, its phones decide the mouth's
shapes and the audio model keeps the rest.

Phone timings come one of three ways, whichever the caller has:

1. timed words (a TTS service's word timestamps): each word's phones from cmudict (espeak-ng's
   letter-to-sound for words it lacks), placed inside the word in proportion to their inherent
   durations (Klatt's rule system, MITalk 1987);
2. text only: forced alignment of the text against the audio (pocketsphinx, models/data/align.py);
3. the built-in voice (``--say``): the TTS engine's own phone events.

The phones become mouth weights through the corpus's own viseme and coarticulation model
(models/data/visemes.py, at articulation 1), and join the audio model's output in ``combine``:
the audio model's jaw and lips where the text is not trusted or the audio is silent; elsewhere a
mix chosen by measurement (MODEL_CARD.md, "Known words"). Where the text is not what was said
(a wrong transcript, skipped words, noise) those stretches fall back to audio-only lips. Trust:
- aligned text: the alignment's own confidence, its acoustic score against free phone
  recognition of the same audio (``Aligned.trusted``);
- timed words: no alignment to ask, so agreement: over a sliding window the text's jawOpen must
  follow the audio model's (``trust``);
- the built-in voice's own phones: always."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from posetalk.models.data.phones import FPS, SAMPLE_RATE, SILENCE, Phone
from posetalk.models.errors import InputError
from posetalk.models.face.params import INDEX, MOUTH_SHAPES

# Inherent phone durations in ms (Klatt's duration rules as published for MITalk): only their
# ratios matter here, inside a word whose span the caller gives.
INHERENT_MS = {
    "AA": 240, "AE": 230, "AH": 140, "AO": 240, "AW": 260, "AY": 250, "EH": 150, "ER": 180, "EY": 190,
    "IH": 135, "IY": 155, "OW": 220, "OY": 280, "UH": 160, "UW": 210, "B": 85, "CH": 70, "D": 75,
    "DH": 50, "F": 100, "G": 80, "HH": 80, "JH": 70, "K": 80, "L": 80, "M": 70, "N": 60, "NG": 95,
    "P": 90, "R": 80, "S": 105, "SH": 105, "T": 75, "TH": 90, "V": 60, "W": 80, "Y": 80, "Z": 75, "ZH": 70,
}  # fmt: skip

# How the text's mouth and the audio model's join (chosen on validation prompts, MODEL_CARD.md).
TEXT_WEIGHT = 0.5  # share of the text's weights in the mouth where the text is trusted
TRUST_WINDOW_S = 1.2  # window over which the text's jawOpen must follow the audio model's
TRUST_MIN_R = 0.6  # correlation below which a window falls back to audio-only
GOP_WINDOW_S = 1.0  # aligned text: window of the alignment's confidence
GOP_MIN = -15.0  # and its least mean (score per 10 ms frame against free phone recognition)
N_MOUTH = len(MOUTH_SHAPES)  # the mouth's columns come first (nets.N_MOUTH, without importing torch here)
UNALIGNED = -50.0  # the confidence given to frames the alignment left out
LOUD_PAUSE_S = 0.2  # an aligned pause this long over audio within LOUD_DB of its loud frames
LOUD_DB = 20.0  # is speech the text left out
OWN_PHONES = "the voice's own phones"  # known_lips' name for the built-in voice's phone events


@dataclass(frozen=True)
class Word:
    """One timed word: seconds from the start of the audio it belongs to."""

    text: str
    start: float
    end: float


def pronounce(word: str) -> list[str]:
    """ARPAbet phones of one word: cmudict's first pronunciation, else espeak-ng's letter-to-sound
    (en-us); [] for a word neither can say (digits alone, symbols)."""
    from posetalk.models.data import align, tts

    spelled = align.words(word)
    out: list[str] = []
    for w in spelled:
        pron = align.pronunciation(w)
        if pron is None:
            pron = [p for part in tts.espeak_words(w, "en-us") for p, _ in part]
        out.extend(pron)
    return out


def check_words(words: list[Word], duration: float | None = None) -> None:
    """InputError unless the words are in order, each ends after it starts, and (with ``duration``)
    none starts past the audio's end."""
    if not words:
        raise InputError("no words given")
    last = 0.0
    for w in words:
        if not isinstance(w.text, str) or not w.text.strip():
            raise InputError(f"a word must be non-empty text, got {w.text!r}")
        if not (np.isfinite(w.start) and np.isfinite(w.end)) or w.start < 0:
            raise InputError(f"word {w.text!r}: times must be finite and ≥ 0, got {w.start}..{w.end}")
        if w.end <= w.start:
            raise InputError(f"word {w.text!r} ends ({w.end:g} s) before it starts ({w.start:g} s)")
        if w.start < last - 1e-6:
            raise InputError(f"word {w.text!r} starts at {w.start:g} s, before the previous word ends ({last:g} s)")
        last = w.end
    if duration is not None and words[-1].start >= duration:
        last_word = words[-1]
        raise InputError(
            f"word {last_word.text!r} starts at {last_word.start:g} s, past the audio's end ({duration:.2f} s)"
        )


def phones_from_words(words: list[Word], duration: float) -> list[Phone]:
    """Phones tiling [0, duration]: each word's phones spread over its span by inherent duration,
    silence between words. Words no dictionary can say stay silent."""
    check_words(words, duration)
    out: list[Phone] = []
    t = 0.0
    for w in words:
        a, b = min(w.start, duration), min(w.end, duration)
        labels = pronounce(w.text)
        if b <= a or not labels:
            continue
        if a > t:
            out.append(Phone(SILENCE, t, a))
        weights = np.array([INHERENT_MS[p] for p in labels], np.float64)
        edges = a + (b - a) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        out.extend(Phone(p, float(s), float(e)) for p, s, e in zip(labels, edges[:-1], edges[1:], strict=True))
        t = b
    if t < duration:
        out.append(Phone(SILENCE, t, duration))
    return out


@dataclass
class Aligned:
    """A text forced-aligned to its audio: phones, words, and per 10 ms frame the alignment's
    confidence (models/data/align.py ``Alignment.confidence``)."""

    phones: list[Phone]
    words: list[Word]
    confidence: np.ndarray
    loud_pause: np.ndarray  # (frames at 25 fps,) bool: aligned to a pause where the audio is loud

    def trusted(self, frames: int, window_s: float = GOP_WINDOW_S, least: float = GOP_MIN) -> np.ndarray:
        """(frames,) bool at 25 fps: the confidence's mean over a centred window ≥ ``least``.
        Frames the alignment skipped (speech a shortened transcript left out lands there) count
        as UNALIGNED."""
        if not len(self.confidence):
            return np.zeros(frames, bool)
        c = np.where(np.isfinite(self.confidence), self.confidence, UNALIGNED)
        half = max(1, int(round(window_s * 100 / 2)))
        mean = np.convolve(np.pad(c, half, mode="edge"), np.ones(2 * half + 1) / (2 * half + 1), "valid")
        at = np.minimum((np.arange(frames) * 4 + 2), len(mean) - 1)  # each 40 ms frame's middle
        ok = mean[at] >= least
        # Speech the transcript leaves out is aligned as a pause (scored as one): not the text's.
        n = min(frames, len(self.loud_pause))
        ok[:n] &= ~self.loud_pause[:n]
        return ok


def phones_from_text(audio: np.ndarray, text: str) -> list[Phone]:
    """Phones of ``text`` forced-aligned against 16 kHz ``audio`` (slow: run it off the event
    loop). Words cmudict lacks are spelt by espeak-ng. InputError when nothing can be aligned."""
    return align_text(audio, text, confidence=False).phones


def align_text(audio: np.ndarray, text: str, confidence: bool = True) -> Aligned:
    """``phones_from_text`` with the aligned words and (unless ``confidence`` is False, which
    saves the free phone recognition, ~0.3 s per second of speech) the alignment's confidence."""
    from posetalk.models.data import align
    from posetalk.models.errors import CorpusError

    ws = align.words(text)
    if not ws:
        raise InputError(f"no words in the text {text[:60]!r}")
    spelt, original = [], {}
    for w in ws:
        name = w
        if align.pronunciation(w) is None:
            # Words cmudict lacks join the dictionary under a letters-only name (pocketsphinx
            # cannot align words with digits it was taught: "press 1" failed).
            labels, name = pronounce(w), "zzw" + "".join(chr(97 + int(c)) if c.isdigit() else c for c in w)
            if labels and align.pronunciation(name) is None:
                align.add_pronunciation(name, labels)
        if align.pronunciation(name) is not None:
            spelt.append(name)
            original[name] = w
    ws = spelt
    try:
        found = align.align_words(audio, " ".join(ws))
    except CorpusError as e:
        raise InputError(f"the text could not be aligned to the audio: {e}") from e
    timed = [Word(original.get(w, w), a, b) for w, a, b in found.words if b > a]
    conf = found.confidence(audio) if confidence else np.zeros(len(found.scores))
    return Aligned(found.phones, timed, conf, _loud_pauses(audio, found.phones))


def _loud_pauses(audio: np.ndarray, phones: list[Phone]) -> np.ndarray:
    """(frames,) bool: frames inside an aligned pause longer than LOUD_PAUSE_S whose level is
    within LOUD_DB of the utterance's loud frames (its 90th percentile)."""
    from posetalk.models.motion.infer import frame_rms
    from posetalk.models.rates import n_frames

    frames = n_frames(len(audio) / SAMPLE_RATE)
    db = 20 * np.log10(frame_rms(audio, frames) + 1e-9)
    loud = db > np.percentile(db, 90) - LOUD_DB
    long_pause = np.zeros(frames, bool)
    for p in phones:
        if p.label == SILENCE and p.end - p.start >= LOUD_PAUSE_S:
            long_pause[int(p.start * FPS) : int(np.ceil(p.end * FPS))] = True
    return long_pause & loud


def known_lips(
    audio: np.ndarray, audio_expr: np.ndarray, known: str | list[Word] | list[Phone]
) -> tuple[np.ndarray, str]:
    """``audio_expr`` (the audio model's output for ``audio``) with the known words' mouth joined
    in: ``known`` is text (aligned here), timed Words, or the TTS's own Phones. Returns the
    weights and a one-line summary of where the text was used."""
    text, ok, how = _known_mouth(audio, audio_expr, known)
    speaking = np.abs(audio_expr[:, :N_MOUTH]).sum(1) > 0
    share = float(ok[speaking].mean()) if speaking.any() else 0.0
    summary = f"lips: known words ({how}) on {share:.0%} of speaking frames"
    if how != OWN_PHONES:
        summary += ", audio-only where they disagree"
    return combine(audio_expr, text, ok), summary


def _known_mouth(
    audio: np.ndarray, audio_expr: np.ndarray, known: str | list[Word] | list[Phone]
) -> tuple[np.ndarray, np.ndarray, str]:
    """The known words' mouth (frames, 21), which frames to trust it on, and how it was made.

    Timed words are aligned as text too (the whole audio is at hand here, and aligned phones
    follow speech better than phones spread by duration: jawOpen r 0.850 against 0.794 on the
    synthetic test voices); their times are used only where the alignment fails."""
    frames = len(audio_expr)
    if isinstance(known, str) or (known and isinstance(known[0], Word)):
        timed = not isinstance(known, str)
        if timed:
            check_words(known, len(audio) / SAMPLE_RATE)  # type: ignore[arg-type]
        said = " ".join(w.text for w in known) if timed else known  # type: ignore[union-attr]
        try:
            found = align_text(audio, said)  # type: ignore[arg-type]
            how = "timed words, aligned" if timed else "aligned text"
            return text_lips(found.phones, frames), found.trusted(frames), how  # its own confidence decides
        except InputError:
            if not timed:
                raise
        text = text_lips(phones_from_words(known, len(audio) / SAMPLE_RATE), frames)  # type: ignore[arg-type]
        return text, trust(audio_expr, text), "timed words"  # no alignment: agreement with the audio
    return text_lips(list(known), frames), np.ones(frames, bool), OWN_PHONES  # type: ignore[arg-type]


def text_lips(phones: list[Phone], frames: int) -> np.ndarray:
    """(frames, 21) mouth weights of the phones (other columns 0), closures on every p/b/m."""
    from posetalk.models.data.visemes import lip_targets

    return lip_targets(phones, frames, articulation=1.0)


def agree(audio_jaw: np.ndarray, text_jaw: np.ndarray) -> bool:
    """Whether the text's jawOpen follows the audio model's over a window: Pearson r ≥
    TRUST_MIN_R; where either barely moves, only when both are still (a pause both agree on)."""
    sa, st = float(np.std(audio_jaw)), float(np.std(text_jaw))
    if sa < 0.02 or st < 0.02:
        return sa < 0.02 and st < 0.02
    return bool(np.corrcoef(audio_jaw, text_jaw)[0, 1] >= TRUST_MIN_R)


def trust(audio_expr: np.ndarray, text_expr: np.ndarray, window_s: float = TRUST_WINDOW_S) -> np.ndarray:
    """(T,) bool: frames whose centred window ``agree``s."""
    jaw = INDEX["jawOpen"]
    a, t = audio_expr[:, jaw].astype(np.float64), text_expr[:, jaw].astype(np.float64)
    n, half = len(a), max(1, int(round(window_s * FPS / 2)))
    return np.array([agree(a[max(0, f - half) : f + half + 1], t[max(0, f - half) : f + half + 1]) for f in range(n)],
                    bool)  # fmt: skip


def mix(audio_expr: np.ndarray, text_expr: np.ndarray, weight: float = TEXT_WEIGHT) -> np.ndarray:
    """(..., 21): the mouth ``weight`` of the way from the audio model's weights to the text's.
    Where either closes the lips (the text's p/b/m frames, the audio model's closures) they stay
    closed: the text knows which phone, the audio when it is said."""
    out = np.array(audio_expr, np.float32)
    out[..., :N_MOUTH] = weight * text_expr[..., :N_MOUTH] + (1 - weight) * out[..., :N_MOUTH]
    jaw, close = INDEX["jawOpen"], INDEX["mouthClose"]
    sealed = np.zeros(out.shape[:-1], bool)
    for e in (text_expr, audio_expr):
        sealed |= (e[..., close] >= e[..., jaw] - 1e-6) & (e[..., jaw] > 0)
    out[..., close] = np.where(sealed, out[..., jaw], out[..., close])
    out[..., INDEX["mouthFunnel"]] = np.where(sealed, 0.0, out[..., INDEX["mouthFunnel"]])
    return out


def combine(audio_expr: np.ndarray, text_expr: np.ndarray, trusted: np.ndarray | None = None,
            weight: float = TEXT_WEIGHT) -> np.ndarray:  # fmt: skip
    """(T, 21): the audio model's output, ``mix``ed with the text's where ``trusted`` (default:
    ``trust``) and speaking (silent frames, the audio model's mouth at rest, stay shut)."""
    out = np.array(audio_expr, np.float32)
    t = min(len(out), len(text_expr))
    ok = trust(out[:t], text_expr[:t]) if trusted is None else np.asarray(trusted[:t], bool)
    use = ok & (np.abs(out[:t, :N_MOUTH]).sum(1) > 0)
    out[:t] = np.where(use[:, None], mix(out[:t], text_expr[:t], weight), out[:t])
    return out


def load_words(path: str | Path) -> list[Word] | str:
    """A --text-file: a JSON list of {word, start, end} (timed words), or plain UTF-8 text."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
            words = [Word(str(x["word"]), float(x["start"]), float(x["end"])) for x in items]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: expected a JSON list of {{word, start, end}}: {e}") from e
        check_words(words)
        return words
    if not text.strip():
        raise InputError(f"{path}: the text is empty")
    return text


def align_job(audio: np.ndarray, text: str) -> tuple[list[Phone], np.ndarray]:
    """The text's phones and per-frame trust (25 fps): what the engine's aligner process runs
    (it imports this module only: no torch, no engine)."""
    from posetalk.models.rates import n_frames

    found = align_text(audio, text)
    return found.phones, found.trusted(n_frames(len(audio) / SAMPLE_RATE))
