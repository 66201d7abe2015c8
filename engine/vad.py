"""Speech or silence, per video frame: what puts a session in its listening state.

``VoiceDetector`` says whether one frame (40 ms at 16 kHz) holds voice: webrtcvad (the
``webrtcvad-wheels`` distribution, a dependency) on the frame's two 20 ms halves, and above the
motion models' silence level, so a detector that fires on faint noise cannot open the mouth. If
webrtcvad cannot be imported (a platform without its wheel), an energy threshold stands in: it
cannot tell speech from steady noise, which is why it is only the fallback.

``SpeechGate`` turns those per-frame decisions into the speaking state of each frame shown, which
lags the input by ``lookahead`` frames (the lip models wait for them): speech starts on its first
voiced frame and holds over ``hangover`` frames of silence, so the head does not drop into
listening between words. ``end_of_speech`` marks the first frame after speech ends:
when the hangover runs out, on the first frame after a flushed utterance (always, even if nothing
in it sounded like speech: a voice agent waits for that flag), and after an interrupt."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from posetalk.engine.clock import FRAME, SAMPLE_RATE
from posetalk.models.motion.infer import SILENT_DBFS

ENERGY_DBFS = -40.0  # the energy fallback's threshold: quiet speech is louder than this, room noise not
HANGOVER = 8  # frames (320 ms): longer than most pauses between words


def level_db(frame: np.ndarray) -> float:
    """RMS level of samples on the [-1, 1] scale, in dB full scale (-240 for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) if len(frame) else 0.0
    return 20.0 * math.log10(rms + 1e-12)


class VoiceDetector:
    """``voiced(frame)`` for 640-sample frames of 16 kHz float audio. ``mode`` is webrtcvad's
    aggressiveness (0 keeps the most speech, 3 rejects the most noise)."""

    def __init__(self, mode: int = 2, use_webrtcvad: bool = True) -> None:
        if not 0 <= mode <= 3:
            raise ValueError(f"VAD mode must be 0..3, got {mode}")
        self._vad: Any = None
        if use_webrtcvad:
            try:
                import webrtcvad

                self._vad = webrtcvad.Vad(mode)
            except ImportError:
                self._vad = None

    @property
    def kind(self) -> str:
        return "webrtcvad" if self._vad is not None else "energy"

    def voiced(self, frame: np.ndarray, level: float | None = None) -> bool:
        level = level_db(frame) if level is None else level
        if self._vad is None:
            return level > ENERGY_DBFS
        if level <= SILENT_DBFS:
            return False
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2")
        half = FRAME // 2
        return any(self._vad.is_speech(pcm[i : i + half].tobytes(), SAMPLE_RATE) for i in (0, half))


@dataclass(frozen=True)
class GateFrame:
    """The gate's decision for one frame."""

    frame: int
    speaking: bool
    end_of_speech: bool


class SpeechGate:
    """``push(voiced, after_utterance)`` once per input slot, in order; from slot ``lookahead`` on,
    each push returns the decision for frame slot - lookahead."""

    def __init__(self, lookahead: int = 2, hangover: int = HANGOVER) -> None:
        if lookahead < 0 or hangover < 0:
            raise ValueError("lookahead and hangover must be ≥ 0")
        self.lookahead, self.hangover = lookahead, hangover
        self.voiced: deque[bool] = deque()  # flags of slots [first, slots)
        self.first = 0
        self.slots = 0  # slots pushed
        self.cuts: deque[tuple[int, bool]] = deque()  # (frame, always end of speech) where speech is cut
        self.cut = -(10**9)  # the latest cut at or before the last frame decided: speech before it is over
        self.was_speaking = False

    def push(self, voiced: bool, after_utterance: bool = False) -> GateFrame | None:
        s = self.slots
        self.slots += 1
        self.voiced.append(bool(voiced))
        if after_utterance:
            self.cuts.append((s, True))
        f = s - self.lookahead
        if f < 0:
            return None
        forced = False
        while self.cuts and self.cuts[0][0] <= f:
            self.cut, always = self.cuts.popleft()
            forced = forced or always
        lo = max(f - self.hangover, self.cut, self.first)
        speaking = any(self.voiced[i - self.first] for i in range(lo, f + 1))
        eos = (self.was_speaking and not speaking) or forced
        self.was_speaking = speaking
        while self.first < f - self.hangover:  # keep only what a later window can reach
            self.voiced.popleft()
            self.first += 1
        return GateFrame(f, speaking, eos)

    def interrupt(self) -> None:
        """Speech stops at the next frame decided: what was heard ahead is forgotten, and that
        frame carries end_of_speech if the last one was speaking."""
        for i in range(len(self.voiced)):
            self.voiced[i] = False
        owed = any(always for _, always in self.cuts)  # a flushed utterance's end still to be flagged
        self.cuts = deque([(self.slots - self.lookahead, owed)])
