"""The phone app in Chromium talks with real units: same frames, same floor, same broker.

Chromium's fake microphone says espeak-ng speech; the phone encodes it with WebCodecs' Opus
and publishes over Mosquitto's WebSocket listener; a `posko ptt --record` unit (TCP) keeps
what it heard as WAV, which must match the speech (cross-correlation). The other way, a
unit's `posko ptt --send` is heard by the phone: its decoded spurt (kept for replay) must
match the file.
"""

from __future__ import annotations

import time

import numpy as np

from tests.phone.conftest import (
    GROUP,
    hold,
    open_phone,
    read_wav,
    wait_online,
    wait_until,
)
from tests.support.correlate import best_correlation


def _config(hub, ws_broker, root, unit="hp-budi", groups=(GROUP,)) -> dict:
    return {"unit": unit, "name": "Budi", "password": "", "groups": list(groups),
            "broker": f"ws://127.0.0.1:{ws_broker.websockets_port}", "root": root}


def test_phone_speech_reaches_a_unit(browser, hub, ws_broker, root, arbiter, ptt, speech, tmp_path) -> None:
    heard = tmp_path / "heard"
    listener = ptt.listen("pos-kuta-01", heard)
    page = open_phone(browser, hub, _config(hub, ws_broker, root))
    wait_online(page)
    assert page.evaluate("typeof AudioEncoder") == "function"
    time.sleep(1.5)  # the unit is subscribed
    hold(page, 2.5)
    assert wait_until(lambda: list(heard.glob("*.wav")), 10), ptt.stop(listener)
    time.sleep(1.0)
    out = ptt.stop(listener)
    files = list(heard.glob("*.wav"))
    assert len(files) == 1 and "hp-budi" in files[0].name, out
    got = read_wav(files[0])
    said = read_wav(speech[1])
    assert 2.0 < len(got) / 16000 < 3.6, f"{len(got) / 16000:.2f} s recorded"
    score = best_correlation(got, said)
    print(f"phone -> unit: correlation {score:.2f}, {len(got) / 16000:.2f} s")
    assert score > 0.5, f"the unit did not hear the phone's speech (correlation {score:.2f})"
    assert "hp-budi" in out
    assert not page.errors, page.errors


def test_unit_speech_reaches_the_phone(browser, hub, ws_broker, root, arbiter, ptt, speech) -> None:
    page = open_phone(browser, hub, _config(hub, ws_broker, root))
    wait_online(page)
    time.sleep(0.5)
    sent = ptt.send("pos-kuta-02", speech[1], wait=False)
    page.wait_for_selector("#talker[data-talking='1']", timeout=10000)
    assert "pos-kuta-02" in page.text_content("#talker")
    sent.wait(30)
    page.wait_for_function(f"(window.poskoPtt.replay['{GROUP}'] || []).length === 1", timeout=10000)
    pcm = np.array(page.evaluate(f"Array.from(window.poskoPtt.replay['{GROUP}'][0].pcm)"))
    rate = page.evaluate(f"window.poskoPtt.replay['{GROUP}'][0].rate")
    assert rate in (16000, 48000)  # Chromium's Opus decoder gives 48 kHz; Opus 16 kHz is band-limited
    pcm = pcm[:: rate // 16000]
    said = read_wav(speech[1])
    score = best_correlation(pcm * 32768, said)
    print(f"unit -> phone: correlation {score:.2f}, {len(pcm) / 16000:.2f} s")
    assert score > 0.5, f"the phone did not hear the unit (correlation {score:.2f})"
    assert abs(len(pcm) - len(said)) < 0.3 * 16000
    page.wait_for_selector("#talker[data-talking='0']", timeout=8000)
    assert not page.errors, page.errors


def test_installable_and_opens_offline(browser, hub, ws_broker, root) -> None:
    """The PWA: a manifest in Bahasa Indonesia, a service worker that keeps the app shell, so
    the app opens with no network and says it is not connected."""
    import requests

    manifest = requests.get(f"{hub.base}/hp/manifest.webmanifest", timeout=10)
    assert manifest.headers["Content-Type"].startswith("application/manifest+json")
    assert manifest.json()["lang"] == "id" and manifest.json()["display"] == "standalone"
    page = open_phone(browser, hub, _config(hub, ws_broker, root))
    wait_online(page)
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now under the worker's control, which caches the shell
    wait_online(page)
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector("#ptt", timeout=10000)
    try:
        page.wait_for_selector("#conn[data-state='offline']", timeout=15000)
    except Exception:
        raise AssertionError(f"{page.get_attribute('#conn', 'data-state')} {page.errors}") from None
    assert "Tidak tersambung" in page.text_content("#conn")
    assert page.locator("#ptt").is_disabled()
