"""`posko bench voice`: the voice figures on this unit with its own installed models."""

from __future__ import annotations

import json
import logging

import click

from posko.config import load_settings


@click.group()
def bench() -> None:
    """Benchmarks to run on a real unit (figures, then one JSON line)."""


@bench.command("voice")
@click.option("--runs", type=int, default=5, show_default=True, help="Runs per latency figure (median).")
@click.option("--question", default="berapa biaya bikin skck", show_default=True,
              help="Question spoken by espeak-ng into the pipeline.")
def voice(runs: int, question: str) -> None:
    """End of speech → first audio (cached, uncached), ASR/TTS real-time factors, memory."""
    from firmware.voice.benchmark import run_benchmark
    from firmware.voice.setup import load_brain_from_settings, load_recognizer, load_tts
    from firmware.voice.speech import espeak_pcm

    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    brain = load_brain_from_settings(settings, log_unanswered=False)
    recognizer = load_recognizer(settings, brain)
    if recognizer is None:
        raise click.ClickException("no Vosk model installed: `posko models install PATH` first")
    synth = load_tts(settings)
    if synth is None:
        raise click.ClickException("no voice: install a Piper voice or set [voice] tts_fallback = 'espeak-ng'")
    label = f"{synth.engine}:{synth.name}" + (" (FALLBACK)" if synth.engine == "espeak-ng" else "")
    result = run_benchmark(recognizer=recognizer, brain=brain, voices=[(label, synth)],
                           question_pcm=espeak_pcm(question, "id"), runs=runs,
                           asr_note=f"recognition mode: {recognizer.mode}")
    for key in ("voice_measured", "uncached_first_audio_s", "cached_first_audio_s", "asr_rtf",
                "tts_rtf", "peak_rss_mb"):
        click.echo(f"{key:<24} {result[key]}")
    click.echo(json.dumps(result, ensure_ascii=False))
