"""The browser path of the push-to-talk bench (`bench/ptt.py --browser`).

A phone client — the phone app's own talk-group client, `hub/static/phone/ptt.js`, in
Debian's headless Chromium with a fake microphone, over Mosquitto's WebSocket listener —
and a unit — the talk-group client of `posko unit` / `posko ptt` (`TalkGroupClient`, its
own network and playout threads) in this process over plain MQTT — in one talk group, with
the real arbiter (`posko arbiter`) in its own process. Measured, on a clean link and with
the phone's link through `bench/ptt_proxy.py` (60 ± 30 ms each way, 2 % of segments held
for a retransmission):

* grant: the phone's press → the go-ahead tone leaving the phone's speaker (and, apart,
  press → the floor answer handled: when the client decides);
* mouth-to-ear, phone → unit and unit → phone, per 20 ms frame;
* late entry: a phone that joins a spurt already running: its subscription sent → the
  first sound of that spurt leaving its speaker.
* late entry of a phone back in coverage: affiliated before the spurt, its link broken
  (the broker keeps its session), connecting again during the spurt: its CONNACK → the
  first sound, and apart from the start of the reconnection (the handshakes included);
* with `--phones N`, N − 1 more phones that only listen, each in a context of its own:
  unit → phone and phone 1 → phone mouth-to-ear per phone.

Where each clock is read (every time ends up on the bench's `time.time()`):

* the phone's mouth: the moment the 20 ms frame reaches the page from the audio thread
  (the AudioWorklet's message; `performance.now()` in the probe `bench/ptt_browser.js`),
  less the capture buffer Chromium reports for the microphone (`getSettings().latency`,
  10 ms): a sample may wait that long in the device's buffer before the audio thread sees
  it. Chromium's capture path from there to the page is inside the measurement.
* the phone's ear: the audio-clock time the client scheduled the decoded frame at, mapped
  to `performance.now()` by `AudioContext.getOutputTimestamp()` (the output device's own
  estimate of when that sample is heard; it includes the output buffer, ~11 ms here), or
  when the probe's tap saw it rendered, if that was later (the go-ahead);
* the unit's mouth: when its microphone source returned the frame (the capture loop's
  `tx` trace, paced at 20 ms as a sound card delivers frames); its ear: when the frame is
  handed to the speaker (`play` trace; the unit's sound-card buffer is not included, as in
  the rest of bench/ptt.py).
* the page's clock against `time.time()`: the page fetches `/clock` from the bench's HTTP
  server 20 times; offset = server time − the midpoint of the fetch, from the fetch with the
  shortest round trip (its half is the uncertainty). Done before and after each condition;
  the drift between them and the difference to `performance.timeOrigin` are printed.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.correlate import best_correlation  # noqa: E402 - after the path it needs

STATIC = ROOT / "hub" / "static"
PROBE = Path(__file__).with_name("ptt_browser.js")
GROUP = "bench-hp"
PHONE = "hp-bench"
UNIT = "pos-bench-01"

GOALS = {"clean": {"grant_ms_p95": 50, "m2e_ms_p95": 150},
         "mobile": {"m2e_ms_p95": 300, "late_entry_ms_p95": 150, "return_entry_ms_p95": 150}}

PAGE = """<!doctype html><meta charset="utf-8"><title>bench</title>
<script src="/probe.js"></script>
<script src="/static/vendor/mqttjs/mqtt.min.js"></script>
<script src="/static/phone/ptt.js"></script>
<body>bench</body>"""


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


# --- audio ---------------------------------------------------------------------------
def make_speech(folder: Path) -> tuple[Path, np.ndarray]:
    """Indonesian speech (espeak-ng): a 48 kHz WAV for Chromium's fake microphone and the
    same at 16 kHz as int16 samples (the unit's microphone and the comparison)."""
    raw, mic, s16 = folder / "raw.wav", folder / "mic.wav", folder / "speech16k.wav"
    subprocess.run(["espeak-ng", "-v", "id", "-s", "150", "-w", str(raw),
                    "Selamat pagi, ini pos Kuta. Jalan Legian macet, ada kecelakaan ringan di depan pasar."],
                   check=True, capture_output=True)
    for path, rate in ((mic, 48000), (s16, 16000)):
        subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(path)], check=True,
                       capture_output=True)
    with wave.open(str(s16)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return mic, pcm


def windowed_correlation(heard: np.ndarray, said: np.ndarray, window: int = 8000) -> float:
    """The median of `best_correlation` over 0.5 s windows of `heard` that carry sound: a
    jitter buffer that sheds or conceals a frame shifts the rest of a spurt, which lowers
    one correlation over the whole spurt but not the windows'."""
    scores = [best_correlation(heard[i:i + window], said) for i in range(0, len(heard) - window + 1, window)
              if np.sqrt(np.mean(heard[i:i + window].astype(np.float64) ** 2)) > 100]
    return round(float(np.median(scores)), 3) if scores else 0.0


# --- the page's server ---------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        if self.path == "/clock":
            body, kind = json.dumps({"t": time.time() * 1000}).encode(), "application/json"
        elif self.path == "/":
            body, kind = PAGE.encode(), "text/html; charset=utf-8"
        elif self.path == "/probe.js":
            body, kind = PROBE.read_bytes(), "text/javascript"
        elif self.path.startswith("/static/"):
            path = (STATIC / self.path[len("/static/"):]).resolve()
            if not path.is_relative_to(STATIC) or not path.is_file():
                self.send_error(404)
                return
            body, kind = path.read_bytes(), "text/javascript"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def serve_page() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="bench-http").start()
    return server


# --- the unit ------------------------------------------------------------------------
class Unit:
    """A unit's talk-group client in this process, with its own threads, as `posko ptt`."""

    def __init__(self, port: int, root: str, speech: np.ndarray) -> None:
        from firmware.ptt_audio import FramesSource, NullSink
        from gateway.client import Hooks, TalkGroupClient
        from posko.mqtt import MqttLink
        from posko.settings.core import MqttSettings
        from posko.settings.ptt import PttSettings

        self.speech = speech.astype("<i2").tobytes()
        self.talk_s = 1.0
        self.lock = threading.Lock()
        self.events: list[tuple[str, dict]] = []
        self.heard: dict[int, list[bytes]] = {}
        mqtt = MqttSettings(port=port, topic_root=root, keepalive_s=10)
        self.link = MqttLink(mqtt, f"bench-{UNIT}")

        def trace(event: str, **f) -> None:
            if event in ("tx", "rx", "play", "grant", "deny", "tx_end"):
                with self.lock:
                    self.events.append((event, f))

        def rx_audio(unit: str, spurt: int, pcm: bytes) -> None:
            if unit == PHONE:
                with self.lock:
                    self.heard.setdefault(spurt, []).append(pcm)

        def source():
            n = int(self.talk_s * 50)
            frames = [self.speech[i * 640:(i + 1) * 640] for i in range(len(self.speech) // 640)]
            return FramesSource([frames[i % len(frames)] for i in range(n)])

        self.client = TalkGroupClient(self.link, UNIT, PttSettings(), source_factory=source, sink=NullSink(),
                                      hooks=Hooks(trace=trace, rx_audio=rx_audio), group=GROUP,
                                      play_tones=False)

    def start(self) -> Unit:
        self.client.start()
        self.link.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (self.link.connected.is_set()
                                                   and self.client.status()["arbiter_online"]):
            time.sleep(0.05)
        if not self.client.status()["arbiter_online"]:
            raise RuntimeError("the unit sees no arbiter")
        return self

    def press(self, seconds: float) -> None:
        self.talk_s = seconds
        self.client.press()

    def talking(self) -> bool:
        return self.client.tx.value != "idle"

    def talk(self, seconds: float) -> None:
        """Press, talk `seconds` (its microphone runs out), release."""
        self.press(seconds)
        deadline = time.monotonic() + seconds + 3
        time.sleep(0.05)
        while time.monotonic() < deadline and self.talking():
            time.sleep(0.01)
        self.client.release()

    def take(self) -> tuple[list[tuple[str, dict]], dict[int, list[bytes]]]:
        with self.lock:
            events, heard = self.events, self.heard
            self.events, self.heard = [], {}
        return events, heard

    def stop(self) -> None:
        self.client.stop()
        self.link.stop()


# --- one condition -------------------------------------------------------------------
def calibrate(page, rounds: int = 20) -> dict:
    """The page's clock against time.time(): epoch_ms = perf_ms + offset_ms."""
    got = page.evaluate(f"bench.clock({rounds})")
    best = min(got["samples"], key=lambda s: s[1] - s[0])
    t0, t1, server = best
    offset = server - (t0 + t1) / 2
    return {"offset_ms": offset, "uncertainty_ms": round((t1 - t0) / 2, 2),
            "time_origin_minus_offset_ms": round(got["timeOrigin"] - offset, 2),
            "date_minus_perf_ms": round(got["dateMinusPerf"], 2)}


def wait_for(page, expression: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return True
        time.sleep(0.02)
    return False


def _listener(browser, http_port: int, args: str, i: int):
    """Another phone that only listens: a page in a context of its own (its own renderer
    process, audio context and MQTT connection), as another member's phone."""
    context = browser.new_context(permissions=["microphone"])
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{http_port}/")
    page.evaluate(f"bench.make('main', 'hp-bench-{i}', {args}, true)")
    return context, page


def _measure(name: str, context, http_port: int, url: str, root: str, unit: Unit, shape, spurts: int,
             late: int, spurt_s: float, browser=None, phones: int = 1):
    """Drive one condition in a fresh browser context; what the page and the clock saw, and
    for each other listening phone (`phones` - 1 of them) what its page and clock saw."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"http://127.0.0.1:{http_port}/")
    worklet = "/static/phone/capture-worklet.js"
    args = json.dumps([url, GROUP, root, worklet])[1:-1]
    page.evaluate(f"bench.make('main', '{PHONE}', {args}, true)")
    if not wait_for(page, "bench.online('main')", 15):
        raise RuntimeError(f"{name}: the phone did not connect to {url}: {errors}")
    others = [_listener(browser, http_port, args, i) for i in range(2, phones + 1)]
    for i, (_ctx, other) in enumerate(others, 2):
        if not wait_for(other, "bench.online('main')", 15):
            raise RuntimeError(f"{name}: phone {i} did not connect to {url}")
    time.sleep(0.5)  # the retained floor state
    unit.take()
    clock0 = calibrate(page)
    others_clock0 = [calibrate(other) for _ctx, other in others]
    settle = 1.0 if shape is None else 1.6  # the last frames (and their retransmissions) play out

    # 1. The phone talks, the unit listens.
    for _ in range(spurts):
        page.evaluate("bench.pressKey('main')")
        wait_for(page, "bench.press.result !== undefined", 3)
        time.sleep(spurt_s)
        page.evaluate("bench.release('main')")
        page.evaluate("bench.settle()")
        time.sleep(settle)
    # 2. The unit talks, the phone listens.
    for _ in range(spurts):
        unit.talk(spurt_s)
        time.sleep(settle)
    # 3. Late entry, 0.6 s into a unit's spurt: a phone with a new session joins (it
    # subscribes), and a phone that was affiliated before the spurt and lost its link comes
    # back (its session is still at the broker).
    for k in range(late):
        page.evaluate(f"bench.make('ret{k}', 'hp-ret-{k}', {args}, true)")
        wait_for(page, f"bench.online('ret{k}')", 5)
        time.sleep(0.3 if shape is None else 0.8)  # its SUBACK and the retained floor state
        page.evaluate(f"bench.cut('ret{k}')")
        unit.press(3.0)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and unit.client.tx.value != "talking":
            time.sleep(0.01)
        time.sleep(0.6)
        page.evaluate(f"bench.make('late{k}', 'hp-late-{k}', {args}, true) && bench.resume('ret{k}')")
        wait_for(page, f"bench.firstRx('late{k}') && bench.firstRx('ret{k}')", 3)
        time.sleep(0.3)
        page.evaluate(f"bench.drop('late{k}') && bench.drop('ret{k}')")
        deadline = time.monotonic() + 5
        while unit.talking() and time.monotonic() < deadline:
            time.sleep(0.02)
        unit.client.release()
        time.sleep(settle)
    clock1 = calibrate(page)
    data = page.evaluate("bench.dump()")
    replay = page.evaluate(f"bench.lastReplay('main', '{GROUP}')")
    listeners = []
    for (ctx, other), c0 in zip(others, others_clock0, strict=True):
        c1 = calibrate(other)
        listeners.append({"data": other.evaluate("bench.dump()"), "offset_ms": (c0["offset_ms"] + c1["offset_ms"]) / 2,
                          "uncertainty_ms": max(c0["uncertainty_ms"], c1["uncertainty_ms"])})
        ctx.close()
    data["listeners"] = listeners
    return data, replay, clock0, clock1, errors


def run_condition(name: str, browser, http_port: int, ws_port: int, root: str, unit: Unit,
                  shape, spurts: int, late: int, spurt_s: float, speech: np.ndarray, phones: int = 1) -> dict:
    from ptt_proxy import LinkProxy

    proxy = LinkProxy(("127.0.0.1", ws_port), shape).start() if shape is not None else None
    url = f"ws://127.0.0.1:{proxy.port if proxy else ws_port}"
    context = browser.new_context(permissions=["microphone"])
    try:
        data, replay, clock0, clock1, errors = _measure(name, context, http_port, url, root, unit, shape,
                                                        spurts, late, spurt_s, context.browser, phones)
    finally:
        context.close()
        if proxy is not None:
            proxy.stop()
    events, heard = unit.take()
    if spurts and not data["captures"]:
        raise RuntimeError(f"{name}: the probe saw no microphone frame (has ptt.js changed how it captures?)")

    # Everything on time.time() (s): the page's times through the mean of the two offsets.
    offset = (clock0["offset_ms"] + clock1["offset_ms"]) / 2
    cap_ms = (data["captureLatency"] or 0.0) * 1000

    def epoch(perf_ms: float) -> float:
        return (perf_ms + offset) / 1000

    presses = data["presses"]
    grant_heard = [p["goahead"] - p["t"] for p in presses if p.get("goahead") is not None]
    grant_decided = [p["decided"] - p["t"] for p in presses if p.get("result") == "talking"]
    tone_out = [p["goahead"] - p["decided"] for p in presses
                if p.get("goahead") is not None and p.get("result") == "talking"]
    granted = sum(1 for p in presses if p.get("result") == "talking")
    # How much later than scheduled the go-ahead's first sample was rendered (the tap).
    tone_late = [p["lateStart"] for p in presses if p.get("lateStart") is not None]

    mouth = {(c["spurt"], c["n"]): epoch(c["t"]) - cap_ms / 1000 for c in data["captures"]}
    unit_plays = [f for e, f in events if e == "play" and f["unit"] == PHONE and f["action"] == "play"]
    p2u = [(f["t"] - mouth[(f["spurt"], f["seq"])]) * 1000 for f in unit_plays if (f["spurt"], f["seq"]) in mouth]
    p2u_net = [(f["t"] - mouth[(f["spurt"], f["seq"])]) * 1000 for e, f in events
               if e == "rx" and f["unit"] == PHONE and (f["spurt"], f["seq"]) in mouth]
    phone_out = [o for o in data["outs"] if o["key"] == "main"]

    first_seq: dict[int, int] = {}
    unit_mouth: dict[tuple[int, int], float] = {}
    for e, f in events:
        if e == "tx":
            seq0 = first_seq.setdefault(f["spurt"], f["seq"])
            unit_mouth[(f["spurt"], (f["seq"] - seq0) & 0xFFFF)] = f["t"]
    main_rx = [r for r in data["rx"] if r["key"] == "main"]
    u2p = [(epoch(r["ear"]) - unit_mouth[(r["spurt"], r["n"])]) * 1000 for r in main_rx
           if (r["spurt"], r["n"]) in unit_mouth]
    u2p_net = [(epoch(r["arrived"]) - unit_mouth[(r["spurt"], r["n"])]) * 1000 for r in main_rx
               if r["arrived"] is not None and (r["spurt"], r["n"]) in unit_mouth]
    unit_sent = sum(1 for e, f in events if e == "tx")

    # The phone that came back: from its CONNACK (the session found) and from the moment it
    # began to connect again (the TCP, WebSocket and MQTT handshakes included).
    ret_ms, ret_net, ret_connect, ret_rendered, ret_sessions = [], [], [], [], 0
    for k in range(late):
        key = f"ret{k}"
        resume = next((r["t"] for r in data["resumes"] if r["key"] == key), None)
        join = next((j for j in data["joins"] if j["key"] == key and resume is not None and j["t"] > resume), None)
        first = next((r for r in data["rx"] if r["key"] == key), None)
        if join is None or first is None:
            continue
        ret_sessions += join.get("how") == "session"
        ret_ms.append(first["ear"] - join["t"])
        ret_connect.append(first["ear"] - resume)
        if first["arrived"] is not None:
            ret_net.append(first["arrived"] - join["t"])
        if key in data["onsets"]:
            ret_rendered.append(data["onsets"][key] - first["ear"])

    late_ms, late_net, late_play = [], [], []
    for k in range(late):
        key = f"late{k}"
        join = next((j["t"] for j in data["joins"] if j["key"] == key), None)
        first = next((r for r in data["rx"] if r["key"] == key), None)
        if join is not None and first is not None:
            late_ms.append(first["ear"] - join)
            if first["arrived"] is not None:
                late_net.append(first["arrived"] - join)
                late_play.append(first["ear"] - first["arrived"])

    # The other phones: each one's unit → phone, and phone 1 → it (its mouth on phone 1's
    # clock, its ear on this phone's own), per phone.
    per_phone = []
    for i, other in enumerate(data.get("listeners", []), 2):
        od, off = other["data"], other["offset_ms"]
        rx = [r for r in od["rx"] if r["key"] == "main"]
        o_u2p = [((r["ear"] + off) / 1000 - unit_mouth[(r["spurt"], r["n"])]) * 1000 for r in rx
                 if (r["spurt"], r["n"]) in unit_mouth]
        o_p2p = [((r["ear"] + off) / 1000 - mouth[(r["spurt"], r["n"])]) * 1000 for r in rx
                 if (r["spurt"], r["n"]) in mouth]
        per_phone.append({"phone": i, "m2e_unit_to_phone_ms_p50": pct(o_u2p, 50),
                          "m2e_unit_to_phone_ms_p95": pct(o_u2p, 95),
                          "m2e_phone_to_phone_ms_p50": pct(o_p2p, 50), "m2e_phone_to_phone_ms_p95": pct(o_p2p, 95),
                          "frames_from_unit": len(o_u2p), "frames_from_phone_1": len(o_p2p),
                          "late_frames": (od["stats"] or {}).get("late"), "clock_uncertainty_ms": other["uncertainty_ms"]})

    heard_pcm = np.frombuffer(b"".join(b"".join(v) for v in heard.values()), "<i2")
    corr_p2u = windowed_correlation(heard_pcm, speech)
    corr_u2p = windowed_correlation(np.array(replay["pcm16k"]), speech) if replay else 0.0

    fig = {
        "condition": name, "link": None if shape is None else {
            "delay_ms": shape.delay_ms, "jitter_ms": shape.jitter_ms, "loss": shape.loss, "rto_ms": shape.rto_ms},
        "presses": len(presses), "granted": granted,
        "grant_ms_p50": pct(grant_heard, 50), "grant_ms_p95": pct(grant_heard, 95),
        "grant_decided_ms_p50": pct(grant_decided, 50), "grant_decided_ms_p95": pct(grant_decided, 95),
        "goahead_after_grant_ms_p50": pct(tone_out, 50), "goahead_after_grant_ms_p95": pct(tone_out, 95),
        "goahead_rendered": len(tone_late),
        "goahead_started_late_ms_max": round(max(tone_late), 2) if tone_late else None,
        "m2e_phone_to_unit_ms_p50": pct(p2u, 50), "m2e_phone_to_unit_ms_p95": pct(p2u, 95),
        "phone_to_unit_arrival_ms_p50": pct(p2u_net, 50), "phone_to_unit_arrival_ms_p95": pct(p2u_net, 95),
        "m2e_unit_to_phone_ms_p50": pct(u2p, 50), "m2e_unit_to_phone_ms_p95": pct(u2p, 95),
        "unit_to_phone_arrival_ms_p50": pct(u2p_net, 50), "unit_to_phone_arrival_ms_p95": pct(u2p_net, 95),
        "late_entry_ms_p50": pct(late_ms, 50), "late_entry_ms_p95": pct(late_ms, 95),
        "late_entry_arrival_ms_p50": pct(late_net, 50), "late_entry_arrival_ms_p95": pct(late_net, 95),
        "late_entry_after_arrival_ms_p50": pct(late_play, 50), "late_entry_after_arrival_ms_p95": pct(late_play, 95),
        "late_entries": len(late_ms),
        "phones": 1 + len(per_phone), "other_phones": per_phone,
        "return_entry_ms_p50": pct(ret_ms, 50), "return_entry_ms_p95": pct(ret_ms, 95),
        "return_entry_arrival_ms_p50": pct(ret_net, 50), "return_entry_arrival_ms_p95": pct(ret_net, 95),
        "return_entry_from_reconnect_ms_p50": pct(ret_connect, 50),
        "return_entry_from_reconnect_ms_p95": pct(ret_connect, 95),
        "return_entries": len(ret_ms), "return_sessions_found": ret_sessions,
        # The tap's first onset against the scheduled ear of the first frame (≈ 0 when the
        # first sound started when it was scheduled).
        "return_entry_rendered_minus_scheduled_ms_max": round(max(ret_rendered), 2) if ret_rendered else None,
        # The phone's jitter buffer: frames that would have been late (each grows its delay
        # by 20 ms for the rest of the spurt), of the frames it received.
        "phone_late_frames": (data["stats"] or {}).get("late"), "phone_frames_in": (data["stats"] or {}).get("framesIn"),
        # Frames the phone concealed (a gap in a spurt's timestamps: a frame that never came).
        # Over MQTT on TCP a frame is late, never lost, unless the link drops; this is what
        # Opus's in-band FEC or a redundant previous frame could have repaired.
        "phone_concealed_frames": (data["stats"] or {}).get("concealed"),
        # Quiet frames the phone left out to give back the delay a hold added, and frames
        # later than its buffer's maximum (dropped).
        "phone_shed_frames": (data["stats"] or {}).get("shed"),
        "phone_dropped_frames": (data["stats"] or {}).get("dropped"),
        "frames_phone_sent": len(phone_out), "frames_unit_played": len(unit_plays), "frames_matched_p2u": len(p2u),
        "frames_unit_sent": unit_sent, "frames_phone_played": len(main_rx), "frames_matched_u2p": len(u2p),
        "audio": {"phone_to_unit_correlation": corr_p2u, "unit_to_phone_correlation": corr_u2p,
                  "phone_to_unit_rms": round(float(np.sqrt(np.mean(heard_pcm.astype(float) ** 2))), 1)
                  if len(heard_pcm) else 0.0,
                  "unit_to_phone_seconds": round(len(replay["pcm16k"]) / 16000, 2) if replay else 0.0},
        "clock": {"offset_drift_ms": round(clock1["offset_ms"] - clock0["offset_ms"], 2),
                  "uncertainty_ms": max(clock0["uncertainty_ms"], clock1["uncertainty_ms"]),
                  "time_origin_minus_offset_ms": clock0["time_origin_minus_offset_ms"],
                  "date_minus_perf_ms": clock0["date_minus_perf_ms"],
                  # Causality: a frame cannot arrive before it was captured, nor be heard
                  # before it arrived; a wrong offset would show here first.
                  "capture_to_arrival_min_ms": round(min(u2p_net), 2) if u2p_net else None,
                  "capture_buffer_ms": cap_ms, "output_timestamp_fallbacks": data["fallback"]},
        # The phone's speaker context: its rate, render buffer and output latency (Chromium's).
        "phone_output": data.get("output"),
        "page_errors": (errors + data["errors"])[:5],
        "proxy": proxy.summary() if proxy is not None else None,
    }
    goals = GOALS["clean" if shape is None else "mobile"]
    both = (fig["m2e_phone_to_unit_ms_p95"], fig["m2e_unit_to_phone_ms_p95"])
    measured = {"m2e_ms_p95": max(both) if None not in both else None}  # the worse direction
    fig["goals"] = {}
    for key, goal in goals.items():
        value = measured.get(key, fig.get(key))
        fig["goals"][key] = {"goal": goal, "measured": value, "met": value is not None and value <= goal}
    return fig


def print_condition(f: dict) -> None:
    print(f"{f['condition']:>7}: grant (press → go-ahead heard) p50/p95 {f['grant_ms_p50']}/{f['grant_ms_p95']} ms"
          f" (decided {f['grant_decided_ms_p50']}/{f['grant_decided_ms_p95']}, then heard"
          f" {f['goahead_after_grant_ms_p50']}/{f['goahead_after_grant_ms_p95']} later; {f['granted']}/{f['presses']} granted)"
          f" | mouth-to-ear phone→unit {f['m2e_phone_to_unit_ms_p50']}/{f['m2e_phone_to_unit_ms_p95']} ms"
          f" (arrival {f['phone_to_unit_arrival_ms_p50']}/{f['phone_to_unit_arrival_ms_p95']};"
          f" {f['frames_matched_p2u']}/{f['frames_phone_sent']} frames)"
          f" | unit→phone {f['m2e_unit_to_phone_ms_p50']}/{f['m2e_unit_to_phone_ms_p95']} ms"
          f" (arrival {f['unit_to_phone_arrival_ms_p50']}/{f['unit_to_phone_arrival_ms_p95']};"
          f" {f['frames_matched_u2p']}/{f['frames_unit_sent']} frames, {f['phone_late_frames']} late,"
          f" {f['phone_concealed_frames']} concealed, {f['phone_shed_frames']} shed, {f['phone_dropped_frames']} dropped)"
          f" | late entry {f['late_entry_ms_p50']}/{f['late_entry_ms_p95']} ms (join → first frame arrives"
          f" {f['late_entry_arrival_ms_p50']}/{f['late_entry_arrival_ms_p95']}, arrival → heard"
          f" {f['late_entry_after_arrival_ms_p50']}/{f['late_entry_after_arrival_ms_p95']}; {f['late_entries']})"
          f" | back in coverage (CONNACK → heard) {f['return_entry_ms_p50']}/{f['return_entry_ms_p95']} ms"
          f" (→ first frame {f['return_entry_arrival_ms_p50']}/{f['return_entry_arrival_ms_p95']}; from the reconnect"
          f" {f['return_entry_from_reconnect_ms_p50']}/{f['return_entry_from_reconnect_ms_p95']};"
          f" {f['return_sessions_found']}/{f['return_entries']} sessions found)"
          f" | correlation {f['audio']['phone_to_unit_correlation']}/{f['audio']['unit_to_phone_correlation']}"
          f" | clock ±{f['clock']['uncertainty_ms']} ms, drift {f['clock']['offset_drift_ms']} ms,"
          f" timeOrigin {f['clock']['time_origin_minus_offset_ms']:+} ms"
          f" | go-ahead rendered {f['goahead_rendered']}, at most {f['goahead_started_late_ms_max']} ms late"
          f" | speaker {f['phone_output']}", flush=True)
    for o in f["other_phones"]:
        print(f"         phone {o['phone']}: unit→phone {o['m2e_unit_to_phone_ms_p50']}/{o['m2e_unit_to_phone_ms_p95']} ms"
              f" ({o['frames_from_unit']} frames), phone 1→phone {o['m2e_phone_to_phone_ms_p50']}/"
              f"{o['m2e_phone_to_phone_ms_p95']} ms ({o['frames_from_phone_1']} frames), {o['late_frames']} late", flush=True)
    for k, g in f["goals"].items():
        print(f"         goal {k} ≤ {g['goal']}: {g['measured']} → {'met' if g['met'] else 'NOT met'}", flush=True)
    if f["proxy"]:
        print(f"         proxy: {f['proxy']}", flush=True)
    if f["page_errors"]:
        print(f"         page errors: {f['page_errors']}", flush=True)


def main(quick: bool, only: list[str], spurts: int = 0, late: int = 0, spurt_s: float = 1.5,
         seed: int = 1, phones: int = 1) -> dict:
    from playwright.sync_api import sync_playwright
    from ptt_proxy import LinkShape

    from posko.broker import BrokerConfig, MosquittoProcess, free_port
    from tests.support.browser import CHROMIUM_ARGS, chromium_path

    spurts = spurts or (5 if quick else 20)
    late = late or (3 if quick else 10)
    plan = [("clean", None), ("mobile", LinkShape(60, 30, 0.02, 200))]
    if only:
        plan = [p for p in plan if p[0] in only]
    started = time.monotonic()
    load0 = os.getloadavg()
    root = "bench/browser/posko/v1"
    figures = []
    with tempfile.TemporaryDirectory(prefix="posko-bench-hp-") as tmpname:
        tmp = Path(tmpname)
        mic, speech = make_speech(tmp)
        cfg = BrokerConfig(state_dir=tmp / "broker", port=free_port(), websockets_port=free_port(),
                           persistence=False)
        broker = MosquittoProcess(cfg).start()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("POSKO_")},
               "POSKO_MQTT_PORT": str(cfg.port), "POSKO_MQTT_TOPIC_ROOT": root,
               "POSKO_POSKO_STATE_DIR": str(tmp / "arbiter"), "POSKO_POSKO_LOG_LEVEL": "WARNING"}
        arbiter = subprocess.Popen([sys.executable, "-m", "posko", "arbiter"], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = serve_page()
        unit = None
        try:
            unit = Unit(cfg.port, root, speech).start()
            path = chromium_path()
            if path is None:
                raise RuntimeError("Debian's chromium is not installed: run ./setup.sh dev")
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=path, headless=True, args=[
                    *CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic}",
                    "--autoplay-policy=no-user-gesture-required"])
                try:
                    for name, shape in plan:
                        fig = run_condition(name, browser, server.server_port, cfg.websockets_port, root, unit,
                                            shape, spurts, late, spurt_s, speech, phones)
                        print_condition(fig)
                        figures.append(fig)
                finally:
                    browser.close()
        finally:
            if unit is not None:
                unit.stop()
            server.shutdown()
            arbiter.terminate()
            arbiter.wait(10)
            broker.stop()
    goals_met = all(g["met"] for f in figures for g in f["goals"].values())
    summary = {"bench": "ptt-browser", "quick": quick, "cpus": os.cpu_count(), "phones": phones,
               "load_avg": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
               "spurts": spurts, "spurt_s": spurt_s, "late_entries": late,
               "goals_met": goals_met, "seconds": round(time.monotonic() - started, 1), "conditions": figures}
    for f in figures:
        for k in ("grant_ms_p95", "m2e_phone_to_unit_ms_p95", "m2e_unit_to_phone_ms_p95", "late_entry_ms_p95",
                  "return_entry_ms_p95"):
            summary[f"{f['condition']}_{k}"] = f[k]
    return summary
