"""Plain-language descriptions of head-motion plans, drawn from many templates and paraphrases.

Two vocabularies that share no wording: TRAIN (what the corpus is described with) and HELDOUT
(other verbs, adverbs, adjectives, subjects, sentence frames and connectives) for testing whether
a prompt-following model generalises to wordings it never saw. Sides are the speaker's own, as in
head_motion.Segment.direction (+1 = "to the left").

Phrases below are "|"-separated; {pos} is the subject's possessive ("her", "his", "their", or
nothing without a subject), {dir} a side phrase. A phrase's first word is a verb conjugated through _FORMS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from posetalk.models.data.head_motion import STYLES, Plan, Segment, plan_labels

__all__ = ["STYLES", "TRAIN_KEYWORDS", "HELDOUT_KEYWORDS", "HELDOUT_MARKERS", "describe", "mentions", "plan_labels"]

# present, gerund and past of every verb a phrase may start with (or continue with after "and")
_VERBS = """nods nodding nodded; shakes shaking shook; tilts tilting tilted; cocks cocking cocked;
rocks rocking rocked; leans leaning leaned; looks looking looked; lets letting let; scans scanning scanned;
keeps keeping kept; stays staying stayed; holds holding held; turns turning turned; moves moving moved;
remains remaining remained; sways swaying swayed; lowers lowering lowered; gazes gazing gazed;
emphasises emphasising emphasised; punctuates punctuating punctuated; accents accenting accented;
gestures gesturing gestured; sits sitting sat; is being was; bobs bobbing bobbed; dips dipping dipped;
wags wagging wagged; swivels swivelling swivelled; angles angling angled; slants slanting slanted;
inclines inclining inclined; glances glancing glanced; peers peering peered; surveys surveying surveyed;
casts casting cast; drops dropping dropped; rotates rotating rotated; pivots pivoting pivoted;
swings swinging swung; underlines underlining underlined; marks marking marked; leaves leaving left"""
_FORMS = {w[0]: (w[1], w[2]) for w in (entry.split() for entry in _VERBS.split(";"))}
_ALL_FORMS = set(_FORMS) | {f for forms in _FORMS.values() for f in forms}


@dataclass(frozen=True)
class _Vocab:
    verbs: dict[str, list[str]]  # style -> verb phrases ({dir} ones only for segments with a side)
    nouns: dict[str, list[str]]  # style -> plural nouns ("head nods"), for "gives slow nods"
    tags: dict[str, list[str]]  # style -> adjectives ("calm"), for "the speaker is calm"
    sides: list[str]  # side phrases with LEFT / RIGHT placeholders
    adverbs: dict[str, list[str]]  # level -> adverbs; a leading "^" means it may stand before the verb
    adjectives: dict[str, list[str]]  # level -> adjectives
    subjects: list[tuple[str, str, str]]  # (subject, possessive, object)
    single: list[str]  # frames for one segment: {S} subject, {O} object, {v} present, {g} gerund, {p} past
    nominal: list[str]  # frames with {n}: adjectives + noun
    tagged: list[str]  # frames with {t}: a tag
    sequence2: list[str]  # frames for two segments: {v1}, {g2}, ...
    sequence3: list[str]


def _split(table: dict[str, str]) -> dict[str, list[str]]:
    return {k: [p.strip() for p in v.split("|")] for k, v in table.items()}


# fmt: off
TRAIN = _Vocab(
    verbs=_split({
        "calm": "moves calmly|stays calm|keeps a calm, relaxed posture|sways in a relaxed way|remains relaxed"
                "|moves {pos} head calmly and easily",
        "energetic": "moves energetically|moves {pos} head with lots of energy|gestures energetically with {pos} head"
                     "|moves in a lively, animated way|stays lively and animated",
        "nodding": "nods|nods {pos} head|nods in agreement|nods along|nods {pos} head yes",
        "shaking": "shakes {pos} head|shakes {pos} head no|shakes {pos} head from side to side",
        "tilting": "tilts {pos} head from side to side|rocks {pos} head from side to side"
                   "|tilts {pos} head left and right|tilts {pos} head {dir}|cocks {pos} head {dir}"
                   "|tilts {pos} head over {dir}|leans {pos} head {dir}",
        "looking_around": "looks around|looks around the room|lets {pos} eyes wander around the room|scans the room"
                          "|looks around in different directions",
        "looking_down": "looks down|looks downward|lowers {pos} gaze|looks down at the floor|keeps {pos} eyes down"
                        "|gazes down",
        "turning": "turns {pos} head {dir} and holds it there|turns {dir} and stays that way"
                   "|turns {pos} head {dir} and keeps it there|turns {dir} and holds that position",
        "still": "stays still|keeps {pos} head still|holds perfectly still|remains motionless|sits still"
                 "|moves hardly at all",
        "emphatic": "nods on the stressed syllables|nods on the stressed words|emphasises {pos} words with nods"
                    "|punctuates {pos} speech with nods|nods to the beat of {pos} speech"
                    "|accents the stressed syllables with nods",
    }),
    nouns=_split({"nodding": "nods|head nods", "shaking": "head shakes|shakes of the head",
                  "tilting": "side-to-side head tilts", "emphatic": "nods on the stressed words"}),
    tags=_split({"calm": "calm|relaxed|calm and relaxed|at ease",
                 "energetic": "energetic|animated|lively|full of energy", "still": "still|motionless|very still"}),
    sides=["to the LEFT", "to {pos} LEFT", "toward the LEFT", "toward {pos} LEFT side"],
    adverbs=_split({"slow": "^slowly|at a slow pace|leisurely", "medium_pace": "|at a moderate pace|^steadily",
                    "fast": "^quickly|^rapidly|fast|^briskly|at a quick pace",
                    "small": "^slightly|^gently|a little|^subtly", "medium": "|^moderately",
                    "large": "a lot|^strongly|^vigorously|widely", "large:turning": "far|a long way|a lot",
                    "large:looking_down": "far|a lot|^deeply|steeply",
                    "large:emphatic": "^strongly|^vigorously|^firmly"}),
    adjectives=_split({"slow": "slow|leisurely", "medium_pace": "|steady", "fast": "quick|rapid|brisk",
                       "small": "small|slight|gentle|subtle", "medium": "|moderate",
                       "large": "big|large|strong|vigorous"}),
    subjects=[("the speaker", "their", "the speaker"), ("she", "her", "her"), ("he", "his", "him"),
              ("the person", "their", "the person"), ("the woman", "her", "the woman"), ("the man", "his", "the man"),
              ("the presenter", "their", "the presenter"), ("", "", "")],
    single=["{S} {v}.", "{S} is {g}.", "{S} {p}.", "{v}.", "{G}.", "While talking, {S} {v}.", "{S} talks and {v}.",
            "{S} speaks while {g}.", "{S} keeps {g}."],
    nominal=["{S} gives {n}.", "{S} makes {n} while talking.", "{N}."],
    tagged=["{T}.", "{S} is {t}.", "{S} looks {t}.", "{A} {t} speaker.", "{S} seems {t} while talking."],
    sequence2=["First {S} {v1}, then {v2}.", "{S} first {v1}, then {v2}.", "{S} {v1} and then {v2}.",
               "{S} starts by {g1} and ends up {g2}.", "{S} begins {g1}, then {v2}.", "{G1} at first, then {g2}.",
               "{S} first {p1}, then {p2}.", "{S} is {g1} at first, then {g2}.", "{S} {v1}, followed by {g2}."],
    sequence3=["First {S} {v1}, then {v2}, and finally {v3}.", "{S} {v1}, then {v2}, and then {v3}.",
               "{S} starts by {g1}, then {v2}, and ends up {g3}.", "{G1} at first, then {g2}, and finally {g3}.",
               "{S} first {p1}, then {p2}, and finally {p3}."],
)

HELDOUT = _Vocab(
    verbs=_split({
        "calm": "stays serene|remains composed|moves in a tranquil manner|keeps a laid-back posture",
        "energetic": "moves in a spirited way|moves vivaciously|stays spirited and dynamic|moves {pos} head excitedly",
        "nodding": "bobs {pos} head|dips {pos} head repeatedly|bobs {pos} head in assent",
        "shaking": "wags {pos} head|swivels {pos} head to and fro|wags {pos} head in refusal",
        "tilting": "angles {pos} head one way and then the other|slants {pos} head alternately"
                   "|angles {pos} head {dir}|slants {pos} head {dir}|inclines {pos} head {dir}",
        "looking_around": "glances about|peers about the place|surveys the surroundings|glances in every direction",
        "looking_down": "casts {pos} eyes to the ground|drops {pos} gaze|gazes at {pos} lap",
        "turning": "rotates {pos} head {dir} and leaves it there|pivots {dir} and stays put"
                   "|swings {pos} face {dir} and remains so",
        "still": "remains frozen|stays stationary|keeps {pos} head fixed|is immobile",
        "emphatic": "bobs {pos} head on the key words|underlines {pos} words with dips of the head"
                    "|marks the important words with head dips",
    }),
    nouns=_split({"nodding": "head bobs|dips of the head", "shaking": "head wags",
                  "emphatic": "head bobs on key words"}),
    tags=_split({"calm": "serene|composed|tranquil|laid-back", "energetic": "spirited|vivacious|dynamic|excited",
                 "still": "frozen|stationary|immobile"}),
    sides=["LEFTward", "toward the LEFT-hand side", "over to {pos} LEFT-hand side"],
    adverbs=_split({"slow": "^languidly|^sluggishly|^lazily|at a crawl", "medium_pace": "|at an even tempo",
                    "fast": "^swiftly|^speedily|^hastily|in a hurry", "small": "^faintly|^mildly|a tad|^minimally",
                    "medium": "|reasonably", "large": "^hugely|^markedly|^forcefully|a great deal",
                    "large:turning": "a great deal|^markedly|considerably",
                    "large:looking_down": "a great deal|^markedly|considerably"}),
    adjectives=_split({"slow": "languid|sluggish|lazy", "medium_pace": "|even", "fast": "swift|speedy|hasty",
                       "small": "faint|mild|tiny", "medium": "|reasonable", "large": "huge|marked|forceful"}),
    subjects=[("she", "her", "her"), ("he", "his", "him"), ("the narrator", "their", "the narrator"),
              ("the host", "their", "the host")],
    single=["In this clip, {S} {v}.", "We see {O} {g}.", "{S} can be seen {g}.", "Throughout the clip, {S} {v}.",
            "{S} spends the clip {g}."],
    nominal=["{S} produces {n}.", "In this clip, {S} produces {n}."],
    tagged=["{S} comes across as {t}.", "{S} appears {t}."],
    sequence2=["Initially {S} {v1}; afterwards {v2}.", "To begin with, {S} {v1}, and subsequently {v2}.",
               "{S} opens by {g1} and finishes by {g2}.", "Early on {S} {v1}; later on {v2}."],
    sequence3=["Initially {S} {v1}; afterwards {v2}, and subsequently {v3}.",
               "{S} opens by {g1}, moves on to {g2}, and finishes by {g3}.",
               "Early on {S} {v1}; later on {v2}, and at the close {v3}."],
)

# Stems (matched at a word start, case-insensitive) one of which every description of a style contains.
TRAIN_KEYWORDS = {
    "calm": ("calm", "relaxed", "at ease"), "energetic": ("energ", "animated", "lively"), "nodding": ("nod",),
    "shaking": ("shak", "shook"), "tilting": ("tilt", "cock", "rock", "lean"), "looking_around": ("around", "scan"),
    "looking_down": ("down", "lower"), "turning": ("turn",), "still": ("still", "motionless", "hardly"),
    "emphatic": ("stress", "emphas", "punctuat", "beat", "accent"),
}
HELDOUT_KEYWORDS = {
    "calm": ("seren", "compos", "tranquil", "laid-back"), "energetic": ("spirit", "vivac", "dynamic", "excit"),
    "nodding": ("bob", "dip"), "shaking": ("wag", "swivel"), "tilting": ("angl", "slant", "inclin"),
    "looking_around": ("glanc", "peer", "survey"), "looking_down": ("cast", "drop", "lap"),
    "turning": ("rotat", "pivot", "swing", "swung"), "still": ("frozen", "stationar", "fixed", "immobil"),
    "emphatic": ("key words", "underlin", "important words"),
}
# Every held-out-only wording: none of these begins a word of any training description.
HELDOUT_MARKERS = tuple(sorted({k for ks in HELDOUT_KEYWORDS.values() for k in ks} | {
    "languid", "sluggish", "lazi", "lazy", "at a crawl", "swift", "speed", "hast", "in a hurry", "even tempo", "faint",
    "mild", "a tad", "minimal", "considerabl", "huge", "marked", "forceful", "a great deal", "reasonabl", "narrator",
    "host", "leftward", "rightward", "left-hand", "right-hand", "in this clip", "we see", "can be seen", "throughout",
    "spends the clip", "produces", "comes across", "appears", "initially", "afterwards", "subsequently", "opens by",
    "finishes", "early on", "later on", "to begin with", "at the close", "to and fro", "refusal", "assent",
}))
# fmt: on


def describe(plan: Plan, rng: np.random.Generator, *, heldout: bool = False) -> str:
    """One sentence describing ``plan``: its styles in order, with their size, pace and side.

    ``heldout=True`` draws only from the held-out vocabulary, whose wordings never appear in
    training descriptions.
    """
    voc = HELDOUT if heldout else TRAIN
    segs = plan.segments
    if not 1 <= len(segs) <= 3:
        raise ValueError(f"describe() handles plans of 1 to 3 segments, not {len(segs)}")
    subject, pos, obj = voc.subjects[rng.integers(len(voc.subjects))]
    if len(segs) == 1:
        seg = segs[0]
        kind = rng.random()
        if seg.style in voc.tags and kind < 0.35:
            tag = _pick(voc.tags[seg.style], rng)
            frame = _pick(voc.tagged, rng)
            if "{S}" in frame and not subject:
                subject, pos, obj = voc.subjects[0]
            article = "an" if tag[0] in "aeiou" else "a"
            text = frame.format(S=subject, t=tag, T=tag.capitalize(), A=article.capitalize())
        elif seg.style in voc.nouns and kind < 0.3 and (seg.style != "tilting" or seg.direction == 0):
            frame = _pick(voc.nominal, rng)
            if "{S}" in frame and not subject:
                subject, pos, obj = voc.subjects[0]
            n = _noun(seg, voc, rng)
            text = frame.format(S=subject, n=n, N=n.capitalize())
        else:
            frames = [f for f in voc.single if seg.style != "turning" or "keeps {g}" not in f]
            frame = _pick(frames, rng)
            if frame.startswith("{v}") or frame.startswith("{G}"):
                subject, pos, obj = "", "", ""
            elif not subject:
                subject, pos, obj = voc.subjects[0]
            forms = {k: _clause(seg, voc, k, pos, rng) for k in "vgp" if "{" + k in frame or "{" + k.upper() in frame}
            forms |= {k.upper(): v for k, v in forms.items()}
            text = frame.format(S=subject, O=obj, **forms)
    else:
        frame = _pick(voc.sequence2 if len(segs) == 2 else voc.sequence3, rng)
        forms = {}
        for i, seg in enumerate(segs, 1):
            for k in "vgp":
                if f"{{{k}{i}}}" in frame or f"{{{k.upper()}{i}}}" in frame:
                    forms[f"{k}{i}"] = _clause(seg, voc, k, pos, rng)
                    forms[f"{k.upper()}{i}"] = forms[f"{k}{i}"]
        text = frame.format(S=subject, **forms)
    return _tidy(text)


def _pick(options: list[str], rng: np.random.Generator) -> str:
    return options[rng.integers(len(options))]


def _clause(seg: Segment, voc: _Vocab, form: str, pos: str, rng: np.random.Generator) -> str:
    """A verb phrase for one segment in the present (v), gerund (g) or past (p), with its adverbs."""
    phrases = voc.verbs[seg.style]
    if seg.style in ("tilting", "turning"):
        phrases = [p for p in phrases if ("{dir}" in p) == (seg.direction != 0)]
    words = _pick(phrases, rng).split()
    for i, word in enumerate(words):  # the first verb and any verb after "and"
        if form != "v" and (i == 0 or (words[i - 1] == "and" and word in _FORMS)):
            words[i] = _FORMS[word][0 if form == "g" else 1]
    side = _pick(voc.sides, rng).replace("LEFT", "left" if seg.direction > 0 else "right")
    phrase = " ".join(words).format(pos=pos, dir=side.format(pos=pos))
    before, after = [], []
    for level in (seg.pace and (seg.pace if seg.pace != "medium" else "medium_pace"), seg.size):
        if not level:
            continue
        adverb = _pick(voc.adverbs.get(f"{level}:{seg.style}", voc.adverbs[level]), rng)
        if adverb.startswith("^") and not before and rng.random() < 0.4:
            before.append(adverb[1:])
        elif adverb:
            after.append(adverb.lstrip("^"))
    # Adverbs go after the first verb's phrase: "turns to the left slowly and holds it there".
    words = phrase.split()
    cut = next((i for i in range(1, len(words)) if words[i - 1] == "and" and words[i] in _ALL_FORMS), len(words) + 1)
    head, tail = " ".join(words[: cut - 1]), " ".join(words[cut - 1 :])
    return " ".join([*before, head, " and ".join(after), tail])


def _noun(seg: Segment, voc: _Vocab, rng: np.random.Generator) -> str:
    """Adjectives and a plural noun for one segment, e.g. "slow, small nods"."""
    adjs = []
    for level in (seg.pace and (seg.pace if seg.pace != "medium" else "medium_pace"), seg.size):
        if level and (adj := _pick(voc.adjectives[level], rng)):
            adjs.append(adj)
    return ", ".join(adjs) + " " + _pick(voc.nouns[seg.style], rng)


def _tidy(text: str) -> str:
    """Collapse spaces left by empty slots and capitalise the first letter."""
    text = re.sub(r"\s+", " ", text).replace(" ,", ",").replace(" .", ".").replace(" ;", ";").strip()
    return text[0].upper() + text[1:]


def mentions(text: str, stems: tuple[str, ...]) -> bool:
    """Whether any stem begins a word (or phrase) of ``text``, case-insensitively."""
    return any(re.search(r"(?<![\w-])" + re.escape(s), text, re.IGNORECASE) for s in stems)
