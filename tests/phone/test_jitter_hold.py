"""The browser's jitter buffer through a TCP hold: on MQTT over a WebSocket a lost segment
is not lost but late, and every frame behind it waits for its retransmission, then all come
at once. The phone moves the rest of the spurt back by exactly the hold (the frames of the
burst play one after the other, never two at once) and gives that delay back in the pauses
(quiet frames left out) instead of keeping it for the rest of the spurt."""

from __future__ import annotations

import random
import statistics
import time

import numpy as np

from gateway.codec import Encoder
from gateway.packet import Frame
from tests.phone.conftest import GROUP, open_phone, read_wav, wait_online, wait_until
from tests.support.mqtt import Client

HOLD_AT, HOLD_FRAMES, HOLD_S = 40, 11, 0.22

WATCH = """() => {
  const c = window.poskoPtt;
  window.heard = [];
  c.on("frame", (dir, spurt, ts, ahead, arrived, at) => { if (dir === "in") window.heard.push([ts, at]); });
  return true;
}"""


def _send_with_a_hold(client: Client, root: str, pcm: np.ndarray) -> int:
    """A unit's spurt in real time whose frames HOLD_AT.. wait HOLD_S, then all go at once
    with the next one (as TCP delivers after a retransmission); no arbiter runs."""
    enc = Encoder()
    spurt = random.randrange(1, 2**32)
    topic = f"{root}/tg/{GROUP}/audio/pos-kuta-01"
    frames = len(pcm) // 320
    held: list[bytes] = []
    start = time.monotonic()
    for i in range(frames):
        payload = enc.encode(pcm[i * 320:(i + 1) * 320].astype("<i2").tobytes())
        frame = Frame(seq=i, timestamp=i * 320, spurt=spurt, payload=payload, start=i == 0).to_bytes()
        if HOLD_AT <= i < HOLD_AT + HOLD_FRAMES - 1:
            held.append(frame)  # behind the lost segment
        elif i == HOLD_AT + HOLD_FRAMES - 1:
            # The retransmission comes: the held frames and this one at once.
            time.sleep(max(0.0, start + HOLD_AT * 0.02 + HOLD_S - time.monotonic()))
            for f in [*held, frame]:
                client.publish(topic, f, qos=0)
            held = []
        else:
            client.publish(topic, frame, qos=0)
        time.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
    client.publish(topic, Frame(seq=frames, timestamp=frames * 320, spurt=spurt, end=True).to_bytes(), qos=0)
    return frames


def test_a_hold_moves_the_spurt_back_once_and_the_pauses_give_it_back(browser, hub, ws_broker, root, speech) -> None:
    config = {"unit": "hp-budi", "name": "Budi", "password": "", "groups": [GROUP],
              "broker": f"ws://127.0.0.1:{ws_broker.websockets_port}", "root": root}
    page = open_phone(browser, hub, config)
    wait_online(page)
    page.evaluate(WATCH)
    talker = Client(ws_broker.port)
    assert talker.wait_connected()
    said = read_wav(speech[1])
    said = np.concatenate([said, said])
    frames = _send_with_a_hold(talker, root, said)
    assert wait_until(lambda: page.evaluate(f"(window.poskoPtt.replay['{GROUP}'] || []).length") == 1, 10)
    heard = sorted(page.evaluate("window.heard"))
    stats = page.evaluate("window.poskoPtt.stats")
    # Every frame either played or was a quiet one left out; none concealed or dropped.
    assert len(heard) + stats["shed"] == frames, (len(heard), stats, frames)
    assert stats["concealed"] == 0 and stats["dropped"] == 0, stats
    # Never two frames at once: each starts when the one before it has ended.
    starts = [at for _ts, at in heard]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.0195, f"frames overlap: {min(gaps) * 1000:.1f} ms apart"
    # The playout delay (start − timestamp) before the hold, after it, and at the end.
    delay = {round(ts * 50): at - ts for ts, at in heard}
    before = statistics.median(delay[i] for i in range(5, HOLD_AT) if i in delay)
    after = delay[HOLD_AT + HOLD_FRAMES - 1]
    end = statistics.median(d for i, d in delay.items() if i >= frames - 25)
    print(f"delay before the hold {before * 1000:.0f} ms, after it {after * 1000:.0f} ms, "
          f"at the end {end * 1000:.0f} ms; {stats['shed']} shed, {stats['late']} late")
    assert after - before > 0.12, (before, after)  # the hold was heard as one
    assert end - before < 0.045, (before, end)  # and given back
    talker.close()
    assert not page.errors, page.errors
