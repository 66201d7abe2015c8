"""A session's known words (``Session.push_words`` / ``push_text``) on its input timeline.

Positions are 16 kHz samples counted over everything pushed (``Slot.position``). Timed words
become lip weights at once; a text without times is forced-aligned (models/motion/words.py) when
the audio it speaks is complete: at ``flush()`` or when the next text or words arrive, in a
thread off the event loop. Frames shown before an alignment lands keep audio-only lips.

An aligned text carries its own confidence per frame (``Aligned.trusted``). Timed words have
none: for them trust is causal here (the offline path looks both ways): a frame takes the text's
mouth while, over the last TRUST_WINDOW_S, the text's jawOpen has followed the audio model's."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from posetalk.engine.clock import FRAME
from posetalk.models.data.phones import FPS, SAMPLE_RATE, Phone
from posetalk.models.face.params import INDEX
from posetalk.models.motion import words as W

MIN_HISTORY = 8  # frames of agreement history before trust is judged (until then: trusted)
JAW = INDEX["jawOpen"]


class LiveWords:
    """Thread-safe: words are added on the event loop or by the aligner's thread, read by the
    scheduler's worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (origin position, (F, 21) lips from it, (F,) trusted or None: judge by agreement)
        self._spans: list[tuple[int, np.ndarray, np.ndarray | None]] = []
        n = int(round(W.TRUST_WINDOW_S * FPS))
        self._audio_jaw: deque[float] = deque(maxlen=n)
        self._text_jaw: deque[float] = deque(maxlen=n)
        self.frames_text = 0  # frames whose mouth took the text's shapes
        self.frames_untrusted = 0  # frames with words where the text was not trusted

    def add(self, origin: int, phones: list[Phone], trusted: np.ndarray | None = None) -> None:
        """Phones timed from sample ``origin`` of the input timeline; ``trusted``: per frame,
        whether to use them (an alignment's confidence), None to judge by agreement."""
        duration = phones[-1].end if phones else 0.0
        frames = int(np.ceil(duration * FPS))
        if frames <= 0:
            return
        lips = W.text_lips(phones, frames)
        with self._lock:
            self._spans.append((origin, lips, trusted))
            self._spans.sort(key=lambda s: s[0])

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
        self._audio_jaw.clear()
        self._text_jaw.clear()

    def at(self, position: int) -> tuple[np.ndarray, bool | None] | None:
        """The text's (21,) weights for the frame whose audio starts at ``position`` and whether
        its alignment trusts them (None: not known), or None where no words cover it."""
        if position < 0:
            return None
        with self._lock:
            while self._spans and self._spans[0][0] + len(self._spans[0][1]) * FRAME <= position - 60 * SAMPLE_RATE:
                self._spans.pop(0)  # a minute behind: never asked for again
            for origin, lips, trusted in reversed(self._spans):
                k = int(round((position - origin) / FRAME))
                if 0 <= k < len(lips):
                    return lips[k], (bool(trusted[k]) if trusted is not None and k < len(trusted) else None)
        return None

    def join(self, expr: np.ndarray, position: int) -> tuple[np.ndarray, str]:
        """The frame's weights with the text's mouth mixed in where trusted, and which lips
        it shows: "audio", "text" or "audio (text disagrees)"."""
        found = self.at(position)
        if found is None:
            return expr, "audio"
        text, trusted = found
        self._audio_jaw.append(float(expr[JAW]))
        self._text_jaw.append(float(text[JAW]))
        if trusted is None and len(self._audio_jaw) >= MIN_HISTORY:
            trusted = W.agree(np.array(self._audio_jaw), np.array(self._text_jaw))
        if trusted is False:
            self.frames_untrusted += 1
            return expr, "audio (text disagrees)"
        self.frames_text += 1
        return W.mix(expr, text), "text"
