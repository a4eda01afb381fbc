"""Concealment of lost frames in the browser's receiver: a talker whose every tenth frame is
lost on the way; the phone fills each gap (the last frame heard, fading) instead of playing
silence, and conceals nothing that was not lost."""

from __future__ import annotations

import random
import time

import numpy as np

from gateway.codec import Encoder
from gateway.packet import Frame
from tests.phone.conftest import GROUP, open_phone, read_wav, wait_online, wait_until
from tests.support.mqtt import Client


def _send(client: Client, root: str, pcm: np.ndarray, drop: set[int]) -> int:
    """Publish `pcm` as a unit's spurt in real time, without the frames in `drop`; returns
    how many frames the spurt has. No arbiter runs: the phone plays the first talker."""
    enc = Encoder()
    spurt = random.randrange(1, 2**32)
    topic = f"{root}/tg/{GROUP}/audio/pos-kuta-01"
    frames = len(pcm) // 320
    start = time.monotonic()
    for i in range(frames):
        payload = enc.encode(pcm[i * 320:(i + 1) * 320].astype("<i2").tobytes())
        if i not in drop:
            client.publish(topic, Frame(seq=i, timestamp=i * 320, spurt=spurt, payload=payload,
                                        start=i == 0).to_bytes(), qos=0)
        time.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
    client.publish(topic, Frame(seq=frames, timestamp=frames * 320, spurt=spurt, end=True).to_bytes(), qos=0)
    return frames


def _frame_rms(pcm: np.ndarray, i: int, size: int) -> float:
    part = pcm[i * size:(i + 1) * size]
    return float(np.sqrt(np.mean(part ** 2))) if len(part) else 0.0


def test_lost_frames_are_concealed(browser, hub, ws_broker, root, speech) -> None:
    config = {"unit": "hp-budi", "name": "Budi", "password": "", "groups": [GROUP],
              "broker": f"ws://127.0.0.1:{ws_broker.websockets_port}", "root": root}
    page = open_phone(browser, hub, config)
    wait_online(page)
    talker = Client(ws_broker.port)
    assert talker.wait_connected()
    said = read_wav(speech[1])
    drop = set(range(15, len(said) // 320 - 5, 10))
    frames = _send(talker, root, said, drop)
    assert wait_until(lambda: page.evaluate(f"(window.poskoPtt.replay['{GROUP}'] || []).length") == 1, 10)
    concealed = page.evaluate("window.poskoPtt.stats.concealed")
    assert concealed == len(drop), f"{concealed} frames concealed, {len(drop)} lost"
    pcm = np.array(page.evaluate(f"Array.from(window.poskoPtt.replay['{GROUP}'][0].pcm)"))
    rate = page.evaluate(f"window.poskoPtt.replay['{GROUP}'][0].rate")
    size = rate // 50
    assert abs(len(pcm) / size - frames) <= 2, (len(pcm) / size, frames)
    # Where the talker was speaking around a lost frame, the gap is filled, not silent.
    speaking = [i for i in sorted(drop)
                if _frame_rms(said, i - 1, 320) > 300 and _frame_rms(said, i + 1, 320) > 300]
    assert len(speaking) >= 5, speaking
    filled = [i for i in speaking if _frame_rms(pcm, i, size) > 0.2 * _frame_rms(pcm, i - 1, size)]
    assert filled == speaking, f"silent gaps at frames {sorted(set(speaking) - set(filled))}"
    # Every frame played, but for quiet ones the buffer left out to give back the delay a
    # late frame added (on a loaded machine the page's main thread makes frames late).
    stats = page.evaluate("window.poskoPtt.stats")
    assert stats["played"][GROUP] + stats["shed"] >= frames - 2, stats
    assert stats["dropped"] == 0, stats
    talker.close()
    assert not page.errors, page.errors
