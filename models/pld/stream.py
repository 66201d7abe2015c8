"""Running the PLD: ``PoseStream`` makes pose + gaze hop by hop from live audio; ``PoseModel.
generate`` runs the same stream over a whole file, so offline and live output are the same.

Each hop of ``hop`` (8) frames is made once the audio up to the hop's end plus ``lookahead``
frames has been heard: the denoiser generates a whole window (32 frames) from the last K committed
frames, the heard audio and the current prompt, and the stream commits the window's first hop.
The window's other frames are the stream's plan for what comes next; the next hop starts on that
plan and crossfades (raised cosine over the hop) into its own new window. So a hop boundary is
always a step inside one decoded window (no jump, whatever the sampler draws), and a prompt change
turns into the new style over one hop instead of at once. ``motion_scale`` multiplies the output
around the neutral pose (all zeros: facing the camera, centred, unit scale, gaze ahead); the
committed frames the model conditions on stay unscaled."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from posetalk.models.audio.mel import HOP, LOOKBACK, StreamingMel, log_mel
from posetalk.models.errors import PoseModelError
from posetalk.models.motion import checkpoint
from posetalk.models.pld.cond import SAMPLES_PER_FRAME, make_cond, visibility
from posetalk.models.pld.denoiser import MELS_PER_FRAME, N_MELS, DenoiserConfig, PoseDenoiser
from posetalk.models.pld.samplers import Denoiser, consistency_sigmas, karras_sigmas, sample
from posetalk.models.pld.text import PromptEncoder, encoder
from posetalk.models.pld.vae import PoseVAE, VAEConfig

DEFAULT_LOOKAHEAD = 2  # frames (80 ms)
TEACHER_STEPS = 50
TEACHER_GUIDANCE = 1.5
# The student's guidance scale when its file names none, chosen on the validation voices. At 4
# steps the styles recognised (60 clips, held-out / training wordings) were 35 / 77 % at 1.5,
# 37 / 78 % at 2.0, 37 / 77 % at 2.5 (with the first decoder 18 / 43, 20 / 62, 23 / 65 %). At 2
# steps 1.5 instead (STEP_GUIDANCE): on 103 clips its Fréchet distance to the ground truth was
# 2.74 against 3.07 at 2.0 (the teacher's 2.75), held-out wordings recognised 42 % against 44 %;
# at 1 and 4 steps 2.0 was as close or closer (2.20 / 2.62 against 2.35 / 2.78 at 1.5).
STUDENT_GUIDANCE = 2.0
STEP_GUIDANCE = {2: 1.5}


@dataclass
class PoseModel:
    """A pose VAE and a denoiser (the teacher, or the distilled student when the folder has one)."""

    vae: PoseVAE
    net: PoseDenoiser
    default_steps: int = TEACHER_STEPS
    default_guidance: float = TEACHER_GUIDANCE
    step_guidance: dict[int, float] = field(default_factory=dict)  # by step count, where not the default
    prompts: PromptEncoder = field(default_factory=encoder)
    _hops: dict[tuple[int, str], Any] = field(default_factory=dict, init=False, repr=False)

    def runtime(self, steps: int, device: str = "cpu") -> Any | None:
        """The student's hop at ``steps`` on ONNX Runtime (hop.PoseHop, one session shared by every
        stream); None for a teacher (its two-pass guidance stays on the PyTorch path)."""
        if not self.cfg.consistency or self.net.guidance is None:
            return None
        key = (steps, device)
        if key not in self._hops:
            from posetalk.models import inference
            from posetalk.models.pld.hop import hop_bytes

            self._hops[key] = inference.session(hop_bytes(self.net, self.vae, steps), device)
        return self._hops[key]

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu", teacher: bool = False) -> PoseModel:
        """The models in ``folder``: pld_vae + pld_student (or pld_denoiser, or when ``teacher``)."""
        folder = Path(folder)
        vae = checkpoint.load(folder / "pld_vae.safetensors", "pld_vae", VAEConfig, PoseVAE)[0]
        student = folder / "pld_student.safetensors"
        if student.exists() and not teacher:
            net, _, extra = checkpoint.load(student, "pld_student", DenoiserConfig, PoseDenoiser)
            steps, guidance = int(extra.get("student_steps", 2)), float(extra.get("student_guidance", STUDENT_GUIDANCE))
            by_steps = {} if "student_guidance" in extra else dict(STEP_GUIDANCE)
        else:
            net = checkpoint.load(folder / "pld_denoiser.safetensors", "pld_denoiser", DenoiserConfig, PoseDenoiser)[0]
            steps, guidance, by_steps = TEACHER_STEPS, TEACHER_GUIDANCE, {}
        return cls(
            vae.to(device).eval(), net.to(device).eval(), steps, guidance, by_steps, encoder(net.cfg.text_encoder)
        )

    @property
    def cfg(self) -> DenoiserConfig:
        return self.net.cfg

    def guidance_at(self, steps: int) -> float:
        """The guidance scale sampled with at ``steps`` when none is asked for."""
        return self.step_guidance.get(steps, self.default_guidance)

    def stream(self, prompt: str = "", **kw: Any) -> PoseStream:
        return PoseStream(self, prompt, **kw)

    def generate(
        self, audio_16k: np.ndarray, prompt: str = "", seed: int = 0, steps: int | None = None,
        guidance: float | None = None, motion_scale: float = 1.0, lookahead: int = DEFAULT_LOOKAHEAD,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Pose (T, 6) and gaze (T, 2) for a whole file of 16 kHz audio, T = ceil(len / 640)."""
        s = PoseStream(self, prompt, seed=seed, steps=steps, guidance=guidance, motion_scale=motion_scale,
                       lookahead=lookahead)  # fmt: skip
        pose, gaze = s.push(audio_16k)
        pose2, gaze2 = s.flush()
        return np.concatenate([pose, pose2]), np.concatenate([gaze, gaze2])


@dataclass
class HopJob:
    """One stream's next hop, planned (``PoseStream.plan_hop``): its inputs for the PyTorch path
    and, where the stream runs on ONNX Runtime, the exported hop's ``feeds`` (batch 1)."""

    stream: PoseStream
    audio: np.ndarray
    heard_from: int
    heard_to: int
    x: torch.Tensor
    noise: torch.Tensor
    feeds: dict[str, np.ndarray] | None = None


def run_hops(jobs: list[HopJob]) -> list[torch.Tensor]:
    """Each job's window (1, W, 8), normalised: the jobs of streams that share an ONNX Runtime
    session (one model, one step count) in one batched call, the others one by one in PyTorch."""
    out: list[torch.Tensor | None] = [None] * len(jobs)
    groups: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        if job.feeds is None:
            out[i] = job.stream.window(job)
        else:
            groups.setdefault(id(job.stream.session), []).append(i)
    for members in groups.values():
        session = jobs[members[0]].stream.session
        names = jobs[members[0]].feeds or {}
        feeds = {n: np.concatenate([jobs[i].feeds[n] for i in members]) for n in names}  # type: ignore[index]
        windows = session.run(None, feeds)[0]
        for row, i in enumerate(members):
            out[i] = torch.from_numpy(windows[row : row + 1])
    return out  # type: ignore[return-value]


class PoseStream:
    """``push(samples)`` returns (pose (k, 6), gaze (k, 2)) for every hop completed so far;
    ``flush()`` returns the rest up to the end of the audio heard. ``set_prompt`` takes effect at
    the next hop."""

    def __init__(
        self, model: PoseModel, prompt: str = "", *, seed: int = 0, steps: int | None = None,
        guidance: float | None = None, motion_scale: float = 1.0, lookahead: int = DEFAULT_LOOKAHEAD,
        onnx: bool = True,
    ) -> None:  # fmt: skip
        cfg = model.cfg
        if not 0 <= lookahead <= cfg.max_lookahead:
            raise PoseModelError(f"lookahead must be 0..{cfg.max_lookahead} frames, got {lookahead}")
        steps = model.default_steps if steps is None else steps
        if not 1 <= steps <= 1000:
            raise PoseModelError(f"steps must be 1..1000, got {steps}")
        self.model, self.lookahead, self.motion_scale = model, lookahead, motion_scale
        # the hop on ONNX Runtime where it serves (PoseModel.runtime: a student); None: PyTorch throughout
        self.session = model.runtime(steps) if onnx else None
        self.guidance = model.guidance_at(steps) if guidance is None else float(guidance)
        self.denoiser = Denoiser(model.net)
        self.sigmas = consistency_sigmas(steps) if cfg.consistency else karras_sigmas(steps)
        self.gen = torch.Generator().manual_seed(seed)
        self.device = next(model.net.parameters()).device
        self.set_prompt(prompt)
        self.audio = np.zeros(0, np.float32)  # heard samples from frame `base` on
        self.base = 0  # frame index of audio[0]
        self.heard = 0  # samples heard in all
        self.mel = StreamingMel() if self.session is not None else None  # the heard audio's log-mel, made once
        self.mels = np.zeros((N_MELS, 0), np.float32)  # its frames from mel frame 4 * base on
        self.t0 = 0  # frames committed
        self.committed = torch.zeros(1, cfg.context, cfg.channels, device=self.device)  # normalised
        self.plan: torch.Tensor | None = None  # (1, W - hop, 8) the last window's uncommitted frames
        self.noise: torch.Tensor | None = None  # the last window's noise (_noise)
        k = torch.arange(cfg.hop, dtype=torch.float32)
        self.fade = (0.5 * (1 + torch.cos(math.pi * k / max(1, cfg.hop - 1))))[None, :, None].to(self.device)

    def set_prompt(self, prompt: str) -> None:
        self.prompt = torch.from_numpy(self.model.prompts.embed([prompt])).to(self.device)

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.feed(samples)
        out = []
        while (heard_to := self.due()) is not None:
            out.append(self._hop(heard_to))
        return self.emit(out, None)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """The frames not yet returned, up to ceil(heard / 640), made from the audio heard."""
        end = -(-self.heard // SAMPLES_PER_FRAME)
        out = []
        while self.t0 < end:
            out.append(self._hop(end))
        return self.emit(out, end)

    def ahead(self) -> tuple[int, np.ndarray] | None:
        """The stream's plan for what comes next: (its first frame, (n, 8) pose + gaze, scaled as
        the output) — the last window's frames after the hop it committed, made from less audio
        than they will be committed with. None before the first hop. A live display can show
        these instead of waiting for each hop to be committed (engine/head.py does)."""
        if self.plan is None:
            return None
        x = self.model.vae.denormalise(self.plan)[0] * self.motion_scale
        return self.t0, x.cpu().numpy().astype(np.float32)

    def emit(self, hops: list[torch.Tensor], end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Committed hops (``commit``'s) as pose (k, 6) and gaze (k, 2), scaled; ``end``: the frame
        where the audio ends (the last hop may run past it)."""
        if not hops:
            return np.zeros((0, 6), np.float32), np.zeros((0, 2), np.float32)
        x = self.model.vae.denormalise(torch.cat(hops, 1))[0] * self.motion_scale  # (k, 8)
        if end is not None:  # the last hop may run past the audio
            x = x[: x.shape[0] - (self.t0 - end)]
        a = x.cpu().numpy().astype(np.float32)
        return a[:, :6], a[:, 6:]

    def _hop(self, heard_to: int) -> torch.Tensor:
        """Generate a window at frame t0, commit its first hop; returns (1, hop, 8) normalised."""
        job = self.plan_hop(heard_to)
        return self.commit(job, run_hops([job])[0])

    def due(self) -> int | None:
        """The audio position (frames) the next hop may be made from, if it is due now (push's rule)."""
        hop = self.model.cfg.hop
        heard_to = self.t0 + hop + self.lookahead
        return heard_to if self.heard >= heard_to * SAMPLES_PER_FRAME else None

    def feed(self, samples: np.ndarray) -> None:
        """Hear ``samples`` without making the hops they complete (``due`` / ``plan_hop`` /
        ``run_hops`` / ``commit`` do, batched across streams: the engine's way)."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, samples])
        self.heard += len(samples)
        if self.mel is not None:
            self.mels = np.concatenate([self.mels, self.mel.push(samples)], 1)

    @torch.no_grad()
    def plan_hop(self, heard_to: int) -> HopJob:
        """The next hop's inputs (its noise drawn now, from the stream's generator)."""
        cfg = self.model.cfg
        k, w = cfg.context, cfg.window
        start = self.t0 - k  # layout frame 0
        audio = np.zeros((k + w) * SAMPLES_PER_FRAME, np.float32)
        a0 = (start - self.base) * SAMPLES_PER_FRAME  # offset of layout frame 0 in self.audio
        src = self.audio[max(0, a0) : a0 + len(audio)]
        audio[max(0, -a0) : max(0, -a0) + len(src)] = src
        heard_from = max(0, -start) if self.t0 > 0 else k
        x, noise = self._noise()
        job = HopJob(self, audio, heard_from, heard_to - start, x, noise)
        if self.session is not None:
            job.feeds = {"mel": self._window_mel(audio, start, heard_from, heard_to - start)[None],
                         "visible": self._visible(heard_from, heard_to - start)[None],
                         "context": self.committed.numpy(), "has_context": np.array([float(self.t0 > 0)], np.float32),
                         "prompt": self.prompt.numpy(), "guidance": np.array([self.guidance], np.float32),
                         "x": x.numpy()}  # fmt: skip
            if len(noise):
                job.feeds["noise"] = noise.transpose(0, 1).numpy()
        return job

    def _noise(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next window's starting noise (1, W/4, latent), times the first level, and its re-noising
        noise (steps - 1, 1, W/4, latent). Each latent token's noise moves along with the frames it
        stands for: a window reuses the previous one's for the frames they share and draws new
        noise only for the hop it reaches further. Fresh noise for every window makes each a new
        sample of the motion ahead; their hops, crossfaded, were a chain of short pieces bending
        toward a new sample every 0.32 s (pitch and yaw power at the 3.1 Hz hop rate ~6x the ground
        truth's, nods of a third of its size)."""
        cfg = self.model.cfg
        shift, rows = cfg.hop // 4, len(self.sigmas) - 1  # rows: the start, then one per re-noising
        fresh = (rows, 1, cfg.window // 4, cfg.latent)
        if self.noise is None or cfg.hop % 4:
            self.noise = torch.randn(fresh, generator=self.gen)
        else:
            new = torch.randn((rows, 1, shift, cfg.latent), generator=self.gen)
            self.noise = torch.cat([self.noise[:, :, shift:], new], 2)
        return self.noise[0] * float(self.sigmas[0]), self.noise[1:]

    @torch.no_grad()
    def commit(self, job: HopJob, new: torch.Tensor) -> torch.Tensor:
        """Commit the first hop of ``job``'s window ``new`` (1, W, 8); returns it (1, hop, 8)."""
        cfg = self.model.cfg
        k, hop = cfg.context, cfg.hop
        frames = new[:, :hop]
        if self.plan is not None:  # start on the previous plan, end on the new window
            frames = self.fade * self.plan[:, :hop] + (1 - self.fade) * frames
        self.plan = new[:, hop:]
        if self.t0 == 0:  # before the first hop there is nothing: repeat its first frame
            self.committed = frames[:, :1].expand(1, k, -1).clone()
        self.committed = torch.cat([self.committed, frames], 1)[:, -k:]
        self.t0 += hop
        self._trim()
        return frames

    @torch.no_grad()
    def window(self, job: HopJob) -> torch.Tensor:
        """``job``'s window (1, W, 8) normalised frames through the PyTorch modules (any device)."""
        audio, heard_from, heard_to, x, noise = job.audio, job.heard_from, job.heard_to, job.x, job.noise
        has = self.t0 > 0
        cfg, dev = self.model.cfg, self.device
        vis = visibility(cfg, torch.tensor([heard_from], device=dev), torch.tensor([heard_to], device=dev))
        cond = make_cond(cfg, torch.from_numpy(audio)[None].to(dev), self.committed,
                         torch.tensor([float(has)], device=dev), vis, self.prompt, self.guidance)  # fmt: skip
        z = sample(self.denoiser, x.to(dev), self.sigmas.to(dev), cond=cond, noise=noise.to(dev))
        vae = self.model.vae
        return vae.decode_raw(z * vae.z_std + vae.z_mean)

    def _visible(self, heard_from: int, heard_to: int) -> np.ndarray:
        f = np.arange(self.model.cfg.context + self.model.cfg.window)
        return ((f >= heard_from) & (f < heard_to)).astype(np.float32)

    def _window_mel(self, audio: np.ndarray, start: int, heard_from: int, heard_to: int) -> np.ndarray:
        """(80, 4(K+W)) log-mel of the window's heard audio, zeros after it (the net masks those):
        log_mel of the masked window, as make_cond computes it. Once the window lies wholly in the
        heard stream, its frames are the stream's own (made once, as the audio came) but for the
        first two, whose 15 ms of look-back is the window's zeros."""
        cfg = self.model.cfg
        mel = np.zeros((N_MELS, MELS_PER_FRAME * (cfg.context + cfg.window)), np.float32)
        n = MELS_PER_FRAME * heard_to
        first = MELS_PER_FRAME * (start - self.base)  # the window's first mel frame in self.mels
        if heard_from == 0 and start >= 0 and first + n <= self.mels.shape[1]:
            edge = -(-LOOKBACK // HOP)  # frames that reach back before the window
            mel[:, edge:n] = self.mels[:, first + edge : first + n]
            mel[:, :edge] = log_mel(audio[: edge * HOP])
            return mel
        vis = self._visible(heard_from, heard_to)
        mel[:, :n] = log_mel(audio[: heard_to * SAMPLES_PER_FRAME] * np.repeat(vis[:heard_to], SAMPLES_PER_FRAME))
        return mel

    def _trim(self) -> None:
        """Keep only the audio the next window's context can reach."""
        keep_from = self.t0 - self.model.cfg.context
        drop = (keep_from - self.base) * SAMPLES_PER_FRAME
        if drop > 0:
            self.audio = self.audio[drop:]
            self.mels = self.mels[:, (keep_from - self.base) * MELS_PER_FRAME :]
            self.base = keep_from
