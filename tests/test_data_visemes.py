"""Lip, blink and brow targets from timed phones."""

from __future__ import annotations

import numpy as np
import pytest
from posetalk.models.data.phones import FPS, VOWELS, Phone
from posetalk.models.data.visemes import blinks, brow_raises, frame_phones, lip_targets, n_frames
from posetalk.models.face.params import INDEX


def _phones(spec: list[tuple[str, float]], stress: dict[int, int] | None = None) -> list[Phone]:
    out, t = [], 0.0
    for i, (label, dur) in enumerate(spec):
        out.append(Phone(label, t, t + dur, (stress or {}).get(i, 0)))
        t += dur
    return out


def _col(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, INDEX[name]]


def _frame(p: Phone) -> int:
    return int((p.start + p.end) / 2 * FPS)


@pytest.mark.parametrize("bilabial", ["P", "B", "M"])
def test_bilabials_close_the_lips_between_open_vowels(bilabial: str) -> None:
    ph = _phones([("sil", 0.2), ("AA", 0.16), (bilabial, 0.09), ("AA", 0.16), ("sil", 0.2)])
    x = lip_targets(ph, n_frames(ph[-1].end))
    f = _frame(ph[2])
    jaw, close = _col(x, "jawOpen"), _col(x, "mouthClose")
    # The lips meet: the lip gap (jaw opening not cancelled by mouthClose) is ~0 at the closure...
    assert jaw[f] - close[f] < 0.02
    # ...which is a jawOpen minimum and a mouthClose peak between the open vowels.
    vowels = [_frame(ph[1]), _frame(ph[3])]
    assert all(jaw[v] > jaw[f] + 0.15 for v in vowels)
    assert close[f] == close[vowels[0] : vowels[1] + 1].max() and close[f] > close[vowels].max()


def test_labiodentals_tuck_the_lower_lip() -> None:
    ph = _phones([("sil", 0.2), ("AA", 0.16), ("F", 0.12), ("AA", 0.16), ("sil", 0.2)])
    x = lip_targets(ph, n_frames(ph[-1].end))
    roll = _col(x, "mouthRollLower")
    assert roll[_frame(ph[2])] > 0.3 and roll[_frame(ph[1])] < roll[_frame(ph[2])] - 0.2


def test_rounding_and_spreading() -> None:
    ph = _phones([("sil", 0.2), ("W", 0.08), ("UW", 0.2), ("sil", 0.2), ("IY", 0.2), ("sil", 0.2)])
    x = lip_targets(ph, n_frames(ph[-1].end))
    oo, ee = _frame(ph[2]), _frame(ph[4])
    assert _col(x, "mouthPucker")[oo] > 0.4 and _col(x, "mouthPucker")[ee] < 0.1
    assert _col(x, "mouthStretchLeft")[ee] > 0.3 and _col(x, "mouthStretchLeft")[oo] < 0.15


def test_coarticulation_is_gradual_and_anticipates_rounding() -> None:
    # "s t oo": the rounding of the vowel already shows during the consonants before it.
    ph = _phones([("sil", 0.3), ("S", 0.1), ("T", 0.08), ("UW", 0.2), ("sil", 0.3)])
    x = lip_targets(ph, n_frames(ph[-1].end))
    pucker = _col(x, "mouthPucker")
    assert pucker[_frame(ph[2])] > 0.25  # during the T
    assert pucker[_frame(ph[0])] < 0.05  # not in the middle of the silence before
    # No step functions: frame-to-frame changes stay moderate away from forced closures.
    assert np.abs(np.diff(x[:, [INDEX["jawOpen"], INDEX["mouthPucker"]]], axis=0)).max() < 0.3


def test_silence_is_a_relaxed_closed_mouth() -> None:
    ph = _phones([("sil", 1.0), ("AA", 0.2), ("sil", 1.0)])
    x = lip_targets(ph, n_frames(ph[-1].end))
    assert np.abs(x[:10]).max() < 0.01 and np.abs(x[-10:]).max() < 0.01
    assert _col(x, "jawOpen")[_frame(ph[1])] > 0.4


def test_frame_phones_and_frame_count() -> None:
    ph = _phones([("sil", 0.1), ("AA", 0.3), ("M", 0.11)])
    assert n_frames(0.51) == 13 and n_frames(0.52) == 13 and n_frames(0.5) == 13 - 0
    ids = frame_phones(ph, n_frames(ph[-1].end))
    assert len(ids) == 13
    from posetalk.models.data.phones import PHONE_ID

    assert ids[0] == PHONE_ID["sil"] and ids[5] == PHONE_ID["AA"] and ids[-1] == PHONE_ID["M"]


def test_blinks_happen_at_a_human_rate_and_more_in_pauses() -> None:
    rng = np.random.default_rng(0)
    # Alternating 2 s of speech and 2 s of pause, 10 minutes.
    spec = [("AA", 2.0), ("sil", 2.0)] * 150
    ph = _phones(spec)
    frames = n_frames(ph[-1].end)
    b = blinks(ph, frames, rng)
    starts = np.flatnonzero((b[1:, 0] > 0.5) & (b[:-1, 0] <= 0.5)) + 1
    per_min = len(starts) / (frames / FPS / 60)
    assert 8 < per_min < 30
    pause = frame_phones(ph, frames) == 0
    in_pause = pause[starts].mean()
    assert in_pause > 0.6  # twice as likely in pauses by design
    assert b.max() <= 1.0 and b[:, 0].max() > 0.85  # lids close fully
    assert np.diff(starts).min() >= 0.6 * FPS


def test_brows_rise_on_stressed_syllables() -> None:
    rng = np.random.default_rng(1)
    ph = _phones([("sil", 0.3), ("AA", 0.2), ("sil", 0.5)] * 40, stress={3 * i + 1: 1 for i in range(40)})
    frames = n_frames(ph[-1].end)
    brows = brow_raises(ph, frames, rng, expressive=0.8)[:, INDEX["browInnerUp"]]
    onsets = np.array([int(p.start * FPS) for p in ph if p.stress == 1])
    near = np.zeros(frames, bool)
    for f in onsets:
        near[f : f + 6] = True
    assert brows[near].mean() > 3 * brows[~near].mean()
    assert (brows[onsets + 2] > 0.1).mean() > 0.2  # a fair share of stressed syllables raise them


@pytest.mark.parametrize("engine", ["espeak-ng", "flite", "festival", "piper"])
def test_bilabials_in_real_speech_close_the_lips_at_their_frames(engine: str) -> None:
    from posetalk.models.data import tts

    why = tts.available_engines().get(engine, "unknown engine")
    if why is not None:
        pytest.skip(why)
    voice = [v for v in tts.voices([engine]) if not v.heldout][0]
    utt = tts.synthesize(voice, "Bob and Pam made a map of the moon, maybe by May.")
    x = lip_targets(utt.phones, n_frames(utt.duration))
    jaw, close = _col(x, "jawOpen"), _col(x, "mouthClose")
    bilabials = [i for i, p in enumerate(utt.phones) if p.label in ("P", "B", "M")]
    assert len(bilabials) >= 8
    vowels = [i for i, p in enumerate(utt.phones) if p.label in VOWELS]
    for i in bilabials:
        f = min(_frame(utt.phones[i]), len(x) - 1)
        assert jaw[f] - close[f] < 0.02, (utt.phones[i], jaw[f], close[f])  # lips together
        # A mouthClose peak...
        assert close[f] > 0 and close[f] >= close[max(0, f - 2) : f + 3].max() - 1e-6
        # ...and a jawOpen minimum against the vowels on either side.
        for j in [max((v for v in vowels if v < i), default=None), min((v for v in vowels if v > i), default=None)]:
            if j is not None and abs(j - i) <= 2:
                assert jaw[min(_frame(utt.phones[j]), len(x) - 1)] > jaw[f] + 0.04
