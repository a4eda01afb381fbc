"""An acknowledgement reaches the kiosk although the broker was away when the officer
clicked, and the web worker that took the click and the ingest were both killed meanwhile:
the ingest publishes acks from the events table, past a cursor that only moves on PUBACK."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from posko import topics
from posko.config import load_settings
from posko.doctor import FAIL, OK, check_ingest
from posko.messages import Alert, AlertAck
from tests.hub.support import HubProcess, Officer, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(150)]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class PersistentListener:
    """A kiosk-like subscriber with a persistent session: the broker keeps what is sent
    to it while it is away (the broker restarts here)."""

    def __init__(self, port: int, topic: str) -> None:
        self.got: list[bytes] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"kiosk-{uuid.uuid4().hex[:6]}",
                                  clean_session=False)
        subscribed = []
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda *a: subscribed.append(1)
        self.client.on_message = lambda c, u, msg: self.got.append(msg.payload)
        self.client.reconnect_delay_set(0.2, 1.0)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_until(lambda: subscribed, timeout=10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_an_ack_taken_while_the_broker_was_away_reaches_the_kiosk(broker_factory, tmp_path) -> None:
    broker = broker_factory()
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=broker.port, topic_root="posko/v1").start()
    listener = None
    try:
        officer = Officer(hub, *hub.add_user("operator"))
        unit_id, _token = hub.add_unit()
        alert = Alert(id=str(uuid.uuid4()), unit=unit_id, posko="Posko Uji", source="panic_button")
        sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"unit-{uuid.uuid4().hex[:6]}")
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()

        def listed() -> bool:  # sent again until the ingest (maybe still subscribing) has it
            sender.publish(topics.alert(unit_id, "posko/v1"), alert.to_json(), qos=1).wait_for_publish(5)
            return f'data-alert-id="{alert.id}"' in officer.get("/peringatan").text

        wait_until(listed, timeout=30, interval=0.5)
        sender.loop_stop()
        sender.disconnect()
        listener = PersistentListener(broker.port, topics.alert_ack(unit_id, "posko/v1"))
        doctor_settings = load_settings(None, environ={"POSKO_POSKO_STATE_DIR": str(hub.state_dir)})
        ok = wait_until(lambda: (c := check_ingest(doctor_settings)) and c.status == OK and c, timeout=15)
        assert "connected to 127.0.0.1:" in ok.detail

        broker.process.stop()
        down = wait_until(lambda: (c := check_ingest(doctor_settings)) and c.status == FAIL and c, timeout=15)
        assert "not connected" in down.detail and down.fix  # posko doctor on the hub says so
        response = officer.post(f"/peringatan/{alert.id}/terima", headers={"Accept": "application/json"})
        assert response.status_code == 200 and response.json()["first"] is True
        time.sleep(1.0)  # the ingest has seen the event, and holds an unsent ack
        before = _children(hub.proc.pid)
        for pid in before:  # every web worker and the ingest, at once
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: len([p for p in _children(hub.proc.pid) if p not in before]) >= 2, timeout=30)
        time.sleep(2.0)  # the new ingest started and found the broker away
        assert not listener.got

        broker.process.start()
        wait_until(lambda: listener.got, timeout=30, interval=0.2)
        ack = AlertAck.from_json(listener.got[0])
        assert ack.alert_id == alert.id and ack.officer.startswith("Bripka operator-")
    finally:
        if listener is not None:
            listener.close()
        hub.stop()
