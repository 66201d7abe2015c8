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

__all__ = [
    "STYLES",
    "TRAIN_KEYWORDS",
    "HELDOUT_KEYWORDS",
    "HELDOUT_MARKERS",
    "describe",
    "mentions",
    "plan_labels",
]

# present, gerund and past of every verb a phrase may start with (or continue with after "and");
# the base form ("nod", for imperatives: "nod slowly") is made from the present (_base)
_VERBS = """nods nodding nodded; shakes shaking shook; tilts tilting tilted; cocks cocking cocked;
rocks rocking rocked; leans leaning leaned; looks looking looked; lets letting let; scans scanning scanned;
keeps keeping kept; stays staying stayed; holds holding held; turns turning turned; moves moving moved;
remains remaining remained; sways swaying swayed; lowers lowering lowered; gazes gazing gazed;
emphasises emphasising emphasised; punctuates punctuating punctuated; accents accenting accented;
gestures gesturing gestured; sits sitting sat; is being was; bobs bobbing bobbed; dips dipping dipped;
wags wagging wagged; swivels swivelling swivelled; angles angling angled; slants slanting slanted;
inclines inclining inclined; glances glancing glanced; peers peering peered; surveys surveying surveyed;
casts casting cast; drops dropping dropped; rotates rotating rotated; pivots pivoting pivoted;
swings swinging swung; underlines underlining underlined; marks marking marked; leaves leaving left;
agrees agreeing agreed; says saying said; signals signalling signalled; tips tipping tipped;
faces facing faced; stares staring stared; checks checking checked; talks talking talked; speaks speaking spoke;
stresses stressing stressed; hits hitting hit; does doing did; barely barely barely; never never never;
shows showing showed; waves waving waved; declines declining declined; refuses refusing refused;
settles settling settled; bounces bouncing bounced; fixes fixing fixed; studies studying studied;
wanders wandering wandered; affirms affirming affirmed; denies denying denied; rests resting rested;
bows bowing bowed; ducks ducking ducked; jiggles jiggling jiggled"""
_FORMS = {w[0]: (w[1], w[2]) for w in (entry.split() for entry in _VERBS.split(";"))}
_ALL_FORMS = set(_FORMS) | {f for forms in _FORMS.values() for f in forms}
_BASE_EXCEPTIONS = {"is": "be", "does": "do", "barely": "barely", "never": "never"}


def _base(present: str) -> str:
    """The base form of a present-tense verb: "nods" -> "nod", "stresses" -> "stress"."""
    if present in _BASE_EXCEPTIONS:
        return _BASE_EXCEPTIONS[present]
    if present.endswith(("sses", "shes", "ches", "xes")):
        return present[:-2]
    return present[:-1]


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
    imperative: list[str]  # frames addressed to the avatar: {b} base form, {g} gerund; "your" head


def _split(table: dict[str, str]) -> dict[str, list[str]]:
    return {k: [p.strip() for p in v.split("|")] for k, v in table.items()}


# The two vocabularies share no verb, idiom, adverb or frame: the held-out one is what a user might
# say that training never showed (issue 24). Every style has "... {pos} head" phrasing in both, so
# the word "head" names no style; "side to side" is shaking's alone, "up and down" nodding's.
# fmt: off
TRAIN = _Vocab(
    verbs=_split({
        "calm": "moves calmly|stays calm|keeps a calm, relaxed posture|sways in a relaxed way|remains relaxed"
                "|moves {pos} head calmly and easily|keeps {pos} head relaxed|stays at ease|moves peacefully"
                "|keeps {pos} head gentle and relaxed|talks in a calm, easygoing way",
        "energetic": "moves energetically|moves {pos} head with lots of energy|gestures energetically with {pos} head"
                     "|moves in a lively, animated way|stays lively and animated|moves {pos} head enthusiastically"
                     "|talks with an animated head|shows lots of energy|moves {pos} head in an upbeat, lively way",
        "nodding": "nods|nods {pos} head|nods in agreement|nods along|nods {pos} head yes|agrees with {pos} head"
                   "|moves {pos} head up and down|says yes with {pos} head|keeps nodding yes"
                   "|moves {pos} chin up and down|nods as if saying yes|signals yes with {pos} head"
                   "|affirms with {pos} head|bobs {pos} head|bobs {pos} head along|dips {pos} chin"
                   "|keeps dipping {pos} chin in agreement|bobs {pos} head as if saying yes",
        "shaking": "shakes {pos} head|shakes {pos} head no|shakes {pos} head from side to side|says no with {pos} head"
                   "|moves {pos} head side to side as if saying no|shakes {pos} head in disagreement"
                   "|keeps shaking {pos} head|denies with a shake of {pos} head|signals no with {pos} head"
                   "|wags {pos} head|wags {pos} head as if saying no|wags {pos} head from side to side",
        "tilting": "tilts {pos} head|tilts {pos} head to one side and then the other|rocks {pos} head gently"
                   "|tilts {pos} head left and right|tilts {pos} head {dir}|cocks {pos} head {dir}"
                   "|tilts {pos} head over {dir}|leans {pos} head {dir}|tips {pos} head {dir}"
                   "|cocks {pos} head|leans {pos} ear toward {pos} shoulder",
        "looking_around": "looks around|looks around the room|lets {pos} eyes wander around the room|scans the room"
                          "|looks around in different directions|looks all around|scans around with {pos} head"
                          "|checks the room around {pos}|lets {pos} gaze wander around",
        "looking_down": "looks down|looks downward|lowers {pos} gaze|looks down at the floor|keeps {pos} eyes down"
                        "|gazes down|lowers {pos} head and eyes|stares at the floor|looks at the ground"
                        "|keeps {pos} head lowered|looks down at {pos} feet",
        "turning": "turns {pos} head {dir} and holds it there|turns {dir} and stays that way"
                   "|turns {pos} head {dir} and keeps it there|turns {dir} and holds that position"
                   "|turns to face {dir}|faces {dir} with {pos} head turned|turns {pos} face {dir}",
        "still": "stays still|keeps {pos} head still|holds perfectly still|remains motionless|sits still"
                 "|moves hardly at all|doesn't move {pos} head|doesn't move at all|barely moves {pos} head"
                 "|never moves {pos} head|holds {pos} head completely still|keeps still without moving",
        "emphatic": "nods on the stressed syllables|nods on the stressed words|emphasises {pos} words with nods"
                    "|punctuates {pos} speech with nods|nods to the beat of {pos} speech"
                    "|accents the stressed syllables with nods|stresses {pos} points with {pos} head"
                    "|hits the stressed words with {pos} head|emphasises each point with {pos} head",
    }),
    nouns=_split({"nodding": "nods|head nods|yes nods|head bobs",
                  "shaking": "head shakes|shakes of the head|no shakes|head wags", "tilting": "head tilts",
                  "emphatic": "nods on the stressed words"}),
    tags=_split({"calm": "calm|relaxed|calm and relaxed|at ease|peaceful|easygoing",
                 "energetic": "energetic|animated|lively|full of energy|enthusiastic|upbeat",
                 "still": "still|motionless|very still|completely still"}),
    sides=["to the LEFT", "to {pos} LEFT", "toward the LEFT", "toward {pos} LEFT side"],
    adverbs=_split({"slow": "^slowly|at a slow pace|leisurely|^gradually",
                    "medium_pace": "|at a moderate pace|^steadily",
                    "fast": "^quickly|^rapidly|fast|^briskly|at a quick pace",
                    "small": "^slightly|^gently|a little|^subtly|a bit", "medium": "|^moderately",
                    "large": "a lot|^strongly|^vigorously|widely|very much", "large:turning": "far|a long way|a lot",
                    "large:looking_down": "far|a lot|^deeply|steeply",
                    "large:emphatic": "^strongly|^vigorously|^firmly"}),
    adjectives=_split({"slow": "slow|leisurely", "medium_pace": "|steady", "fast": "quick|rapid|brisk",
                       "small": "small|slight|gentle|subtle|little", "medium": "|moderate",
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
               "{S} first {p1}, then {p2}.", "{S} is {g1} at first, then {g2}.", "{S} {v1}, followed by {g2}.",
               "{v1}, then {v2}."],
    sequence3=["First {S} {v1}, then {v2}, and finally {v3}.", "{S} {v1}, then {v2}, and then {v3}.",
               "{S} starts by {g1}, then {v2}, and ends up {g3}.", "{G1} at first, then {g2}, and finally {g3}.",
               "{S} first {p1}, then {p2}, and finally {p3}."],
    imperative=["{B}.", "{B} while you talk.", "Please {b}.", "Keep {g}.", "You {b}.", "I want you to {b}."],
)

HELDOUT = _Vocab(
    verbs=_split({
        "calm": "stays serene|remains composed|moves in a tranquil manner|keeps a laid-back posture"
                "|keeps {pos} head serene",
        "energetic": "moves in a spirited way|moves vivaciously|stays spirited and dynamic|moves {pos} head excitedly"
                     "|bounces {pos} head excitedly",
        "nodding": "bows {pos} head repeatedly|ducks {pos} chin again and again|bows {pos} head in assent"
                   "|keeps ducking {pos} chin in assent|bows {pos} head as if consenting",
        "shaking": "jiggles {pos} head to and fro|swivels {pos} head to and fro|jiggles {pos} head in refusal"
                   "|waves {pos} head to and fro as if refusing|declines with a swivel of {pos} head",
        "tilting": "angles {pos} head one way and then the other|slants {pos} head alternately"
                   "|angles {pos} head {dir}|slants {pos} head {dir}|inclines {pos} head {dir}|inclines {pos} head",
        "looking_around": "glances about|peers about the place|surveys the surroundings|glances in every direction"
                          "|peers about with {pos} head",
        "looking_down": "casts {pos} eyes toward {pos} lap|drops {pos} gaze|gazes at {pos} lap"
                        "|drops {pos} head toward {pos} lap|studies {pos} lap",
        "turning": "rotates {pos} head {dir} and leaves it there|pivots {dir} and stays put"
                   "|swings {pos} head {dir} and remains so|pivots {pos} head {dir}",
        "still": "remains frozen|stays stationary|keeps {pos} head fixed|is immobile|rests {pos} head, frozen",
        "emphatic": "bows {pos} head on the key words|underlines {pos} words with bows of the head"
                    "|marks the important words with head bows|bows {pos} head to underline key words",
    }),
    nouns=_split({"nodding": "head bows|ducks of the chin", "shaking": "head jiggles",
                  "emphatic": "head bows on key words"}),
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
    imperative=["Go ahead and {b}.", "Try to {b}.", "Could you {b}?"],
)

# Stems (matched at a word start, case-insensitive) one of which every description of a style contains.
TRAIN_KEYWORDS = {
    "calm": ("calm", "relaxed", "at ease", "peaceful", "easygoing"),
    "energetic": ("energ", "animated", "lively", "enthusias", "upbeat"),
    "nodding": ("nod", "yes", "agree", "up and down", "affirm", "bob", "dip"),
    "shaking": ("shak", "shook", "wag", "side to side", "disagree", "den", "says no", "saying no", "said no", "say no",
                "signals no", "signalling no", "signalled no", "signal no"),
    "tilting": ("tilt", "cock", "rock", "lean", "tip"),
    "looking_around": ("around", "scan"),
    "looking_down": ("looks down", "looking down", "look down", "looked down", "downward", "lower", "floor", "ground",
                     "eyes down", "gazes down", "gazing down", "gaze down", "gazed down", "feet"),
    "turning": ("turn", "face"),
    "still": ("still", "motionless", "hardly", "doesn't move", "don't move", "didn't move", "not moving", "barely",
              "never"),
    "emphatic": ("stress", "emphas", "punctuat", "beat", "accent"),
}
HELDOUT_KEYWORDS = {
    "calm": ("seren", "compos", "tranquil", "laid-back"), "energetic": ("spirit", "vivac", "dynamic", "excit"),
    "nodding": ("bow", "duck", "assent", "consent"), "shaking": ("jiggl", "swivel", "refus", "declin"),
    "tilting": ("angl", "slant", "inclin"), "looking_around": ("glanc", "peer", "survey"),
    "looking_down": ("cast", "drop", "lap"), "turning": ("rotat", "pivot", "swing", "swung"),
    "still": ("frozen", "stationar", "fixed", "immobil"),
    "emphatic": ("key words", "underlin", "important words"),
}
# Every held-out-only wording: none of these begins a word of any training description.
HELDOUT_MARKERS = tuple(sorted({k for ks in HELDOUT_KEYWORDS.values() for k in ks} | {
    "languid", "sluggish", "lazi", "lazy", "at a crawl", "swift", "speed", "hast", "in a hurry", "even tempo", "faint",
    "mild", "a tad", "minimal", "considerabl", "huge", "marked", "forceful", "a great deal", "reasonabl", "narrator",
    "host", "leftward", "rightward", "left-hand", "right-hand", "in this clip", "we see", "can be seen", "throughout",
    "spends the clip", "produces", "comes across", "appears", "initially", "afterwards", "subsequently", "opens by",
    "finishes", "early on", "later on", "to begin with", "at the close", "to and fro", "go ahead", "try to",
    "could you", "bounc", "studies", "wave", "rests",
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
        elif kind > 0.85:  # said to the avatar: "nod slowly", "keep looking around"
            frame = _pick(voc.imperative, rng)
            forms = {k: _clause(seg, voc, k.lower(), "your", rng) for k in "bBg" if "{" + k + "}" in frame}
            text = frame.format(**forms)
            text = text[0].upper() + text[1:]
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
    words = _conjugate(_pick(phrases, rng).split(), form)
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


_NEGATIONS = {"v": "doesn't", "g": "not", "p": "didn't", "b": "don't"}


def _conjugate(words: list[str], form: str) -> list[str]:
    """A present-tense phrase's verbs (the first, any after "and", the one after "barely" or
    "never", the base verb after "doesn't") in ``form``: v present, g gerund, p past, b base."""
    out = list(words)
    for i, word in enumerate(words):
        after_adverb = i > 0 and words[i - 1] in ("barely", "never") and word in _FORMS
        if word == "doesn't" and i == 0:
            out[i] = _NEGATIONS[form]
            if form in "gp" and i + 1 < len(words):  # "not moving", "didn't move"
                out[i + 1] = _FORMS[words[i + 1] + "s"][0] if form == "g" else words[i + 1]
        elif i == 0 or after_adverb or (words[i - 1] == "and" and word in _FORMS):
            if form == "b":
                out[i] = _base(word)
            elif form != "v":
                out[i] = _FORMS[word][0 if form == "g" else 1]
    return out


def _noun(seg: Segment, voc: _Vocab, rng: np.random.Generator) -> str:
    """Adjectives and a plural noun for one segment, e.g. "slow, small nods"."""
    adjs = []
    for level in (seg.pace and (seg.pace if seg.pace != "medium" else "medium_pace"), seg.size):
        if level and (adj := _pick(voc.adjectives[level], rng)):
            adjs.append(adj)
    return ", ".join(adjs) + " " + _pick(voc.nouns[seg.style], rng)


def _tidy(text: str) -> str:
    """Collapse spaces left by empty slots and capitalise the first letter."""
    text = re.sub(r"\s+", " ", text).replace(" ,", ",").replace(" .", ".").replace(" ;", ";").replace(" ?", "?").strip()
    return text[0].upper() + text[1:]


def mentions(text: str, stems: tuple[str, ...]) -> bool:
    """Whether any stem begins a word (or phrase) of ``text``, case-insensitively."""
    return any(re.search(r"(?<![\w-])" + re.escape(s), text, re.IGNORECASE) for s in stems)
