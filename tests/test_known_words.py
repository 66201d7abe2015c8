"""Lips from known words (models/motion/words.py, engine/words.py): a known transcript closes
the lips on every p/b/m and opens them on open vowels where its phones say; timed words and
text-only alignment agree; a wrong transcript falls back to audio-only lips; bad words get clear
errors; the live session and the WebSocket take text and words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from posetalk.models.data.phones import FPS
from posetalk.models.errors import InputError
from posetalk.models.face.params import INDEX
from posetalk.models.motion import words as W
from posetalk.models.motion.evaluate import CLOSED, LipMesh
from posetalk.models.motion.infer import MotionModel
from posetalk.models.motion.nets import N_MOUTH
from posetalk.tests.engine_fixtures import arun, engine

JAW = INDEX["jawOpen"]
SENTENCE = "Maybe Bob will bring the big map back by Monday, Pam."
OTHER = "Sixty large oranges arrived at the harbour on a cold Tuesday."
OPEN_VOWELS = {"AA", "AE", "AO", "AW", "AY"}


@pytest.fixture(scope="module")
def said() -> Any:
    """SENTENCE from espeak-ng with espeak-ng's own phone timings (the truth here)."""
    from posetalk.models.data import tts

    if tts.available_engines().get("espeak-ng") is not None:
        pytest.skip("espeak-ng is not installed (scripts/setup installs it)")
    return tts.synthesize(tts.Voice("espeak-ng", "en-us"), SENTENCE)


def _gap(expr: np.ndarray) -> np.ndarray:
    return LipMesh().gap(expr)


def test_a_known_transcript_closes_every_bilabial_and_opens_the_vowels(said: Any, motion_model: MotionModel) -> None:
    audio_expr = motion_model.predict(said.audio, 2)
    expr, summary = W.known_lips(said.audio, audio_expr, SENTENCE)
    assert "aligned text" in summary
    gap = _gap(expr)
    bilabials = [p for p in said.phones if p.label in ("P", "B", "M")]
    assert len(bilabials) >= 10
    missed = [p for p in bilabials if not (gap[max(0, int((p.start + p.end) / 2 * FPS) - 1) :][:3] < CLOSED).any()]
    assert not missed, f"lips stayed open on {[(p.label, round(p.start, 2)) for p in missed]}"
    vowels = [int((p.start + p.end) / 2 * FPS) for p in said.phones if p.label in OPEN_VOWELS]
    closes = [int((p.start + p.end) / 2 * FPS) for p in bilabials]
    assert np.median(expr[vowels, JAW]) > 0.2 and np.median(gap[vowels]) > 3 * np.median(gap[closes]) + 0.01
    # The text's lips follow the voice's own phones better than the audio model alone does.
    truth = W.text_lips(said.phones, len(expr))[:, JAW]
    r_text = np.corrcoef(expr[:, JAW], truth)[0, 1]
    r_audio = np.corrcoef(audio_expr[:, JAW], truth)[0, 1]
    assert r_text > r_audio and r_text > 0.8, (r_text, r_audio)


def test_timed_words_and_text_alignment_agree(said: Any) -> None:
    found = W.align_text(said.audio, SENTENCE, confidence=False)
    phones, words = found.phones, found.words
    assert [w.text for w in words] == ["maybe", "bob", "will", "bring", "the", "big", "map", "back", "by", "monday",
                                       "pam"]  # fmt: skip
    placed = W.phones_from_words(words, len(said.audio) / 16000)
    frames = int(np.ceil(len(said.audio) / 640))

    def closures(ps: list) -> list[int]:
        return [int((p.start + p.end) / 2 * FPS) for p in ps if p.label in ("P", "B", "M")]

    a, b = closures(phones), closures(placed)
    assert len(a) == len(b) and np.abs(np.subtract(a, b)).max() <= 1  # within a frame
    jaw_a, jaw_b = W.text_lips(phones, frames)[:, JAW], W.text_lips(placed, frames)[:, JAW]
    assert np.corrcoef(jaw_a, jaw_b)[0, 1] > 0.75  # 0.82 measured: phones placed by inherent durations


def test_a_wrong_transcript_falls_back_to_audio_only_lips(said: Any, motion_model: MotionModel) -> None:
    audio_expr = motion_model.predict(said.audio, 2)
    frames = len(audio_expr)
    speaking = np.abs(audio_expr[:, :N_MOUTH]).sum(1) > 0
    right = W.align_text(said.audio, SENTENCE).trusted(frames)
    wrong = W.align_text(said.audio, OTHER)
    trusted = wrong.trusted(frames)
    assert trusted[speaking].mean() < 0.2 and right[speaking].mean() > 0.8, (trusted.mean(), right.mean())
    expr = W.combine(audio_expr, W.text_lips(wrong.phones, frames), trusted)
    np.testing.assert_array_equal(expr[~trusted], audio_expr[~trusted])
    truth = W.text_lips(said.phones, frames)[:, JAW]
    r_wrong = np.corrcoef(expr[:, JAW], truth)[0, 1]
    r_audio = np.corrcoef(audio_expr[:, JAW], truth)[0, 1]
    assert r_wrong > r_audio - 0.02, (r_wrong, r_audio)
    # Words left out of the transcript: their stretch of audio goes back to audio-only lips.
    spoken = W.align_text(said.audio, SENTENCE, confidence=False).words
    skipped = W.align_text(said.audio, "Maybe Bob will bring the big Monday, Pam.").trusted(frames)
    gone = [w for w in spoken if w.text in ("map", "back", "by")]
    stretch = slice(int(gone[0].start * FPS) + 1, int(gone[-1].end * FPS))
    # Most of it (0.25-0.31 trusted, as espeak-ng's state varies the audio; all of it before a pause
    # aligned over loud audio counted as words left out), and not the words around it.
    assert skipped[stretch].mean() < 0.5 and skipped[speaking].mean() > 0.4, skipped.astype(int)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([W.Word("hello", 0.5, 0.2)], "ends"),
        ([W.Word("hello", 0.0, 0.5), W.Word("there", 0.3, 0.8)], "before the previous word ends"),
        ([W.Word(" ", 0.0, 0.5)], "non-empty"),
        ([W.Word("hello", 9.0, 9.5)], "past the audio's end"),
        ([], "no words"),
    ],
)
def test_bad_words_get_a_clear_error(words: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        W.phones_from_words(words, 2.0)


def test_text_files_plain_json_and_bad(tmp_path: Path) -> None:
    plain = tmp_path / "a.txt"
    plain.write_text("Hello there.\n", encoding="utf-8")
    assert W.load_words(plain) == "Hello there.\n"
    timed = tmp_path / "a.json"
    timed.write_text(json.dumps([{"word": "hello", "start": 0.1, "end": 0.5}]), encoding="utf-8")
    assert W.load_words(timed) == [W.Word("hello", 0.1, 0.5)]
    for name, data, message in (("b.txt", b"caf\xe9", "not UTF-8"), ("c.txt", b"  \n", "empty"),
                                ("d.json", b'[{"word": "x"}]', "word, start, end"),
                                ("e.json", b'[{"word": "x", "start": 1, "end": 0.5}]', "ends")):  # fmt: skip
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=message):
            W.load_words(tmp_path / name)
    with pytest.raises(InputError, match="no words"):
        W.phones_from_text(np.zeros(16000, np.float32), "?!")


def test_a_live_session_takes_text_and_words(said: Any, motion_model: MotionModel) -> None:
    pcm = (said.audio * 32767).astype(np.int16)
    words = W.align_text(said.audio, SENTENCE, confidence=False).words

    async def run() -> tuple[list, list, list]:
        async with engine(motion_model) as e:
            texted = await e.open_session(None)
            texted.push_text(SENTENCE)
            texted.push_audio(pcm, 16000)
            texted.flush()
            await texted.settled()
            timed = await e.open_session(None)
            timed.push_words([(w.text, w.start, w.end) for w in words])
            timed.push_audio(pcm, 16000)
            timed.flush()
            # Words that come while their audio streams in (word-timestamp TTS), timed from the
            # utterance's first sample, after a previous utterance.
            streamed = await e.open_session(None)
            streamed.push_audio(pcm[:8000], 16000)
            streamed.flush()
            half = len(pcm) // 2
            streamed.push_audio(pcm[:half], 16000)
            streamed.push_words([(w.text, w.start, w.end) for w in words[:2]], in_utterance=True)
            streamed.push_words([(w.text, w.start, w.end) for w in words], in_utterance=True)  # replaces
            streamed.push_audio(pcm[half:], 16000)
            streamed.flush()
            plain = await e.open_session(None)
            for bad in ([("x", 1.0, 0.5)], "not a list", []):
                with pytest.raises(InputError):
                    plain.push_words(bad)
            for bad_text in ("", "  ", b"\xff\xfe", 42):
                with pytest.raises(InputError):
                    plain.push_text(bad_text)
            plain.push_audio(pcm, 16000)  # the session goes on, audio-only
            plain.flush()
            await e.advance(len(said.audio) / 16000 + 1.0)
            return texted.drain(), timed.drain(), streamed.drain()[13:], plain.drain()

    texted, timed, streamed, plain = arun(run())
    for outs in (texted, timed, streamed):
        speaking = [o for o in outs if o.speaking and o.expression[:N_MOUTH].any()]
        assert len(speaking) > 40
        assert np.mean([o.lips == "text" for o in speaking]) > 0.7
        gap = _gap(np.stack([o.expression for o in outs]))
        closes = [int((p.start + p.end) / 2 * FPS) for p in said.phones if p.label in ("P", "B", "M")]
        hit = [(gap[max(0, f - 1) : f + 2] < CLOSED).any() for f in closes]
        assert np.mean(hit) >= 0.9, hit
    assert {o.lips for o in plain} == {"audio"} and sum(o.speaking for o in plain) > 40


def test_the_websocket_text_and_words_messages_reach_the_session() -> None:
    from posetalk.streaming.peers import Peer

    calls: list[tuple[str, Any]] = []

    class FakeSession:
        def push_text(self, text: Any) -> None:
            if not text:
                raise InputError("text is empty")
            calls.append(("text", text))

        def push_words(self, words: Any, in_utterance: bool = False) -> None:
            calls.append(("words", words, in_utterance))

    peer = Peer.__new__(Peer)
    peer.session = FakeSession()  # type: ignore[assignment]
    assert peer.control(json.dumps({"type": "text", "text": "Hello there."})) is None
    assert peer.control(json.dumps({"type": "words", "words": [{"word": "hi", "start": 0, "end": 0.3}]})) is None
    assert peer.control(json.dumps({"type": "words", "words": [{"word": "hi", "start": 0, "end": 0.3}],
                                     "in_utterance": True})) is None  # fmt: skip
    assert calls == [("text", "Hello there."), ("words", [("hi", 0, 0.3)], False), ("words", [("hi", 0, 0.3)], True)]
    from posetalk.streaming.errors import SignalingError

    with pytest.raises(SignalingError, match="empty"):
        peer.control(json.dumps({"type": "text", "text": ""}))
    with pytest.raises(SignalingError, match="list of"):
        peer.control(json.dumps({"type": "words", "words": "hi"}))
    with pytest.raises(SignalingError, match="in_utterance"):
        peer.control(json.dumps({"type": "words", "words": [], "in_utterance": "yes"}))


def test_the_motion_command_takes_text_and_timed_words(said: Any, tmp_path: Path, capsys: Any) -> None:
    import wave

    from posetalk.clients.cli import main
    from posetalk.models.face.motion_file import load_motion

    wav = tmp_path / "said.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((said.audio * 32767).astype(np.int16).tobytes())
    words = W.align_text(said.audio, SENTENCE, confidence=False).words
    timed = tmp_path / "words.json"
    timed.write_text(json.dumps([{"word": w.text, "start": w.start, "end": w.end} for w in words]), encoding="utf-8")
    for how, extra in (("aligned text", ["--text", SENTENCE]), ("timed words", ["--text-file", str(timed)])):
        out = tmp_path / f"{how[:5]}.npz"
        assert main(["motion", "--audio", str(wav), "--out", str(out), *extra]) == 0
        printed = capsys.readouterr().out
        assert f"known words ({how}" in printed, printed
        gap = _gap(load_motion(out).expression)
        closes = [int((p.start + p.end) / 2 * FPS) for p in said.phones if p.label in ("P", "B", "M")]
        assert np.mean([(gap[max(0, f - 1) : f + 2] < CLOSED).any() for f in closes]) >= 0.9
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9")
    for extra, message in ((["--text", " "], "--text is empty"), (["--text-file", str(bad)], "not UTF-8"),
                           (["--text", "x", "--text-file", str(timed)], "not both")):  # fmt: skip
        assert main(["motion", "--audio", str(wav), "--out", str(tmp_path / "x.npz"), *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
