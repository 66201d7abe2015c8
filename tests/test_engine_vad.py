"""Speech or silence per frame: webrtcvad (and its energy fallback) on real speech, silence and
noise; the speech gate's lookahead, hangover, end-of-speech flags, flush and interrupt."""

from __future__ import annotations

import numpy as np
from posetalk.engine.clock import FRAME
from posetalk.engine.vad import HANGOVER, SpeechGate, VoiceDetector, level_db


def frames_of(audio: np.ndarray) -> list[np.ndarray]:
    n = len(audio) // FRAME
    return [audio[i * FRAME : (i + 1) * FRAME] for i in range(n)]


def test_webrtcvad_is_installed_and_used() -> None:
    assert VoiceDetector().kind == "webrtcvad"  # a dependency: scripts/setup installs it
    assert VoiceDetector(use_webrtcvad=False).kind == "energy"


def test_speech_is_voiced_and_silence_and_faint_noise_are_not(spoken: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    for vad in (VoiceDetector(), VoiceDetector(use_webrtcvad=False)):
        speech = [vad.voiced(f) for f in frames_of(spoken)]
        assert np.mean(speech) > 0.5, vad.kind
        assert not any(vad.voiced(f) for f in frames_of(np.zeros(16000, np.float32)))
        hiss = (0.0005 * rng.standard_normal(16000)).astype(np.float32)  # -66 dBFS room noise
        assert not any(vad.voiced(f) for f in frames_of(hiss)), vad.kind


def test_level_db() -> None:
    assert level_db(np.full(FRAME, 0.5, np.float32)) == np.float32(20 * np.log10(0.5))
    assert level_db(np.zeros(FRAME, np.float32)) < -200


def run_gate(gate: SpeechGate, voiced: list[bool], after: set[int] = frozenset()) -> list[tuple[bool, bool]]:  # type: ignore[assignment]
    out = []
    for s, v in enumerate(voiced):
        d = gate.push(v, s in after)
        if d is not None:
            assert d.frame == s - gate.lookahead
            out.append((d.speaking, d.end_of_speech))
    return out


def test_gate_starts_on_the_first_voiced_frame_and_holds_over_short_pauses() -> None:
    voiced = [False] * 10 + [True] * 10 + [False] * 4 + [True] * 5 + [False] * 30
    decided = run_gate(SpeechGate(lookahead=2, hangover=HANGOVER), voiced)
    speaking = [s for s, _ in decided]
    eos = [i for i, (_, e) in enumerate(decided) if e]
    assert speaking.index(True) == 10  # lookahead: no late start
    assert all(speaking[10:29])  # a 4-frame pause does not end speech
    assert speaking.index(False, 10) == 29 + HANGOVER  # the hangover after the last voiced frame
    assert eos == [29 + HANGOVER]  # once, on the first listening frame
    assert not any(speaking[29 + HANGOVER :])


def test_a_flushed_utterance_ends_at_once_and_always_says_so() -> None:
    voiced = [True] * 10 + [False] * 20
    decided = run_gate(SpeechGate(2, HANGOVER), voiced, after={10})
    assert [s for s, _ in decided][:12] == [True] * 10 + [False] * 2  # no hangover after a flush
    assert [i for i, (_, e) in enumerate(decided) if e] == [10]
    # Even an utterance the VAD never heard as speech ends with end_of_speech.
    decided = run_gate(SpeechGate(2, HANGOVER), [False] * 20, after={7})
    assert [i for i, (_, e) in enumerate(decided) if e] == [7] and not any(s for s, _ in decided)


def test_interrupt_stops_speech_at_the_next_frame() -> None:
    gate = SpeechGate(2, HANGOVER)
    decided = run_gate(gate, [True] * 12)
    assert decided[-1] == (True, False)
    gate.interrupt()  # the voiced lookahead slots are forgotten
    nxt = gate.push(True)  # new speech right after the interrupt (slot 12: frame 12)
    assert nxt is not None and (nxt.frame, nxt.speaking, nxt.end_of_speech) == (10, False, True)
    rest = [gate.push(False) for _ in range(3)]
    assert all(d is not None and not d.end_of_speech for d in rest)
    assert [d.speaking for d in rest if d is not None] == [False, True, True]  # frames 11, 12, 13
