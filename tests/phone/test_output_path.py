"""The phone's output path: what the client itself adds between asking for a sound and the
output device playing it (the speaker's AudioContext, how far ahead a sound is scheduled).

The ear is the output device's own estimate (`AudioContext.getOutputTimestamp()`), and the
start is what the context really rendered: the bench's probe (bench/ptt_browser.js) taps
everything the client connects to the destination and notes each onset on the audio clock,
so a sound scheduled too close to be rendered in time would show as starting late."""

from __future__ import annotations

import statistics
from pathlib import Path

from tests.phone.conftest import GROUP, open_phone, wait_online

PROBE = Path(__file__).resolve().parents[2] / "bench" / "ptt_browser.js"

TONE = """async () => {
  const c = window.poskoPtt;
  const ctx = c.ensureAudio();
  await ctx.benchTap;
  await new Promise((r) => setTimeout(r, 300));
  const out = [];
  let at = null;
  c.on("tone", (name, t) => { at = t; });
  for (let i = 0; i < 5; i++) {
    at = null;
    const asked = performance.now();
    c.tone("roger");
    await new Promise((r) => setTimeout(r, 400));
    const on = ctx.benchOnsets.find((t) => t >= at - 0.0005);
    const ts = ctx.getOutputTimestamp();
    out.push({ asked: asked, at: at, on: on === undefined ? null : on,
               heard: on === undefined ? null : ts.performanceTime + (on - ts.contextTime) * 1000 });
  }
  return { tones: out, rate: ctx.sampleRate, base: ctx.baseLatency, output: ctx.outputLatency };
}"""


def test_a_tone_is_heard_within_the_output_path_and_starts_when_scheduled(browser, hub, ws_broker, root) -> None:
    config = {"unit": "hp-budi", "name": "Budi", "password": "", "groups": [GROUP],
              "broker": f"ws://127.0.0.1:{ws_broker.websockets_port}", "root": root}
    page = open_phone(browser, hub, config, init_scripts=(PROBE,))
    wait_online(page)
    got = page.evaluate(TONE)
    tones = got["tones"]
    # Every tone was rendered, and none later than the client scheduled it (±1 sample):
    # the ear read from the scheduled time is the ear of the sound itself.
    assert all(t["on"] is not None for t in tones), tones
    late = [(t["on"] - t["at"]) * 1000 for t in tones]
    assert max(late) <= 0.1, late
    # From asking to hearing: the scheduling lead plus the context's render buffer and the
    # device's output latency. A 16 kHz "interactive" context with a 10 ms lead took ~52 ms.
    heard = [t["heard"] - t["asked"] for t in tones]
    assert statistics.median(heard) <= 25, (heard, got["base"], got["output"])
    assert got["base"] + got["output"] <= 0.02, got
    assert not page.errors, page.errors
