"""Pose latent diffusion: samplers are deterministic per seed and guidance 0 ignores the prompt;
hops join without jumps (and would jump without the crossfade); streaming equals a whole-file
run; a tiny training run lowers its losses, reloads bit-exactly and resumes; the distilled
student loads and runs; the prompt encoder takes empty and very long prompts; the CLI commands."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from posetalk.models.errors import CheckpointError, PoseModelError
from posetalk.models.pld.denoiser import DenoiserConfig, PoseDenoiser
from posetalk.models.pld.samplers import (
    SIGMA_MIN,
    Denoiser,
    consistency_sigmas,
    karras_sigmas,
    sample_consistency,
    sample_euler,
    sample_heun,
)
from posetalk.models.pld.stream import PoseModel, PoseStream, run_hops
from posetalk.models.pld.text import DIM, PromptEncoder  # DIM: minilm's
from posetalk.models.pld.vae import PoseVAE, VAEConfig

torch.set_num_threads(1)
TINY = DenoiserConfig(d_model=32, depth=3, heads=2, audio_width=16)


class HashEncoder(PromptEncoder):
    """A stand-in for MiniLM: a fixed random unit vector per prompt (no model to load)."""

    class _Model:
        def encode(self, texts: list[str], **_: object) -> np.ndarray:
            out = []
            for t in texts:
                seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
                v = np.random.default_rng(seed).standard_normal(DIM)
                out.append(v / np.linalg.norm(v))
            return np.array(out, np.float32)

    def _load(self) -> object:
        return self._Model()


def random_model(cfg: DenoiserConfig = TINY, seed: int = 0) -> PoseModel:
    """An untrained model whose output layers are not zero (so the output depends on everything)."""
    torch.manual_seed(seed)
    net, vae = PoseDenoiser(cfg), PoseVAE(VAEConfig(hidden=16))
    torch.nn.init.normal_(net.out.weight, std=0.3)
    if net.guidance is not None:
        torch.nn.init.normal_(net.guidance.weight, std=0.3)
    vae.std.fill_(0.1)
    return PoseModel(vae.eval(), net.eval(), default_steps=4, prompts=HashEncoder())


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-like bursts of a buzz at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    env = (np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)) > 0.2).astype(np.float32)
    return (0.2 * env * np.sign(np.sin(2 * np.pi * 140 * t)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def cond_for(model: PoseModel, prompt: np.ndarray, b: int = 2, guidance: float = 1.5) -> dict[str, torch.Tensor]:
    from posetalk.models.pld.cond import make_cond, visibility

    cfg = model.cfg
    audio = torch.from_numpy(np.stack([speech(1.92, i) for i in range(b)]))
    vis = visibility(cfg, torch.zeros(b), torch.full((b,), cfg.context + cfg.hop + 2))
    ctx = torch.randn(b, cfg.context, 8, generator=torch.Generator().manual_seed(3))
    return make_cond(cfg, audio, ctx, torch.ones(b), vis, torch.from_numpy(prompt).expand(b, -1), guidance)


def test_samplers_give_shapes_and_are_deterministic_per_seed() -> None:
    model = random_model()
    d = Denoiser(model.net)
    cond = cond_for(model, HashEncoder().embed(["nods"]))
    sig = karras_sigmas(6)
    assert sig.shape == (7,) and sig[-1] == 0 and (sig[:-1].diff() < 0).all()
    assert consistency_sigmas(1).tolist() == [sig[0].item(), 0.0]

    def run(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(2, 8, 8, generator=g) * sig[0]
        return sample_euler(d, x, sig, cond=cond)

    a, b, c = run(1), run(1), run(2)
    assert a.shape == (2, 8, 8) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.allclose(a, c)
    x = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(1)) * sig[0]
    h = sample_heun(d, x, sig, cond=cond)
    assert h.shape == (2, 8, 8) and torch.equal(h, sample_heun(d, x, sig, cond=cond))
    noise = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(4))
    x = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(5)) * 20
    s2 = consistency_sigmas(2)
    assert torch.equal(
        sample_consistency(d, x, s2, cond=cond, noise=noise), sample_consistency(d, x, s2, cond=cond, noise=noise)
    )


def test_guidance_zero_ignores_the_prompt_and_cfg_mixes_the_two_passes() -> None:
    enc = HashEncoder()
    for cfg in (TINY, DenoiserConfig(**{**TINY.__dict__, "guidance_embed": True, "consistency": True})):
        model = random_model(cfg)
        d = Denoiser(model.net)
        x = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(0))
        calm, wild = (cond_for(model, enc.embed([p]), guidance=0.0) for p in ("calm", "energetic, looks around"))
        assert torch.equal(d(x, 1.0, calm), d(x, 1.0, wild))
        calm["guidance"], wild["guidance"] = torch.full((2,), 2.0), torch.full((2,), 2.0)
        assert not torch.allclose(d(x, 1.0, calm), d(x, 1.0, wild))
    teacher = random_model(TINY)
    d = Denoiser(teacher.net)
    cond = cond_for(teacher, enc.embed(["calm"]), guidance=2.0)
    null = {**cond, "prompt": torch.zeros_like(cond["prompt"]), "guidance": torch.ones(2)}
    one = {**cond, "guidance": torch.ones(2)}
    want = d.raw(x, torch.ones(2), null) + 2.0 * (d.raw(x, torch.ones(2), one) - d.raw(x, torch.ones(2), null))
    torch.testing.assert_close(d(x, 1.0, cond), want)
    pose_a, _ = teacher.generate(speech(1.0), "calm", guidance=0.0)
    pose_b, _ = teacher.generate(speech(1.0), "energetic, looks around", guidance=0.0)
    np.testing.assert_array_equal(pose_a, pose_b)


def test_the_student_scaling_keeps_x_at_the_lowest_level() -> None:
    model = random_model(DenoiserConfig(**{**TINY.__dict__, "guidance_embed": True, "consistency": True}))
    x = torch.randn(2, 8, 8)
    out = Denoiser(model.net)(x, SIGMA_MIN, cond_for(model, HashEncoder().embed(["calm"])))
    torch.testing.assert_close(out, x)


def test_the_vae_takes_any_multiple_of_four_frames() -> None:
    vae = PoseVAE(VAEConfig(hidden=16))
    for t in (4, 32, 48):
        z = vae.encode(torch.randn(2, t, 8))
        assert z.shape == (2, t // 4, 8) and vae.decode(z).shape == (2, t, 8)
    with pytest.raises(ValueError, match="multiple of 4"):
        vae.encode(torch.randn(1, 30, 8))


def test_streaming_in_any_chunks_equals_a_whole_file_run() -> None:
    model = random_model()
    audio = speech(2.3, seed=1)
    pose, gaze = model.generate(audio, "calm", seed=5, motion_scale=0.5)
    s = PoseStream(model, "calm", seed=5, motion_scale=0.5)
    rng, i, parts = np.random.default_rng(0), 0, []
    while i < len(audio):
        n = int(rng.integers(1, 3000))
        parts.append(s.push(audio[i : i + n]))
        i += n
    parts.append(s.flush())
    np.testing.assert_allclose(np.concatenate([p for p, _ in parts]), pose, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([g for _, g in parts]), gaze, atol=1e-6)
    full, _ = model.generate(audio, "calm", seed=5)
    np.testing.assert_allclose(pose, 0.5 * full, atol=1e-6)  # motion_scale scales around neutral (0)
    with pytest.raises(PoseModelError):
        PoseStream(model, lookahead=9)


# --- training on a tiny corpus -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 records of 6 s: nodding (large slow pitch swings) or still, with speech-like audio."""
    from posetalk.models.data import records

    root = tmp_path_factory.mktemp("pld") / "corpus"
    rng = np.random.default_rng(0)
    recs = []
    for i in range(12):
        t = 150
        f = np.arange(t) / 25
        nod = i % 2 == 0
        pose = np.zeros((t, 6), np.float32)
        pose[:, 1] = (0.2 if nod else 0.01) * np.sin(2 * np.pi * 0.8 * f + rng.uniform(0, 6))
        pose[:, 0] = 0.05 * np.sin(2 * np.pi * 0.2 * f + rng.uniform(0, 6))
        gaze = 0.5 * pose[:, :2].copy()
        recs.append(records.Record(
            id=f"r{i}", split="train", source="tts", voice="test", text="", audio=speech(6.0, i),
            description="He nods a lot." if nod else "She holds still.", expression=np.zeros((t, 21), np.float32),
            pose=pose, gaze=gaze, phone=np.zeros(t, np.int8),
        ))  # fmt: skip
    records.write_shard(root, 0, recs)
    records.finish(root, {"note": "test_pld"})
    return root


@pytest.fixture(scope="module")
def tiny_run(tiny_corpus: Path) -> Path:
    from posetalk.models.pld.train import train_pld

    out = tiny_corpus.parent / "run"
    train_pld(tiny_corpus, out, steps=130, vae_steps=80, batch=16, lr=2e-3, vae_lr=3e-3, log_every=10, save_every=50,
              prompts=HashEncoder(), net_config=TINY, vae_config=VAEConfig(hidden=16))  # fmt: skip
    return out


def _jumps(x: np.ndarray, hop: int) -> tuple[float, float, float, float]:
    """Frame-to-frame steps (largest channel) at hop boundaries and inside hops: max, mean at the
    boundaries; 95th percentile, mean inside."""
    v = np.abs(np.diff(x, axis=0)).max(1)  # v[i]: the step from frame i to frame i + 1
    at = np.arange(1, len(x)) % hop == 0
    return float(v[at].max()), float(v[at].mean()), float(np.percentile(v[~at], 95)), float(v[~at].mean())


def test_hops_join_without_jumps_and_would_jump_without_the_crossfade(tiny_run: Path) -> None:
    model = PoseModel.load(tiny_run)
    model.prompts = HashEncoder()
    audio = speech(4.0)
    scale = model.vae.std.numpy()
    pose, gaze = model.generate(audio, "He nods a lot.", seed=3, steps=6)
    assert pose.shape == (100, 6) and gaze.shape == (100, 2)
    b_max, _, in_p95, _ = _jumps(np.concatenate([pose, gaze], 1) / scale, model.cfg.hop)
    assert b_max <= 1.5 * in_p95, (b_max, in_p95)
    # The same stream with the crossfade switched off (each hop straight from its own window).
    s = PoseStream(model, "He nods a lot.", seed=3, steps=6)
    s.fade.zero_()
    p2, g2 = s.push(audio)
    _, b_mean, _, in_mean = _jumps(np.concatenate([p2, g2], 1) / scale, model.cfg.hop)
    assert b_mean > 2 * in_mean, (b_mean, in_mean)
    # A prompt change mid-stream: no jump either.
    s = PoseStream(model, "She holds still.", seed=3, steps=6)
    parts = [s.push(audio[: 640 * 26])]
    s.set_prompt("He nods a lot.")
    parts += [s.push(audio[640 * 26 :]), s.flush()]
    x3 = np.concatenate([np.concatenate([p for p, _ in parts]), np.concatenate([g for _, g in parts])], 1)
    b_max, _, in_p95, _ = _jumps(x3 / scale, model.cfg.hop)
    assert b_max <= 1.5 * in_p95, (b_max, in_p95)


def test_each_frame_keeps_its_noise_from_window_to_window() -> None:
    model = random_model()
    s = PoseStream(model, "He nods a lot.", seed=3, steps=4, onnx=False)
    s.feed(speech(2.0))
    shift, jobs = model.cfg.hop // 4, []  # latent tokens per hop
    while (heard_to := s.due()) is not None and len(jobs) < 3:
        jobs.append(s.plan_hop(heard_to))
        s.commit(jobs[-1], run_hops([jobs[-1]])[0])
    for a, b in zip(jobs, jobs[1:], strict=False):
        torch.testing.assert_close(b.x[:, :-shift], a.x[:, shift:], rtol=0, atol=0)  # the frames both cover
        torch.testing.assert_close(b.noise[:, :, :-shift], a.noise[:, :, shift:], rtol=0, atol=0)
        assert not torch.allclose(b.x[:, -shift:], a.x[:, -shift:])  # new noise for the frames beyond
    again = PoseStream(model, "He nods a lot.", seed=3, steps=4, onnx=False)
    again.feed(speech(2.0))
    torch.testing.assert_close(again.plan_hop(again.due()).x, jobs[0].x, rtol=0, atol=0)  # a seed fixes it


def test_training_lowers_the_losses_and_writes_logs(tiny_run: Path) -> None:
    with open(tiny_run / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    vae = [float(r["recon"]) for r in rows if r["phase"] == "vae"]  # the KL term grows as the latents spread
    den = [float(r["total"]) for r in rows if r["phase"] == "denoiser"]
    assert np.mean(vae[-3:]) < 0.75 * np.mean(vae[:3]), vae  # each row: the mean over its 10 steps
    assert den[-1] < 0.9 * den[0], den  # each row: the mean over its 10 steps
    assert (tiny_run / "train_loss.png").stat().st_size > 5000


def test_checkpoints_reload_bit_exactly_and_strictly(tiny_run: Path) -> None:
    from posetalk.models.motion import checkpoint

    a, b = PoseModel.load(tiny_run), PoseModel.load(tiny_run)
    a.prompts = b.prompts = HashEncoder()
    audio = speech(1.5)
    assert np.array_equal(
        a.generate(audio, "He nods a lot.", steps=3)[0], b.generate(audio, "He nods a lot.", steps=3)[0]
    )
    tensors, _, _ = checkpoint.read(tiny_run / "pld_denoiser.safetensors", "pld_denoiser")
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, tensors[k]), k
    with pytest.raises(CheckpointError, match="not 'pld_student'"):
        checkpoint.load(tiny_run / "pld_denoiser.safetensors", "pld_student", DenoiserConfig, PoseDenoiser)


def test_a_resumed_run_continues_from_its_checkpoint(tiny_run: Path, tiny_corpus: Path) -> None:
    from posetalk.models.pld.train import train_pld

    r = train_pld(tiny_corpus, tiny_run, steps=135, vae_steps=80, batch=16, log_every=5, prompts=HashEncoder())
    assert r["steps"] == 135
    with open(tiny_run / "train_log.csv", newline="") as f:
        assert [int(x["step"]) for x in csv.DictReader(f)][-2:] == [130, 135]


def test_the_distilled_student_loads_and_runs_in_few_steps(tiny_run: Path, tiny_corpus: Path) -> None:
    from posetalk.models.pld.distill import distill_pld

    out = tiny_run.parent / "student"
    distill_pld(tiny_run, tiny_corpus, out, steps=6, student_steps=2, batch=4, log_every=2, prompts=HashEncoder())
    model = PoseModel.load(out)
    model.prompts = HashEncoder()
    assert model.cfg.consistency and model.cfg.guidance_embed and model.default_steps == 2
    pose, gaze = model.generate(speech(1.0), "He nods a lot.", seed=1)
    assert pose.shape == (25, 6) and np.isfinite(pose).all()
    # Two steps sample at their own guidance scale unless one is asked for.
    from posetalk.models.pld.stream import STEP_GUIDANCE

    def at2(guidance: float | None) -> np.ndarray:
        return model.generate(speech(1.0), "He nods a lot.", seed=1, steps=2, guidance=guidance)[0]

    assert np.array_equal(at2(None), at2(STEP_GUIDANCE[2])) and not np.array_equal(at2(None), at2(2.0))
    assert PoseModel.load(out, teacher=True).cfg.consistency is False  # the teacher is still there
    # A distillation continued from that student starts exactly where it ended.
    again = tiny_run.parent / "continued"
    distill_pld(tiny_run, tiny_corpus, again, steps=0, init=out, prompts=HashEncoder())
    for k, v in model.net.state_dict().items():
        assert torch.equal(v, PoseModel.load(again).net.state_dict()[k]), k


def test_decoder_tuning_keeps_the_encoder_and_decodes_noisy_latents_smoother(tiny_run: Path, tiny_corpus: Path) -> None:
    from posetalk.models.pld.decoder import tune_decoder
    from posetalk.models.pld.windows import PlanWindows

    out = tiny_run.parent / "decoder"
    with pytest.raises(PoseModelError, match="another folder"):
        tune_decoder(tiny_run, tiny_corpus, tiny_run, steps=1)
    tune_decoder(tiny_run, tiny_corpus, out, steps=60, latent_noise=1.0, batch=16, lr=3e-3, log_every=10, save_every=30)
    old, new = PoseModel.load(tiny_run, teacher=True), PoseModel.load(out, teacher=True)
    for k, v in old.vae.state_dict().items():  # the encoder and every statistic as they were
        assert torch.equal(v, new.vae.state_dict()[k]) is (not k.startswith("dec.")), k
    for k, v in old.net.state_dict().items():
        assert torch.equal(v, new.net.state_dict()[k]), k
    # Ground-truth windows, their latents noised as a few-step sampler leaves them.
    b = PlanWindows(tiny_corpus, old.cfg, seed=5, pool=20, verbose=False).batch(32, 10**6)  # unseen windows
    frames = torch.cat([b["pose"], b["gaze"]], -1)[:, -32:]
    with torch.no_grad():
        z = old.vae.encode(frames)
        z = z + torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
        decoded = [m.vae.normalise(m.vae.decode(z)) for m in (old, new)]
    err = [float((y - old.vae.normalise(frames)).abs().mean()) for y in decoded]
    jitter = [float(y.diff(2, 1).abs().mean()) for y in decoded]
    assert err[1] < err[0] and jitter[1] < 0.85 * jitter[0], (err, jitter)  # closer, and smoother
    r = tune_decoder(tiny_run, tiny_corpus, out, steps=70, latent_noise=1.0, batch=16, log_every=10)  # resumes
    assert r["steps"] == 70
    with open(out / "train_log.csv", newline="") as f:
        assert [int(x["step"]) for x in csv.DictReader(f)][-2:] == [60, 70]


# --- the real prompt encoder and the CLI -----------------------------------------------------------


def test_prompt_encoder_takes_empty_and_very_long_prompts(tmp_path: Path) -> None:
    from posetalk.models.pld.text import encoder

    enc = encoder()
    long = ("nods slowly and calmly while looking around the room " * 40)[:2000]
    e = enc.embed(["", long, "nods slowly"])
    assert e.shape == (3, DIM) and e.dtype == np.float32
    assert not e[0].any()
    np.testing.assert_allclose(np.linalg.norm(e[1:], axis=1), 1.0, atol=1e-5)
    assert float(e[1] @ e[2]) > 0.3  # related prompts embed near each other
    enc.save_cache(tmp_path / "p.npz")
    fresh = PromptEncoder()
    assert fresh.load_cache(tmp_path / "p.npz") >= 2
    np.testing.assert_array_equal(fresh.embed([long]), e[1:2])  # from the cache: no model loaded
    assert fresh._model is None
    model = random_model()
    model.prompts = enc
    for prompt in ("", long):
        pose, gaze = model.generate(speech(0.5), prompt)
        assert pose.shape == (13, 6) and np.isfinite(pose).all()


def test_cli_trains_and_distils(tiny_corpus: Path, tmp_path: Path) -> None:
    from posetalk.clients.cli import main

    teacher, student = tmp_path / "teacher", tmp_path / "student"
    assert main(["train", "pld", "--data", str(tiny_corpus), "--out", str(teacher), "--steps", "3",
                 "--vae-steps", "2", "--batch", "2", "--device", "cpu", "--p-no-context", "0.3"]) == 0  # fmt: skip
    assert main(["train", "distill", "--teacher", str(teacher), "--data", str(tiny_corpus), "--out", str(student),
                 "--steps", "2", "--batch", "2", "--student-steps", "1", "--noise", "0.5",
                 "--device", "cpu", "--p-change", "0.5"]) == 0  # fmt: skip
    with pytest.raises(SystemExit):  # argparse's usage error
        main(["train", "pld", "--data", str(tiny_corpus), "--out", str(teacher), "--p-no-context", "1.5"])
    assert PoseModel.load(student).default_steps == 1
    assert main(["train", "distill", "--teacher", str(tmp_path / "nothing"), "--data", str(tiny_corpus),
                 "--out", str(student)]) == 2  # fmt: skip
    tuned = tmp_path / "tuned"
    assert main(["train", "decoder", "--weights", str(student), "--data", str(tiny_corpus), "--out", str(tuned),
                 "--steps", "2", "--batch", "2", "--device", "cpu"]) == 0  # fmt: skip
    assert PoseModel.load(tuned).default_steps == 1  # a whole PLD folder: the student came along
    assert main(["train", "decoder", "--weights", str(tmp_path / "nothing"), "--data", str(tiny_corpus),
                 "--out", str(tuned)]) == 2  # fmt: skip


@pytest.mark.parametrize("loss", ["denoise", "distill"])
def test_training_drops_the_context_in_the_share_asked_for(loss: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from posetalk.models.pld import distill, train

    model, bs = random_model(), 400
    n = model.cfg.context + model.cfg.window
    batch = {"pose": torch.zeros(bs, n, 6), "gaze": torch.zeros(bs, n, 2), "mask": torch.ones(bs, n, dtype=torch.bool),
             "audio": torch.zeros(bs, n * 640)}  # fmt: skip
    seen: list[torch.Tensor] = []
    module = train if loss == "denoise" else distill

    class Seen(Exception):
        pass

    def spy(cfg: DenoiserConfig, audio: torch.Tensor, ctx: torch.Tensor, has: torch.Tensor, *a: object) -> dict:
        seen.append(has.clone())
        raise Seen  # the conditioning is all this test looks at

    monkeypatch.setattr(module, "make_cond", spy)
    prompts, gen = torch.zeros(bs, DIM), torch.Generator().manual_seed(0)
    for share in (0.0, 0.3, 1.0):
        with pytest.raises(Seen):
            if loss == "denoise":
                train.denoise_loss(model.net, model.vae, batch, prompts, gen, 0.15, "cpu", share)
            else:
                d = Denoiser(model.net)
                distill.cd_loss(d, d, d, model.vae, batch, prompts, torch.linspace(0.01, 1, 4), gen, 3.0, "cpu", share)
    dropped = [1 - float(h.mean()) for h in seen]
    assert dropped[0] == 0.0 and dropped[2] == 1.0
    assert abs(dropped[1] - 0.3) < 0.08


# --- training windows whose prompt describes the window ---------------------------------------------


def test_plan_windows_prompts_describe_the_motion_in_the_window(tiny_corpus: Path) -> None:
    from posetalk.models.data import describe as desc
    from posetalk.models.pld.windows import PlanWindows

    cfg = DenoiserConfig()
    pw = PlanWindows(tiny_corpus, cfg, seed=1, pool=20, p_switch=0.0, p_change=0.0, verbose=False)
    b = pw.batch(96, 0)
    n = cfg.context + cfg.window
    assert b["pose"].shape == (96, n, 6) and b["gaze"].shape == (96, n, 2) and b["audio"].shape == (96, n * 640)
    assert bool(b["mask"].all()) and len(b["description"]) == 96
    assert all(t in pw.texts for t in b["description"])
    for text, styles in zip(b["description"], b["styles"], strict=True):
        assert len(styles) == 1 and desc.mentions(text, desc.TRAIN_KEYWORDS[styles[0]]), (text, styles)
        assert not desc.mentions(text, desc.HELDOUT_MARKERS), text  # training wording only
    deg = np.degrees(b["pose"].numpy()[:, cfg.context :, :3])  # the generated part: yaw, pitch, roll
    ptp = deg.max(1) - deg.min(1)  # (B, 3)
    still = np.array([s == ("still",) for s in b["styles"]])
    nods = np.array([s == ("nodding",) for s in b["styles"]])
    assert still.sum() >= 3 and nods.sum() >= 3
    assert ptp[still].max() < 2.5, ptp[still]  # a still window hardly moves
    assert ptp[nods, 1].min() > 3.0 and (ptp[nods, 1] > ptp[nods, 0]).mean() > 0.7, ptp[nods]  # nods: pitch swings
    # The same batch number is the same batch (resumable); switch windows name both styles.
    np.testing.assert_array_equal(pw.batch(96, 0)["pose"].numpy(), b["pose"].numpy())
    sw = PlanWindows(tiny_corpus, cfg, seed=1, pool=20, p_switch=1.0, verbose=False).batch(8, 0)
    for text, styles in zip(sw["description"], sw["styles"], strict=True):
        assert len(styles) == 2 and all(desc.mentions(text, desc.TRAIN_KEYWORDS[s]) for s in styles), (text, styles)
