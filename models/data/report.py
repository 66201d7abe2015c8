"""`posetalk data inspect DIR`: what a corpus holds (records, hours per split and voice, phone
coverage) and a picture of one record: spectrogram, blendshape curves and pose curves."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from posetalk.models.data.phones import ALL, FPS, PHONES, SAMPLE_RATE
from posetalk.models.data.records import Corpus, Record
from posetalk.models.face.params import INDEX, POSE_NAMES


def summary(corpus: Corpus) -> dict[str, Any]:
    """Counts, hours per split and per voice, and how often each phone occurs (by frames)."""
    hours: dict[str, float] = defaultdict(float)
    voice_hours: dict[str, float] = defaultdict(float)
    voice_split: dict[str, Counter[str]] = defaultdict(Counter)  # records per split
    for line in corpus.lines:
        hours[line["split"]] += line["seconds"] / 3600
        voice_hours[line["voice"]] += line["seconds"] / 3600
        voice_split[line["voice"]][line["split"]] += 1
    phone_frames: Counter[str] = Counter()
    for rec in corpus:
        ids, counts = np.unique(rec.phone[rec.phone >= 0], return_counts=True)
        for i, c in zip(ids, counts, strict=True):
            phone_frames[ALL[int(i)]] += int(c)
    return {
        "records": len(corpus),
        "hours": dict(hours),
        "voices": {
            v: {"hours": round(h, 4), "split": ", ".join(f"{k} {n}" for k, n in sorted(voice_split[v].items()))}
            for v, h in sorted(voice_hours.items())
        },  # fmt: skip
        "phone_frames": {p: phone_frames.get(p, 0) for p in ALL},
        "missing_phones": [p for p in PHONES if phone_frames.get(p, 0) == 0],
        "engines": corpus.info.get("engines", {}),
    }


def plot_record(rec: Record, path: str | Path) -> None:
    """Spectrogram with the phones written on it, mouth/eye/brow curves and pose curves below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import spectrogram

    fig, ax = plt.subplots(4, 1, figsize=(14, 10), sharex=True, gridspec_kw={"height_ratios": [2, 1.2, 1, 1]})
    f, t, s = spectrogram(rec.audio, SAMPLE_RATE, nperseg=400, noverlap=240)
    ax[0].pcolormesh(t, f, 10 * np.log10(s + 1e-10), shading="auto", cmap="magma")
    ax[0].set_ylim(0, 8000)
    ax[0].set_ylabel("Hz")
    ax[0].set_title(f"{rec.id} · {rec.voice} · {rec.text[:110]}", fontsize=9)
    for pid, start, end, _ in rec.phones:
        label = ALL[int(pid)]
        ax[0].axvline(start, color="w", lw=0.3)
        if label != "sil":
            ax[0].text((start + end) / 2, 7300, label, color="w", fontsize=6, ha="center")
    tf = (np.arange(rec.frames) + 0.5) / FPS
    for name in ("jawOpen", "mouthClose", "mouthPucker", "mouthFunnel", "mouthStretchLeft", "mouthRollLower"):
        ax[1].plot(tf, rec.expression[:, INDEX[name]], label=name, lw=1)
    ax[1].legend(fontsize=7, ncol=6, loc="upper right")
    ax[1].set_ylabel("mouth")
    for name in ("eyeBlinkLeft", "browInnerUp", "browOuterUpLeft", "mouthSmileLeft"):
        ax[2].plot(tf, rec.expression[:, INDEX[name]], label=name, lw=1)
    ax[2].legend(fontsize=7, ncol=4, loc="upper right")
    ax[2].set_ylabel("eyes, brows")
    for k in range(3):
        ax[3].plot(tf, np.degrees(rec.pose[:, k]), label=POSE_NAMES[k], lw=1)
    for k, name in enumerate(("gaze yaw", "gaze pitch")):
        ax[3].plot(tf, np.degrees(rec.gaze[:, k]), "--", label=name, lw=0.8)
    ax[3].legend(fontsize=7, ncol=5, loc="upper right")
    ax[3].set_ylabel("degrees")
    ax[3].set_xlabel(f"seconds · motion: {rec.description[:120]}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def inspect(root: str | Path, plot: str | Path | None = None, record: int = 0) -> dict[str, Any]:
    """Print the summary; plot record ``record`` to ``plot`` (PNG) when given."""
    corpus = Corpus(root)
    s = summary(corpus)
    print(f"corpus {root}: {s['records']} records")
    for split, h in sorted(s["hours"].items()):
        print(f"  {split:5s} {h:7.3f} h")
    print("  hours per voice:")
    for v, x in s["voices"].items():
        print(f"    {v:40s} {x['hours']:7.4f} h  {x['split']}")
    cov = s["phone_frames"]
    print("  phone frames: " + " ".join(f"{p}:{cov[p]}" for p in ALL))
    if s["missing_phones"]:
        print(f"  phones never seen: {' '.join(s['missing_phones'])}")
    if plot is not None:
        plot_record(corpus.record(record), plot)
        print(f"wrote {plot}")
    return s
