"""espeak-style IPA -> ARPAbet, shared by the espeak-ng and Piper voices (Piper phonemises with espeak).

espeak names one phoneme with one or more characters ("tʃ", "oʊ", "ɑːɹ", "n̩"); its English dialects
add their own vowels ("ʌʉ", "æʊ", "eː" ...). Each name maps to one or more ARPAbet phones: a
diphthong to one, an r-coloured or centring vowel ("ɑːɹ", "ɪə") to a vowel and R, a syllabic
consonant to AH + the consonant, as cmudict spells them. Rhotic and non-rhotic dialects both map to
cmudict's (American) phones so that every voice speaks one phone set.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from .phones import SILENCE, VOWELS

PRIMARY, SECONDARY = "ˈ", "ˌ"
STRESS_MARKS = {PRIMARY: 1, SECONDARY: 2}
# Word gaps, tie bars, hyphens and linking marks carry no phone of their own: their time is
# folded into the neighbouring phones.
FOLD = frozenset(" \u0361\u035c\u200d-‿_")
# Secondary articulations (palatalised, aspirated, labialised, rhotic hook): part of the phone
# before them.
MODIFIERS = frozenset("ʲʰʷ˞ˠ")
# Punctuation and Piper's sentence-begin/end symbols: a pause.
PAUSE = frozenset(",.;:!?…—–()\"'«»¡¿^$")

_C = {
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "ɡ": "G", "g": "G", "f": "F", "v": "V",
    "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "tʃ": "CH", "dʒ": "JH",
    "h": "HH", "ɦ": "HH", "ç": "HH", "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɫ": "L", "ɬ": "L",
    "ɹ": "R", "r": "R", "ɻ": "R", "ʁ": "R", "w": "W", "ʍ": "W", "j": "Y", "x": "K",
    # dental stops (Caribbean "thin"/"then"), the flap (cmudict mostly writes it T: "water",
    # "little"), the glottal stop that replaces t ("button"), the nasal flap ("winter")
    "t̪": "T", "d̪": "D", "ɾ": "T", "ʔ": "T", "ɾ̃": "N",
}  # fmt: skip
_V = {
    "i": "IY", "iː": "IY", "ɪ": "IH", "ᵻ": "IH", "ɨ": "IH", "ɛ": "EH", "e": "EY", "eː": "EY",
    "æ": "AE", "a": "AE", "aa": "AA", "aː": "AA", "a:": "AA", "ɑ": "AA", "ɑː": "AA", "ɒ": "AA",
    "ɔ": "AO", "ɔː": "AO", "o": "OW", "oː": "OW", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɜ": "ER",
    "ɜː": "ER", "ɚ": "ER", "ɝ": "ER", "ʊ": "UH", "u": "UW", "uː": "UW", "ʉ": "UW", "ʉː": "UW",
    "y": "UW", "ʏ": "UH", "ø": "ER", "ɵ": "OW",
    "aɪ": "AY", "ʌɪ": "AY", "ɑɪ": "AY", "əɪ": "AY", "aʊ": "AW", "æʊ": "AW", "ʌʊ": "OW", "ʌʉ": "OW",
    "eɪ": "EY", "ei": "EY", "ɛɪ": "EY", "oʊ": "OW", "əʊ": "OW", "əu": "OW", "ɔɪ": "OY", "oɪ": "OY",
}  # fmt: skip
_MULTI: dict[str, tuple[str, ...]] = {
    # r-coloured and centring vowels (non-rhotic dialects' "ɪə" is cmudict's IH R)
    "ɑːɹ": ("AA", "R"), "ɑɹ": ("AA", "R"), "ɑə": ("AA", "R"), "ɔːɹ": ("AO", "R"), "ɔɹ": ("AO", "R"),
    "oːɹ": ("AO", "R"), "oɹ": ("AO", "R"), "ɔə": ("AO", "R"), "oə": ("AO", "R"), "ɛɹ": ("EH", "R"),
    "ɛə": ("EH", "R"), "eə": ("EH", "R"), "eɹ": ("EH", "R"), "ɪɹ": ("IH", "R"), "ɪə": ("IH", "R"),
    "iɹ": ("IH", "R"), "ʊɹ": ("UH", "R"), "ʊə": ("UH", "R"), "ʉɹ": ("UH", "R"), "ʌɹ": ("ER",),
    "ɜːɹ": ("ER",), "əɹ": ("ER",), "ɚɹ": ("ER",), "iə": ("IY", "AH"), "aɪɚ": ("AY", "ER"),
    "aɪə": ("AY", "ER"), "aʊɚ": ("AW", "ER"), "aʊə": ("AW", "ER"), "juː": ("Y", "UW"),
    # syllabic consonants: cmudict writes AH + consonant ("bottle" B AA T AH L, "button" ... AH N)
    "əl": ("AH", "L"), "l̩": ("AH", "L"), "n̩": ("AH", "N"), "m̩": ("AH", "M"), "ɹ̩": ("ER",),
}  # fmt: skip
# The other languages' phonemes espeak-ng names (French, Spanish, Italian, Russian: the real voices
# of data/real.py), mapped by place and lip shape to the ARPAbet phone whose viseme is nearest:
# nasal vowels to their oral vowel, front rounded vowels to ER (rounded, mid), the palatal nasal
# and lateral to N/L + Y, affricates to their two parts, the Spanish approximants to their stops
# (β: the lips approach each other), the Russian soft or retroflex sounds to their plain ones.
_FOREIGN: dict[str, tuple[str, ...]] = {
    "ɑ̃": ("AA",), "ɔ̃": ("AO",), "ɛ̃": ("EH",), "œ̃": ("EH",), "œ": ("ER",), "ɥ": ("W",),
    "ɲ": ("N", "Y"), "ʎ": ("L", "Y"), "ts": ("T", "S"), "dz": ("D", "Z"), "ss": ("S",),
    "β": ("B",), "ɣ": ("G",), "ʝ": ("Y",), "ɭ": ("L",), "ɕ": ("SH",), "ʑ": ("ZH",), "ʂ": ("SH",),
    "ʐ": ("ZH",), "ja": ("Y", "AA"), "ju": ("Y", "UW"), "je": ("Y", "EH"), "jo": ("Y", "OW"),
}  # fmt: skip
IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    **{k: (v,) for k, v in _C.items()},
    **{k: (v,) for k, v in _V.items()},
    **_MULTI,
    **_FOREIGN,
}
_LONGEST = max(map(len, IPA_TO_ARPABET))
# Length marks, and what espeak-ng's other languages append to a name: "-" (a linking form), '"'
# and "^" (variants of one vowel)
_MARKS = frozenset('ː:-"^')
_VOWELS = frozenset(VOWELS)
# When one espeak phoneme becomes several ARPAbet phones its time is shared by these weights.
_WEIGHT = {"vowel": 1.5, "consonant": 1.0}


def arpabet(symbol: str) -> tuple[str, ...] | None:
    """ARPAbet phones for one espeak IPA phoneme name, or None if unknown."""
    if symbol in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[symbol]
    bare = "".join(c for c in symbol if c not in _MARKS and c not in MODIFIERS)  # marks we do not list
    return IPA_TO_ARPABET.get(bare) if bare else None


def group(items: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Join single characters into espeak phoneme names by longest match, summing their durations.

    Piper hands out one character per symbol ("a", "ɪ"); espeak's names are what the table knows.
    Only names that are one ARPAbet phone ("aɪ", "tʃ", "ɑː") or need a combining mark ("n̩") are
    joined: "ə"+"l" or "ɑː"+"ɹ" keep the time Piper gave each part. Stress marks, word gaps and
    pauses are never joined."""
    out: list[tuple[str, float]] = []
    i = 0
    while i < len(items):
        for n in range(min(_LONGEST, len(items) - i), 0, -1):
            chars = [c for c, _ in items[i : i + n]]
            name = "".join(chars)
            if n == 1 or _joins(name, chars):
                out.append((name, sum(d for _, d in items[i : i + n])))
                i += n
                break
    return out


def _joins(name: str, chars: Sequence[str]) -> bool:
    phones = IPA_TO_ARPABET.get(name)
    if phones is None or any(c in STRESS_MARKS or c in FOLD for c in chars):
        return False
    return len(phones) == 1 or any(unicodedata.category(c) == "Mn" for c in name)


def to_arpabet(
    items: Iterable[tuple[str, float]], mark_share: float = 1.0, gap_share: float = 1.0
) -> tuple[list[tuple[str, int, float]], list[str]]:
    """espeak IPA phoneme names with durations -> (ARPAbet label or "sil", stress, duration).

    A name may carry its stress mark in front ("ˈoʊ"); a stress mark on its own (Piper) stresses
    the next vowel. The time of stress marks and of word gaps is shared between the phones either
    side (``mark_share`` / ``gap_share`` of it to the following one: by default all of it, which
    matches forced alignment of Piper best); "" (espeak's pause) and punctuation become "sil".
    Unknown names are merged into the previous phone (the next one at the start) and returned.
    """
    out: list[tuple[str, int]] = []  # (label, stress)
    durs: list[float] = []  # and its duration
    unknown: list[str] = []
    stress_next = 0  # from a bare stress mark, for the next vowel
    carry = 0.0  # time owed to the next phone

    def give_back(d: float) -> None:  # to the previous phone, or the next one at the start
        nonlocal carry
        if durs:
            durs[-1] += d
        else:
            carry += d

    for raw, dur in items:
        name, stress = raw, 0
        while name and name[0] in STRESS_MARKS:
            stress, name = STRESS_MARKS[name[0]], name[1:]
        if not name and stress:  # a bare stress mark (Piper)
            stress_next = stress
            give_back(dur * (1.0 - mark_share))
            carry += dur * mark_share
            continue
        if name == "" or all(c in PAUSE for c in name):
            out.append((SILENCE, 0))
            durs.append(dur + carry)
            carry, stress_next = 0.0, 0
            continue
        if all(c in FOLD for c in name):
            give_back(dur * (1.0 - gap_share))
            carry += dur * gap_share
            continue
        if all(c in MODIFIERS for c in name):
            give_back(dur)
            continue
        phones = arpabet(name)
        if phones is None:
            unknown.append(name)
            give_back(dur)
            continue
        stress = stress or stress_next
        dur, carry = dur + carry, 0.0
        weights = [_WEIGHT["vowel" if p in _VOWELS else "consonant"] for p in phones]
        for p, w in zip(phones, weights, strict=True):
            out.append((p, stress if p in _VOWELS else 0))
            durs.append(dur * w / sum(weights))
            if p in _VOWELS:
                stress = stress_next = 0  # only the first vowel of "aɪɚ" carries it
        if stress:  # a stress mark in front of a consonant: it belongs to the next vowel
            stress_next = stress
    if carry:
        if durs:
            durs[-1] += carry
        else:
            out.append((SILENCE, 0))
            durs.append(carry)
    return [(label, stress, d) for (label, stress), d in zip(out, durs, strict=True)], unknown
