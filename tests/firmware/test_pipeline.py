"""The voice pipeline with real Vosk and real Piper; microphone and speaker are test doubles
that record what happened (the real PyAudio path is covered in test_unit_audio.py)."""

from __future__ import annotations

import threading
import time

import pytest

from firmware.errors import VoiceError
from firmware.voice.cache import SpeechCache
from firmware.voice.pipeline import EventType, Stage, VoicePipeline, make_chime
from tests.firmware.conftest import (
    MemoryMicrophone,
    RecordingSpeaker,
    Reply,
    ScriptedBrain,
    silence,
)

ANSWER = Reply("answer", "Biaya SKCK **Rp30.000**.", "Biaya SKCK Rp30.000. Bawa KTP dan KK.",
               entry="skck-biaya")


def make(ko_recognizer, tiny_synth, pcm: bytes, tmp_path, brain=None, chime=b""):
    mic = MemoryMicrophone(pcm)
    speaker = RecordingSpeaker(mic)
    events = []
    brain = brain or ScriptedBrain(default=ANSWER)
    pipe = VoicePipeline(brain=brain, recognizer=ko_recognizer, synth=tiny_synth,
                         cache=SpeechCache(tmp_path / "cache", "kb-1", tiny_synth.voice_id),
                         mic=mic, speaker=speaker, chime=chime, on_event=events.append)
    return pipe, mic, speaker, events, brain


def test_spoken_question_runs_every_stage_in_order(ko_recognizer, tiny_synth, korean_phrase_raw, tmp_path) -> None:
    pcm = silence(0.5) + korean_phrase_raw + silence(1.5)
    pipe, mic, speaker, events, brain = make(ko_recognizer, tiny_synth, pcm, tmp_path)
    result = pipe.run("s1")
    types = [e.type for e in events]
    order = [EventType.RUN_START, EventType.MIC_OPEN, EventType.SPEECH_START, EventType.MIC_CLOSED,
             EventType.SPEECH_END, EventType.TRANSCRIPT, EventType.ANSWER, EventType.SPEAK_START,
             EventType.FIRST_AUDIO, EventType.SPEAK_END, EventType.RUN_END]
    assert [t for t in types if t in order] == order
    assert EventType.PARTIAL in types
    assert all(e.session == "s1" for e in events)
    assert [e.time for e in events] == sorted(e.time for e in events)
    transcript = next(e for e in events if e.type == EventType.TRANSCRIPT).data["text"]
    assert transcript and brain.asked == [(transcript, "id")] and result.transcript == transcript
    assert result.reply["entry"] == "skck-biaya"
    # What was played is what the voice made for the spoken answer, sentence by sentence.
    assert [c for _, c in speaker.played] == list(tiny_synth.synthesize(ANSWER.speech))
    assert result.first_audio_latency_s > 0


def test_microphone_is_closed_while_the_answer_plays(ko_recognizer, tiny_synth, korean_phrase_raw, tmp_path) -> None:
    # The "resident" keeps talking after the question: none of it may be read while speaking.
    pcm = korean_phrase_raw + silence(1.0) + korean_phrase_raw * 3
    pipe, mic, speaker, events, _ = make(ko_recognizer, tiny_synth, pcm, tmp_path,
                                         chime=make_chime(16000))
    pipe.run("s2")
    first = next(e for e in events if e.type == EventType.FIRST_AUDIO)
    assert first.data["mic_open"] is False
    assert not speaker.mic_open_while_playing and mic.reads_while_closed == 0
    assert mic.opened == 1 and not mic.is_open
    # The chime played first, before the microphone opened.
    assert speaker.played[0][1] == make_chime(16000)
    closed = next(i for i, e in enumerate(events) if e.type == EventType.MIC_CLOSED)
    assert closed < [e.type for e in events].index(EventType.SPEAK_START)


def test_second_time_the_answer_comes_from_the_cache(ko_recognizer, tiny_synth, tmp_path) -> None:
    pipe, _mic, speaker, events, _ = make(ko_recognizer, tiny_synth, b"", tmp_path)
    first = pipe.run("t1", start=Stage.ANSWER, text="biaya skck")
    second = pipe.run("t2", start=Stage.ANSWER, text="biaya skck")
    assert not first.cached and second.cached
    starts = [e for e in events if e.type == EventType.SPEAK_START]
    assert [s.data["cached"] for s in starts] == [False, True]
    played_second = b"".join(c for _, c in speaker.played[2:])
    assert played_second == b"".join(tiny_synth.synthesize(ANSWER.speech))


def test_stop_ends_speech_and_nothing_half_spoken_is_cached(ko_recognizer, tiny_synth, tmp_path) -> None:
    long = Reply("answer", "x", "Satu dua tiga. Empat lima enam. Tujuh delapan sembilan.")
    pipe, _mic, speaker, events, _ = make(ko_recognizer, tiny_synth, b"", tmp_path,
                                          brain=ScriptedBrain(default=long))
    original = speaker.play

    def play_then_touch(chunks, rate_hz, **kw):
        first = kw.pop("on_first_audio")

        def touched():
            first()
            pipe.stop.set()  # the resident touches the screen after the first sentence
        return original(chunks, rate_hz, on_first_audio=touched, **kw)

    speaker.play = play_then_touch
    result = pipe.run("t3", start=Stage.ANSWER, text="hitung")
    assert result.stopped and len(speaker.played) == 1
    assert pipe.cache.get(long.speech, "id") is None
    assert events[-1].type == EventType.RUN_END and events[-1].data["stopped"] is True


def test_radio_speech_gate_holds_the_answer_back(ko_recognizer, tiny_synth, tmp_path) -> None:
    pipe, _mic, speaker, events, _ = make(ko_recognizer, tiny_synth, b"", tmp_path)
    pipe.speech_gate.set()
    released = []

    def release() -> None:
        released.append(time.monotonic())
        pipe.speech_gate.clear()

    threading.Timer(0.3, release).start()
    pipe.run("t4", start=Stage.ANSWER, text="biaya")
    first = next(e for e in events if e.type == EventType.FIRST_AUDIO)
    assert released and first.mono >= released[0]


def test_silence_is_a_no_speech_error_and_the_mic_is_closed(ko_recognizer, tiny_synth, tmp_path) -> None:
    pipe, mic, _speaker, events, brain = make(ko_recognizer, tiny_synth, silence(8), tmp_path)
    pipe.vad = type(pipe.vad)(no_speech_timeout_s=1.0)
    with pytest.raises(VoiceError) as err:
        pipe.run("t5")
    assert err.value.code == "no-speech"
    error = next(e for e in events if e.type == EventType.ERROR)
    assert error.data["code"] == "no-speech" and error.stage == Stage.LISTEN
    assert not mic.is_open and brain.asked == [] and events[-1].type == EventType.RUN_END


def test_escalation_reply_reaches_the_listener_with_the_question(ko_recognizer, tiny_synth, tmp_path) -> None:
    urgent = Reply("escalate", "Petugas segera dihubungi.", "Petugas sedang dihubungi.")
    pipe, *_rest = make(ko_recognizer, tiny_synth, b"", tmp_path, brain=ScriptedBrain({"tolong": urgent}))
    events = _rest[2]
    pipe.run("t6", start=Stage.ANSWER, text="tolong ada kecelakaan")
    answer = next(e for e in events if e.type == EventType.ANSWER)
    assert answer.data["reply"]["action"] == "escalate"
    assert answer.data["question"] == "tolong ada kecelakaan"


def test_a_failing_brain_becomes_a_coded_error_event(ko_recognizer, tiny_synth, tmp_path) -> None:
    class Broken(ScriptedBrain):
        def ask(self, text, lang="id"):
            raise KeyError("index corrupt")

    pipe, _mic, _speaker, events, _ = make(ko_recognizer, tiny_synth, b"", tmp_path, brain=Broken())
    with pytest.raises(VoiceError) as err:
        pipe.run("t7", start=Stage.ANSWER, text="biaya")
    assert err.value.code == "brain-failed"
    assert [e.type for e in events][-2:] == [EventType.ERROR, EventType.RUN_END]
    assert not pipe.busy.locked()  # the next question can run
    assert pipe.run("t8", start=Stage.SPEAK, text="Halo.").spoken_s > 0


def test_every_error_code_has_a_screen_message_in_both_languages() -> None:
    import re
    from pathlib import Path

    from firmware import voice_component
    from firmware.voice import pipeline

    source = Path(pipeline.__file__).read_text() + Path(voice_component.__file__).read_text()
    codes = set(re.findall(r'VoiceError\(\s*"([a-z-]+)"', source)) | {
        "mic-unavailable", "speaker-unavailable", "internal", "not-ready"}
    assert {"no-speech", "no-text", "brain-failed", "stopped"} <= codes
    for code in codes:
        assert voice_component.screen_message(code, "id") != voice_component.screen_message(code, "en")
        assert code in voice_component._messages(), code
    assert voice_component.screen_message("no-speech", "id").startswith("Maaf, suara Bapak/Ibu")
    assert voice_component.screen_message("unknown-code", "en") == voice_component.screen_message("internal", "en")


def test_capture_never_waits_for_a_slow_decoder(ko_recognizer, tiny_synth, korean_phrase_raw, tmp_path) -> None:
    class SlowRecognizer:
        """The real Korean model, but every frame costs the decoder 20 ms more."""

        decoded_s = 0.0

        def stream(self):
            real = ko_recognizer.stream()
            outer = self

            class Slow:
                def accept(self, pcm, rate_hz=16000):
                    time.sleep(0.02)
                    outer.decoded_s += len(pcm) / 2 / rate_hz
                    return real.accept(pcm, rate_hz)

                def finish(self):
                    return real.finish()

            return Slow()

    pcm = silence(0.3) + korean_phrase_raw + silence(1.5)
    pipe, _mic, _speaker, events, brain = make(ko_recognizer, tiny_synth, pcm, tmp_path)
    pipe.recognizer = slow = SlowRecognizer()
    result = pipe.run("slow")
    end = next(e for e in events if e.type == EventType.SPEECH_END)
    partials = [e for e in events if e.type == EventType.PARTIAL]
    # The utterance ended (and the microphone closed) while Vosk was still decoding it ...
    assert partials and partials[-1].mono > end.mono
    # ... and nothing was lost: every second of the utterance reached the decoder.
    assert slow.decoded_s == pytest.approx(end.data["audio_s"], abs=0.01) and slow.decoded_s > 1.5
    assert any(ord(c) >= 0xAC00 for c in result.transcript)
