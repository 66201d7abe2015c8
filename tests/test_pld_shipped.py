"""The shipped pose model follows its prompt on a sentence it was not trained on: asked to nod
it moves the head up and down more than sideways, asked to shake it the other way round, and
asked to hold still it moves least. Skips while no PLD weights ship."""

from __future__ import annotations

import numpy as np
import pytest
from posetalk.models.pld import weights

pytestmark = pytest.mark.skipif(bool(weights.missing()), reason="no shipped pose model weights")


@pytest.fixture(scope="module")
def motions(spoken: np.ndarray) -> dict[str, np.ndarray]:
    from posetalk.models.pld.stream import PoseModel

    model = PoseModel.load(weights.WEIGHTS)
    prompts = {"nod": "He nods his head a lot.", "shake": "She shakes her head from side to side.",
               "still": "Sitting perfectly still."}  # fmt: skip
    out = {}
    for name, text in prompts.items():
        runs = [np.degrees(model.generate(spoken, text, seed=s)[0][:, :3]) for s in range(3)]
        out[name] = np.stack([r.std(0) for r in runs]).mean(0)  # (3,) yaw, pitch, roll spread
    return out


def test_nods_move_pitch_and_shakes_move_yaw(motions: dict[str, np.ndarray]) -> None:
    nod, shake = motions["nod"], motions["shake"]
    assert nod[1] > nod[0], nod  # pitch over yaw
    assert shake[0] > shake[1], shake  # yaw over pitch
    assert shake[0] / shake[1] > 2 * nod[0] / nod[1], (nod, shake)


def test_still_moves_least(motions: dict[str, np.ndarray]) -> None:
    still = motions["still"].sum()
    assert still < 0.5 * min(motions["nod"].sum(), motions["shake"].sum()), motions


# Issue 24: prompts in the user's own words. Each leads with a verb the training descriptions
# never use (their vocabulary is describe.TRAIN; these verbs are from describe.HELDOUT).
HELD_OUT = {
    "nodding": "He keeps ducking his chin in assent.",
    "shaking": "He jiggles his head in refusal.",
    "tilting": "She angles her head to one side and then the other.",
    "looking_down": "He casts his eyes toward his lap.",
}


@pytest.fixture(scope="module")
def model() -> object:
    from posetalk.models.pld.stream import PoseModel

    return PoseModel.load(weights.WEIGHTS)


def spread(model: object, audio: np.ndarray, text: str, seeds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Per axis (yaw, pitch, roll), the motion's spread and mean in degrees, averaged over seeds."""
    runs = [np.degrees(model.generate(audio, text, seed=s)[0][:, :3]) for s in range(seeds)]  # type: ignore[attr-defined]
    return np.stack([r.std(0) for r in runs]).mean(0), np.stack([r.mean(0) for r in runs]).mean(0)


def test_held_out_words_move_the_head_along_their_axis(model: object, real_spoken: np.ndarray) -> None:
    nod = spread(model, real_spoken, HELD_OUT["nodding"])[0]
    shake = spread(model, real_spoken, HELD_OUT["shaking"])[0]
    tilt = spread(model, real_spoken, HELD_OUT["tilting"])[0]
    assert nod[1] > nod[0] and nod[1] > nod[2], nod  # pitch dominates
    assert shake[0] > shake[1] and shake[0] > shake[2], shake  # yaw dominates
    assert tilt[2] > tilt[0] and tilt[2] > tilt[1], tilt  # roll dominates


@pytest.mark.xfail(strict=True, reason="known miss (issue 24): 'casts his eyes toward his lap' looks around (yaw)")
def test_casting_the_eyes_to_the_lap_looks_down(model: object, real_spoken: np.ndarray) -> None:
    down = spread(model, real_spoken, HELD_OUT["looking_down"])[1]
    calm = spread(model, real_spoken, "She talks calmly.")[1]
    assert down[1] > calm[1] + 3, (down, calm)  # pitch > 0 tips the nose down: lower on average


def test_the_issues_own_phrasings_nod_and_shake(model: object, real_spoken: np.ndarray) -> None:
    """What a new user tried first (issue 24): bobbing and chin-dipping nod, wagging shakes."""
    for text in ("bobs the head along while talking", "keeps dipping the chin in agreement"):
        nod = spread(model, real_spoken, text)[0]
        assert nod[1] > nod[0] and nod[1] > nod[2], (text, nod)
    wag = spread(model, real_spoken, "She wags her head from side to side.")[0]
    assert wag[0] > wag[1] and wag[0] > wag[2], wag


def test_a_nod_or_a_shake_is_a_swing_not_a_tremor(model: object, real_spoken: np.ndarray) -> None:
    """Along its axis, a nod or a shake has far more power at 0.4-2 Hz than at 2.5-6 Hz. With a fresh
    sample of the motion for every hop (before each frame kept its noise across windows) the hops'
    crossfades made a tremor at the 3.1 Hz hop rate: measured ratios 13-42 (nod), 33-48 (shake)."""

    def ratio(x: np.ndarray) -> float:
        z = x - np.linspace(x[0], x[-1], len(x))
        power = np.abs(np.fft.rfft(z * np.hanning(len(z)))) ** 2
        f = np.fft.rfftfreq(len(z), 1 / 25)
        return float(power[(f >= 0.4) & (f < 2)].sum() / power[(f >= 2.5) & (f < 6)].sum())

    for text, axis in (("He nods his head a lot.", 1), ("She shakes her head from side to side.", 0)):
        runs = [np.degrees(model.generate(real_spoken, text, seed=s)[0][:, axis]) for s in range(3)]  # type: ignore[attr-defined]
        assert np.mean([ratio(r) for r in runs]) > 80, (text, [ratio(r) for r in runs])


def test_intensity_words_scale_the_motion_and_not_moving_is_stillest(model: object, real_spoken: np.ndarray) -> None:
    slight = spread(model, real_spoken, "Nod slightly.")[0].sum()
    lot = spread(model, real_spoken, "Nod a lot.")[0].sum()
    still = spread(model, real_spoken, "Don't move your head at all.")[0].sum()
    assert slight < 0.8 * lot, (slight, lot)
    assert still < 0.5 * min(slight, lot), (still, slight, lot)


def test_an_empty_or_overlong_prompt_gets_a_clear_answer(model: object, spoken: np.ndarray) -> None:
    pose, _ = model.generate(spoken, "", seed=0)  # type: ignore[attr-defined]
    assert np.isfinite(pose).all() and np.degrees(pose[:, :3]).std(0).max() > 0.1  # the audio's own motion
    long = "nods " * 2000  # past the encoder's token limit: cut there, not refused
    pose, _ = model.generate(spoken[:16000], long, seed=0)  # type: ignore[attr-defined]
    assert np.isfinite(pose).all()
