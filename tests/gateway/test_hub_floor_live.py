"""The talk-group page shows who is talking, live: the hub's floor stream (server-sent
events) follows the arbiter's retained floor states, and the page's script updates the
holder cells without a reload."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable, Iterator

import pytest

from hub import talkgroups
from tests.gateway.conftest import EndlessSource, wait_until
from tests.gateway.test_hub_talkgroups import PASSWORD, hub_app, login, served_hub  # noqa: F401 - fixtures
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]

GROUP = "batang-kota"  # the units' start group (PttSettings.group)


class Stream:
    """A floor stream read through the Flask test client, one server-sent event at a time."""

    def __init__(self, client, path: str = "/grup-bicara/stream") -> None:
        self.response = client.get(path, buffered=False)
        self.chunks = iter(self.response.response)
        self.text = ""  # everything read so far
        self.ended = False

    def events(self, timeout_s: float) -> Iterator[tuple[str, str]]:
        """(event, data) pairs and ("comment", text) for keep-alives, until `timeout_s` passes
        or the stream ends. The generator yields one whole event per chunk; keep-alives
        every KEEPALIVE_S (shortened by the fixture) let the deadline be checked."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.ended:
            try:
                chunk = next(self.chunks)
            except StopIteration:
                self.ended = True
                return
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            self.text += text
            for block in filter(None, text.split("\n\n")):
                fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
                if block.startswith(":"):
                    yield "comment", block[1:].strip()
                elif "event" in fields:
                    yield fields["event"], fields.get("data", "")

    def floor_until(self, predicate: Callable[[dict], bool], timeout_s: float = 5.0) -> dict | None:
        """The first `floor` event whose data satisfies the predicate, or None."""
        for event, data in self.events(timeout_s):
            if event == "floor":
                view = json.loads(data)
                if predicate(view):
                    return view
        return None

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def quick_stream(monkeypatch) -> None:
    """Keep-alives every 0.2 s, so a test reading the stream never blocks for long."""
    monkeypatch.setattr(talkgroups, "KEEPALIVE_S", 0.2)


def holder(view: dict, group: str = GROUP) -> str | None:
    """The group's holder in a floor view ("" free), None when the group has no state yet."""
    floor = view["groups"].get(group)
    return None if floor is None else floor["holder"]


def test_the_stream_delivers_the_holder_then_the_free_floor(hub_app, net, monkeypatch) -> None:  # noqa: F811
    # Keep-alives only every 3 s: a change must wake the stream itself, not ride on one.
    monkeypatch.setattr(talkgroups, "KEEPALIVE_S", 3.0)
    arb = net.arbiter()
    dewi = net.unit("pos-dewi", EndlessSource)
    stream = Stream(login(hub_app, "op"))
    try:
        assert stream.response.status_code == 200
        assert stream.response.mimetype == "text/event-stream"
        assert stream.response.headers["Cache-Control"] == "no-store"
        first = stream.floor_until(lambda v: True, 2)  # once at connect, talking or not
        assert first is not None and first["online"] is True
        assert holder(first) in (None, "")
        assert stream.text.startswith("retry: 1500\n\n")

        pressed = time.monotonic()
        dewi.client.press()
        talking = stream.floor_until(lambda v: holder(v) == "pos-dewi", 5)
        assert talking is not None, stream.text
        assert time.monotonic() - pressed < 1.5  # "within about a second" (grant + MQTT + SSE)
        floor = talking["groups"][GROUP]
        assert floor["priority"] == "normal" and floor["event"] == "grant"
        assert abs(floor["since"] - time.time()) < 5 and abs(talking["now"] - time.time()) < 1
        assert arb.status()["groups"][GROUP] == "pos-dewi"
        # A page loaded now shows the same without its script (and the script starts from it).
        sup = login(hub_app, "sup")
        sup.post("/grup-bicara/tambah", data={"group_id": GROUP})
        page = sup.get("/grup-bicara").get_data(as_text=True)
        assert f'<tr data-group="{GROUP}" class="talking">' in page
        assert '<span class="on-air">Bicara:</span> <b class="mono">pos-dewi</b>' in page
        assert re.search(r'<span class="elapsed">\d+ dtk</span>', page), page

        released = time.monotonic()
        dewi.client.release()
        free = stream.floor_until(lambda v: holder(v) == "", 5)
        assert free is not None, stream.text
        assert time.monotonic() - released < 1.5
        assert free["groups"][GROUP]["event"] == "release"
        assert free["groups"][GROUP]["event_unit"] == "pos-dewi"
    finally:
        stream.close()


def test_the_stream_keeps_alive_ends_after_its_maximum_and_needs_a_login(hub_app, net, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(talkgroups, "KEEPALIVE_S", 0.3)
    monkeypatch.setattr(talkgroups, "STREAM_MAX_S", 1.2)
    net.arbiter()
    stream = Stream(login(hub_app, "op"))
    started = time.monotonic()
    kinds = [event for event, _ in stream.events(10)]
    assert stream.ended and time.monotonic() - started < 3, kinds
    assert kinds[0] == "floor" and kinds.count("floor") == 1  # nothing changed: no second event
    assert kinds.count("comment") >= 2 and set(kinds) == {"floor", "comment"}
    anonymous = hub_app.test_client().get("/grup-bicara/stream")
    assert anonymous.status_code in (302, 401)


def test_the_stream_says_when_the_hub_lost_the_broker_and_when_it_is_back(hub_app, net, quick_stream) -> None:  # noqa: F811
    arb = net.arbiter()
    dewi = net.unit("pos-dewi", EndlessSource)
    dewi.client.press()
    assert wait_until(lambda: arb.status()["groups"].get(GROUP) == "pos-dewi", 3)
    proxy = TcpProxy(net.mqtt.port, net.mqtt.host)
    old = hub_app.config["POSKO_SETTINGS"]
    # This app's worker reaches the broker through the proxy.
    settings = dataclasses.replace(old, mqtt=dataclasses.replace(old.mqtt, port=proxy.port))
    hub_app.config["POSKO_SETTINGS"] = settings
    stream = Stream(login(hub_app, "op"))
    try:
        assert stream.floor_until(lambda v: v["online"] and holder(v) == "pos-dewi", 3), stream.text
        proxy.cut_open_connections()  # the hub's broker connection drops; the proxy stays open
        lost = stream.floor_until(lambda v: not v["online"], 5)
        assert lost is not None, stream.text
        assert holder(lost) == "pos-dewi"  # what the hub knew, marked as possibly stale
        # paho reconnects through the proxy; the retained states come again.
        back = stream.floor_until(lambda v: v["online"], 10)
        assert back is not None and holder(back) == "pos-dewi", stream.text
        # The same retained states again change nothing on the page: no further event.
        assert stream.floor_until(lambda v: True, 1.0) is None, stream.text
    finally:
        stream.close()
        key = (settings.mqtt.host, proxy.port, settings.mqtt.topic_root)
        with talkgroups._brokers_lock:
            gone = talkgroups._brokers.pop(key, None)
        if gone is not None:
            gone.link.stop()  # no reconnecting to a closed proxy after the test
        proxy.close()


def sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/masuk")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


@pytest.mark.browser
def test_the_page_shows_the_talker_and_the_free_floor_without_reload(
        hub_app, served_hub, net, new_page, artifacts, monkeypatch, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="werkzeug")
    monkeypatch.setattr(talkgroups, "STREAM_MAX_S", 2.5)  # the page lives through stream restarts
    arb = net.arbiter()
    dewi = net.unit("pos-dewi", EndlessSource)
    sup = login(hub_app, "sup")
    for group, name in ((GROUP, "Batang Kota"), ("ojol-batang", "Ojol Batang")):
        sup.post("/grup-bicara/tambah", data={"group_id": group, "name": name})
    for unit in ("pos-dewi", "pos-kuta-01"):
        sup.post(f"/grup-bicara/{GROUP}/anggota", data={"unit_id": unit})
    page = new_page(1280, 720)
    sign_in(page, served_hub, "op")
    page.goto(f"{served_hub}/grup-bicara")
    row = page.locator(f"#groups tr[data-group={GROUP}]")
    page.wait_for_selector("#floor-live[data-state=live]", timeout=5000)
    assert "Senyap" in row.locator("td.holder").inner_text()
    assert "talking" not in (row.get_attribute("class") or "")
    page.evaluate("window.notReloaded = true")

    dewi.client.press()
    page.wait_for_selector(f"#groups tr.talking[data-group={GROUP}] td.holder[data-holder=pos-dewi]",
                           timeout=2000)
    assert arb.status()["groups"][GROUP] == "pos-dewi"
    cell = row.locator("td.holder")
    assert cell.inner_text().startswith("Bicara: pos-dewi")
    # The seconds talking count up between events.
    page.wait_for_function(
        f"() => document.querySelector('#groups tr[data-group={GROUP}] .elapsed').textContent === '2 dtk'",
        timeout=5000)
    assert page.locator("#groups tr[data-group=ojol-batang] td.holder").inner_text() == "Senyap"
    page.screenshot(path=str(artifacts / "ptt_hub_floor_live.png"), full_page=True, animations="disabled")

    dewi.client.release()
    page.wait_for_selector(f"#groups tr[data-group={GROUP}]:not(.talking) td.holder[data-holder='']",
                           timeout=2000)
    assert cell.inner_text() == "Senyap"
    assert page.evaluate("window.notReloaded") is True  # the same page, never reloaded

    # The take-over and release buttons still work (each posts and loads the page again).
    take = row.locator("form[data-floor=take] button")
    let_go = row.locator("form[data-floor=release] button")
    assert take.is_visible() and not let_go.is_visible()
    take.click()
    page.wait_for_selector(f"#groups tr.talking[data-group={GROUP}] td.holder[data-holder=command-center]",
                           timeout=3000)
    assert "pusat komando" in row.locator("td.holder").inner_text()
    assert let_go.is_visible() and not take.is_visible()
    page.screenshot(path=str(artifacts / "ptt_hub_floor_command.png"), full_page=True, animations="disabled")
    assert wait_until(lambda: arb.status()["groups"][GROUP] == "command-center", 3)
    # Another operator lets the command center's floor go: this page, not reloaded, offers
    # to take it again instead of a release that would do nothing.
    page.evaluate("window.notReloaded = true")
    assert sup.post(f"/grup-bicara/{GROUP}/lepas").status_code == 303
    page.wait_for_selector(f"#groups tr[data-group={GROUP}] form[data-floor=take]:not([hidden])", timeout=3000)
    assert not let_go.is_visible() and page.evaluate("window.notReloaded") is True
    assert wait_until(lambda: arb.status()["groups"][GROUP] == "", 3)
    take.click()
    assert wait_until(lambda: arb.status()["groups"][GROUP] == "command-center", 3)
    page.wait_for_selector(f"#groups tr[data-group={GROUP}] form[data-floor=release]:not([hidden])", timeout=3000)
    let_go.click()
    page.wait_for_selector(f"#groups tr[data-group={GROUP}]:not(.talking) td.holder[data-holder='']",
                           timeout=3000)
    assert arb.status()["groups"][GROUP] == ""
    # The release reloaded the page: its stream says "live" once its first event came.
    page.wait_for_selector("#floor-live[data-state=live]", timeout=5000)
    restarts = [r for r in caplog.records if "GET /grup-bicara/stream" in r.getMessage()]
    assert len(restarts) >= 3, len(restarts)  # ended after STREAM_MAX_S and came back each time
    assert page.console_errors == []

    # Logged out elsewhere: the open stream ends within seconds and the page goes to the login.
    page.request.post(f"{served_hub}/keluar")
    page.wait_for_url(f"{served_hub}/masuk*", timeout=8000)
    page.screenshot(path=str(artifacts / "ptt_hub_floor_logged_out.png"), full_page=True)


def test_an_emergency_holder_is_shown_as_an_emergency_not_as_the_command_center(
        hub_app, net, quick_stream) -> None:  # noqa: F811
    """Emergency was an alias of command, so the hub showed "(pusat komando)" for it."""
    net.arbiter()
    ojol = net.unit("ojol-base", EndlessSource, priority="emergency")
    stream = Stream(login(hub_app, "op"))
    try:
        ojol.client.press()
        talking = stream.floor_until(lambda v: holder(v) == "ojol-base", 5)
        assert talking is not None, stream.text
        assert talking["groups"][GROUP]["priority"] == "emergency"
        sup = login(hub_app, "sup")
        sup.post("/grup-bicara/tambah", data={"group_id": GROUP})
        page = sup.get("/grup-bicara").get_data(as_text=True)
        assert '<span class="muted prio">(darurat)</span>' in page
        assert "(pusat komando)" not in page
    finally:
        stream.close()
