"""`posko ptt`: push-to-talk from a terminal, a microphone or a WAV file (the unit side)."""

from __future__ import annotations

import dataclasses
import logging
import sys
import tomllib
from pathlib import Path

import click

from firmware.ptt_terminal import run_terminal_client
from posko import topics
from posko.broker import ptt_terminal_id, with_dev_login
from posko.config import Settings, load_settings


def _texts(language: str) -> dict[str, str]:
    data = tomllib.loads((Path(__file__).with_name("ptt_texts.toml")).read_text(encoding="utf-8"))
    return data.get(language, data["id"])


def _logging(settings: Settings, verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else getattr(logging, settings.posko.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _default_unit(settings: Settings) -> str:
    if settings.mqtt.username:
        return settings.mqtt.username
    return ptt_terminal_id()


def _with_scan(settings: Settings, group: str, scan: str) -> Settings:
    """`--scan a,b`: the settings with that scan list, checked as `[ptt] scan` is (any valid
    group id may be named here, not only the configured ones)."""
    groups = [g.strip() for g in scan.split(",") if g.strip()]
    ptt = dataclasses.replace(settings.ptt, group=group, scan=groups,
                              groups=list(dict.fromkeys([*settings.ptt.groups, *groups])))
    for _key, problem in ptt.check():
        raise click.BadParameter(problem, param_hint="--scan")
    return settings.replace(ptt=ptt)


@click.command("ptt")
@click.option("--group", "-g", default=None, help="Talk group (default: [ptt] group).")
@click.option("--scan", "scan", default=None, metavar="GROUP,...",
              help="Also hear these talk groups, highest priority first (at most 4; default: [ptt] scan). "
                   "A spurt in a higher group pre-empts a lower one; you still talk only in --group.")
@click.option("--unit", "-u", default=None,
              help="Unit id to talk as (default: [mqtt] username, else ptt-<hostname>).")
@click.option("--send", "send_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Transmit this WAV file (16 kHz mono 16-bit) instead of the microphone, then exit.")
@click.option("--record", "record_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Save every spurt heard as a WAV file in this folder.")
@click.option("--priority", type=click.Choice(["normal", "supervisor", "command", "emergency"]),
              default=None, help="Floor priority to ask for (the arbiter caps it).")
@click.option("--listen", type=float, default=0.0,
              help="With --send: keep listening this many seconds after sending. Alone: exit after this many seconds.")
@click.option("--no-speaker", is_flag=True, help="Do not open the sound card for playback.")
@click.option("--input-device", default="default", show_default=True, metavar="NAME",
              help="Microphone, by (part of) its name.")
@click.option("--output-device", default="default", show_default=True, metavar="NAME",
              help="Speaker, by (part of) its name.")
@click.option("--wait-floor-free", type=float, default=5.0, show_default=True,
              help="With --send: wait up to this many seconds for a free floor before pressing.")
@click.option("--trace", "trace_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append timing events (press, grant, tx, play …) as JSON lines to this file.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def ptt(group: str | None, scan: str | None, unit: str | None, send_file: Path | None, record_dir: Path | None,
        priority: str | None, listen: float, no_speaker: bool, input_device: str,
        output_device: str, wait_floor_free: float, trace_file: Path | None, verbose: bool) -> None:
    """Push-to-talk from a terminal: hold SPACE (or toggle with Enter), or --send a WAV file."""
    settings = load_settings()
    for name, value, kind in (("--group", group, "group"), ("--unit", unit, "unit")):
        try:
            if value is not None:
                topics.check_id(kind, value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=name) from None
    if scan is not None:
        settings = _with_scan(settings, group or settings.ptt.group, scan)
    _logging(settings, verbose)
    unit = unit or _default_unit(settings)
    settings = with_dev_login(settings, unit)  # next to `posko up`: its login for this id
    code = run_terminal_client(
        settings, texts=_texts(settings.posko.language), group=group or settings.ptt.group,
        unit=unit, send_file=send_file, record_dir=record_dir,
        priority=priority, listen_s=listen, speaker=not no_speaker,
        wait_floor_free_s=wait_floor_free, trace_file=trace_file,
        input_device=input_device, output_device=output_device)
    sys.exit(code)


__all__ = ["ptt"]
