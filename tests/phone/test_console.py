"""The dispatcher's console in Chromium: talk with command priority over a unit, contention
between a phone and a unit, and announcements reaching a phone."""

from __future__ import annotations

import time

from gateway.messages import FloorState
from tests.phone.conftest import (
    GROUP,
    best_correlation,
    open_phone,
    read_wav,
    wait_online,
    wait_until,
)
from tests.support.mqtt import Client


def _console(browser, hub):
    from hub.talkgroups import TalkGroup

    with hub.db() as db:
        db.add(TalkGroup(id=GROUP, name="Ojol Kuta"))
        db.commit()
    user = hub.add_user("operator")
    context = browser.new_context(viewport={"width": 1280, "height": 720}, permissions=["microphone"])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(hub.base + "/konsol")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button[type=submit]")
    page.goto(hub.base + "/konsol")
    page.wait_for_selector("#console-conn[data-state='online']", timeout=10000)
    return page


def _states(watch: Client) -> list[FloorState]:
    out = []
    while not watch.messages.empty():
        msg = watch.messages.get_nowait()
        if msg.topic.endswith("/floor/state"):
            out.append(FloorState.from_json(msg.payload))
    return out


def test_console_preempts_a_talking_unit(browser, hub, ws_broker, root, arbiter, ptt, speech, tmp_path) -> None:
    page = _console(browser, hub)
    watch = Client(ws_broker.port)
    assert watch.wait_connected()
    watch.subscribe(f"{root}/tg/{GROUP}/floor/state")
    heard = tmp_path / "heard"
    listener = ptt.listen("pos-kuta-09", heard)
    long_wav = tmp_path / "long.wav"
    import subprocess

    subprocess.run(["sox", str(speech[1]), str(speech[1]), str(speech[1]), str(long_wav)], check=True)
    time.sleep(1.5)
    talker = ptt.send("pos-kuta-01", long_wav, wait=False)
    row = page.locator(f"tr[data-group='{GROUP}']")
    row.locator(".talker", has_text="pos-kuta-01").wait_for(timeout=15000)
    button = row.locator(".talk").bounding_box()
    page.mouse.move(button["x"] + 20, button["y"] + 10)
    page.evaluate("window.txs = []; window.poskoPtt.on('tx', (s, w) => window.txs.push([s, w]))")
    page.mouse.down()
    try:
        page.wait_for_selector(f"tr[data-group='{GROUP}'] .talk[data-state='talking']", timeout=5000)
    except Exception:
        raise AssertionError(f"{page.evaluate('window.txs')} {page.errors} {_states(watch)}") from None
    time.sleep(2.0)
    page.mouse.up()
    states = _states(watch)
    pre = [s for s in states if s.event == "preempt"]
    assert pre and pre[0].holder == "command-center" and pre[0].priority == "command", states
    out = ptt.stop(talker)
    assert wait_until(lambda: any("command-center" in f.name for f in heard.glob("*.wav")), 10)
    time.sleep(1.0)
    ptt.stop(listener)
    command = [f for f in heard.glob("*.wav") if "command-center" in f.name]
    got = read_wav(command[0])
    score = best_correlation(got, read_wav(speech[1]))
    print(f"console -> unit: correlation {score:.2f}; talker said: {out[-300:]}")
    assert score > 0.5, f"the unit did not hear the console (correlation {score:.2f})"
    assert "preempted" in out, out[-500:]  # the unit was cut, not just finished
    assert not page.errors, page.errors
    watch.close()


def test_phone_and_unit_contend_for_the_floor(browser, hub, ws_broker, root, arbiter, ptt, speech) -> None:
    config = {"unit": "hp-sari", "name": "Sari", "password": "", "groups": [GROUP],
              "broker": f"ws://127.0.0.1:{ws_broker.websockets_port}", "root": root}
    page = open_phone(browser, hub, config)
    wait_online(page)
    talker = ptt.send("pos-kuta-01", speech[1], wait=False)
    page.wait_for_selector("#talker[data-talking='1']", timeout=10000)
    page.evaluate("window.tones = []; window.poskoPtt.on('tone', (t) => window.tones.push(t))")
    box = page.locator("#ptt").bounding_box()
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.mouse.down()
    page.wait_for_selector("#ptt[data-state='busy']", timeout=5000)
    page.mouse.up()
    assert "busy" in page.evaluate("window.tones")
    talker.wait(30)
    page.wait_for_selector("#talker[data-talking='0']", timeout=8000)
    # Now the phone holds the floor and the unit is refused.
    page.mouse.down()
    page.wait_for_selector("#ptt[data-state='talking']", timeout=5000)
    assert "goahead" in page.evaluate("window.tones")
    refused = ptt.send("pos-kuta-01", speech[1])
    page.mouse.up()
    assert "Saluran sedang dipakai" in refused.stdout, refused.stdout + refused.stderr


def test_announcement_reaches_the_phone(browser, hub, ws_broker, root) -> None:
    page = _console(browser, hub)
    config = {"unit": "hp-sari", "name": "Sari", "password": "", "groups": [GROUP],
              "broker": f"ws://127.0.0.1:{ws_broker.websockets_port}", "root": root}
    phone = open_phone(browser, hub, config)
    wait_online(phone)
    form = page.locator(f"tr[data-group='{GROUP}'] form")
    form.locator("input[name=text]").fill("Jalan Legian ditutup sampai pukul 14.00")
    form.locator("button").click()
    phone.wait_for_selector("#announce:not([hidden])", timeout=10000)
    assert "Jalan Legian ditutup" in phone.text_content("#announce")
