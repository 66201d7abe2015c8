"""`posetalk data real`: real recorded speech from Debian's packages, in the corpus's own format.

- The Asterisk PBX prompt sets (``asterisk-core-sounds-{lang}-g722``: 16 kHz G.722, one professional
  voice each; transcripts in the base packages ``asterisk-core-sounds-{lang}``): English, Spanish
  (both Allison Smith), French (June Wallack), Russian (a woman, from ivrvoice.ru), Italian (Carlo
  Flora, the one man).
- ``alsa-utils``' spoken channel names ("Front Left", 48 kHz): a few words of another woman.

Phone timings: English by pocketsphinx's forced alignment of the transcript (cmudict; words it
lacks are spelt by espeak-ng's letter-to-sound rules); the other languages by pocketsphinx
aligning espeak-ng's phonemes for the transcript (mapped to ARPAbet by place and lip shape,
ipa.py), because it agreed with the English alignment far better than warping espeak-ng's own
timed rendering onto the recording (dtw.py) did. The warp runs on every prompt as a cross-check
(its agreement is kept per record) and as the fallback when pocketsphinx fails. Lip targets come
from the phones by the corpus's own viseme rules at articulation 1 (a speaker's style is not
known); head motion and descriptions as in the synthetic corpus.

Splits: the English prompts by a fixed hash of their text (train / val / test), so that no text
is in two splits; Italian (the man) never trained on, his prompts split val / test by the same
hash; Spanish, French and Russian train; the ALSA words test.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.data import records
from posetalk.models.data.phones import SILENCE, Phone, Utterance
from posetalk.models.errors import CorpusError

SOUNDS = Path("/usr/share/asterisk/sounds")
DOCS = Path("/usr/share/doc")
ALSA = Path("/usr/share/sounds/alsa")
SHARD_PROMPTS = 40
TRAIN_SHARE, VAL_SHARE = 0.7, 0.15  # of the English prompts (the rest test); the held-out voice: half val


@dataclass(frozen=True)
class RealVoice:
    lang: str
    folder: str  # under SOUNDS (Asterisk) or "alsa"
    speaker: str
    sex: str
    espeak: str  # espeak-ng's voice for the transcript's phonemes
    licence: str
    role: str  # "prompts": train/val/test by text; "heldout": val/test by text; else that split

    @property
    def id(self) -> str:
        return "alsa:front" if self.folder == "alsa" else f"asterisk:{self.folder}"

    @property
    def packages(self) -> tuple[str, ...]:
        if self.folder == "alsa":
            return ("alsa-utils",)
        return (f"asterisk-core-sounds-{self.lang}-g722", f"asterisk-core-sounds-{self.lang}")


VOICES = (
    RealVoice("en", "en_US_f_Allison", "Allison Smith", "woman", "en-us", "CC-BY-SA-3.0", "prompts"),
    RealVoice("es", "es_MX_f_Allison", "Allison Smith", "woman", "es-419", "CC-BY-SA-3.0", "train"),
    RealVoice("fr", "fr_CA_f_June", "June Wallack", "woman", "fr", "CC-BY-SA-3.0", "train"),
    RealVoice("ru", "ru_RU_f_IvrvoiceRU", "ivrvoice.ru (provided by Maxim Topal)", "woman", "ru", "CC-BY-3.0", "train"),
    RealVoice("it", "it_IT_m_Carlo", "Carlo Flora", "man", "it", "CC-BY-3.0", "heldout"),
    RealVoice("en", "alsa", "unnamed (alsa-utils' channel names)", "woman", "en-us", "GPL-2 (alsa-utils)", "test"),
)
VOICE_NAMES = {v.folder.split("_")[0] if v.folder != "alsa" else "alsa": v for v in VOICES}  # en, es, ..., alsa


@dataclass(frozen=True)
class Prompt:
    voice: RealVoice
    name: str  # the file's name in its set ("agent-pass", "digits/1")
    text: str
    path: Path


def normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def split_of(voice: RealVoice, text: str) -> str:
    """The split of a prompt: a fixed hash of its normalised text for the English and held-out
    voices (the same text always in the same split), the voice's own split otherwise."""
    h = int(hashlib.sha1(normalise(text).encode()).hexdigest()[:8], 16) / 2**32
    if voice.role == "prompts":
        return "train" if h < TRAIN_SHARE else "val" if h < TRAIN_SHARE + VAL_SHARE else "test"
    if voice.role == "heldout":
        return "val" if h < 0.5 else "test"
    return voice.role


def missing_packages(voice: RealVoice, sounds: Path = SOUNDS, docs: Path = DOCS, alsa: Path = ALSA) -> list[str]:
    if voice.folder == "alsa":
        return [] if any(alsa.glob("*.wav")) else ["alsa-utils"]
    out = []
    if not (sounds / voice.folder).is_dir():
        out.append(voice.packages[0])
    if not _transcript(voice, docs).exists():
        out.append(voice.packages[1])
    return out


def _transcript(voice: RealVoice, docs: Path) -> Path:
    return docs / f"asterisk-core-sounds-{voice.lang}" / f"core-sounds-{voice.lang}.txt.gz"


def prompts(voice: RealVoice, sounds: Path = SOUNDS, docs: Path = DOCS, alsa: Path = ALSA) -> list[Prompt]:
    """The voice's recordings that have words in their transcript, sorted by name ("[tones]" and
    bracketed symbols dropped)."""
    if voice.folder == "alsa":
        return [Prompt(voice, p.stem, p.stem.replace("_", " "), p) for p in sorted(alsa.glob("*.wav"))
                if p.stem != "Noise"]  # fmt: skip
    out = []
    with gzip.open(_transcript(voice, docs), "rt", encoding="utf-8-sig") as f:
        for line in f:
            name, sep, text = line.strip().partition(":")
            text = re.sub(r"\[[^\]]*\]", " ", text).strip()
            path = sounds / voice.folder / f"{name.strip()}.g722"
            if sep and not name.startswith(";") and re.search(r"\w", text) and path.exists():
                out.append(Prompt(voice, name.strip(), " ".join(text.split()), path))
    return sorted(out, key=lambda p: p.name)


def decode(path: Path) -> np.ndarray:
    """A prompt's audio as 16 kHz mono float32 (G.722 files by PyAV's g722 demuxer)."""
    if path.suffix == ".g722":
        import av

        with av.open(str(path), format="g722") as c:
            frames = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
        pcm = np.concatenate(frames) if frames else np.zeros(0, np.int16)
        return pcm.astype(np.float32) / 32768.0
    from posetalk.models.audio.io import load_audio

    return load_audio(path)


# --------------------------------------------------------------------------- alignment


def _known_words(prompt: Prompt) -> None:
    """Add the transcript's words cmudict lacks, spelt by espeak-ng (English only)."""
    from posetalk.models.data import align, tts

    for w in align.words(prompt.text):
        if align.pronunciation(w) is None:
            spelt = [p for word in tts.espeak_words(w, prompt.voice.espeak) for p, _ in word]
            align.add_pronunciation(w, spelt)


def with_stress(phones: list[Phone], reference: list[tuple[str, int]]) -> list[Phone]:
    """Copy lexical stress from ``reference`` (espeak-ng's phones) onto matching aligned phones."""
    labels = [p.label for p in phones]
    out = list(phones)
    for a, b, n in SequenceMatcher(None, labels, [r for r, _ in reference], autojunk=False).get_matching_blocks():
        for k in range(n):
            p = out[a + k]
            out[a + k] = Phone(p.label, p.start, p.end, reference[b + k][1])
    return out


def agreement(a: list[Phone], b: list[Phone]) -> float:
    """Median |start difference| (s) of the phones (not pauses) two alignments match by label."""
    ra, rb = [p for p in a if p.label != SILENCE], [p for p in b if p.label != SILENCE]
    d = [abs(ra[i + k].start - rb[j + k].start)
         for i, j, n in SequenceMatcher(None, [p.label for p in ra], [p.label for p in rb],
                                        autojunk=False).get_matching_blocks() for k in range(n)]  # fmt: skip
    return float(np.median(d)) if d else float("nan")


def align_prompt(prompt: Prompt, audio: np.ndarray) -> tuple[list[Phone], dict[str, Any]]:
    """Timed phones for a recording of ``prompt``; CorpusError when no method aligns it."""
    from posetalk.models.data import align, dtw, tts

    words = tts.espeak_words(prompt.text, prompt.voice.espeak)
    if not words:
        raise CorpusError(f"espeak-ng finds no phonemes in {prompt.text!r}")
    spoken = [p for w in words for p in w]
    info: dict[str, Any] = {}
    try:  # the cross-check (and fallback): espeak-ng's rendering warped onto the recording
        rendering = tts.synthesize(tts.Voice("espeak-ng", prompt.voice.espeak), prompt.text)
        warped: list[Phone] | None = dtw.align_to(rendering.audio, rendering.phones, audio)
    except CorpusError as e:
        warped, info["dtw_error"] = None, str(e)
    try:
        if prompt.voice.lang == "en":
            _known_words(prompt)
            phones = align.align(audio, prompt.text)
        else:
            labels = [label for w in words for label in (*(p for p, _ in w), SILENCE)]
            phones = align.align_phones(audio, labels)
        info["aligner"] = "pocketsphinx"
    except CorpusError as e:
        if warped is None:
            raise CorpusError(f"not aligned ({e}; {info['dtw_error']})") from e
        phones, info["aligner"], info["pocketsphinx_error"] = warped, "dtw", str(e)
    if warped is not None and info["aligner"] == "pocketsphinx":
        info["dtw_agreement_ms"] = round(1000 * agreement(phones, warped), 1)
    return with_stress(phones, spoken), info


# --------------------------------------------------------------------------- the corpus


def make_record(prompt: Prompt) -> records.Record:
    from posetalk.models.data.synth import make_record as targets

    audio = decode(prompt.path)
    phones, info = align_prompt(prompt, audio)
    v = prompt.voice
    meta = {"lang": v.lang, "speaker": v.speaker, "sex": v.sex, "licence": v.licence, "prompt": prompt.name,
            "package": v.packages[0], **info}  # fmt: skip
    utt = Utterance(audio=audio, phones=phones, text=prompt.text, voice=v.id, engine="real", meta=meta)
    seed = int(hashlib.sha1(f"{v.id}/{prompt.name}".encode()).hexdigest()[:8], 16)
    rid = f"{v.folder.split('_')[0]}-{prompt.name.replace('/', '_')}"
    return targets(utt, np.random.default_rng(seed), rid, split_of(v, prompt.text), source="real", augment_p=0.0,
                   articulation=1.0)  # fmt: skip


def _shard_job(args: tuple[Path, int, list[Prompt]]) -> tuple[int, int, list[dict[str, str]]]:
    root, index, batch = args
    recs, failed = [], []
    for p in batch:
        try:
            recs.append(make_record(p))
        except CorpusError as e:
            failed.append({"voice": p.voice.id, "prompt": p.name, "error": str(e)})
    if not recs:
        raise CorpusError(f"no prompt of shard {index} could be aligned: {failed[:3]}")
    failures = records.shard_path(root, index).with_suffix(".failed.json")
    failures.parent.mkdir(parents=True, exist_ok=True)
    failures.write_text(json.dumps(failed, indent=1), encoding="utf-8")  # before the shard: a redone shard rewrites it
    lines = records.write_shard(root, index, recs)
    return index, len(lines), failed


def build(
    out: str | Path, voices: list[str] | None = None, *, limit: int | None = None, workers: int | None = None,
    sounds: Path | None = None, docs: Path | None = None, alsa: Path | None = None, shard_prompts: int = SHARD_PROMPTS,
) -> dict[str, Any]:  # fmt: skip
    """Build (or resume) the real-speech corpus in ``out`` from the ``voices`` asked for (names of
    VOICE_NAMES; all by default), at most ``limit`` prompts each; returns its summary."""
    sounds, docs, alsa = sounds or SOUNDS, docs or DOCS, alsa or ALSA
    names = voices or list(VOICE_NAMES)
    unknown = [n for n in names if n not in VOICE_NAMES]
    if unknown:
        raise CorpusError(f"unknown real voice(s) {', '.join(unknown)} (known: {', '.join(VOICE_NAMES)})")
    chosen = [VOICE_NAMES[n] for n in names]
    missing = sorted({p for v in chosen for p in missing_packages(v, sounds, docs, alsa)})
    if missing:
        raise CorpusError(f"Debian package(s) not installed: {' '.join(missing)} (run scripts/setup, or "
                          f"apt-get install {' '.join(missing)})")  # fmt: skip
    plan = [p for v in chosen for p in prompts(v, sounds, docs, alsa)[:limit]]
    shards = [plan[i : i + shard_prompts] for i in range(0, len(plan), shard_prompts)]
    root = Path(out)
    request = {"voices": names, "limit": limit, "shard_prompts": shard_prompts,
               "prompts": [f"{p.voice.id}/{p.name}" for p in plan]}  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    plan_file = root / "request.json"
    if plan_file.exists() and json.loads(plan_file.read_text()) != request:
        raise CorpusError(f"{root} holds a corpus built with other settings (see {plan_file}); use a new folder")
    plan_file.write_text(json.dumps(request, indent=1))
    todo = [i for i in range(len(shards)) if not records.shard_done(root, i)]
    if len(todo) < len(shards):
        print(f"resuming: {len(shards) - len(todo)} of {len(shards)} shards already built")
    t0 = time.perf_counter()
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    jobs = [(root, i, shards[i]) for i in todo]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for index, n, failed in pool.map(_shard_job, jobs):
            print(f"shard {index + 1}/{len(shards)}: {n} records, {len(failed)} not aligned", flush=True)
    summary = {**request, "wall_s": round(time.perf_counter() - t0, 1)}
    records.finish(root, summary)
    report = alignment_report(root)
    records.finish(root, {**summary, "alignment": report})
    print_report(report)
    return {**summary, "alignment": report}


def alignment_report(root: str | Path) -> dict[str, Any]:
    """Per voice: prompts asked for, aligned by pocketsphinx / by the warp alone, not aligned, the
    median agreement (ms) between the two methods, minutes and records per split."""
    root = Path(root)
    lines = records.read_manifest(root)
    asked = json.loads((root / "request.json").read_text())["prompts"]
    failed = [f for p in sorted((root / "shards").glob("*.failed.json")) for f in json.loads(p.read_text())]
    out: dict[str, Any] = {}
    voices = dict.fromkeys(p.split("/", 1)[0] for p in asked)
    for vid in voices:
        mine = [x for x in lines if x["voice"] == vid]
        agree = [x["meta"]["dtw_agreement_ms"] for x in mine if "dtw_agreement_ms" in x["meta"]]
        n_asked = sum(p.split("/", 1)[0] == vid for p in asked)
        out[vid] = {
            "prompts": n_asked,
            "pocketsphinx": sum(x["meta"].get("aligner") == "pocketsphinx" for x in mine),
            "dtw_only": sum(x["meta"].get("aligner") == "dtw" for x in mine),
            "not_aligned": sum(f["voice"] == vid for f in failed),
            "agreement_median_ms": round(float(np.nanmedian(agree)), 1) if agree else None,
            "minutes": round(sum(x["seconds"] for x in mine) / 60, 2),
            "splits": {s: sum(x["split"] == s for x in mine) for s in ("train", "val", "test")},
        }
    return out


def print_report(report: dict[str, Any]) -> None:
    print(f"{'voice':32s}{'prompts':>8s}{'psphinx':>8s}{'warp':>6s}{'failed':>7s}{'agree ms':>9s}{'min':>7s}  splits")
    for vid, r in report.items():
        agree = f"{r['agreement_median_ms']:.0f}" if r["agreement_median_ms"] is not None else "-"
        splits = " ".join(f"{k} {v}" for k, v in r["splits"].items() if v)
        print(f"{vid:32s}{r['prompts']:8d}{r['pocketsphinx']:8d}{r['dtw_only']:6d}{r['not_aligned']:7d}{agree:>9s}"
              f"{r['minutes']:7.1f}  {splits}")  # fmt: skip
