"""The generated broker configurations on a real Mosquitto: the central broker binds client
ids to user names, every broker refuses oversized messages, and a unit's new password takes
effect without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.acl import render_acl, write_password_file
from posko import topics
from posko.broker import (
    MAX_MESSAGE_BYTES,
    BrokerConfig,
    MosquittoProcess,
    central_broker,
    deployment_files,
    free_port,
)
from tests.support.mqtt import Client, make_tls

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
USERS = {"unit-a": "pw-a", "unit-b": "pw-b", "hub": "pw-hub", "arbiter": "pw-arb"}


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    """The command center's broker from posko.broker.central_broker, on free ports."""
    folder = tmp_path_factory.mktemp("central")
    ca, crt, key = make_tls(folder / "tls")
    acl = folder / "acl"
    acl.write_text(render_acl())
    passwd = write_password_file(folder / "passwd", USERS)
    config = central_broker(folder, password_file=passwd, acl_file=acl, certfile=crt, keyfile=key,
                            units_port=free_port(), local_port=free_port(), units_bind="127.0.0.1")
    proc = MosquittoProcess(config).start()
    try:
        yield proc, ca
    finally:
        proc.stop()


def _unit_port(proc: MosquittoProcess) -> int:
    return proc.config.listeners[0].port


def test_shipped_mosquitto_files_are_the_generated_ones() -> None:
    for name, text in deployment_files().items():
        shipped = (ROOT / "systemd" / "mosquitto" / name).read_text()
        assert shipped == text, f"systemd/mosquitto/{name} is stale: python -m posko.broker systemd/mosquitto"


def test_a_unit_cannot_knock_another_offline_with_its_client_id(central) -> None:
    proc, ca = central
    port = _unit_port(proc)
    victim = Client(port, host="localhost", username="unit-a", password="pw-a", client_id="unit-a", tls_ca=ca)
    attacker = None
    try:
        assert victim.wait_connected()
        victim.subscribe(topics.alert_ack("unit-a"))
        attacker = Client(port, host="localhost", username="unit-b", password="pw-b",
                          client_id="unit-a", tls_ca=ca)
        assert attacker.wait_connected()  # it gets in, as itself
        time.sleep(1.0)
        assert victim.disconnects == 0, "the second client with the same id knocked the first offline"
        # The victim still hears what is meant for it.
        hub = Client(proc.port, username="hub", password="pw-hub")
        try:
            assert hub.wait_connected()
            hub.publish(topics.alert_ack("unit-a"), b'{"alert_id": "x"}', qos=1)
            assert victim.expect(5).topic == topics.alert_ack("unit-a")
        finally:
            hub.close()
    finally:
        victim.close()
        if attacker is not None:
            attacker.close()


def _oversized_is_dropped(listener: Client, make_sender, topic: str) -> None:
    """A 1 MiB message on `topic` reaches `listener` not at all; a frame-sized one does."""
    listener.subscribe(topic)
    big = make_sender()
    big.client.publish(topic, b"\0" * (1024 * 1024), qos=0)
    time.sleep(0.5)
    big.close()
    small = make_sender()  # the big one may have been disconnected for it
    small.publish(topic, b"\x01" * 900, qos=1)  # a real frame is < 1 KB
    small.close()
    got = listener.expect(5)
    assert len(got.payload) == 900
    with pytest.raises(AssertionError):  # nothing else, the 1 MiB message least of all
        listener.expect(0.5)
    assert MAX_MESSAGE_BYTES < 1024 * 1024


def test_a_1_mib_audio_message_reaches_no_listener_on_the_central_broker(central) -> None:
    proc, ca = central
    listener = Client(proc.port, username="hub", password="pw-hub")

    def sender() -> Client:
        client = Client(_unit_port(proc), host="localhost", username="unit-a", password="pw-a", tls_ca=ca)
        assert client.wait_connected()
        return client

    try:
        assert listener.wait_connected()
        _oversized_is_dropped(listener, sender, topics.tg_audio("g1", "unit-a"))
    finally:
        listener.close()


def test_a_1_mib_audio_message_reaches_no_listener_on_the_dev_broker(tmp_path) -> None:
    proc = MosquittoProcess(BrokerConfig(state_dir=tmp_path, port=free_port())).start()
    listener = Client(proc.port)

    def sender() -> Client:
        client = Client(proc.port)
        assert client.wait_connected()
        return client

    try:
        assert listener.wait_connected()
        _oversized_is_dropped(listener, sender, topics.tg_audio("g1", "unit-a"))
    finally:
        listener.close()
        proc.stop()


def test_a_new_unit_password_works_after_a_reload_without_a_restart(tmp_path) -> None:
    acl = tmp_path / "acl"
    acl.write_text(render_acl())
    passwd = write_password_file(tmp_path / "passwd", USERS)
    ca, crt, key = make_tls(tmp_path / "tls")
    proc = MosquittoProcess(central_broker(tmp_path, password_file=passwd, acl_file=acl, certfile=crt,
                                           keyfile=key, units_port=free_port(), local_port=free_port(),
                                           units_bind="127.0.0.1")).start()
    pid = proc.proc.pid
    port = _unit_port(proc)
    try:
        before = Client(port, host="localhost", username="unit-a", password="pw-a", tls_ca=ca)
        assert before.wait_connected()
        before.close()
        write_password_file(passwd, {**USERS, "unit-a": "new-secret"})
        proc.reload()
        time.sleep(0.5)
        old = Client(port, host="localhost", username="unit-a", password="pw-a", tls_ca=ca)
        assert not old.wait_connected(3), "the old password still gets in after the reload"
        old.close()
        new = Client(port, host="localhost", username="unit-a", password="new-secret", tls_ca=ca)
        assert new.wait_connected()
        new.close()
        assert proc.proc.pid == pid and proc.proc.poll() is None  # the same broker, never restarted
    finally:
        proc.stop()


def test_the_unit_bridge_carries_only_the_units_own_messages_out() -> None:
    from posko.broker import unit_bridge_topics

    lines = unit_bridge_topics("kiosk-7")
    out = [line for line in lines if " out " in line]
    assert all("kiosk-7" in line for line in out)  # nothing under another unit's id
    assert not [line for line in lines if "assistant" in line]  # residents' questions stay home
    assert [line for line in lines if "/audio/" in line] == [
        "posko/v1/tg/+/audio/kiosk-7 out 0", "posko/v1/tg/+/audio/+ in 0"]  # audio at QoS 0 only
    assert "posko/v1/alert/kiosk-7 out 1" in lines and "posko/v1/alert/kiosk-7/ack in 1" in lines
    with pytest.raises(ValueError):
        unit_bridge_topics("kiosk/#")


def test_dev_logins_are_made_once_and_kept_private(tmp_path) -> None:
    from posko.broker import dev_credentials

    first = dev_credentials(tmp_path, ["hub", "kiosk-1"])
    again = dev_credentials(tmp_path, ["hub", "watch"])
    assert again["hub"] == first["hub"] and again["kiosk-1"] == first["kiosk-1"] and again["watch"]
    assert len({first["hub"], first["kiosk-1"], again["watch"]}) == 3
    assert (tmp_path / "broker" / "users.json").stat().st_mode & 0o777 == 0o600
