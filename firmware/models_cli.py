"""`posko models` on a unit: the model tool (`models.cli`) plus `warm`, which builds the
speech cache with the unit's voice (so `models` itself never imports the unit's code)."""

from __future__ import annotations

import sys

import click
from tqdm import tqdm

from firmware.voice.setup import build_cache, load_brain_from_settings, load_tts
from models.cli import _fail, models
from posko.config import load_settings


@models.command("warm")
def warm() -> None:
    """Synthesise every knowledge-base spoken answer into the speech cache."""
    settings = load_settings()
    brain = load_brain_from_settings(settings)
    synth = load_tts(settings)
    if synth is None:
        _fail("no voice available (no Piper voice and the fallback is 'none')")
    cache = build_cache(settings, brain, synth)
    spoken = list(brain.spoken_answers())
    with tqdm(total=len(spoken), desc=f"warm {synth.name}", file=sys.stderr) as bar:
        counts = cache.warm(spoken, synth, progress=lambda: bar.update(1))
    click.echo(f"speech cache {cache.dir}: {counts['made']} made, {counts['kept']} already there, "
               f"{counts['failed']} failed, {counts['pruned_generations']} old generation(s) removed "
               f"(voice {synth.voice_id}, knowledge base {brain.kb.version[:12]})")
    if counts["failed"]:
        sys.exit(1)


__all__ = ["models"]
