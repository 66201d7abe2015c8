"""Head-motion generator, rhythm features and plan descriptions: behaviour per style, smoothness,
limits, determinism, beat timing, and the train / held-out split of the wordings."""

from __future__ import annotations

import re

import numpy as np
import pytest
from posetalk.models.data import describe as desc
from posetalk.models.data.head_motion import (
    FPS,
    STYLES,
    Plan,
    generate,
    make_segment,
    plan_labels,
    random_plan,
    rhythm,
)
from posetalk.models.data.phones import SAMPLE_RATE
from posetalk.models.face.params import GAZE_LIMITS, POSE_LIMITS

N = 300  # 12 s


def run(style: str, seed: int = 0, n: int = N, **kw) -> tuple[np.ndarray, np.ndarray, Plan]:
    rng = np.random.default_rng(seed)
    plan = Plan((make_segment(style, 0, n, rng, **kw),))
    return generate(n, rng, plan=plan)


def rms_deg(x: np.ndarray) -> np.ndarray:
    return np.degrees(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2, axis=0)))


def bursts(times: list[float], seconds: float, f0: float = 180.0) -> np.ndarray:
    """Quiet noise with 100 ms voiced bursts centred at ``times``."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = rng.normal(0, 1e-3, len(t))
    for c in times:
        m = np.abs(t - c) < 0.05
        x[m] += 0.5 * np.sign(np.sin(2 * np.pi * f0 * t[m])) * np.hanning(m.sum())
    return x.astype(np.float32)


# --- styles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pace", ["slow", "medium", "fast"])
@pytest.mark.parametrize("seed", [0, 1])
def test_nodding_is_pitch_at_the_planned_frequency(pace: str, seed: int) -> None:
    pose, _, plan = run("nodding", seed, n=500, pace=pace)
    yaw, pitch, roll = rms_deg(pose[:, :3])
    assert pitch >= 2 * yaw and pitch >= 2 * roll
    x = pose[:, 1] - pose[:, 1].mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8192))
    peak = np.fft.rfftfreq(8192, 1 / FPS)[spectrum.argmax()]
    assert abs(peak - plan.segments[0].rate) <= 0.15 * plan.segments[0].rate
    assert pose[:, 1].mean() > 0  # nods go nose-down (pitch > 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shaking_is_yaw(seed: int) -> None:
    pose, _, _ = run("shaking", seed)
    yaw, pitch, roll = rms_deg(pose[:, :3])
    assert yaw >= 2 * pitch and yaw >= 2 * roll


@pytest.mark.parametrize("direction", [-1, 0, 1])
def test_tilting_is_roll_toward_the_planned_side(direction: int) -> None:
    for seed in range(3):
        pose, _, _ = run("tilting", seed, direction=direction)
        yaw, pitch, roll = rms_deg(pose[:, :3])
        assert roll >= 2 * yaw and roll >= 2 * pitch
        if direction:
            assert np.sign(pose[N // 2 :, 2].mean()) == direction


def test_still_barely_moves() -> None:
    for seed in range(4):
        pose, gaze, _ = run("still", seed)
        assert (rms_deg(pose[:, :3]) < 1.5).all()
        assert (np.abs(pose[:, 3:]) < 0.02).all()


def test_looking_down_tips_head_and_eyes_down() -> None:
    for seed in range(4):
        pose, gaze, _ = run("looking_down", seed)
        assert np.degrees(pose[N // 3 :, 1].mean()) > 4  # pitch > 0 is nose down
        assert gaze[N // 3 :, 1].mean() > 0.05  # and the eyes look down too
        assert abs(pose[:, 0]).mean() < pose[N // 3 :, 1].mean()


@pytest.mark.parametrize("direction", [-1, 1])
@pytest.mark.parametrize("pace", ["slow", "fast"])
def test_turning_goes_to_the_planned_side_and_holds(direction: int, pace: str) -> None:
    for seed in range(3):
        pose, gaze, plan = run("turning", seed, direction=direction, pace=pace)
        y = np.degrees(pose[:, 0]) * direction
        target = np.degrees(plan.segments[0].amplitude)
        assert abs(y[0]) < 3
        assert (np.maximum.accumulate(y) - y).max() < 4  # never backs off by more than sway
        tail = y[int(0.8 * N) :]
        assert tail.mean() > 0.7 * target and tail.std() < 2.0  # holds on the planned side


def test_looking_around_moves_head_and_eyes_widely() -> None:
    pose, gaze, _ = run("looking_around", 0, size="large")
    calm_pose, calm_gaze, _ = run("calm", 0)
    assert rms_deg(pose[:, 0]) > 2 * rms_deg(calm_pose[:, 0])
    assert np.ptp(gaze[:, 0]) > 2 * np.ptp(calm_gaze[:, 0])


def test_energetic_moves_more_than_calm() -> None:
    for seed in range(3):
        energetic = rms_deg(np.diff(run("energetic", seed)[0][:, :3], axis=0)).sum()
        calm = rms_deg(np.diff(run("calm", seed)[0][:, :3], axis=0)).sum()
        assert energetic > 3 * calm


@pytest.mark.parametrize(("first", "second"), [("nodding", "shaking"), ("still", "looking_down"), ("tilting", "still")])
def test_first_a_then_b(first: str, second: str) -> None:
    rng = np.random.default_rng(3)
    plan = Plan((make_segment(first, 0, 150, rng, direction=0), make_segment(second, 150, 300, rng, direction=0)))
    pose, gaze, _ = generate(300, rng, plan=plan)
    a, b = pose[:135], pose[165:]  # leave out the crossfade
    check = {
        "nodding": lambda p: rms_deg(p[:, 1]) >= 2 * max(rms_deg(p[:, 0]), rms_deg(p[:, 2])),
        "shaking": lambda p: rms_deg(p[:, 0]) >= 2 * max(rms_deg(p[:, 1]), rms_deg(p[:, 2])),
        "tilting": lambda p: rms_deg(p[:, 2]) >= 2 * max(rms_deg(p[:, 0]), rms_deg(p[:, 1])),
        "still": lambda p: (rms_deg(p[:, :3] - p[:, :3].mean(0)) < 1.5).all(),
        "looking_down": lambda p: np.degrees(p[30:, 1].mean()) > 4,
    }
    assert check[first](a) and check[second](b)
    assert not check[second](a[20:]) and not check[first](b[20:])


def test_emphatic_nods_fall_on_the_beats() -> None:
    times = [0.5, 1.1, 1.9, 2.5, 3.4, 4.0, 4.9, 5.5, 6.3, 7.2, 7.8, 8.7, 9.3]
    n = 250
    r = rhythm(bursts(times, n / FPS), n)
    assert len(r.beats) == len(times)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        pose, _, _ = generate(n, rng, rhythm=r, plan=Plan((make_segment("emphatic", 0, n, rng),)))
        velocity = np.diff(pose[:, 1])  # > 0 is the head moving down
        hits = 0
        for b in r.beats:
            window = velocity[max(0, b - 6) : b + 6]
            peak = max(0, b - 6) + window.argmax()
            hits += abs(peak + 0.5 - b) <= 3 and window.max() > 0
        assert hits >= 0.8 * len(r.beats)


# --- every plan -----------------------------------------------------------------------------------


def test_smooth_and_within_limits() -> None:
    r = rhythm(bursts([0.4 + 0.6 * k for k in range(19)], 12.0), N)
    for seed in range(120):
        rng = np.random.default_rng(seed)
        pose, gaze, plan = generate(N, rng, rhythm=r if seed % 2 else None)
        assert pose.shape == (N, 6) and gaze.shape == (N, 2)
        assert pose.dtype == np.float32 and gaze.dtype == np.float32
        assert plan.n_frames == N and plan.segments[0].start == 0
        angles = np.degrees(pose[:, :3].astype(np.float64))
        assert np.abs(np.diff(angles, axis=0)).max() <= 10.0  # ≤ 250°/s
        assert np.abs(np.diff(angles, 2, axis=0)).max() <= 5.0
        assert (pose >= POSE_LIMITS[:, 0]).all() and (pose <= POSE_LIMITS[:, 1]).all()
        assert (gaze >= GAZE_LIMITS[:, 0]).all() and (gaze <= GAZE_LIMITS[:, 1]).all()
        assert (np.abs(angles) <= [30, 20, 18]).all()
        assert (np.abs(pose[:, 3:5]) <= 0.06).all() and (np.abs(pose[:, 5]) <= 0.05).all()


def test_same_seed_same_motion_and_text() -> None:
    def once(seed: int) -> tuple[np.ndarray, np.ndarray, Plan, str]:
        rng = np.random.default_rng(seed)
        pose, gaze, plan = generate(N, rng)
        return pose, gaze, plan, desc.describe(plan, rng)

    a, b, c = once(5), once(5), once(6)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2] and a[3] == b[3]
    assert not np.allclose(a[0], c[0])
    assert not np.allclose(run("nodding", 1)[0], run("nodding", 2)[0])


def test_plan_shape_and_labels() -> None:
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        plan = random_plan(N, rng)
        seen |= set(plan.styles)
        assert 1 <= len(plan.segments) <= 3
        assert len(set(plan.styles)) == len(plan.styles)
        for a, b in zip(plan.segments, plan.segments[1:], strict=False):
            assert a.end == b.start
        labels = plan_labels(plan)
        assert labels.shape == (len(STYLES),) and labels.sum() == len(plan.segments)
        assert all(labels[STYLES.index(s)] == 1 for s in plan.styles)
    assert seen == set(STYLES)
    assert len(random_plan(30, rng).segments) == 1
    with pytest.raises(ValueError):
        generate(N + 1, rng, plan=random_plan(N, rng))
    with pytest.raises(ValueError):
        make_segment("dancing", 0, 10, rng)


# --- rhythm ---------------------------------------------------------------------------------------


def test_rhythm_finds_bursts_at_their_frames() -> None:
    frames = [12, 30, 45, 70, 88, 120, 140]
    times = [(f + 0.5) / FPS for f in frames]  # burst centres on frame centres
    r = rhythm(bursts(times, 6.0), 150)
    assert r.energy.shape == r.pitch.shape == (150,)
    assert r.energy.min() >= 0 and r.energy.max() <= 1
    assert len(r.beats) == len(frames)
    assert np.abs(r.beats - np.array(frames)).max() <= 1
    assert (np.diff(r.beats) >= 6).all()


def test_rhythm_pitch_of_a_pulse_train() -> None:
    n = 100
    x = np.zeros(n * SAMPLE_RATE // FPS, np.float32)
    x[np.round(np.arange(0, len(x) - 1, SAMPLE_RATE / 150)).astype(int)] = 0.5
    r = rhythm(x, n)
    voiced = r.pitch[r.pitch > 0]
    assert len(voiced) >= 0.9 * n
    assert np.abs(voiced / 150 - 1).max() <= 0.05


def test_rhythm_of_silence_and_short_audio() -> None:
    r = rhythm(np.zeros(16000, np.float32), 50)
    assert not r.energy.any() and not r.pitch.any() and len(r.beats) == 0
    r = rhythm(bursts([0.3], 0.5), 40)  # audio shorter than the frames asked for
    assert r.energy.shape == (40,) and list(r.beats) == [7]


# --- descriptions ---------------------------------------------------------------------------------


def single(style: str, seed: int, **kw) -> Plan:
    return Plan((make_segment(style, 0, N, np.random.default_rng(seed), **kw),))


def test_every_style_is_named_by_its_keywords() -> None:
    rng = np.random.default_rng(0)
    for style in STYLES:
        for i in range(60):
            plan = single(style, i)
            train, held = desc.describe(plan, rng), desc.describe(plan, rng, heldout=True)
            assert desc.mentions(train, desc.TRAIN_KEYWORDS[style]), train
            assert desc.mentions(held, desc.HELDOUT_KEYWORDS[style]), held


def test_descriptions_are_specific() -> None:
    exclusive = ["nodding", "shaking", "tilting", "looking_around", "looking_down", "turning", "still"]
    rng = np.random.default_rng(1)
    for style in exclusive:
        others = tuple(k for o in exclusive if o != style for k in desc.TRAIN_KEYWORDS[o])
        for i in range(60):
            text = desc.describe(single(style, i), rng)
            assert not desc.mentions(text, others), (style, text)
    for direction, side, other in ((1, "left", "right"), (-1, "right", "left")):
        for i in range(30):
            for split in (False, True):
                text = desc.describe(single("turning", i, direction=direction), rng, heldout=split)
                assert side in text and other not in text
    slow = desc.describe(single("nodding", 0, pace="slow", size="small"), np.random.default_rng(0))
    assert not desc.mentions(slow, desc.TRAIN_KEYWORDS["shaking"] + ("quick", "rapid", "fast", "a lot"))


def named_at(text: str, style: str) -> int:
    """Where ``style`` is first named in ``text`` (its keywords begin words, as desc.mentions)."""
    keys = desc.TRAIN_KEYWORDS[style]
    return min(m.start() for k in keys for m in re.finditer(r"(?<![\w-])" + re.escape(k), text))


def test_sequences_name_styles_in_order() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        a, b = rng.choice(["nodding", "shaking", "looking_down", "turning", "still", "looking_around"], 2, False)
        plan = Plan((make_segment(str(a), 0, 120, rng), make_segment(str(b), 120, 240, rng)))
        text = desc.describe(plan, rng).lower()

        assert named_at(text, str(a)) < named_at(text, str(b)), text


def test_heldout_wordings_never_appear_in_training() -> None:
    rng = np.random.default_rng(3)
    train_keywords = tuple(k for ks in desc.TRAIN_KEYWORDS.values() for k in ks)
    train, held = set(), set()
    for _ in range(3000):
        plan = random_plan(N, rng)
        train.add(desc.describe(plan, rng))
        held.add(desc.describe(plan, rng, heldout=True))
    for text in train:
        assert not desc.mentions(text, desc.HELDOUT_MARKERS), text
    for text in held:
        assert not desc.mentions(text, train_keywords), text
    assert not train & held
    used = {m for m in desc.HELDOUT_MARKERS if any(desc.mentions(t, (m,)) for t in held)}
    assert len(used) >= 0.8 * len(desc.HELDOUT_MARKERS)  # the held-out vocabulary is really in use


def test_many_distinct_descriptions() -> None:
    rng = np.random.default_rng(4)
    texts = [desc.describe(random_plan(N, rng), rng) for _ in range(1000)]
    assert len(set(texts)) >= 300
    assert all(t[0].isupper() and t.endswith(".") and "  " not in t and "{" not in t for t in texts)
