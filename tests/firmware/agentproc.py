"""Run `posko unit` as a child process in a sound sandbox, and read its MQTT traffic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from posko.messages import AssistantEvent, Heartbeat


class UnitProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "posko", "unit"], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def unit_env(sound, broker, root: str, unit: str, state: Path, **voice: str) -> dict[str, str]:
    env = {k: v for k, v in sound.env().items() if not k.startswith("POSKO_")}
    env.update({
        "POSKO_MQTT_HOST": broker.host, "POSKO_MQTT_PORT": str(broker.port),
        "POSKO_MQTT_TOPIC_ROOT": root, "POSKO_POSKO_UNIT_ID": unit,
        "POSKO_POSKO_STATE_DIR": str(state), "POSKO_UNIT_PIN_FACTORY": "mock",
        "POSKO_UNIT_HEARTBEAT_S": "1", "POSKO_VOICE_GRAMMAR_BIAS": "false",
    })
    env.update({f"POSKO_VOICE_{k.upper()}": v for k, v in voice.items()})
    return env


def wait_heartbeat(client, unit_proc: UnitProcess | None, predicate, timeout: float = 60.0) -> Heartbeat:
    """Heartbeats until one satisfies predicate (other messages are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if unit_proc is not None and not unit_proc.alive():
            raise AssertionError(f"unit process died:\n{unit_proc.log()[-3000:]}")
        try:
            msg = client.expect(timeout=1.0)
        except AssertionError:
            continue
        if not msg.topic.endswith("/status"):
            continue
        data = json.loads(msg.payload)
        if data.get("state") != "online":
            continue
        hb = Heartbeat.from_json(msg.payload)
        if predicate(hb):
            return hb
    tail = unit_proc.log()[-3000:] if unit_proc else ""
    raise AssertionError(f"no matching heartbeat within {timeout} s\n{tail}")


def collect_events(client, session: str, timeout: float = 60.0, unit_proc=None) -> list[AssistantEvent]:
    """Assistant events of one session, up to and including 'done'."""
    events: list[AssistantEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.expect(timeout=1.0)
        except AssertionError:
            if unit_proc is not None and not unit_proc.alive():
                break
            continue
        if not msg.topic.endswith("/assistant/event"):
            continue
        event = AssistantEvent.from_json(msg.payload)
        if event.session != session:
            continue
        events.append(event)
        if event.type == "done":
            return events
    tail = unit_proc.log()[-3000:] if unit_proc else ""
    raise AssertionError(f"session {session} did not finish: {[e.type for e in events]}\n{tail}")
