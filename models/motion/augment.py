"""The training augmentations of the motion nets, drawn per window from a torch Generator.

On the waveform: ``noise_mix`` (noise at 0–20 dB SNR) and ``vocode`` (the voice re-made by a
parametric vocoder). On the log-mel: ``speaker_warp`` (vocal tract length, tilt, gain) and
``smooth_spectra``. The corpus has few voices that sound like people, and its held-out test
voices (CMU ARCTIC HTS / clustergen) are a kind of synthesis no training voice is; these make more
voices and more kinds of voice out of the ones it has."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

WARP = 0.12  # vocal tract length: frequencies scaled by 1 ± up to this
TILT = 0.75  # spectral tilt: ± up to this (natural log units) from the lowest to the highest bin
GAIN = 1.0  # level: ± up to this (natural log units, 1.0 = 8.7 dB)


def speaker_warp(mel: torch.Tensor, gen: torch.Generator, warp: float = WARP) -> torch.Tensor:
    """A random speaker and channel per window of a (B, 80, F) log-mel batch: the frequency axis
    scaled (vocal tract length perturbation), a spectral tilt and a gain. The corpus has few voices
    that sound like people; this makes more of them."""
    from posetalk.models.motion.voice_norm import warp_frequency

    b, n, _ = mel.shape
    alpha = 1.0 + warp * (2 * torch.rand(b, generator=gen).numpy() - 1)
    warped = warp_frequency(mel, alpha)
    ramp = torch.linspace(-1.0, 1.0, n, device=mel.device)
    tilt = TILT * (2 * torch.rand(b, 1, 1, generator=gen) - 1).to(mel.device) * ramp[None, :, None]
    gain = GAIN * (2 * torch.rand(b, 1, 1, generator=gen) - 1).to(mel.device)
    floor = float(np.log(1e-5))
    return torch.clamp(warped + tilt + gain, min=floor)


SMOOTH_SIGMA = (0.5, 2.0)  # mel bins (frequency) of the Gaussian smoothing; a quarter of that in mel frames (time)


def smooth_spectra(mel: torch.Tensor, gen: torch.Generator, share: float) -> torch.Tensor:
    """A random ``share`` of a (B, 80, F) log-mel batch smoothed along frequency (sigma drawn from
    SMOOTH_SIGMA bins) and a little along time: the over-smoothed envelopes and trajectories of
    statistical parametric voices (HMM/clustergen: the held-out CMU ARCTIC voices are all of that
    kind, and no training voice is)."""
    b, n, f = mel.shape
    out = mel.clone()
    for i in torch.nonzero(torch.rand(b, generator=gen) < share).flatten().tolist():
        lo, hi = SMOOTH_SIGMA
        sigma = lo + (hi - lo) * float(torch.rand((), generator=gen))
        for axis, s in ((0, sigma), (1, sigma / 4)):
            r = max(1, int(round(3 * s)))
            k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=mel.dtype) / s) ** 2)
            k = (k / k.sum()).to(mel.device)
            x = out[i] if axis == 1 else out[i].T  # rows are filtered along their last axis
            y = F.conv1d(F.pad(x[:, None], (r, r), mode="replicate"), k[None, None])[:, 0]
            out[i] = y if axis == 1 else y.T
    return out


NOISE_SNR = (0.0, 20.0)  # dB, uniform


def noise_mix(audio: torch.Tensor, gen: torch.Generator, share: float) -> torch.Tensor:
    """(B, N) windows with noise added to a random ``share`` of them, at NOISE_SNR: babble made of
    two to five other windows of the batch (circularly shifted), or one of the corpus's noise kinds
    (models/data/noise.py: white, pink, brown, hum, fan, keyboard, music, and speech-shaped noise
    modulated like syllables, which is what the evaluation's babble is). The corpus's own
    augmentation gives each utterance one fixed noise, and its babble is always real talkers; this
    gives every window a fresh one."""
    from posetalk.models.data.noise import NOISE_KINDS, make_noise

    b, n = audio.shape
    power = (audio**2).mean(1).clamp_min(1e-8)  # whole-window power (pauses included)
    noise = torch.zeros_like(audio)
    for i in range(b):
        if float(torch.rand((), generator=gen)) < 0.4 and b > 1:
            k = int(torch.randint(2, 6, (), generator=gen))
            for j in torch.randint(1, b, (k,), generator=gen).tolist():
                shift = int(torch.randint(0, n, (), generator=gen))
                noise[i] += torch.roll(audio[(i + j) % b], shift) / power[(i + j) % b].sqrt()
        else:
            rng = np.random.default_rng(int(torch.randint(0, 2**31, (), generator=gen)))
            kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
            noise[i] = torch.from_numpy(make_noise(n, rng, kind).astype(np.float32)).to(audio.device)
    noise = noise / (noise**2).mean(1, keepdim=True).clamp_min(1e-12).sqrt()
    lo, hi = NOISE_SNR
    snr = lo + (hi - lo) * torch.rand(b, generator=gen).to(audio.device)
    on = (torch.rand(b, generator=gen) < share).to(audio.device).float()
    mix = audio + on[:, None] * noise * (power / 10 ** (snr / 10)).sqrt()[:, None]
    peak = mix.abs().amax(1, keepdim=True).clamp_min(1.0)
    return mix / peak


VOCODE_ORDER = (16, 40)  # real-cepstrum coefficients kept for the envelope (HTS / clustergen use 25–50 mel-cepstra)
VOCODE_F0 = (70.0, 400.0)  # Hz searched for the pitch
VOCODE_NOISE = (0.05, 0.3)  # aspiration noise mixed into voiced frames (amplitude relative to the pulses)
_VFFT, _VHOP = 512, 80  # 32 ms analysis, 5 ms frames (the frame rate of those vocoders)


def vocode(
    audio: torch.Tensor, gen: torch.Generator, share: float, pitch: tuple[float, float] = (1.0, 1.0), sr: int = 16000
) -> torch.Tensor:
    """A random ``share`` of (B, N) windows re-made by a pulse/noise-excited cepstral vocoder, the
    way statistical parametric voices are made: per 5 ms frame the spectral envelope (the real
    cepstrum liftered to VOCODE_ORDER coefficients, smoothed over time), a voicing decision and F0
    from the window-corrected autocorrelation; then a pulse train at that F0 (noise where unvoiced,
    some aspiration where voiced) shaped by that envelope and overlap-added, at the window's own
    level. What the voice says stays; its fine structure becomes a vocoder's buzz. ``pitch``: the
    range of a factor (log-uniform, one per window) on F0, with the formants moved by its fourth
    root (a 1.7× higher voice gets 14 % higher formants, about a man's to a woman's)."""
    b, n = audio.shape
    pick = torch.nonzero(torch.rand(b, generator=gen) < share).flatten()
    if len(pick) == 0:
        return audio
    x = audio[pick]
    k = len(x)
    win = torch.hann_window(_VFFT, device=x.device)
    spec = torch.stft(x, _VFFT, _VHOP, window=win, return_complex=True)  # (k, 257, T)
    power = spec.abs().square().clamp_min(1e-10)
    # Envelope: the log spectrum's low quefrencies, smoothed a little along time.
    lo, hi = VOCODE_ORDER
    ceps = torch.fft.irfft(0.5 * power.log(), n=_VFFT, dim=1)[:, :hi]  # (k, hi, T)
    order = torch.randint(lo, hi + 1, (k, 1, 1), generator=gen).to(x.device)
    ceps = ceps * (torch.arange(hi, device=x.device)[None, :, None] < order)
    sigma = 0.5 + 2.0 * float(torch.rand((), generator=gen))
    r = int(np.ceil(3 * sigma))
    kern = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    t_len = ceps.shape[2]
    ceps = F.conv1d(F.pad(ceps.reshape(-1, 1, t_len), (r, r), mode="replicate"), (kern / kern.sum())[None, None])
    q = torch.arange(hi, device=x.device, dtype=x.dtype)
    basis = torch.cos(2 * np.pi * q[:, None] * torch.arange(_VFFT // 2 + 1, device=x.device) / _VFFT)
    basis[1:] *= 2  # the cepstrum is even: c_q and c_{N-q} together
    env = torch.einsum("kqt,qf->kft", ceps.reshape(k, hi, t_len), basis)  # (k, 257, T) log magnitude
    lo_p, hi_p = np.log(pitch[0]), np.log(pitch[1])
    scale = torch.exp(lo_p + (hi_p - lo_p) * torch.rand(k, generator=gen)).to(x)  # (k,) F0 factors
    if hi_p > lo_p or lo_p != 0:
        bins = env.shape[1]
        src = (torch.arange(bins, device=x.device, dtype=x.dtype)[None] / scale[:, None] ** 0.25).clamp(max=bins - 1)
        b0 = src.floor().long()
        b1 = (b0 + 1).clamp(max=bins - 1)
        w = (src - b0)[..., None]
        env = (
            env.gather(1, b0[..., None].expand(-1, -1, t_len)) * (1 - w)
            + env.gather(1, b1[..., None].expand(-1, -1, t_len)) * w
        )
    # Pitch: the autocorrelation's highest peak in the F0 range, divided by the window's own.
    ac = torch.fft.irfft(power, n=_VFFT, dim=1)
    wac = torch.fft.irfft(torch.fft.rfft(win, n=_VFFT).abs().square(), n=_VFFT)
    min_lag, max_lag = int(sr / VOCODE_F0[1]), int(sr / VOCODE_F0[0])
    norm = ac[:, min_lag : max_lag + 1] / ac[:, :1].clamp_min(1e-10)
    norm = norm / (wac[min_lag : max_lag + 1] / wac[0])[None, :, None]
    peak, lag = norm.max(1)  # (k, T)
    loud = power.sum(1) > power.sum(1).amax(1, keepdim=True) * 1e-4  # within 40 dB of the window's loudest
    voiced = ((peak > 0.45) & loud).to(x.dtype)
    f0 = sr / (lag + min_lag).to(x.dtype)
    f0 = f0.unfold(1, 5, 1).median(-1).values if t_len >= 5 else f0  # octave slips
    f0 = F.pad(f0[:, None], (2, t_len - f0.shape[1] - 2), mode="replicate")[:, 0] if t_len >= 5 else f0
    # Excitation per sample: frame t is centred on sample t·hop.
    pos = torch.arange(n, device=x.device, dtype=x.dtype) / _VHOP
    i0 = pos.floor().long().clamp(max=t_len - 1)
    i1 = (i0 + 1).clamp(max=t_len - 1)
    frac = pos - i0
    f0_s = (f0[:, i0] * (1 - frac) + f0[:, i1] * frac) * scale[:, None]
    v_s = voiced[:, i0] * (1 - frac) + voiced[:, i1] * frac
    phase = torch.cumsum(f0_s / sr, 1) + torch.rand(k, 1, generator=gen).to(x)
    pulses = (torch.diff(torch.floor(phase), dim=1, prepend=torch.floor(phase[:, :1])) > 0).to(x.dtype)
    pulses = pulses * torch.sqrt(sr / f0_s)  # unit power
    noise = torch.randn(k, n, generator=gen).to(x)
    lo_n, hi_n = VOCODE_NOISE
    breath = lo_n + (hi_n - lo_n) * torch.rand(k, 1, generator=gen).to(x)
    exc = v_s * (pulses + breath * noise) + (1 - v_s) * noise
    out_spec = torch.stft(exc, _VFFT, _VHOP, window=win, return_complex=True) * env.exp()
    y = torch.istft(out_spec, _VFFT, _VHOP, window=win, length=n)
    y = y * (x.square().mean(1, keepdim=True).sqrt() / y.square().mean(1, keepdim=True).sqrt().clamp_min(1e-8))
    out = audio.clone()
    out[pick] = y
    return out
