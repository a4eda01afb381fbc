"""The parts of the voice bench and of the English voice: the paced microphone and its
clock, percentiles, word error rate, the real joe medium voice for English answers."""

from __future__ import annotations

import time
from array import array
from pathlib import Path

import pytest

from firmware.voice.accuracy import kb_questions, run_accuracy, word_error_rate, word_errors
from firmware.voice.benchmark import PacedMic, last_voiced_sample, percentile
from firmware.voice.cache import SpeechCache
from firmware.voice.pipeline import Stage, VoicePipeline
from firmware.voice.tts import BilingualSynth
from tests.firmware.conftest import MemoryMicrophone, RecordingSpeaker, Reply, ScriptedBrain

pytestmark = pytest.mark.timeout(120)


def tone(n: int, level: int = 8000) -> bytes:
    return array("h", [level if i % 2 else -level for i in range(n)]).tobytes()


def test_last_voiced_sample_ignores_trailing_near_silence() -> None:
    pcm = tone(1000) + array("h", [30, -30] * 500).tobytes()  # hiss below 2 % of the peak
    assert last_voiced_sample(pcm) == 999
    assert last_voiced_sample(b"\x00" * 200) == 0


def test_paced_mic_hands_out_frames_no_faster_than_real_time() -> None:
    mic = PacedMic(tone(16000) + b"\x00" * 3200)  # 1 s of "speech", then 0.1 s of silence
    mic.open()
    started = time.monotonic()
    for _ in range(10):
        assert len(mic.read_frame()) == 960
    assert time.monotonic() - started >= 0.29  # 10 frames of 30 ms
    # The clock starts where the last voiced sample was spoken: 1 s after opening.
    assert abs(mic.voice_end_mono - mic.opened_mono - 15999 / 16000) < 1e-6


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == pytest.approx(10.5)
    assert percentile(values, 95) == pytest.approx(19.05)
    assert percentile([], 95) == 0.0


def test_word_error_rate_counts_substitutions_insertions_deletions() -> None:
    # bagaimana→mada, +mana, sim→sinkir, -c: 4 edits on 5 reference words
    assert word_errors("Bagaimana cara membuat SIM C?", "mada mana cara membuat sinkir") == (4, 5)
    assert word_errors("apa kabar", "apa kabar") == (0, 2)
    assert word_error_rate([("a b c d", "a b c d"), ("a b", "x")]) == pytest.approx(2 / 6)


class EchoRecognizer:
    """Hands back a fixed transcript per question: tests the accuracy bookkeeping only."""

    def __init__(self, heard: dict[bytes, str]) -> None:
        self.heard = heard

    def stream(self):
        heard = self.heard

        class S:
            pcm = b""

            def accept(self, pcm, rate_hz=16000):
                S.pcm += pcm

            def finish(self):
                return type("T", (), {"text": heard[S.pcm]})()
        S.pcm = b""
        return S()


def test_accuracy_counts_a_question_right_only_when_voice_gets_the_typed_answer(real_brain) -> None:
    questions = kb_questions(real_brain, limit=3)
    assert len(questions) == 3 and all(real_brain.kb.entries[e] for _, e in questions)
    audio = {q: bytes([i + 1]) * 960 for i, (q, _) in enumerate(questions)}
    heard = {audio[questions[0][0]]: questions[0][0],  # perfectly heard
             audio[questions[1][0]]: "",               # nothing understood
             audio[questions[2][0]]: questions[2][0]}
    result = run_accuracy(EchoRecognizer(heard), real_brain, questions, lambda q: audio[q])
    assert result["questions"] == 3
    assert [t["ok"] for t in result["trials"]] == [True, False, True]
    assert result["entry_accuracy_by_voice"] == pytest.approx(2 / 3, abs=1e-3)
    assert 0 < result["wer"] < 1 and "floor" in result["speech"]


class Spy:
    """A real synthesiser that records what it was asked to say."""

    def __init__(self, real) -> None:
        self.real, self.said = real, []

    def synthesize(self, text, lang="id"):
        self.said.append((text, lang))
        return self.real.synthesize(text, lang)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_english_answers_are_spoken_by_the_joe_medium_voice(joe_synth, tiny_synth, tmp_path) -> None:
    joe, tiny = Spy(joe_synth), Spy(tiny_synth)
    voice = BilingualSynth(tiny, joe)
    assert voice.rate_for("en") == 22050 and voice.rate_for("id") == tiny_synth.rate_hz
    english = b"".join(voice.synthesize("Call one one zero for help.", "en"))
    samples = array("h")
    samples.frombytes(english)
    assert len(samples) / 22050 > 0.8 and max(samples) > 3000  # real speech from joe
    b"".join(voice.synthesize("Hubungi 110.", "id"))
    assert joe.said == [("Call one one zero for help.", "en")]
    assert tiny.said == [("Hubungi 110.", "id")]
    # The pipeline plays English at joe's rate, not the Indonesian voice's.
    reply = Reply("answer", "Call 110.", "Call one one zero.", entry="darurat-110")
    mic = MemoryMicrophone(b"")
    speaker = RecordingSpeaker(mic)
    pipe = VoicePipeline(brain=ScriptedBrain(default=reply), synth=voice, speaker=speaker,
                         cache=SpeechCache(tmp_path, "kb", voice.voice_id))
    pipe.run("en1", start=Stage.ANSWER, text="nomor darurat", lang="en")
    assert speaker.played and {rate for rate, _ in speaker.played} == {22050}


def test_changing_the_english_voice_changes_the_cache_generation(joe_synth, tiny_synth) -> None:
    with_joe = BilingualSynth(tiny_synth, joe_synth)
    assert with_joe.voice_id != tiny_synth.voice_id and joe_synth.voice_id in with_joe.voice_id
    assert (SpeechCache(Path("unused"), "kb", with_joe.voice_id).generation
            != SpeechCache(Path("unused"), "kb", tiny_synth.voice_id).generation)


def test_load_tts_adds_the_english_voice_named_in_settings(joe_voice, tiny_voice, tmp_path) -> None:
    from firmware.voice.setup import load_tts
    from posko.config import load_settings

    env = {"POSKO_POSKO_STATE_DIR": str(tmp_path), "POSKO_VOICE_TTS_VOICE": str(tiny_voice),
           "POSKO_VOICE_TTS_VOICE_EN": str(joe_voice)}
    synth = load_tts(load_settings(None, environ=env))
    assert isinstance(synth, BilingualSynth) and synth.english.name == "en_US-joe-medium"
    env["POSKO_VOICE_TTS_VOICE_EN"] = str(tmp_path / "absent.onnx")
    alone = load_tts(load_settings(None, environ=env))
    assert not isinstance(alone, BilingualSynth) and alone.name == tiny_voice.name.removesuffix(".onnx")
