"""`posko arbiter` (floor control + recorder) and `posko ptt` (terminal push-to-talk)."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import tomllib
from pathlib import Path

import click

from posko.config import Settings, load_settings

log = logging.getLogger(__name__)


def _texts(language: str) -> dict[str, str]:
    data = tomllib.loads((Path(__file__).with_name("texts.toml")).read_text(encoding="utf-8"))
    return data.get(language, data["id"])


def _logging(settings: Settings, verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else getattr(logging, settings.posko.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _wait_for_signal(exit_after: float = 0.0, done: threading.Event | None = None) -> None:
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    while not stop.wait(0.1):
        if exit_after and time.monotonic() - started >= exit_after:
            break
        if done is not None and done.is_set():
            break


@click.command("arbiter")
@click.option("--exit-after", type=float, default=0.0, hidden=True,
              help="Stop by itself after this many seconds (scripted checks).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def arbiter(exit_after: float, verbose: bool) -> None:
    """Run the talk-group floor arbiter and the spurt recorder until SIGTERM."""
    from gateway.arbiter import Arbiter
    from gateway.recorder import resolve_folder

    settings = load_settings()
    _logging(settings, verbose)
    folder = resolve_folder(settings.state_dir, settings.ptt.recordings_dir)
    folder.mkdir(parents=True, exist_ok=True)
    arb = Arbiter(settings.mqtt, settings.ptt, folder).start()
    click.echo(f"arbiter {arb.client_id}: mqtt {settings.mqtt.host}:{settings.mqtt.port}, "
               f"recordings in {folder}")
    sys.stdout.flush()
    try:
        _notify_ready()
        _wait_for_signal(exit_after)
    finally:
        arb.stop()
        click.echo(f"arbiter stopped: {arb.status()}")


def _notify_ready() -> None:
    if os.environ.get("NOTIFY_SOCKET"):
        try:
            import sdnotify

            sdnotify.SystemdNotifier().notify("READY=1")
        except ImportError:  # pragma: no cover - sdnotify is a core dependency
            pass


def _default_unit(settings: Settings) -> str:
    if settings.mqtt.username:
        return settings.mqtt.username
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:50] or "laptop"
    return f"ptt-{host}"


@click.command("ptt")
@click.option("--group", "-g", default=None, help="Talk group (default: [ptt] group).")
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
def ptt(group: str | None, unit: str | None, send_file: Path | None, record_dir: Path | None,
        priority: str | None, listen: float, no_speaker: bool, input_device: str,
        output_device: str, wait_floor_free: float, trace_file: Path | None, verbose: bool) -> None:
    """Push-to-talk from a terminal: hold SPACE (or toggle with Enter), or --send a WAV file."""
    from gateway.terminal import run_terminal_client
    from posko import topics

    settings = load_settings()
    for name, value, kind in (("--group", group, "group"), ("--unit", unit, "unit")):
        try:
            if value is not None:
                topics.check_id(kind, value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=name) from None
    _logging(settings, verbose)
    code = run_terminal_client(
        settings, texts=_texts(settings.posko.language), group=group or settings.ptt.group,
        unit=unit or _default_unit(settings), send_file=send_file, record_dir=record_dir,
        priority=priority, listen_s=listen, speaker=not no_speaker,
        wait_floor_free_s=wait_floor_free, trace_file=trace_file,
        input_device=input_device, output_device=output_device)
    sys.exit(code)


__all__ = ["arbiter", "ptt"]
