"""A session's known words (``Session.push_words`` / ``push_text``) on its input timeline.

Positions are 16 kHz samples counted over everything pushed (``Slot.position``). Timed words
become lip weights at once (phones spread over each word by duration), trusted as given: they
come from the voice that made the audio. Every pushed text, timed or not, is also forced-aligned
(models/motion/words.py) once the audio it speaks is complete (at ``flush()`` or when the next
text or words arrive) in the engine's aligner process (``Aligner``: pocketsphinx holds the GIL
while it decodes, which in a thread stalled the engine's ticks by the alignment's length, 1.3 s
for a 4.5 s sentence). When it lands, its phones and its confidence per frame replace the words'
for the frames not yet shown: stretches the audio does not say go back to audio-only lips.
A text without times gives no lips before its alignment lands."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from posetalk.engine.clock import FRAME
from posetalk.models.data.phones import Phone
from posetalk.models.motion import words as W
from posetalk.models.rates import SAMPLE_RATE, n_frames


class LiveWords:
    """Thread-safe: words are added on the event loop, read by the scheduler's worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (origin position, (F, 21) lips from it, (F,) trusted or None: all trusted), one per
        # origin (added again: replaced); the latest origin wins where two cover a frame
        self._spans: list[tuple[int, np.ndarray, np.ndarray | None]] = []

    def add(self, origin: int, phones: list[Phone], trusted: np.ndarray | None = None) -> None:
        """Phones timed from sample ``origin`` of the input timeline; ``trusted``: per frame,
        whether to use them (an alignment's confidence), None for all."""
        frames = n_frames(phones[-1].end) if phones else 0
        if frames <= 0:
            return
        lips = W.text_lips(phones, frames)
        with self._lock:
            self._spans = [span for span in self._spans if span[0] != origin]
            self._spans.append((origin, lips, trusted))
            self._spans.sort(key=lambda s: s[0])

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def join(self, expr: np.ndarray, position: int) -> tuple[np.ndarray, str]:
        """The frame (audio starting at ``position``) with the text's mouth mixed in where
        trusted, and which lips it shows: "audio", "text" or "audio (text disagrees)"."""
        if position < 0:
            return expr, "audio"
        with self._lock:
            while self._spans and self._spans[0][0] + len(self._spans[0][1]) * FRAME <= position - 60 * SAMPLE_RATE:
                self._spans.pop(0)  # a minute behind: never asked for again
            for origin, lips, trusted in reversed(self._spans):
                k = int(round((position - origin) / FRAME))
                if 0 <= k < len(lips):
                    if trusted is not None and not (k < len(trusted) and trusted[k]):
                        return expr, "audio (text disagrees)"
                    return W.mix(expr, lips[k]), "text"
        return expr, "audio"


class Aligner:
    """One process that aligns pushed texts for every session of an engine, started when a
    session first pushes words (``warm``: the process and pocketsphinx take ~3 s to start)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def warm(self) -> None:
        """Start the process and load the aligner there now (~3 s), not with the first text."""
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(1, mp_context=context)
            self._pool.submit(W.align_job, np.zeros(SAMPLE_RATE // 2, np.float32), "hello")

    async def align(self, audio: np.ndarray, text: str) -> tuple[list[Phone], np.ndarray]:
        self.warm()
        return await asyncio.get_running_loop().run_in_executor(self._pool, W.align_job, audio, text)

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)
