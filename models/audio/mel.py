"""The model's audio front end: 16 kHz mono float32 -> 80-bin log-mel at 100 Hz, causal.

Exactly what is computed (numpy and torch agree within 1e-4; StreamingMel equals log_mel):

- Framing (CAUSAL): mel frame k covers samples [k*160 - 240, k*160 + 160): a 400-sample (25 ms)
  window that ends at the end of its own 160-sample (10 ms) hop; samples before the stream start
  are zeros. Frame k therefore depends only on samples < (k + 1) * 160, and video frame f (25 fps,
  samples [f*640, (f+1)*640)) corresponds to mel frames 4f ... 4f+3. A signal of N samples gives
  N // 160 frames: a trailing partial hop gives no frame (until more samples arrive, when streaming).
- Window: periodic Hann of 400 samples, w[n] = 0.5 - 0.5*cos(2*pi*n/400), no normalisation.
- Spectrum: the windowed frame zero-padded to n_fft = 512, real FFT (257 bins, 31.25 Hz apart),
  power = |X|^2 with samples on the [-1, 1] scale (no 1/n_fft or window-energy scaling).
- Mel filterbank: 80 triangular filters on the Slaney mel scale (linear 0-1000 Hz at 200/3 Hz per
  mel, logarithmic above with 27 mels per factor 6.4), edges at 82 points equally spaced in mel
  from 20 Hz to 7600 Hz, each triangle area-normalised (peak height 2 / (upper edge - lower edge)
  in Hz), as librosa's ``mel(htk=False, norm="slaney")``; see ``mel_filterbank()``/``mel_centres()``.
- Value: natural log(max(mel power, 1e-5)). Digital silence is log(1e-5) = -11.5129...

The numpy path computes in float64 and returns float32; the torch path computes in float32 on the
tensor's device (the mel projection in float64 on CUDA, so TF32 matmul settings cannot reach it,
and autocast is switched off inside).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, overload

import numpy as np
from numpy.lib.stride_tricks import as_strided
from posetalk.models.rates import FPS, SAMPLE_RATE

if TYPE_CHECKING:
    import torch

N_MELS = 80
HOP = 160  # samples per mel frame (10 ms)
WIN = 400  # analysis window (25 ms)
N_FFT = 512
MELS_PER_FRAME = 4  # mel frames per video frame
F_MIN, F_MAX = 20.0, 7600.0
LOG_FLOOR = 1e-5  # mel power floor before the log
LOOKBACK = WIN - HOP  # samples of the window before its own hop (240)
N_BINS = N_FFT // 2 + 1

assert SAMPLE_RATE == HOP * 100 and SAMPLE_RATE // FPS == MELS_PER_FRAME * HOP

_BLOCK = 4096  # frames per numpy block: bounds the float64 spectrum's memory on long files


# --- filterbank -----------------------------------------------------------------------------

_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_BREAK_HZ = 1000.0
_BREAK_MEL = _BREAK_HZ / _F_SP  # 15
_LOG_STEP = np.log(6.4) / 27.0  # mels above the break are this much log(Hz) each


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(hz, np.float64)
    lin = f / _F_SP
    log = _BREAK_MEL + np.log(np.maximum(f, _BREAK_HZ) / _BREAK_HZ) / _LOG_STEP
    return np.where(f < _BREAK_HZ, lin, log)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    m = np.asarray(mel, np.float64)
    lin = m * _F_SP
    log = _BREAK_HZ * np.exp(_LOG_STEP * (np.maximum(m, _BREAK_MEL) - _BREAK_MEL))
    return np.where(m < _BREAK_MEL, lin, log)


def _edges_hz() -> np.ndarray:
    return mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2))


def mel_centres() -> np.ndarray:
    """(80,) centre frequency in Hz of each mel filter (its peak), ascending."""
    return _edges_hz()[1:-1].copy()


def mel_filterbank() -> np.ndarray:
    """(80, 257) float64 weights: mel power = filterbank @ power spectrum."""
    edges = _edges_hz()
    freqs = np.arange(N_BINS) * (SAMPLE_RATE / N_FFT)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lo) / (mid - lo)
    falling = (hi - freqs) / (hi - mid)
    tri: np.ndarray = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (hi - lo))
    return tri


_FB_T = np.ascontiguousarray(mel_filterbank().T)  # (257, 80)
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic Hann


# --- numpy: one implementation for whole signals and streams -------------------------------


def _mel_frames(padded: np.ndarray, n: int) -> np.ndarray:
    """(80, n) float32 log-mel of frames k = 0..n-1, frame k being padded[k*HOP : k*HOP + WIN]
    (``padded`` holds LOOKBACK samples of context before frame 0's hop)."""
    step = padded.strides[0]
    assert padded.ndim == 1 and len(padded) >= (n - 1) * HOP + WIN
    frames = as_strided(padded, (n, WIN), (HOP * step, step), writeable=False)  # (n, WIN) view
    spec = np.fft.rfft(frames * _WINDOW, n=N_FFT)
    power = spec.real**2 + spec.imag**2
    out: np.ndarray = np.log(np.maximum(power @ _FB_T, LOG_FLOOR)).T.astype(np.float32)
    return out


def _float_samples(audio: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(audio)
    if not np.issubdtype(a.dtype, np.floating) and a.size:
        raise TypeError(f"{what} takes float samples in [-1, 1], got {a.dtype} (int PCM: use audio.io.to_16k)")
    return a.astype(np.float64, copy=False)


def _log_mel_numpy(audio: np.ndarray) -> np.ndarray:
    a = _float_samples(audio, "log_mel")
    if a.ndim == 0:
        raise ValueError("log_mel needs samples along the last axis, got a scalar")
    lead, length = a.shape[:-1], a.shape[-1]
    n = length // HOP
    out = np.empty((*lead, N_MELS, n), np.float32)
    if n == 0:
        return out
    rows = a.reshape(-1, length)
    flat = out.reshape(-1, N_MELS, n)
    for i, row in enumerate(rows):
        padded = np.concatenate([np.zeros(LOOKBACK), row[: n * HOP]])
        for start in range(0, n, _BLOCK):
            count = min(_BLOCK, n - start)
            flat[i, :, start : start + count] = _mel_frames(padded[start * HOP :], count)
    return out


# --- torch ---------------------------------------------------------------------------------

_TORCH_CONSTS: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _torch_consts(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    proj = torch.float64 if device.type == "cuda" else torch.float32
    key = (str(device), str(proj))
    if key not in _TORCH_CONSTS:
        window = torch.as_tensor(_WINDOW, dtype=torch.float32, device=device)
        _TORCH_CONSTS[key] = (window, torch.as_tensor(_FB_T, dtype=proj, device=device))
    return _TORCH_CONSTS[key]


def _log_mel_torch(audio: torch.Tensor) -> torch.Tensor:
    import torch

    if not audio.is_floating_point() and audio.numel():
        raise TypeError(f"log_mel takes float samples in [-1, 1], got {audio.dtype}")
    if audio.dim() == 0:
        raise ValueError("log_mel needs samples along the last axis, got a scalar")
    lead, length = audio.shape[:-1], audio.shape[-1]
    n = length // HOP
    if n == 0:
        return torch.zeros(*lead, N_MELS, 0, dtype=torch.float32, device=audio.device)
    window, fb_t = _torch_consts(audio.device)
    with torch.autocast(audio.device.type, enabled=False):
        x = audio.reshape(-1, length)[:, : n * HOP].float()
        x = torch.nn.functional.pad(x, (LOOKBACK, 0))
        frames = x.unfold(-1, WIN, HOP)  # (B, n, WIN), frame k = x[k*HOP : k*HOP + WIN]
        spec = torch.fft.rfft(frames * window, n=N_FFT)
        power = spec.real.square() + spec.imag.square()
        mel = (power.to(fb_t.dtype) @ fb_t).float()  # (B, n, 80)
        out: torch.Tensor = mel.clamp_min(LOG_FLOOR).log().transpose(1, 2).reshape(*lead, N_MELS, n)
    return out


# --- public --------------------------------------------------------------------------------


@overload
def log_mel(audio: np.ndarray) -> np.ndarray: ...
@overload
def log_mel(audio: torch.Tensor) -> torch.Tensor: ...


def log_mel(audio: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Causal 80-bin log-mel of 16 kHz mono float samples (module docstring has the details).

    numpy (..., N) -> (..., 80, N // 160) float32. torch (..., N) -> (..., 80, N // 160) float32
    on the tensor's device (batched, differentiable). Integer samples raise TypeError.
    """
    torch = sys.modules.get("torch")  # a tensor means torch is imported; numpy users never load it
    if torch is not None and isinstance(audio, torch.Tensor):
        return _log_mel_torch(audio)
    return _log_mel_numpy(np.asarray(audio))


class StreamingMel:
    """Log-mel of a stream pushed in chunks of any size: ``push(chunk)`` returns (80, k) float32
    for the k frames that chunk completed (k may be 0). Everything push() returns, concatenated,
    equals ``log_mel`` of the whole signal (same code; within 1e-5). Keeps < 400 samples."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start a new stream (zeros before its first sample, as log_mel assumes)."""
        self._buf = np.zeros(LOOKBACK, np.float64)  # context + the samples of the unfinished hop
        self.frames_out = 0  # mel frames returned so far

    def push(self, chunk: np.ndarray) -> np.ndarray:
        a = _float_samples(chunk, "StreamingMel.push")
        if a.ndim != 1:
            raise ValueError(f"StreamingMel.push takes mono samples, shape (n,); got {a.shape}")
        buf = np.concatenate([self._buf, a]) if a.size else self._buf
        n = (len(buf) - LOOKBACK) // HOP
        if n == 0:
            self._buf = buf
            return np.zeros((N_MELS, 0), np.float32)
        out = _mel_frames(buf, n)
        self._buf = buf[n * HOP :].copy()
        self.frames_out += n
        return out


def bench_mel(seconds: float = 10.0, batch: int = 32, clip_s: float = 2.0, repeats: int = 5) -> dict[str, float]:
    """Timings of the front end on this machine, printed and returned:
    stream_push_us: mean cost of one 20 ms (320-sample) StreamingMel.push;
    numpy_x_realtime: whole-signal numpy log_mel speed;
    torch_cpu1_x_realtime: torch log_mel on a (batch, clip_s*16k) batch with one CPU thread;
    torch_cuda_x_realtime: the same on CUDA (only when CUDA is available)."""
    import torch

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    result: dict[str, float] = {}

    stream = StreamingMel()
    chunks = [audio[i : i + 320] for i in range(0, len(audio) - 319, 320)]
    t0 = time.perf_counter()
    for c in chunks:
        stream.push(c)
    result["stream_push_us"] = (time.perf_counter() - t0) / len(chunks) * 1e6

    best = min(_timed(lambda: log_mel(audio)) for _ in range(repeats))
    result["numpy_x_realtime"] = seconds / best

    x = torch.from_numpy((0.1 * rng.standard_normal((batch, int(clip_s * SAMPLE_RATE)))).astype(np.float32))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        log_mel(x)
        best = min(_timed(lambda: log_mel(x)) for _ in range(repeats))
    finally:
        torch.set_num_threads(threads)
    result["torch_cpu1_x_realtime"] = batch * clip_s / best
    if torch.cuda.is_available():
        xc = x.cuda()
        log_mel(xc)

        def run() -> None:
            log_mel(xc)
            torch.cuda.synchronize()

        best = min(_timed(run) for _ in range(repeats))
        result["torch_cuda_x_realtime"] = batch * clip_s / best
    for k, v in result.items():
        print(f"{k}: {v:,.1f}")
    return result


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
