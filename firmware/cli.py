"""`posko unit`: run the on-device agent until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal

import click

from firmware.agent import Agent
from posko.config import load_settings


@click.command("unit")
def unit() -> None:
    """Run the unit agent: panel, voice assistant, push-to-talk (when built), heartbeat."""
    settings = load_settings()
    logging.basicConfig(level=settings.posko.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    agent = Agent(settings)

    def on_signal(signum, frame) -> None:
        logging.getLogger("firmware.cli").info("stopping on %s", signal.Signals(signum).name)
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # `systemctl reload posko-unit` after a new knowledge base was installed.
    signal.signal(signal.SIGHUP, lambda signum, frame: agent.reload())
    click.echo(f"posko unit {settings.posko.unit_id}: broker {settings.mqtt.host}:{settings.mqtt.port}, "
               f"state {settings.state_dir}")
    agent.run()
