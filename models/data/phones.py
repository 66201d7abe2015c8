"""The phone set every part of the corpus speaks: CMU ARPAbet (39 phones, as in cmudict) plus
"sil" for pauses, and the timed utterance a TTS engine hands back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from posetalk.models.rates import FPS, SAMPLE_RATE  # noqa: F401  (the corpus reads them from here too)

VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
CONSONANTS = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T",
    "TH", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
PHONES = VOWELS + CONSONANTS  # the 39 ARPAbet phones of cmudict
SILENCE = "sil"
ALL = (SILENCE, *PHONES)
PHONE_ID = {p: i for i, p in enumerate(ALL)}


@dataclass(frozen=True)
class Phone:
    """One phone: ARPAbet label (or "sil"), start and end in seconds from the utterance start,
    lexical stress for vowels (0 none, 1 primary, 2 secondary; 0 for consonants and silence)."""

    label: str
    start: float
    end: float
    stress: int = 0

    def __post_init__(self) -> None:
        if self.label not in PHONE_ID:
            raise ValueError(f"unknown phone {self.label!r}")
        if not self.end >= self.start:
            raise ValueError(f"phone {self.label} ends ({self.end}) before it starts ({self.start})")


@dataclass
class Utterance:
    """What a TTS engine returns: 16 kHz mono float32 audio in [-1, 1] and its phone timings,
    which cover the audio from 0 to its end without gaps or overlaps."""

    audio: np.ndarray  # (N,) float32 at SAMPLE_RATE
    phones: list[Phone]
    text: str
    voice: str  # e.g. "espeak-ng:en-us+f3", "flite:slt", "festival:kal_diphone", "piper:joe"
    engine: str  # "espeak-ng" | "festival" | "flite" | "piper"
    meta: dict[str, float | str] = field(default_factory=dict)  # rate, pitch and the like

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def check_timings(phones: list[Phone], duration: float, tolerance: float = 0.02) -> None:
    """Raise ValueError unless the phones tile [0, duration] in order (within ``tolerance`` s)."""
    if not phones:
        raise ValueError("no phones")
    if abs(phones[0].start) > tolerance:
        raise ValueError(f"first phone starts at {phones[0].start:.3f} s, not 0")
    for a, b in zip(phones, phones[1:], strict=False):
        if abs(b.start - a.end) > tolerance:
            raise ValueError(f"gap or overlap between {a} and {b}")
    if abs(phones[-1].end - duration) > tolerance:
        raise ValueError(f"last phone ends at {phones[-1].end:.3f} s, audio lasts {duration:.3f} s")
