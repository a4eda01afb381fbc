"""Voice latency as a resident feels it: last spoken word → first answer sample, cached and
uncached, p50/p95 over many runs; ASR and TTS real-time factors; memory. Used by
`bench/voice.py` (this machine) and `posko bench voice` (a unit).

The microphone is paced in real time: 30 ms frames arrive every 30 ms, as from a sound
card, and the clock starts at the LAST VOICED SAMPLE of the question (the moment the
resident stops talking), so the VAD's end-of-speech wait (`silence_ms`), the recogniser's
catch-up, the brain and the first sentence of speech all count. The speaker takes samples
as fast as they come, so a real sound card adds its buffer (typically 20-50 ms).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.procinfo import cpu_count, peak_rss_mb, rss_mb
from firmware.voice.cache import SpeechCache
from firmware.voice.endpointing import EndpointRules
from firmware.voice.pipeline import EventType, VoicePipeline
from firmware.voice.tts import rate_for
from firmware.voice.vad import VadConfig


def last_voiced_sample(pcm: bytes, floor: float = 0.02) -> int:
    """Index of the last int16 sample louder than `floor` × the peak (0 for silence)."""
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if not samples:
        return 0
    limit = max(1, int(max(abs(min(samples)), max(samples)) * floor))
    for i in range(len(samples) - 1, -1, -1):
        if abs(samples[i]) > limit:
            return i
    return 0


class PacedMic:
    """Question audio in 30 ms frames handed out no faster than real time, then silence.

    `voice_end_mono` is the monotonic time at which the question's last voiced sample
    was "spoken" (sample i is heard at open time + i / rate).
    """

    def __init__(self, pcm: bytes, rate_hz: int = 16000, frame_ms: int = 30) -> None:
        self.pcm, self.rate_hz = pcm, rate_hz
        self.frame_bytes = rate_hz * frame_ms // 1000 * 2
        self.frame_s = frame_ms / 1000
        self.last_voiced = last_voiced_sample(pcm)
        self.pos, self.is_open, self.opened_mono = 0, False, 0.0

    def open(self) -> None:
        self.pos, self.is_open, self.opened_mono = 0, True, time.monotonic()

    @property
    def voice_end_mono(self) -> float:
        return self.opened_mono + self.last_voiced / self.rate_hz

    def read_frame(self) -> bytes:
        due = self.opened_mono + (self.pos // self.frame_bytes + 1) * self.frame_s
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # a sound card delivers a frame once it has been recorded
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
    knowledge base knows, and espeak-ng Indonesian through Whisper is often misheard; this
    keeps the answer (and its length) fixed while the transcript still flows through the
    pipeline. Recognition accuracy is measured on its own (firmware.voice.accuracy).
    """

    def __init__(self, brain, question: str) -> None:
        self.brain, self.question, self.kb = brain, question, brain.kb
        # Early endpointing judges the (fixed) reply with the KB's documents, as for a
        # question the brain understood.
        self.topics = getattr(brain, "topics", None)

    def ask(self, text: str, lang: str = "id"):
        return self.brain.ask(self.question, lang=lang)


def pick_answer(brain, words: int = 20, lang: str = "id") -> tuple[str, str, str]:
    """(entry id, a question of it, its spoken answer in `lang`) closest to `words` words."""
    best = None
    for entry in brain.kb.entries.values():
        speech = entry.speech.get(lang, "")
        if not speech or not entry.questions:
            continue
        score = abs(len(speech.split()) - words)
        if best is None or score < best[0]:
            best = (score, entry.id, entry.questions[0], speech)
    if best is None:
        raise RuntimeError("the knowledge base has no spoken answers")
    return best[1], best[2], best[3]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class LatencyFigures:
    """Seconds from the last voiced sample to the first answer sample."""

    label: str
    engine: str
    rate_hz: int
    tts_rtf: float
    tts_first_sentence_s: float
    uncached: list[float]
    cached: list[float]
    answer_audio_s: float
    silence_waited_ms: list[int] = ()  # per run: the silence after which the utterance ended
    end_rules: list[str] = ()          # per run: "silence" or the early-endpointing rule

    def to_dict(self) -> dict[str, Any]:
        r = lambda v: round(v, 3)  # noqa: E731
        return {"label": self.label, "engine": self.engine, "rate_hz": self.rate_hz,
                "tts_rtf": round(self.tts_rtf, 4),
                "tts_first_sentence_s": r(self.tts_first_sentence_s),
                "answer_audio_s": r(self.answer_audio_s),
                "uncached_p50_s": r(statistics.median(self.uncached)),
                "uncached_p95_s": r(percentile(self.uncached, 95)),
                "cached_p50_s": r(statistics.median(self.cached)),
                "cached_p95_s": r(percentile(self.cached, 95)),
                "uncached_runs_s": [r(v) for v in self.uncached],
                "cached_runs_s": [r(v) for v in self.cached],
                "silence_waited_ms_p50": (round(statistics.median(self.silence_waited_ms))
                                          if self.silence_waited_ms else None),
                "end_rules": sorted(set(self.end_rules))}


def asr_rtf(recognizer, pcm: bytes, rate_hz: int = 16000) -> tuple[float, str]:
    """(decoding seconds / audio seconds, transcript) with audio fed as fast as it decodes."""
    stream = recognizer.stream()
    started = time.perf_counter()
    block = rate_hz * 30 // 1000 * 2
    for i in range(0, len(pcm), block):
        stream.accept(pcm[i:i + block], rate_hz)
    text = stream.finish().text
    return (time.perf_counter() - started) / (len(pcm) / 2 / rate_hz), text


def tts_rtf(synth, text: str, lang: str = "id") -> tuple[float, float, float]:
    """(real-time factor, seconds of audio, seconds to the first sentence)."""
    started = time.perf_counter()
    first = 0.0
    parts = []
    for pcm in synth.synthesize(text, lang):
        if not parts:
            first = time.perf_counter() - started
        parts.append(pcm)
    elapsed = time.perf_counter() - started
    seconds = len(b"".join(parts)) / 2 / rate_for(synth, lang)
    return (elapsed / seconds if seconds else 0.0), seconds, first


def _latency(pipe: VoicePipeline, mic: PacedMic, session: str, want_cached: bool,
             lang: str) -> float:
    result = pipe.run(session, lang=lang)
    if result.cached != want_cached:
        raise RuntimeError(f"run {session}: expected cached={want_cached}, got {result.cached}")
    if not result.first_audio_mono:
        raise RuntimeError(f"run {session}: no audio was played")
    return result.first_audio_mono - mic.voice_end_mono


def measure_latency(label: str, synth, recognizer, brain, question_pcm: bytes, answer: str,
                    runs: int, vad: VadConfig, lang: str = "id",
                    early_decode_ms: int = 150,
                    endpointing: EndpointRules | None = None) -> LatencyFigures:
    """`runs` uncached then `runs` cached questions through the paced pipeline."""
    mic = PacedMic(question_pcm + b"\x00" * (vad.rate_hz * 2 * 2))
    waited: list[int] = []
    rules: list[str] = []

    def on_event(event) -> None:
        if event.type == EventType.SPEECH_END:
            waited.append(int(event.data.get("silence_ms", 0)))
            rules.append(event.data.get("rule") or event.data.get("reason", ""))

    with tempfile.TemporaryDirectory() as tmp:
        pipe = VoicePipeline(brain=brain, recognizer=recognizer, synth=synth, cache=None,
                             mic=mic, speaker=DiscardSpeaker(), vad=vad,
                             early_decode_ms=early_decode_ms, endpointing=endpointing,
                             on_event=on_event)
        uncached, cached = [], []
        for i in range(runs):
            pipe.cache = SpeechCache(Path(tmp) / f"u{i}", brain.kb.version, synth.voice_id)
            uncached.append(_latency(pipe, mic, f"u{i}", False, lang))
        pipe.cache = SpeechCache(Path(tmp) / "warm", brain.kb.version, synth.voice_id)
        pipe.cache.put(answer, lang, rate_for(synth, lang), b"".join(synth.synthesize(answer, lang)))
        for i in range(runs):
            cached.append(_latency(pipe, mic, f"c{i}", True, lang))
    rtf, seconds, first = tts_rtf(synth, answer, lang)
    return LatencyFigures(label, synth.engine, rate_for(synth, lang), rtf, first, uncached,
                          cached, seconds, waited, rules)


def run_benchmark(*, recognizer, brain, voices: list[tuple[str, Any]], question_pcm: bytes,
                  runs: int, asr_note: str = "", vad: VadConfig | None = None,
                  early_decode_ms: int = 150, lang: str = "id",
                  endpointing: EndpointRules | None = None) -> dict[str, Any]:
    """Every figure as a JSON-ready dict; the first voice is the headline one.

    `lang` is the language the answers are spoken in ("en" for an English voice).
    `cached_first_audio_s` / `uncached_first_audio_s` are p95 values in seconds.
    """
    entry, question, answer = pick_answer(brain, lang=lang)
    fixed = FixedQuestionBrain(brain, question)
    vad = vad or VadConfig()
    rtf, transcript = asr_rtf(recognizer, question_pcm)
    figures = [measure_latency(label, synth, recognizer, fixed, question_pcm, answer, runs, vad,
                               lang=lang, early_decode_ms=early_decode_ms,
                               endpointing=endpointing)
               for label, synth in voices]
    head = figures[0].to_dict()
    return {
        "voice_measured": head["label"],
        "asr_engine": getattr(recognizer, "engine", "vosk"),
        "cached_first_audio_s": head["cached_p95_s"],
        "uncached_first_audio_s": head["uncached_p95_s"],
        "cached_first_audio_p50_s": head["cached_p50_s"],
        "uncached_first_audio_p50_s": head["uncached_p50_s"],
        "clock_starts": "last voiced sample of the question (paced 30 ms microphone)",
        "silence_ms": vad.silence_ms, "early_decode_ms": early_decode_ms,
        "early_end_ms": endpointing.early_end_ms if endpointing and endpointing.enabled else 0,
        "silence_waited_ms_p50": head["silence_waited_ms_p50"], "end_rules": head["end_rules"],
        "question_audio_s": round(len(question_pcm) / 2 / vad.rate_hz, 2),
        "asr_rtf": round(rtf, 3),
        "tts_rtf": head["tts_rtf"],
        "answer_words": len(answer.split()), "answer_entry": entry, "answer_lang": lang,
        "asr_model": recognizer.name, "asr_note": asr_note, "asr_transcript": transcript,
        "voices": {f.label: f.to_dict() for f in figures},
        "rss_mb": round(rss_mb()), "peak_rss_mb": round(peak_rss_mb()),
        "asr_model_rss_mb": round(recognizer.rss_mb), "asr_load_s": round(recognizer.load_s, 2),
        "runs_per_figure": runs, "cpus": cpu_count(),
        "goals": {"cached_first_audio_s": 0.9, "uncached_first_audio_s": 1.3, "rss_mb": 600},
    }
