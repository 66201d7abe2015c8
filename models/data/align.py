"""Forced alignment of a known transcript with pocketsphinx 5 (its wheel ships the en-us acoustic
model and cmudict): the independent check on the phone timings TTS engines report.

Two passes, as pocketsphinx's API asks: a word-level alignment of the text, then a sub-word pass
that gives phone start frames (10 ms frames). Silences and noise become "sil".
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import CorpusError
from .phones import PHONE_ID, SAMPLE_RATE, SILENCE, Phone, check_timings

FRAME = 0.01  # pocketsphinx's frame shift, seconds
PAD = 0.25  # seconds of quiet added at both ends: speech that starts at sample 0 makes alignment fail
_lock = threading.Lock()
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


@functools.cache
def _decoder():  # type: ignore[no-untyped-def]
    from pocketsphinx import Config, Decoder

    # The default en-us model and cmudict. Bestpath off, as its state aligner asks for short phones;
    # no pruning at all (the search is one chain of phones), so accented synthetic speech aligns.
    config = Config(loglevel="FATAL", bestpath=False, beam=0.0, wbeam=0.0, pbeam=0.0)
    return Decoder(config)


@functools.cache
def _phone_decoder():  # type: ignore[no-untyped-def]
    """Free phone recognition (the en-us phone trigram the wheel ships): the yardstick the
    aligned text's acoustic scores are measured against (``Alignment.confidence``)."""
    import os

    import pocketsphinx
    from pocketsphinx import Config, Decoder

    lm = os.path.join(os.path.dirname(pocketsphinx.__file__), "model", "en-us", "en-us-phone.lm.bin")
    # A light language weight and wide beams: the acoustics pick the phones (the default weight
    # heard "IY D IY D AA" for "maybe Bob will": a poor yardstick, and right text scored below it).
    return Decoder(Config(loglevel="FATAL", allphone=lm, lm=None, bestpath=False, lw=1.0, beam=1e-30, pbeam=1e-30))


def words(text: str) -> list[str]:
    """The transcript as pocketsphinx's dictionary spells words: lower case, no punctuation."""
    return _WORD.findall(text.lower().replace("’", "'"))


def pronunciation(word: str) -> list[str] | None:
    """cmudict's first pronunciation of ``word`` (ARPAbet without stress digits), or None."""
    with _lock:
        pron = _decoder().lookup_word(word.lower())
    return pron.split() if pron else None


def add_pronunciation(word: str, phones: list[str]) -> None:
    """Teach the dictionary ``word`` (for this process): ARPAbet ``phones`` from another
    letter-to-sound source (real.py takes espeak-ng's) for words cmudict lacks."""
    bad = [p for p in phones if p not in PHONE_ID or p == SILENCE]
    if not phones or bad:
        raise CorpusError(f"cannot add {word!r}: phones {phones} ({', '.join(bad) or 'none'})")
    with _lock:
        _decoder().add_word(word.lower(), " ".join(phones), True)


@dataclass
class Alignment:
    """A forced alignment: phones tiling the audio, the words (dictionary spelling, start s,
    end s), and per 10 ms frame the acoustic score (log-likelihood per frame, pocketsphinx's
    integer log base) of the phone aligned there (NaN outside any phone)."""

    phones: list[Phone]
    words: list[tuple[str, float, float]]
    scores: np.ndarray

    def confidence(self, audio: np.ndarray) -> np.ndarray:
        """Per 10 ms frame: the aligned text's score less that of the phones free recognition
        hears in the same audio, both scored by the same aligner (a goodness-of-pronunciation
        measure). Near zero or above where the text is what was said; a wrong transcript scores
        some 20-60 lower per frame. NaN where either has no phone."""
        labels = phone_loop(audio)
        if not labels:
            return np.full(len(self.scores), np.nan)
        base = align_phones_scored(audio, labels).scores
        n = min(len(base), len(self.scores))
        out = np.full(len(self.scores), np.nan)
        out[:n] = self.scores[:n] - base[:n]
        return out


def align(audio: np.ndarray, text: str) -> list[Phone]:
    """ARPAbet phones (and "sil") with times for 16 kHz mono ``audio`` that speaks ``text``.

    Raises CorpusError when a word is not in cmudict or the audio cannot be aligned to the text."""
    return align_words(audio, text).phones


def align_words(audio: np.ndarray, text: str) -> Alignment:
    """``align``'s phones with their words and scores."""
    ws = words(text)
    if not ws:
        raise CorpusError(f"nothing to align: no words in {text!r}")
    return _align(audio, ws, text)


def phone_loop(audio: np.ndarray) -> list[str]:
    """The phones free recognition hears in 16 kHz ``audio`` (ARPAbet, "sil" for pauses)."""
    with _lock:
        dec = _phone_decoder()
        dec.start_utt()
        dec.process_raw(_pcm(audio), full_utt=True)
        dec.end_utt()
        return [seg.word if seg.word in PHONE_ID else SILENCE for seg in dec.seg()]


_PSEUDO: dict[tuple[str, ...], str] = {}  # phone run -> the made-up word that spells it


def align_phones(audio: np.ndarray, labels: list[str]) -> list[Phone]:
    """Times for a known ARPAbet phone sequence (``labels``, "sil" between words optional) in
    ``audio``: for speech no dictionary spells, such as English read by another language's rules.
    Each run of phones between silences becomes a made-up dictionary word."""
    return align_phones_scored(audio, labels).phones


def align_phones_scored(audio: np.ndarray, labels: list[str]) -> Alignment:
    """``align_phones`` with the alignment's scores."""
    runs: list[tuple[str, ...]] = []
    cur: list[str] = []
    for label in [*labels, SILENCE]:
        if label not in PHONE_ID:
            raise CorpusError(f"unknown phone {label!r}")
        if label != SILENCE:
            cur.append(label)
        elif cur:
            runs.append(tuple(cur))
            cur = []
    if not runs:
        raise CorpusError("nothing to align: no phones")
    with _lock:
        for run in runs:
            if run not in _PSEUDO:  # letters only: pocketsphinx refuses some names with digits
                n, name = len(_PSEUDO), "zzph"
                for _ in range(6):
                    n, r = divmod(n, 26)
                    name += chr(97 + r)
                _decoder().add_word(name, " ".join(run), True)
                _PSEUDO[run] = name
        ws = [_PSEUDO[r] for r in runs]
    return _align(audio, ws, " ".join(" ".join(r) for r in runs))


def _pcm(audio: np.ndarray) -> bytes:
    """16-bit PCM of ``audio`` with PAD seconds of quiet at both ends."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    pad = np.zeros(int(PAD * SAMPLE_RATE), np.float32)
    padded = np.concatenate([pad, audio, pad])
    # a faint fixed dither: digital silence gives the features log(0)
    padded += np.random.default_rng(0).normal(0.0, 1e-4, padded.size).astype(np.float32)
    return (np.clip(padded, -1.0, 1.0) * 32767).astype(np.int16).tobytes()


def _align(audio: np.ndarray, ws: list[str], text: str) -> Alignment:
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    pcm = _pcm(audio)
    with _lock:
        dec = _decoder()
        missing = [w for w in ws if dec.lookup_word(w) is None]
        if missing:
            raise CorpusError(f"words not in the pronunciation dictionary: {', '.join(sorted(set(missing)))}")
        try:
            dec.set_align_text(" ".join(ws))
            for second_pass in (False, True):
                if second_pass:
                    dec.set_alignment()
                dec.start_utt()
                dec.process_raw(pcm, full_utt=True)
                dec.end_utt()
            alignment = dec.get_alignment()
            raw = [(p.name, p.start, p.duration, p.score) for w in alignment for p in w] if alignment else []
            spans = [(w.name, w.start, w.duration) for w in alignment] if alignment else []
        except RuntimeError as e:
            raise CorpusError(f"pocketsphinx could not align the audio to {text!r}: {e}") from e
    if not raw:
        raise CorpusError(f"pocketsphinx could not align the audio to {text!r}")
    duration = len(audio) / SAMPLE_RATE
    phones: list[Phone] = []
    t = 0.0
    pad_frames = int(round(PAD / FRAME))
    scores = np.full(int(np.ceil(duration / FRAME)), np.nan)
    for _, start, dur, score in raw:
        a0, b0 = max(start - pad_frames, 0), min(start + dur - pad_frames, len(scores))
        if b0 > a0:
            scores[a0:b0] = score / max(dur, 1)
    for name, start, dur, _ in raw:
        label = name if name in PHONE_ID else SILENCE
        a = min(max(start * FRAME - PAD, t), duration)
        b = min((start + dur) * FRAME - PAD, duration)
        if a > t:  # frames the alignment skipped
            _append(phones, SILENCE, t, a)
        _append(phones, label, a, max(a, b))
        t = max(a, b)
    if t < duration:
        _append(phones, SILENCE, t, duration)
    phones[-1] = Phone(phones[-1].label, phones[-1].start, duration)
    check_timings(phones, duration)
    spelt = set(ws)  # alternative pronunciations come back as "word(2)"
    timed = [(name.split("(")[0], min(max(start * FRAME - PAD, 0.0), duration),
              min((start + dur) * FRAME - PAD, duration)) for name, start, dur in spans
             if name.split("(")[0] in spelt]  # fmt: skip
    return Alignment(phones, timed, scores)


def _append(phones: list[Phone], label: str, a: float, b: float) -> None:
    if label == SILENCE and phones and phones[-1].label == SILENCE:
        phones[-1] = Phone(SILENCE, phones[-1].start, b)
    else:
        phones.append(Phone(label, a, b))
