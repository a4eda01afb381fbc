"""Listen-before-talk in the browser, as on the units (gateway/transmit.py): with no answer
from an arbiter, or with its retained presence "offline", the phone listens first; it talks
once the group has been quiet for `lbtMs` since the press, and is refused (busy tone, no
audio sent) while someone else is heard."""

from __future__ import annotations

import json
import time

from tests.phone.conftest import GROUP, hold, open_phone, wait_online, wait_until
from tests.support.mqtt import Client


def _config(ws_broker, root) -> dict:
    return {"unit": "hp-budi", "name": "Budi", "password": "", "groups": [GROUP],
            "broker": f"ws://127.0.0.1:{ws_broker.websockets_port}", "root": root}


def _record_tx(page) -> None:
    page.evaluate("window.txs = []; window.poskoPtt.on('tx', (s, why) => window.txs.push([s, why || '']))")


def test_no_arbiter_answer_then_quiet_the_phone_talks(browser, hub, ws_broker, root, ptt, tmp_path) -> None:
    """No arbiter runs: the request goes unanswered, the group is quiet, the phone talks
    (and says it talks without the centre); a unit hears it."""
    heard = tmp_path / "heard"
    listener = ptt.listen("pos-kuta-01", heard)
    page = open_phone(browser, hub, _config(ws_broker, root))
    wait_online(page)
    _record_tx(page)
    time.sleep(1.5)  # the unit is subscribed
    box = page.locator("#ptt").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    # The phone waits longer for the arbiter (1 s) than the quiet period (0.5 s from the
    # press), so it talks as soon as the request times out.
    page.wait_for_selector("#ptt[data-state='talking'][data-mode='lbt']", timeout=3000)
    assert "Pusat tidak menjawab: bicara langsung" in page.text_content("#ptt")
    time.sleep(2.0)
    page.mouse.up()
    txs = page.evaluate("window.txs")
    assert [s for s, _ in txs][:3] == ["requesting", "listening", "talking"] and txs[2][1] == "lbt", txs
    assert wait_until(lambda: list(heard.glob("*hp-budi*.wav")), 10), ptt.stop(listener)
    time.sleep(0.5)
    ptt.stop(listener)
    assert not page.errors, page.errors


def test_no_arbiter_and_someone_talking_the_phone_does_not_talk(browser, hub, ws_broker, root, ptt,
                                                                 speech) -> None:
    """The arbiter's presence is "offline": the phone asks nobody, hears a unit talking and
    refuses to talk: busy tone, the reason on the button, no audio frame sent."""
    watch = Client(ws_broker.port)
    assert watch.wait_connected()
    watch.publish(f"{root}/arbiter/status", json.dumps({"state": "offline", "time": time.time()}), retain=True)
    watch.subscribe(f"{root}/tg/{GROUP}/#", qos=0)
    page = open_phone(browser, hub, _config(ws_broker, root))
    wait_online(page)
    assert wait_until(lambda: page.evaluate("window.poskoPtt.arbiterOnline") is False, 5)
    _record_tx(page)
    page.evaluate("window.tones = []; window.poskoPtt.on('tone', (t) => window.tones.push(t))")
    talker = ptt.send("pos-kuta-02", speech[1], wait=False)
    assert wait_until(lambda: page.evaluate(f"window.poskoPtt.heardAt['{GROUP}'] !== undefined"), 10)
    time.sleep(0.3)
    while not watch.messages.empty():
        watch.messages.get_nowait()
    hold(page, 1.0)
    page.wait_for_selector("#ptt[data-state='busy']", timeout=3000)
    assert "saluran dipakai; Anda tidak bicara" in page.text_content("#ptt")
    txs = page.evaluate("window.txs")
    assert txs[:2] == [["listening", ""], ["busy", "lbt"]], txs
    assert "busy" in page.evaluate("window.tones")
    sent = []
    while not watch.messages.empty():
        sent.append(watch.messages.get_nowait().topic)
    assert not [t for t in sent if t.endswith("/hp-budi") and "/audio/" in t], "the phone talked over a unit"
    assert f"{root}/tg/{GROUP}/floor/request/hp-budi" not in sent, "asked an arbiter known offline"
    assert page.evaluate("window.poskoPtt.stats.framesOut") == 0
    talker.wait(30)
    watch.publish(f"{root}/arbiter/status", b"", retain=True)
    watch.close()
    assert not page.errors, page.errors
