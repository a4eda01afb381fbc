"""The dispatcher's console in Chromium: talk with command priority over a unit, contention
between a phone and a unit, and announcements reaching a phone."""

from __future__ import annotations

import time

import numpy as np

from gateway.messages import FloorState
from tests.phone.conftest import (
    GROUP,
    heard_share,
    open_phone,
    read_wav,
    wait_online,
    wait_until,
)
from tests.support.correlate import best_correlation
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
    share = heard_share(got, read_wav(speech[1]))
    print(f"console -> unit: correlation {score:.2f}, windows heard {share:.0%}; talker said: {out[-300:]}")
    assert share >= 0.6, f"the unit did not hear the console (correlation {score:.2f}, windows {share:.0%})"
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


def _console_two_groups(browser, hub):
    from hub.talkgroups import TalkGroup

    with hub.db() as db:
        db.add(TalkGroup(id="ojol-legian", name="Ojol Legian"))
        db.commit()
    return _console(browser, hub)


def _talk_in_both(ptt, wav) -> None:
    """A unit talks in each group at once (the console monitors both)."""
    a = ptt.send("pos-kuta-01", wav, wait=False)
    b = ptt.send("pos-legian-01", wav, "--group", "ojol-legian", wait=False)
    for p in (a, b):
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out


def _played(page) -> dict:
    return page.evaluate("Object.assign({}, window.poskoPtt.stats.played)")


def test_console_mute_and_solo(browser, hub, ws_broker, root, arbiter, ptt, speech, tmp_path) -> None:
    """Mute silences one group and leaves the other; solo plays only its group; both off,
    every group plays again. What is muted is still received (and kept for replay)."""
    import subprocess

    short = tmp_path / "short.wav"
    subprocess.run(["sox", str(speech[1]), str(short), "trim", "0", "1.5"], check=True)
    page = _console_two_groups(browser, hub)
    legian = page.locator("tr[data-group='ojol-legian']")
    kuta = page.locator(f"tr[data-group='{GROUP}']")

    kuta.locator(".mute").check()
    _talk_in_both(ptt, short)
    assert wait_until(lambda: _played(page).get("ojol-legian", 0) > 40, 10), _played(page)
    played = _played(page)
    assert played.get(GROUP, 0) == 0, f"a muted group played: {played}"
    assert page.evaluate("window.poskoPtt.stats.framesIn") > 80  # both groups were received
    assert wait_until(lambda: page.evaluate(f"(window.poskoPtt.replay['{GROUP}'] || []).length") == 1, 5)

    kuta.locator(".mute").uncheck()
    legian.locator(".solo").check()
    _talk_in_both(ptt, short)
    assert wait_until(lambda: _played(page)["ojol-legian"] > played["ojol-legian"] + 40, 10), _played(page)
    time.sleep(0.5)
    assert _played(page).get(GROUP, 0) == 0, f"solo on one group, another played: {_played(page)}"

    kuta.locator(".solo").check()  # solo moves: one group at a time
    assert not legian.locator(".solo").is_checked()
    kuta.locator(".solo").uncheck()
    _talk_in_both(ptt, short)
    assert wait_until(lambda: _played(page).get(GROUP, 0) > 40, 10), _played(page)
    assert not page.errors, page.errors


def test_console_replays_the_last_spurt(browser, hub, ws_broker, root, arbiter, ptt, speech) -> None:
    page = _console(browser, hub)
    row = page.locator(f"tr[data-group='{GROUP}']")
    assert page.evaluate(f"window.poskoPtt.playReplay('{GROUP}', 0)") is False  # nothing heard yet
    result = ptt.send("pos-kuta-01", speech[1])
    assert result.returncode == 0, result.stdout
    row.locator(".replay-info", has_text="pos-kuta-01").wait_for(timeout=10000)
    assert row.locator(".replay-info").text_content().startswith("1 ·")
    page.evaluate("window.replays = []; window.poskoPtt.on('replaying', (g, item) =>"
                  " window.replays.push([g, item.unit, item.pcm.length / item.rate]))")
    row.locator(".replay").click()
    replays = page.evaluate("window.replays")
    said = read_wav(speech[1])
    assert len(replays) == 1 and replays[0][:2] == [GROUP, "pos-kuta-01"], replays
    assert abs(replays[0][2] - len(said) / 16000) < 0.3, replays
    pcm = np.array(page.evaluate(f"Array.from(window.poskoPtt.replay['{GROUP}'][0].pcm)"))
    rate = page.evaluate(f"window.poskoPtt.replay['{GROUP}'][0].rate")
    score = best_correlation(pcm[:: rate // 16000] * 32768, said)
    assert score > 0.5, f"the replay is not what the unit said (correlation {score:.2f})"
    assert not page.errors, page.errors
