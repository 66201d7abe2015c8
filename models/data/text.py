"""Sentences for the speech corpus: a small English grammar over a hand-picked vocabulary, with
words drawn from cmudict (shipped by pocketsphinx) mixed in so that every ARPAbet phone occurs
often; varied length, pauses and punctuation (commas, questions, exclamations, ellipses)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
from posetalk.models.data.phones import PHONES

SUBJECTS = (
    "the teacher", "my brother", "our neighbour", "the old fisherman", "a young doctor", "the pilot", "your cousin",
    "the children", "she", "he", "they", "we", "the engineer", "the shop owner", "a tired traveller", "the choir",
    "my grandmother", "the new manager", "the boy", "the girl", "everyone", "nobody", "the judge", "the farmer",
)  # fmt: skip
VERBS_PAST = (
    "bought", "found", "measured", "carried", "painted", "washed", "pushed", "borrowed", "fixed", "noticed",
    "watched", "enjoyed", "ruined", "chose", "threw", "brought", "thought about", "looked at", "paid for",
    "pointed at", "joined", "avoided", "treasured", "moved", "delivered", "judged", "forgot", "wanted",
)  # fmt: skip
ADJECTIVES = (
    "yellow", "heavy", "quiet", "usual", "strange", "beautiful", "cheap", "huge", "tiny", "smooth", "rough",
    "shiny", "broken", "wooden", "foolish", "careful", "loyal", "noisy", "pleasant", "awful", "early", "azure",
    "good", "thick", "vivid", "genuine", "cozy", "sure", "warm", "bright", "ordinary", "visual",
)  # fmt: skip
NOUNS = (
    "garage", "book", "voice", "boat", "chair", "window", "bridge", "treasure", "village", "mountain", "coin",
    "picture", "jacket", "engine", "orange", "pizza", "measure", "vision", "toy", "cookie", "thumb", "feather",
    "puzzle", "sugar", "whistle", "oyster", "rhythm", "judge", "shoe", "bottle", "kitchen", "letter", "road",
    "mirror", "garden", "ticket", "hour", "bathroom", "leisure", "azalea", "thing", "cloud", "youth", "wolf",
)  # fmt: skip
PLACES = (
    "at the market", "in the kitchen", "near the river", "behind the house", "on the bus", "at noon",
    "in the morning", "after lunch", "by the window", "under the bridge", "at the beach", "in the garage",
    "during the storm", "on Thursday", "before breakfast", "in June", "with a smile", "without a word",
)  # fmt: skip
ADVERBS = ("quickly", "slowly", "carefully", "suddenly", "happily", "gently", "really", "almost", "usually", "rarely")
OPENERS = ("well", "oh", "so", "honestly", "you know", "anyway", "by the way", "look", "yes", "no", "okay", "hmm")
QUESTION = ("did", "why did", "when did", "how often did", "where did")
CONJUNCTIONS = ("and", "but", "because", "so", "while", "although", "until")


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


@cache
def cmudict() -> dict[str, tuple[str, ...]]:
    """cmudict as shipped by pocketsphinx: lowercase word -> first pronunciation (ARPAbet, no
    stress marks)."""
    import pocketsphinx

    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    out: dict[str, tuple[str, ...]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *phones = line.split()
        if "(" not in word:
            out[word] = tuple(phones)
    return out


@cache
def _extra_words() -> tuple[str, ...]:
    """Plain words from cmudict (letters only, 4–9 letters, one pronunciation that matches its
    spelling's length reasonably) to widen the phone contexts beyond the fixed vocabulary."""
    words = [w for w, p in cmudict().items() if re.fullmatch(r"[a-z]{4,9}", w) and len(p) >= 3 and len(p) <= len(w) + 1]
    return tuple(sorted(words))


def _noun_phrase(rng: np.random.Generator) -> str:
    noun = _pick(rng, NOUNS) if rng.random() > 0.2 else _pick(rng, _extra_words())
    det = _pick(rng, ("the", "a", "my", "this", "that", "her", "his", "our", "some"))
    if det == "a" and noun[0] in "aeiou":
        det = "an"
    if rng.random() < 0.5:
        adj = _pick(rng, ADJECTIVES)
        det = "an" if det in ("a", "an") and adj[0] in "aeiou" else ("a" if det == "an" else det)
        return f"{det} {adj} {noun}"
    return f"{det} {noun}"


def _clause(rng: np.random.Generator) -> str:
    parts = [_pick(rng, SUBJECTS)]
    if rng.random() < 0.3:
        parts.append(_pick(rng, ADVERBS))
    parts += [_pick(rng, VERBS_PAST), _noun_phrase(rng)]
    if rng.random() < 0.5:
        parts.append(_pick(rng, PLACES))
    return " ".join(parts)


def sentence(rng: np.random.Generator) -> str:
    """One sentence: 1–3 clauses, sometimes an opener, a question, a list or a trailing pause."""
    kind = rng.random()
    if kind < 0.15:
        verb = _pick(rng, ("buy", "fix", "paint", "choose", "move", "measure"))
        s = f"{_pick(rng, QUESTION)} {_pick(rng, SUBJECTS)} {verb} {_noun_phrase(rng)}?"
    elif kind < 0.25:
        items = [_noun_phrase(rng) for _ in range(int(rng.integers(3, 5)))]
        s = f"{_pick(rng, SUBJECTS)} {_pick(rng, VERBS_PAST)} {', '.join(items[:-1])} and {items[-1]}."
    else:
        s = _clause(rng)
        for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
            s += f"{_pick(rng, (',', '', ';'))} {_pick(rng, CONJUNCTIONS)} {_clause(rng)}"
        s += _pick(rng, (".", ".", ".", "!", "...")) if rng.random() > 0.1 else " — really."
    if rng.random() < 0.2:
        s = f"{_pick(rng, OPENERS)}, {s}"
    s = re.sub(r"\s+([,;])", r"\1", s)
    return s[0].upper() + s[1:]


def script(rng: np.random.Generator, min_words: int = 4, max_words: int = 45) -> str:
    """An utterance of one to three sentences with a word count in [min_words, max_words]."""
    while True:
        text = " ".join(sentence(rng) for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))))
        if min_words <= len(words(text)) <= max_words:
            return text


def words(text: str) -> list[str]:
    """Lowercase words of a text, punctuation removed (apostrophes kept)."""
    return re.findall(r"[a-z']+", text.lower())


def pronounce(text: str) -> list[str]:
    """cmudict phones of every word that cmudict knows (unknown words are skipped)."""
    d = cmudict()
    return [p for w in words(text) for p in d.get(w, ())]


def coverage(texts: list[str]) -> dict[str, int]:
    """How often each of the 39 ARPAbet phones occurs in the cmudict pronunciations of ``texts``."""
    counts = dict.fromkeys(PHONES, 0)
    for t in texts:
        for p in pronounce(t):
            if p in counts:
                counts[p] += 1
    return counts
