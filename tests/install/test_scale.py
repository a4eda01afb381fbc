"""Past one machine (docs/install.md, "Scale"): two hub instances on one PostgreSQL behind
nginx serve the same queue and the same live updates; a regional broker bridged to two
district brokers carries alerts and floor state from one district to the other.

PostgreSQL: 127.0.0.1:5432 (POSKO_TEST_PG_URL), a throw-away database; the PostgreSQL test
is skipped, saying so, where no server answers.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from posko.broker import Bridge, BrokerConfig, MosquittoProcess, free_port
from tests.hub.support import HubProcess, report_body
from tests.install.test_proxy_slow_clients import (
    NGINX,
    Nginx,
    login_cookie,
    make_cert,
    open_stream,
    site_for_test,
)
from tests.support.mqtt import Client, RunningBroker
from tests.support.postgres import fresh_database


@pytest.fixture
def pg_database() -> Iterator[str]:
    with fresh_database("posko_scale", "the two-hub test needs one") as url:
        yield url


@pytest.mark.slow
@pytest.mark.postgres
def test_two_hubs_on_one_postgresql_behind_nginx_share_the_queue_and_live_updates(
        pg_database: str, tmp_path: Path) -> None:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed")
    common = {"POSKO_HUB_MQTT_INGEST": "false", "POSKO_HUB_SECRET_KEY": uuid.uuid4().hex}
    hubs = [HubProcess(db_url=pg_database, state_dir=tmp_path / f"hub-{i}", mqtt_port=free_port(),
                       topic_root="test/scale/posko/v1", extra_env=common).start() for i in "ab"]
    crt, key = make_cert(tmp_path)
    https = free_port()
    site = site_for_test(hubs[0].port, hubs[1].port, free_port(), https, crt, key)
    # Both instances serve everything: intake and streams are spread over the two.
    site = site.replace(f"server 127.0.0.1:{hubs[0].port};",
                        f"server 127.0.0.1:{hubs[0].port};\n    server 127.0.0.1:{hubs[1].port};")
    site = site.replace(f"server 127.0.0.1:{hubs[1].port};\n}}\nlimit_conn_zone",
                        f"server 127.0.0.1:{hubs[1].port};\n    server 127.0.0.1:{hubs[0].port};\n}}\nlimit_conn_zone")
    # Test only: say which instance answered, to show both take requests.
    site = site.replace("    location / {", "    add_header X-Upstream $upstream_addr always;\n    location / {")
    (tmp_path / "nginx").mkdir()
    nginx = Nginx(tmp_path / "nginx", site).start(https)
    base = f"https://127.0.0.1:{https}"
    try:
        _unit, token = hubs[0].add_unit()
        username, password = hubs[0].add_user("operator")
        cookie = login_cookie(base, crt, username, password)
        # A live stream on instance B (opened straight on it, to be sure which one holds it).
        stream = requests.get(f"{hubs[1].base}/live/stream", stream=True, timeout=10,
                              headers={"Cookie": cookie, "User-Agent": requests.utils.default_user_agent()})
        assert stream.status_code == 200
        tickets, upstreams = [], set()
        for _ in range(6):  # through nginx: spread over both instances
            body = report_body()
            answer = requests.post(f"{base}/api/v1/reports", json=body, timeout=10, verify=str(crt),
                                   headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code in (200, 201), answer.text
            tickets.append(f"{body['ticket'][:4]}-{body['ticket'][4:]}")  # as the hub shows it
            upstreams.add(answer.headers["X-Upstream"])
        assert upstreams == {f"127.0.0.1:{hub.port}" for hub in hubs}  # both instances took reports
        for hub in hubs:  # the same queue from each instance
            page = requests.get(f"{hub.base}/laporan", timeout=10,
                                headers={"Cookie": cookie, "User-Agent": requests.utils.default_user_agent()})
            assert page.status_code == 200
            shown = set(re.findall(r">([A-Z0-9]{4})-([A-Z0-9]{4})</a>", page.text))
            assert {tuple(t.split("-")) for t in tickets} <= shown, hub.port
        # The stream on B saw every report, wherever it was taken in.
        seen = []
        deadline = time.monotonic() + 15
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data: ") and '"ticket"' in line:
                seen.append(json.loads(line[6:]).get("ticket"))
            if set(tickets) <= set(seen) or time.monotonic() > deadline:
                break
        stream.close()
        assert set(tickets) <= set(seen), seen
        # One officer's stream through nginx works too.
        s, first = open_stream(https, "127.0.0.1", cookie)
        assert b" 200 " in first.split(b"\r\n")[0]
        s.close()
    finally:
        nginx.stop()
        for hub in hubs:
            hub.stop()


@pytest.fixture
def district_brokers(tmp_path: Path) -> Iterator[tuple[RunningBroker, RunningBroker, RunningBroker]]:
    """A regional (Polda) broker and two district (Polres) brokers bridged up to it, each bridge
    with its own client id on the regional broker (one id per district, as deployed)."""
    started = []

    def start(name: str, up: RunningBroker | None = None) -> RunningBroker:
        bridges = (Bridge(name=f"{name}-to-polda", address=f"127.0.0.1:{up.port}"),) if up else ()
        config = BrokerConfig(state_dir=tmp_path / name, port=free_port(), bridges=bridges)
        config.state_dir.mkdir()
        running = RunningBroker(MosquittoProcess(config).start())
        started.append(running)
        return running

    regional = start("polda")
    try:
        yield regional, start("polres-a", regional), start("polres-b", regional)
    finally:
        for running in started:
            running.process.stop()


@pytest.mark.broker
def test_a_regional_broker_carries_alerts_and_floor_state_between_two_districts(district_brokers) -> None:
    regional, district_a, district_b = district_brokers
    root = f"posko/v1/test-{uuid.uuid4().hex[:6]}"
    listener_b = Client(district_b.port)
    listener_a = Client(district_a.port)
    watcher = Client(regional.port)
    for client in (listener_a, listener_b, watcher):
        assert client.wait_connected(10)
    listener_b.subscribe(f"{root}/alert/+")
    watcher.subscribe(f"{root}/alert/+")
    time.sleep(1.5)  # the bridges have connected and subscribed
    alert = json.dumps({"id": str(uuid.uuid4()), "unit": "kiosk-a-1", "source": "panic_button"})
    talker = Client(district_a.port)
    assert talker.wait_connected(10)
    talker.publish(f"{root}/alert/kiosk-a-1", alert, qos=1)
    got = listener_b.expect(10)
    assert got.topic == f"{root}/alert/kiosk-a-1" and json.loads(got.payload)["id"] == json.loads(alert)["id"]
    assert watcher.expect(10).payload == got.payload  # the region's command center sees it too
    # Floor state is retained: a dispatcher who connects later in district A still gets B's.
    state = json.dumps({"group": "polda-jateng", "holder": "kiosk-b-2", "priority": "command"})
    speaker = Client(district_b.port)
    assert speaker.wait_connected(10)
    speaker.publish(f"{root}/tg/polda-jateng/floor/state", state, qos=1, retain=True)
    time.sleep(1.5)
    late = Client(district_a.port)
    assert late.wait_connected(10)
    late.subscribe(f"{root}/tg/+/floor/state")
    retained = late.expect(10)
    assert json.loads(retained.payload)["holder"] == "kiosk-b-2" and retained.retain
    # Exactly once in the other district: bridges do not loop the alert back and forth.
    with pytest.raises(AssertionError, match="no MQTT message"):
        listener_b.expect(1.5)
    for client in (listener_a, listener_b, watcher, talker, speaker, late):
        client.close()
