"""Voice latency and speed figures: end of speech → first answer sample, ASR and TTS real-time
factors, memory. Used by `bench/voice.py` (this machine) and `posko bench voice` (a unit).

The run goes through the real pipeline (VAD, Vosk, the brain, TTS, the speech cache) with
the question's audio fed from memory and a speaker that discards samples, so the figures are
compute latency; a real sound card adds its buffer (typically 20-50 ms).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.procinfo import cpu_count, peak_rss_mb, rss_mb
from firmware.voice.cache import SpeechCache
from firmware.voice.pipeline import VoicePipeline
from firmware.voice.vad import VadConfig


class MemoryMic:
    """Question audio from memory in 30 ms frames, then silence."""

    def __init__(self, pcm: bytes, rate_hz: int = 16000, frame_ms: int = 30) -> None:
        self.pcm, self.frame_bytes = pcm, rate_hz * frame_ms // 1000 * 2
        self.pos, self.is_open = 0, False

    def open(self) -> None:
        self.pos, self.is_open = 0, True

    def read_frame(self) -> bytes:
        chunk = self.pcm[self.pos:self.pos + self.frame_bytes]
        self.pos += self.frame_bytes
        return chunk.ljust(self.frame_bytes, b"\x00")

    def close(self) -> None:
        self.is_open = False


class DiscardSpeaker:
    """Takes the audio as fast as it comes; marks the first sample."""

    def play(self, chunks, rate_hz, *, stop=None, gate=None, on_first_audio=None) -> float:
        n = 0
        for chunk in chunks:
            if n == 0 and on_first_audio:
                on_first_audio()
            n += len(chunk) // 2
        return n / rate_hz


class FixedQuestionBrain:
    """The real brain, always asked one knowledge-base question.

    A model that is not Indonesian (the Korean test model) cannot produce a question the
    knowledge base knows; this keeps the answer (and its length) fixed while the transcript
    still flows through the pipeline.
    """

    def __init__(self, brain, question: str) -> None:
        self.brain, self.question, self.kb = brain, question, brain.kb

    def ask(self, text: str, lang: str = "id"):
        return self.brain.ask(self.question, lang=lang)


def pick_answer(brain, words: int = 20) -> tuple[str, str, str]:
    """(entry id, a question of it, its Indonesian spoken answer) closest to `words` words."""
    best = None
    for entry in brain.kb.entries.values():
        speech = entry.speech.get("id", "")
        if not speech or not entry.questions:
            continue
        score = abs(len(speech.split()) - words)
        if best is None or score < best[0]:
            best = (score, entry.id, entry.questions[0], speech)
    if best is None:
        raise RuntimeError("the knowledge base has no spoken answers")
    return best[1], best[2], best[3]


@dataclass
class VoiceFigures:
    label: str
    engine: str
    rate_hz: int
    tts_rtf: float
    uncached_first_audio_s: float
    cached_first_audio_s: float
    answer_audio_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def asr_rtf(recognizer, pcm: bytes, rate_hz: int = 16000) -> tuple[float, str]:
    stream = recognizer.stream()
    started = time.perf_counter()
    block = rate_hz * 30 // 1000 * 2
    for i in range(0, len(pcm), block):
        stream.accept(pcm[i:i + block], rate_hz)
    text = stream.finish().text
    return (time.perf_counter() - started) / (len(pcm) / 2 / rate_hz), text


def tts_rtf(synth, text: str) -> tuple[float, float]:
    started = time.perf_counter()
    pcm = b"".join(synth.synthesize(text))
    elapsed = time.perf_counter() - started
    seconds = len(pcm) / 2 / synth.rate_hz
    return elapsed / seconds if seconds else 0.0, seconds


def measure_voice(label: str, synth, recognizer, brain, question_pcm: bytes, answer: str,
                  runs: int, vad: VadConfig) -> VoiceFigures:
    with tempfile.TemporaryDirectory() as tmp:
        cache = SpeechCache(Path(tmp), brain.kb.version, synth.voice_id)
        pipe = VoicePipeline(brain=brain, recognizer=recognizer, synth=synth, cache=cache,
                             mic=MemoryMic(question_pcm + b"\x00" * 32000), speaker=DiscardSpeaker(),
                             vad=vad)
        uncached, cached = [], []
        for i in range(runs):
            pipe.cache = SpeechCache(Path(tmp) / f"u{i}", brain.kb.version, synth.voice_id)
            r = pipe.run(f"u{i}")
            assert not r.cached
            uncached.append(r.first_audio_latency_s)
        pipe.cache = cache
        cache.put(answer, "id", synth.rate_hz, b"".join(synth.synthesize(answer)))
        for i in range(runs):
            r = pipe.run(f"c{i}")
            assert r.cached
            cached.append(r.first_audio_latency_s)
    rtf, seconds = tts_rtf(synth, answer)
    return VoiceFigures(label, synth.engine, synth.rate_hz, rtf, statistics.median(uncached),
                        statistics.median(cached), seconds)


def run_benchmark(*, recognizer, brain, voices: list[tuple[str, Any]], question_pcm: bytes,
                  runs: int, asr_note: str = "") -> dict[str, Any]:
    """Every figure as a JSON-ready dict; the first voice is the headline one."""
    entry, question, answer = pick_answer(brain)
    fixed = FixedQuestionBrain(brain, question)
    vad = VadConfig()
    rtf, transcript = asr_rtf(recognizer, question_pcm)
    figures = [measure_voice(label, synth, recognizer, fixed, question_pcm, answer, runs, vad)
               for label, synth in voices]
    head = figures[0]
    return {
        "voice_measured": head.label,
        "cached_first_audio_s": round(head.cached_first_audio_s, 3),
        "uncached_first_audio_s": round(head.uncached_first_audio_s, 3),
        "asr_rtf": round(rtf, 3),
        "tts_rtf": round(head.tts_rtf, 4),
        "answer_words": len(answer.split()), "answer_entry": entry,
        "asr_model": recognizer.name, "asr_note": asr_note, "asr_transcript": transcript,
        "voices": {f.label: f.to_dict() for f in figures},
        "rss_mb": round(rss_mb()), "peak_rss_mb": round(peak_rss_mb()),
        "asr_model_rss_mb": round(recognizer.rss_mb), "asr_load_s": round(recognizer.load_s, 2),
        "runs_per_figure": runs, "cpus": cpu_count(),
        "goals": {"cached_first_audio_s": 0.5, "uncached_first_audio_s": 1.0},
    }
