"""`posko arbiter`: floor control and the spurt recorder, until SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

import click

from gateway.arbiter import Arbiter
from gateway.recordings import resolve_folder
from posko.config import Settings, load_settings
from posko.service import Watchdog

log = logging.getLogger(__name__)


def _logging(settings: Settings, verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else getattr(logging, settings.posko.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _wait_for_signal(exit_after: float = 0.0, done: threading.Event | None = None,
                     watchdog: Watchdog | None = None) -> None:
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    while not stop.wait(0.1):
        if watchdog is not None:
            watchdog.beat()
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
    settings = load_settings()
    _logging(settings, verbose)
    folder = resolve_folder(settings.state_dir, settings.ptt.recordings_dir)
    folder.mkdir(parents=True, exist_ok=True)
    arb = Arbiter(settings.mqtt, settings.ptt, folder).start()
    click.echo(f"arbiter {arb.client_id}: mqtt {settings.mqtt.host}:{settings.mqtt.port}, "
               f"recordings in {folder}")
    sys.stdout.flush()
    # Under systemd this loop pings the watchdog (posko-arbiter.service): a hung arbiter
    # stops pinging and is restarted.
    watchdog = Watchdog().start()
    try:
        watchdog.ready()
        _wait_for_signal(exit_after, watchdog=watchdog)
    finally:
        watchdog.stopping()
        arb.stop()
        click.echo(f"arbiter stopped: {arb.status()}")


__all__ = ["arbiter"]
