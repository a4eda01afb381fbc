"""A unit fetches the knowledge base the hub announces and keeps the last good one.

Real broker, real `posko hub serve`, the unit agent in this process with its real voice
component (tiny Piper voice, no sound devices) and KB updater, and the kiosk screen's
brain handle on the same state directory.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator

import pytest

from assistant.kb import SHIPPED_KB
from firmware.agent import Agent
from firmware.kb_update import KbUpdater
from firmware.voice_component import VoiceComponent
from hub.kb import build_bundle, store_dir
from kiosk_ui.assistant import BrainHandle
from posko.config import load_settings
from posko.enroll import write_token
from posko.messages import AssistantEvent, KbCurrent
from tests.firmware.agentproc import collect_events
from tests.hub.support import HubProcess
from tests.support.kb import modified_kb, next_announcement
from tests.support.mqtt import Client

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

QUESTION = "Berapa biaya pembuatan SKCK?"


@pytest.fixture(scope="module")
def kb_hub(broker, tmp_path_factory) -> Iterator[HubProcess]:
    hub = HubProcess(db_url=f"sqlite:///{tmp_path_factory.mktemp('kbunitdb') / 'hub.db'}",
                     state_dir=tmp_path_factory.mktemp("kbunithub"), mqtt_port=broker.port,
                     topic_root=f"test/{uuid.uuid4().hex[:8]}/posko/v1").start()
    try:
        next_announcement(broker, hub)  # its first start announced the shipped KB
        yield hub
    finally:
        hub.stop()


class Unit:
    """An enrolled unit agent (voice + KB updater) on the test hub, run in this process."""

    def __init__(self, hub: HubProcess, broker, state, tiny_synth, unit_id: str | None = None,
                 token: str | None = None, hub_url: str | None = None, root: str | None = None) -> None:
        if unit_id is None:
            unit_id, token = hub.add_unit()
        self.unit_id, self.token = unit_id, token
        env = {"POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": root or hub.topic_root,
               "POSKO_POSKO_UNIT_ID": unit_id, "POSKO_POSKO_STATE_DIR": str(state),
               "POSKO_UNIT_PIN_FACTORY": "mock", "POSKO_UNIT_HEARTBEAT_S": "1",
               "POSKO_KIOSK_HUB_URL": hub_url or hub.base, "POSKO_VOICE_INPUT_DEVICE": "",
               "POSKO_VOICE_OUTPUT_DEVICE": "", "POSKO_VOICE_WARM_ON_START": "false"}
        self.settings = load_settings(path=None, environ=env)
        write_token(self.settings, token)
        self.voice = VoiceComponent(synth=tiny_synth)
        self.updater = KbUpdater(retry_first_s=0.5)
        self.agent = Agent(self.settings, components=[self.voice, self.updater]).start()
        self.stopped = False
        assert self.voice.ready.wait(60) and self.voice.pipeline is not None, self.voice.load_error

    def answer(self) -> str:
        return self.voice.pipeline.brain.ask(QUESTION, lang="id").text

    def wait_for(self, predicate, what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what} did not happen within {timeout_s} s; kb: {self.updater.status()}")

    def wait_installed(self, version: str) -> None:
        """Installed and reloaded: the heartbeat's voice part shows the new version."""
        self.wait_for(lambda: self.agent.heartbeat().parts["voice"]["kb_version"] == version,
                      f"install of {version}")

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.agent.shutdown()


@pytest.fixture
def make_unit(kb_hub, broker, tmp_path, tiny_synth, mock_pins):
    units: list[Unit] = []

    def make(state=None, **kw) -> Unit:
        unit = Unit(kb_hub, broker, state or tmp_path / f"unit-{len(units)}", tiny_synth, **kw)
        units.append(unit)
        return unit

    yield make
    for unit in units:
        unit.stop()


def publish(hub: HubProcess, kb) -> str:
    """`posko hub kb-publish KB`; returns the new bundle's version."""
    hub.cli("hub", "kb-publish", str(kb))
    return hashlib.sha256(build_bundle(kb)).hexdigest()[:12]


def hub_settings(hub: HubProcess):
    return load_settings(path=None, environ={"POSKO_POSKO_STATE_DIR": str(hub.state_dir)})


def announce_by_hand(hub: HubProcess, broker, current: KbCurrent | None, root: str | None = None) -> None:
    """Publish (or, with None, clear) the retained kb/current as the hub would."""
    client = Client(broker.port)
    try:
        assert client.wait_connected()
        client.publish(f"{root or hub.topic_root}/kb/current", current.to_json() if current else b"",
                       qos=1, retain=True)
    finally:
        client.close()


def clear_announcement(hub: HubProcess, broker) -> None:
    announce_by_hand(hub, broker, None)


def test_a_published_kb_is_installed_and_answered_from(make_unit, kb_hub, broker, mqtt_client, tmp_path) -> None:
    shipped = publish(kb_hub, SHIPPED_KB)  # the same entries the unit ships with
    unit = make_unit()
    unit.wait_installed(shipped)  # installed, and the heartbeat names the bundle in use
    shipped_answer = unit.answer()
    marker = f"uji-{uuid.uuid4().hex[:6]}"
    version = publish(kb_hub, modified_kb(tmp_path, marker))
    unit.wait_installed(version)
    hb = unit.agent.heartbeat()
    assert hb.parts["kb"]["installed"] == version and hb.parts["kb"]["error"] == ""
    assert marker in unit.answer() and marker not in shipped_answer

    # the voice answers from it: a typed question through the unit's pipeline, over MQTT
    events = mqtt_client()
    events.subscribe(f"{kb_hub.topic_root}/unit/{unit.unit_id}/assistant/event")
    session = unit.voice.ask_text(QUESTION, lang="id")
    answers = [e for e in collect_events(events, session) if e.type == "answer"]
    assert answers and isinstance(answers[0], AssistantEvent) and marker in answers[0].text

    # the kiosk screen on the same unit follows the installed KB too
    handle = BrainHandle("", settings=unit.settings).start()
    assert handle.wait(30) and handle.status == "ready", handle.error
    assert marker in handle.ask(QUESTION, "id")["text"]

    # the folder in use and the last good one are kept; nothing else
    store = unit.settings.state_dir / "kb"
    assert (store / "current").read_text().strip() == version
    marker2 = f"uji-{uuid.uuid4().hex[:6]}"
    version2 = publish(kb_hub, modified_kb(tmp_path, marker2))
    unit.wait_installed(version2)
    assert marker2 in unit.answer()
    handle.POINTER_CHECK_S = 0.0
    unit.wait_for(lambda: marker2 in handle.ask(QUESTION, "id")["text"], "kiosk reload")
    folders = sorted(p.name for p in store.iterdir() if p.is_dir())
    assert folders == sorted([version, version2])  # current + last good, the shipped one's gone


def test_a_bad_bundle_is_refused_and_the_old_answers_stay(make_unit, kb_hub, broker, tmp_path) -> None:
    unit = make_unit()
    marker = f"uji-{uuid.uuid4().hex[:6]}"
    good = publish(kb_hub, modified_kb(tmp_path, marker))
    unit.wait_installed(good)
    hub_store = store_dir(hub_settings(kb_hub))

    # 1. a real bundle announced with a wrong SHA-256
    other = build_bundle(modified_kb(tmp_path, "salah-hash"))
    other_version = hashlib.sha256(other).hexdigest()[:12]
    (hub_store / f"{other_version}.tar.gz").write_bytes(other)
    announce_by_hand(kb_hub, broker, KbCurrent(version=other_version, sha256="0" * 64,
                                               path=f"/api/v1/kb/{other_version}"))
    unit.wait_for(lambda: other_version in unit.updater.status()["refused"], "refusal of the wrong hash")
    assert "SHA-256" in unit.updater.status()["error"]

    # 2. a bundle with the right hash whose YAML is broken
    broken_kb = modified_kb(tmp_path, "rusak")
    (broken_kb / "skck" / "skck-biaya.yaml").write_text("id: [broken")
    broken = build_bundle(broken_kb)
    digest = hashlib.sha256(broken).hexdigest()
    (hub_store / f"{digest[:12]}.tar.gz").write_bytes(broken)
    announce_by_hand(kb_hub, broker, KbCurrent(version=digest[:12], sha256=digest,
                                               path=f"/api/v1/kb/{digest[:12]}"))
    unit.wait_for(lambda: digest[:12] in unit.updater.status()["refused"], "refusal of the broken YAML")
    assert "not a valid knowledge base" in unit.updater.status()["error"]

    # the unit still answers from the last good KB, and says which one it has
    assert marker in unit.answer()
    hb = unit.agent.heartbeat()
    assert hb.parts["voice"]["kb_version"] == good and hb.parts["kb"]["installed"] == good
    store = unit.settings.state_dir / "kb"
    assert (store / "current").read_text().strip() == good
    assert not any(p.name.startswith((other_version, digest[:12])) for p in store.iterdir())


def test_a_restarted_unit_keeps_the_installed_kb(make_unit, kb_hub, broker, tmp_path) -> None:
    unit = make_unit()
    marker = f"uji-{uuid.uuid4().hex[:6]}"
    version = publish(kb_hub, modified_kb(tmp_path, marker))
    unit.wait_installed(version)
    state = unit.settings.state_dir
    unit.stop()
    # no announcement at all now: only what the unit kept on disk can give the new answers
    clear_announcement(kb_hub, broker)
    again = make_unit(state=state, unit_id=unit.unit_id, token=unit.token)
    assert again.agent.heartbeat().parts["voice"]["kb_version"] == version
    assert marker in again.answer()
    assert again.updater.status()["installed"] == version


class CuttingServer:
    """Serves one bundle over HTTP; the first `cuts` downloads stop halfway (the connection
    closes before the announced Content-Length)."""

    def __init__(self, data: bytes, cuts: int) -> None:
        import http.server
        import threading

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                with server.lock:
                    server.requests += 1
                    cut = server.requests <= cuts
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if cut else data)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.lock = threading.Lock()
        self.requests = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_cut_download_keeps_the_old_kb_and_is_tried_again(make_unit, kb_hub, broker, tmp_path) -> None:
    marker = f"uji-{uuid.uuid4().hex[:6]}"
    data = build_bundle(modified_kb(tmp_path, marker))
    digest = hashlib.sha256(data).hexdigest()
    server = CuttingServer(data, cuts=2)
    root = f"test/{uuid.uuid4().hex[:8]}/posko/v1"  # only this test announces here, not the hub
    try:
        unit = make_unit(hub_url=server.url, root=root)
        old = unit.answer()
        assert marker not in old
        announce_by_hand(kb_hub, broker, KbCurrent(version=digest[:12], sha256=digest,
                                                   path=f"/api/v1/kb/{digest[:12]}"), root=root)
        unit.wait_for(lambda: server.requests >= 1 and unit.updater.status()["error"], "a cut download")
        assert unit.answer() == old and unit.updater.status()["refused"] == []
        assert not (unit.settings.state_dir / "kb" / digest[:12]).exists()
        unit.wait_installed(digest[:12])  # tried again (backoff) once the link holds
        assert server.requests == 3 and marker in unit.answer()
        assert unit.updater.status()["error"] == ""
    finally:
        server.close()
        announce_by_hand(kb_hub, broker, None, root=root)


@pytest.mark.parametrize("member", ["../outside.yaml", "/etc/outside.yaml", "link"])
def test_a_bundle_cannot_write_outside_its_folder(tmp_path, member) -> None:
    import io
    import tarfile

    from firmware.kb_update import KbUpdateError, _unpack

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"x: 1"))
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(KbUpdateError, match="not a plain file or folder"):
        _unpack(raw.getvalue(), into)
    assert list(into.iterdir()) == [] and not (tmp_path / "outside.yaml").exists()
