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
