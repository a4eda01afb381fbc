"""`posko bench voice`: the voice figures on this unit with its own installed models."""

from __future__ import annotations

import json
import logging

import click

from firmware.voice.benchmark import run_benchmark
from firmware.voice.setup import (
    endpoint_rules,
    load_brain_from_settings,
    load_recognizer,
    load_tts,
    vad_config,
)
from firmware.voice.speech import espeak_pcm
from posko.config import load_settings


@click.group()
def bench() -> None:
    """Benchmarks to run on a real unit (figures, then one JSON line)."""


@bench.command("voice")
@click.option("--runs", type=int, default=10, show_default=True, help="Runs per latency figure (p50 and p95).")
@click.option("--question", default="berapa biaya bikin skck", show_default=True,
              help="Question spoken by espeak-ng into the pipeline.")
def voice(runs: int, question: str) -> None:
    """Last spoken word → first answer audio (p50/p95, cached and uncached) through a
    microphone paced in real time, ASR/TTS real-time factors, memory."""
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    brain = load_brain_from_settings(settings, log_unanswered=False)
    recognizer = load_recognizer(settings, brain)
    if recognizer is None:
        raise click.ClickException(f"no {settings.voice.asr_engine} model installed: "
                                   "`posko models install PATH` first")
    synth = load_tts(settings)
    if synth is None:
        raise click.ClickException("no voice: install a Piper voice or set [voice] tts_fallback = 'espeak-ng'")
    label = f"{synth.engine}:{synth.name}" + (" (FALLBACK)" if synth.engine == "espeak-ng" else "")
    result = run_benchmark(recognizer=recognizer, brain=brain, voices=[(label, synth)],
                           question_pcm=espeak_pcm(question, "id"), runs=runs,
                           asr_note=f"recognition mode: {recognizer.mode}",
                           vad=vad_config(settings), early_decode_ms=settings.voice.early_decode_ms,
                           endpointing=endpoint_rules(settings))
    for key in ("voice_measured", "uncached_first_audio_s", "cached_first_audio_s", "asr_rtf",
                "tts_rtf", "silence_waited_ms_p50", "peak_rss_mb"):
        click.echo(f"{key:<24} {result[key]}")
    click.echo(json.dumps(result, ensure_ascii=False))
