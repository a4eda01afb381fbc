"""Late entry of an affiliated phone: a phone whose mobile link drops while a unit talks
comes back in the middle of the spurt. Its MQTT session (MQTT 5 Session Expiry) is still at
the broker, so the spurt's audio follows the CONNACK without a SUBSCRIBE round trip, and
the floor state published while it was away (the unit's grant, QoS 1) was kept for it.

The phone's link runs through bench/ptt_proxy.py with 100 ms each way: a new session's
first frame could come no sooner than one round trip (200 ms) after the CONNACK."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.support import HubProcess
from tests.phone.conftest import GROUP, open_phone, wait_online
from tests.support.mqtt import Client

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from ptt_proxy import LinkProxy, LinkShape  # noqa: E402

WATCH = """() => {
  const c = window.poskoPtt;
  window.lateEntry = { joins: [], frames: [] };
  c.on("state", (s, how) => { if (s === "online") window.lateEntry.joins.push({ t: performance.now(), how: how }); });
  c.on("frame", (dir, spurt, ts, ahead, arrived) => {
    if (dir === "in") window.lateEntry.frames.push({ t: arrived === undefined ? performance.now() : arrived, ts: ts });
  });
  return true;
}"""


@pytest.fixture
def link(ws_broker) -> Iterator[LinkProxy]:
    """The phone's link: 100 ms each way, no loss."""
    proxy = LinkProxy(("127.0.0.1", ws_broker.websockets_port), LinkShape(100, 0, 0.0)).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def far_hub(ws_broker, root, tmp_path, link) -> Iterator[HubProcess]:
    """The hub whose phone app reaches the broker through the link (its page's
    Content-Security-Policy names that origin)."""
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=ws_broker.port, topic_root=root,
                     extra_env={"POSKO_PTT_PHONE_BROKER_URL": f"ws://{{host}}:{link.port}"}).start()
    try:
        yield hub
    finally:
        hub.stop()


def test_a_phone_back_in_coverage_hears_the_spurt_in_progress_without_subscribing_again(
        browser, far_hub, link, ws_broker, root, arbiter, ptt, speech, tmp_path) -> None:
    hub, proxy = far_hub, link
    long_speech = tmp_path / "long.wav"
    subprocess.run(["sox", str(speech[1]), str(speech[1]), str(long_speech)], check=True)
    watcher = Client(ws_broker.port)
    try:
        assert watcher.wait_connected()
        watcher.subscribe(f"{root}/tg/{GROUP}/audio/+", qos=0)
        config = {"unit": "hp-budi", "name": "Budi", "password": "", "groups": [GROUP],
                  "broker": f"ws://127.0.0.1:{proxy.port}", "root": root}
        page = open_phone(browser, hub, config)
        wait_online(page)
        page.evaluate(WATCH)
        time.sleep(1.0)  # the SUBACK and the retained floor state (idle) came back
        # Out of coverage: the link breaks, and mqtt.js waits (instead of every 1.5 s) until
        # the test lets it connect again, in the middle of the unit's spurt.
        page.evaluate("window.poskoPtt.client.options.reconnectPeriod = 0")
        proxy.cut()
        page.wait_for_selector("#conn[data-state='offline']", timeout=5000)
        sent = ptt.send("pos-kuta-02", long_speech, wait=False)
        watcher.expect(20)  # the unit's first frame: it has the floor and talks
        time.sleep(1.0)
        page.evaluate("window.poskoPtt.client.options.reconnectPeriod = 1500; window.poskoPtt.client.reconnect()")
        wait_online(page)
        time.sleep(1.5)
        got = page.evaluate("window.lateEntry")
        join = got["joins"][-1]
        assert join["how"] == "session", join  # the broker kept the session
        after = [f for f in got["frames"] if f["t"] > join["t"]]
        assert after, "no frame of the spurt in progress after the phone came back"
        first = after[0]["t"] - join["t"]
        print(f"back in coverage: CONNACK -> first frame {first:.1f} ms")
        # The broker sends the spurt's frames right behind the CONNACK (one frame interval,
        # plus the page's own delays); a SUBSCRIBE first would cost a 200 ms round trip.
        assert first < 120, first
        # The unit's grant was published while the phone was away: the session kept it
        # (QoS 1), so the phone knows who holds the floor and plays the spurt.
        assert page.evaluate(f"window.poskoPtt.floors['{GROUP}'].holder") == "pos-kuta-02"
        assert page.evaluate(f"window.poskoPtt.stats.played['{GROUP}'] || 0") >= len(after) - 5
        sent.wait(60)
        assert not page.errors, page.errors
    finally:
        watcher.close()
