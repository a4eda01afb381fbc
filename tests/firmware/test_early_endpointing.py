"""Early endpointing in the pipeline with real audio: espeak-ng speech → VAD → the real
Whisper base model → the real brain → the policy (firmware.voice.endpointing).

The microphone here hands out the recorded frames as soon as the recogniser has caught up
(`CatchUpMicrophone`): a unit whose decoder keeps up with real time. The figures are then
in audio time (how much silence the utterance waited), the same on a loaded machine.
`silence_ms` is 1000 so that a 700 ms pause mid-sentence is not already an utterance end.
"""

from __future__ import annotations

import time

import pytest

from firmware.voice.benchmark import last_voiced_sample
from firmware.voice.cache import SpeechCache
from firmware.voice.pipeline import EventType, VoicePipeline
from firmware.voice.setup import endpoint_rules
from firmware.voice.speech import espeak_pcm
from firmware.voice.vad import VadConfig
from tests.firmware.conftest import (
    MemoryMicrophone,
    RecordingSpeaker,
    Reply,
    ScriptedBrain,
    silence,
)

pytestmark = pytest.mark.timeout(240)

SILENCE_MS = 1000


class CatchUpMicrophone(MemoryMicrophone):
    """Frames from memory, each handed out once the recogniser has nothing left to do."""

    def __init__(self, pcm: bytes) -> None:
        super().__init__(pcm)
        self.busy = lambda: False

    def read_frame(self) -> bytes:
        deadline = time.monotonic() + 120
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.005)
        return super().read_frame()


def trimmed(pcm: bytes) -> bytes:
    """espeak-ng's own trailing silence off, so the pauses are the test's."""
    return pcm[: (last_voiced_sample(pcm) + 1) * 2]


def berapa_biaya() -> bytes:
    # espeak-ng's "berapa biaya" in one breath is heard as "Rapa biaya"; two words are clearer.
    return trimmed(espeak_pcm("berapa", "id")) + silence(0.08) + trimmed(espeak_pcm("biaya", "id"))


def bikin_skck(recognizer) -> bytes:
    """"bikin" and the letters S K C K, spoken so that this Whisper hears "bikin SKCK".

    The Indonesian espeak-ng voice says SKCK so that Whisper hears "eska cekah"; the letters
    spoken by the English voice are heard as "SKCK" at some speeds and as "kskk" at others,
    and which speeds differ from one machine to another (140 words a minute was heard right
    on one and as "Mekines kskk" on the next). The test is of the endpointing, not of
    Whisper: the first speed whose whole utterance, with and without the pause, Whisper alone
    hears as "bikin SKCK" is the one spoken."""
    for wpm in (120, 130, 150, 140, 110):
        pcm = trimmed(espeak_pcm("bikin", "id")) + espeak_pcm("S K C K", "en", words_per_minute=wpm)
        heard = [recognizer.transcribe(berapa_biaya() + silence(gap) + pcm + silence(0.3)).text
                 for gap in (0.1, 0.7)]
        if all("bikin skck" in text.lower() for text in heard):
            return pcm
    pytest.skip(f"no espeak-ng rendering of 'bikin SKCK' is heard as such by this Whisper: {heard}")


def run(recognizer, brain, synth, pcm: bytes, tmp_path, *, early_end_ms=300, emergency_ms=200):
    mic = CatchUpMicrophone(silence(0.3) + pcm + silence(SILENCE_MS / 1000 + 0.5))
    events: list = []
    pipe = VoicePipeline(
        brain=brain, recognizer=recognizer, synth=synth,
        cache=SpeechCache(tmp_path / "cache", brain.kb.version, synth.voice_id), mic=mic,
        speaker=RecordingSpeaker(mic), vad=VadConfig(silence_ms=SILENCE_MS),
        endpointing=endpoint_rules(silence_ms=SILENCE_MS, early_end_ms=early_end_ms,
                                   emergency_end_ms=emergency_ms),
        on_event=events.append)
    mic.busy = pipe.recogniser_busy
    result = pipe.run("e1")
    ends = [e.data for e in events if e.type == EventType.SPEECH_END]
    assert len(ends) == 1
    return result, ends[0]


def test_a_complete_question_ends_at_the_shorter_silence(whisper_recognizer, real_brain, tiny_synth,
                                                         tmp_path) -> None:
    result, end = run(whisper_recognizer, real_brain, tiny_synth,
                      berapa_biaya() + silence(0.1) + bikin_skck(whisper_recognizer), tmp_path)
    assert "skck" in result.transcript.lower()
    assert result.reply["entry"] == "skck-biaya"
    assert (end["reason"], end["rule"], end["silence_ms"]) == ("early", "confident", 300)
    off, end_off = run(whisper_recognizer, real_brain, tiny_synth,
                       berapa_biaya() + silence(0.1) + bikin_skck(whisper_recognizer), tmp_path / "off", early_end_ms=0,
                       emergency_ms=0)
    assert end_off["reason"] == "silence" and end_off["silence_ms"] >= SILENCE_MS
    assert off.reply["entry"] == "skck-biaya"  # the same answer, 700 ms later


def test_a_pause_mid_sentence_is_not_cut(whisper_recognizer, real_brain, tiny_synth, tmp_path) -> None:
    """"berapa biaya ... [700 ms] ... bikin SKCK": the early look in the pause does not end the
    utterance; the one after "SKCK" does, and the answer is the SKCK fee."""
    result, end = run(whisper_recognizer, real_brain, tiny_synth,
                      berapa_biaya() + silence(0.7) + bikin_skck(whisper_recognizer), tmp_path)
    # the SKCK fee needs the words after the pause ("berapa biaya" alone is no entry's)
    assert result.reply["entry"] == "skck-biaya", result.transcript
    assert (end["reason"], end["silence_ms"]) == ("early", 300)
    assert end["audio_s"] > 2.0  # the words after the pause are in the utterance


def test_an_emergency_ends_sooner(whisper_recognizer, real_brain, tiny_synth, tmp_path) -> None:
    result, end = run(whisper_recognizer, real_brain, tiny_synth,
                      trimmed(espeak_pcm("tolong ada kebakaran di rumah saya", "id")), tmp_path)
    assert result.reply["action"] == "escalate"
    assert (end["reason"], end["rule"], end["silence_ms"]) == ("early", "emergency", 210)


def test_vosk_partials_are_judged_too(ko_recognizer, korean_phrase_raw, tiny_synth, tmp_path) -> None:
    """Vosk streams: its partial text is what the policy judges (here a scripted brain that
    answers the Korean phrase confidently)."""
    brain = ScriptedBrain(default=Reply("answer", "Cuaca cerah.", "Cuaca cerah.", "cuaca", 0.9))
    result, end = run(ko_recognizer, brain, tiny_synth, trimmed(korean_phrase_raw), tmp_path)
    assert result.transcript
    assert (end["reason"], end["rule"], end["silence_ms"]) == ("early", "confident", 300)
