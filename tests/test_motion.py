"""Audio to blendshapes: training lowers the loss and checkpoints reload exactly; streaming
equals offline; the shipped model keeps silence closed and still; the motion command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from posetalk.clients.cli import main
from posetalk.models.errors import CheckpointError
from posetalk.models.face.motion_file import load_motion
from posetalk.models.face.params import BLENDSHAPE_NAMES, INDEX
from posetalk.models.motion.infer import WEIGHTS, MotionModel
from posetalk.models.motion.stream import MotionStream

SHIPPED = (WEIGHTS / "coarse.safetensors").exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from posetalk.models.data import synth, tts
    from posetalk.models.motion.train import train_motion

    if tts.available_engines().get("espeak-ng") is not None:
        pytest.skip("espeak-ng is not installed (scripts/setup installs it)")
    root = tmp_path_factory.mktemp("motion")
    synth.build(root / "corpus", 40 / 3600, 3, engines=["espeak-ng"], workers=1, shard_seconds=20)
    torch.set_num_threads(2)
    train_motion(root / "corpus", root / "run", steps=60, batch=8, frames=40, save_every=30, log_every=10)
    return root


def test_training_lowers_the_loss_and_writes_logs(tiny_run: Path) -> None:
    import csv

    with open(tiny_run / "run" / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    first, last = float(rows[0]["total"]), float(rows[-1]["total"])
    assert last < 0.7 * first, (first, last)
    assert (tiny_run / "run" / "train_loss.png").stat().st_size > 5000


def test_checkpoints_reload_bit_exactly_and_strictly(tiny_run: Path, tmp_path: Path) -> None:
    from posetalk.models.motion import checkpoint
    from posetalk.models.motion.nets import FrameNet, NetConfig

    a, b = MotionModel.load(tiny_run / "run"), MotionModel.load(tiny_run / "run")
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    assert np.array_equal(a.predict(audio), b.predict(audio))
    with pytest.raises(CheckpointError, match="not 'refine'"):
        checkpoint.load(tiny_run / "run" / "coarse.safetensors", "refine", NetConfig, FrameNet)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        checkpoint.load(bad, "coarse", NetConfig, FrameNet)


def test_a_resumed_run_continues_from_its_checkpoint(tiny_run: Path) -> None:
    from posetalk.models.motion.train import train_motion

    out = train_motion(tiny_run / "corpus", tiny_run / "run", steps=70, batch=8, frames=40, log_every=10)
    assert out["steps"] == 70  # ten more steps, not seventy from scratch


@pytest.mark.parametrize(("adapt_s", "f0_ref", "var"), [(0.0, 0.0, False), (0.3, 0.0, False), (0.3, 130.0, False),
                                                       (0.3, 0.0, True)])  # fmt: skip
def test_streaming_equals_offline(tiny_run: Path, adapt_s: float, f0_ref: float, var: bool) -> None:
    import dataclasses

    model = MotionModel.load(tiny_run / "run")
    for net in (model.coarse, model.refine):  # with the running speech-spectrum mean (and deviation), voice_norm
        net.cfg = dataclasses.replace(net.cfg, adapt_s=adapt_s, f0_ref=f0_ref, adapt_var=var)
    audio = np.random.default_rng(1).standard_normal(640 * 37).astype(np.float32) * 0.1
    audio[640 * 12 : 640 * 20] *= 0.01  # a pause: frames the running mean must skip
    t = np.arange(640 * 15) / 16000
    audio[640 * 20 : 640 * 35] *= 0.1
    audio[640 * 20 : 640 * 35] += sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 15)) * 0.2  # a woman's F0
    for lookahead in (0, 2):
        whole = model.predict(audio, lookahead)
        stream = MotionStream(model, lookahead)
        rng = np.random.default_rng(2)
        parts, i = [], 0
        while i < len(audio):
            n = int(rng.integers(1, 900))
            parts.append(stream.push(audio[i : i + n]))
            i += n
        parts.append(stream.flush())
        got = np.concatenate(parts)
        assert got.shape == whole.shape
        np.testing.assert_allclose(got, whole, atol=1e-4)
        pitch = stream.state.pitch
        assert (pitch is not None and pitch.alpha < 0.8) == bool(f0_ref)  # moved down when asked
        assert not stream.silent  # per-frame state is not kept once used
        assert len(stream.flush()) == 0  # spent


@pytest.mark.skipif(not SHIPPED, reason="no shipped motion weights")
def test_silence_gives_a_closed_still_mouth() -> None:
    from posetalk.models.motion.evaluate import CLOSED, LipMesh

    model = MotionModel.load()
    out = model.predict(np.zeros(16000 * 3, np.float32))
    mouth = out[:, :14]
    assert out[:, INDEX["jawOpen"]].max() < 0.08
    assert (LipMesh().gap(out) < CLOSED).all()
    assert mouth.std(0).max() < 0.01


@pytest.mark.skipif(not SHIPPED, reason="no shipped motion weights")
def test_motion_command_writes_named_blendshapes(tmp_path: Path) -> None:
    import wave

    sr = 22050  # not 16 kHz: resampled on the way in
    t = np.arange(sr * 2) / sr
    tone = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    wav = tmp_path / "speech.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr)
        w.writeframes((tone * 32767).astype("<i2").tobytes())
    for out in (tmp_path / "m.npz", tmp_path / "m.json"):
        assert main(["motion", "--audio", str(wav), "--out", str(out)]) == 0
        m = load_motion(out)
        assert m.expression.shape == (50, 21) and m.pose.shape == (50, 6) and m.gaze.shape == (50, 2)
        assert m.fps == 25.0
    import json

    assert json.loads((tmp_path / "m.json").read_text())["names"] == list(BLENDSHAPE_NAMES)


def test_unreadable_audio_gets_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "speech.wav"
    bad.write_text("not audio")
    assert main(["motion", "--audio", str(bad), "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "speech.wav" in err[0]
    assert not (tmp_path / "m.npz").exists()


def test_closure_losses_close_the_lips_not_the_jaw(tiny_run: Path) -> None:
    """On bilabials the lips close by mouthClose; the closure losses must not pull jawOpen down
    (when they did, the net kept the jaw low around every bilabial it was unsure of)."""
    from posetalk.models.data.dataset import WindowDataset
    from posetalk.models.motion import train

    ds = WindowDataset(tiny_run / "corpus", "train", frames=40)
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    torch.manual_seed(0)
    coarse, refine = train.coarse_net(), train.refine_net()
    captured: dict[str, torch.Tensor] = {}
    logits = refine.logits

    def keep(*args, **kwargs):  # type: ignore[no-untyped-def]
        out, aux, h = logits(*args, **kwargs)
        out.retain_grad()
        captured["logits"] = out
        return out, aux, h

    refine.logits = keep  # type: ignore[method-assign]
    for name in ("closure", "close_bce"):
        refine.zero_grad()
        parts = train.losses(coarse, refine, batch, 2, "cpu")
        parts[name].backward()
        grad = captured["logits"].grad
        assert grad is not None
        assert float(grad[..., 1].abs().sum()) > 0, name  # it does move the closure fraction
        assert float(grad[..., 0].abs().sum()) == 0.0, name  # and never the jaw


def test_a_distilled_student_learns_what_its_teachers_say(tiny_run: Path, tmp_path: Path) -> None:
    """Teachers that smile throughout (the rule targets never do): a student trained with half its
    losses against their averaged outputs smiles; one trained on the targets alone does not."""
    from posetalk.models.data.records import Corpus
    from posetalk.models.motion import checkpoint
    from posetalk.models.motion.train import train_motion

    teacher = MotionModel.load(tiny_run / "run")
    smile = INDEX["mouthSmileLeft"]
    with torch.no_grad():
        teacher.coarse.head.bias[smile] += 6.0
    for name, net in (("coarse", teacher.coarse), ("refine", teacher.refine)):
        checkpoint.save(tmp_path / "teacher" / f"{name}.safetensors", net, net.cfg, name)
    audio = Corpus(tiny_run / "corpus").record(0).audio
    assert teacher.predict(audio)[:, smile].mean() > 0.9
    means = {}
    for distill in (0.0, 0.5):
        out = tmp_path / f"student{distill}"
        kw = {"teachers": [tmp_path / "teacher", tmp_path / "teacher"], "distill": distill} if distill else {}
        train_motion(tiny_run / "corpus", out, steps=60, batch=8, frames=40, seed=1, log_every=10, **kw)
        means[distill] = float(MotionModel.load(out).predict(audio)[:, smile].mean())
    assert means[0.5] > means[0.0] + 0.2, means


def test_sealing_closes_confident_closures_and_opens_unsure_ones() -> None:
    from posetalk.models.motion.evaluate import CLOSED, LipMesh
    from posetalk.models.motion.infer import seal_closures

    mesh = LipMesh()
    w = np.zeros((3, 21), np.float32)
    w[:, INDEX["jawOpen"]] = 0.3
    w[:, INDEX["mouthFunnel"]] = 0.2
    w[:, INDEX["mouthClose"]] = 0.3 * np.array([0.05, 0.2, 0.5])  # closure fractions: unsure, halfway, confident
    w[:, INDEX["mouthFunnel"]] *= 1 - np.array([0.05, 0.2, 0.5])  # as FrameNet.shapes leaves it
    sealed = seal_closures(w, (0.1, 0.35))
    gap = mesh.gap(sealed)
    assert gap[2] < CLOSED < mesh.gap(w)[2]  # confident: sealed shut (it was open)
    assert CLOSED < gap[1] < mesh.gap(w)[1]  # halfway up the ramp: closer, still open
    # Below the ramp no closure at all: mouthClose 0, the funnel at its full (unshrunk) weight, the jaw as it was.
    np.testing.assert_allclose(sealed[0, [INDEX["jawOpen"], INDEX["mouthClose"], INDEX["mouthFunnel"]]], [0.3, 0, 0.2],
                               atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(seal_closures(w, (0.0, 1.0)), w)


def test_noise_mix_adds_noise_at_the_stated_snr_to_its_share_of_windows() -> None:
    from posetalk.models.motion.augment import NOISE_SNR, noise_mix

    gen = torch.Generator().manual_seed(0)
    audio = torch.randn(16, 16000, generator=gen) * 0.05
    np.testing.assert_array_equal(noise_mix(audio, gen, 0.0).numpy(), audio.numpy())  # share 0: untouched
    mixed = noise_mix(audio, gen, 1.0)
    snr = 10 * torch.log10(audio.pow(2).mean(1) / (mixed - audio).pow(2).mean(1))
    assert bool((snr > NOISE_SNR[0] - 0.5).all()) and bool((snr < NOISE_SNR[1] + 0.5).all()), snr


def test_smoothed_spectra_keep_their_shape_and_level_and_lose_detail() -> None:
    from posetalk.models.motion.augment import smooth_spectra

    gen = torch.Generator().manual_seed(0)
    mel = torch.randn(4, 80, 100, generator=gen) - 5.0
    assert torch.equal(smooth_spectra(mel, gen, 0.0), mel)
    out = smooth_spectra(mel, gen, 1.0)
    assert out.shape == mel.shape and abs(float(out.mean() - mel.mean())) < 0.05
    detail = lambda x: float(x.diff(dim=1).abs().mean())  # noqa: E731  # bin-to-bin change
    assert detail(out) < 0.6 * detail(mel)


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_vocoder_resynthesis_keeps_pitch_envelope_and_level_and_replaces_the_waveform(f0: float) -> None:
    from posetalk.models.audio.mel import log_mel
    from posetalk.models.motion.augment import vocode
    from scipy.signal import lfilter

    sr, n = 16000, 16000
    pulses = np.zeros(n)
    pulses[:: int(round(sr / f0))] = 1.0
    vowel = pulses
    for freq, bw in ((700.0, 80.0), (1200.0, 90.0), (2600.0, 120.0)):  # an /a/-like vowel's formants
        r = np.exp(-np.pi * bw / sr)
        vowel = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * freq / sr), r * r], vowel)
    audio = torch.from_numpy((0.3 * vowel / np.abs(vowel).max()).astype(np.float32))[None].repeat(2, 1)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(vocode(audio, gen, 0.0), audio)  # share 0: untouched
    out = vocode(audio, gen, 1.0)[0].numpy()
    x = audio[0].numpy()
    assert abs(np.sqrt((out**2).mean()) / np.sqrt((x**2).mean()) - 1) < 0.02  # the window's level
    assert np.abs(out - x).max() > 0.05  # re-made

    def pitch(y: np.ndarray) -> float:
        mid = y[4000:12000]
        ac = np.correlate(mid, mid, "full")[len(mid) - 1 :][:231]
        peaks = [i for i in range(40, 230) if ac[i - 1] < ac[i] >= ac[i + 1] and ac[i] > 0.8 * ac[40:].max()]
        return sr / peaks[0]  # the first strong peak: the period, not a multiple of it

    assert abs(pitch(out) / f0 - 1) < 0.03  # the pitch kept
    spec_in, spec_out = log_mel(x).mean(1), log_mel(out).mean(1)
    assert np.corrcoef(spec_in, spec_out)[0, 1] > 0.9  # the envelope kept
    higher = vocode(audio, gen, 1.0, (1.5, 1.5))[0].numpy()  # a higher voice: F0 × 1.5, formants × 1.5^0.25
    assert abs(pitch(higher) / (1.5 * f0) - 1) < 0.03
    centroid = lambda y: np.average(np.arange(8001), weights=np.abs(np.fft.rfft(y, 16000)) ** 2)  # noqa: E731
    assert 1.04 < centroid(higher) / centroid(out) < 1.2, centroid(higher) / centroid(out)  # formants up ~10 %
