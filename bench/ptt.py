#!/usr/bin/env python3
"""Push-to-talk benchmark: floor grant time, mouth-to-ear delay, bandwidth, CPU per listener.

One Mosquitto on loopback, the arbiter, and talkers in this process; listeners run in
separate worker processes (up to --max-procs, the listeners spread over them). Scenarios:

* 1 talker → N listeners for N in 1, 10, 50, 200 (`--quick`: N = 10 only);
* 20 groups talking at once (one talker and one listener each).

Mouth-to-ear is measured in software: from the moment a frame was captured (read from the
talker's source) to the moment the listener hands the decoded frame to its speaker, so the
jitter buffer is included and sound-card buffers are not. Bandwidth counts the frames as
sent (12-byte header + Opus) and, separately, with the MQTT PUBLISH framing and topic.

Usage:  .venv/bin/python bench/ptt.py [--quick] [--seconds 10]
        .venv/bin/python bench/ptt.py --browser [--quick] [--only clean|mobile] [--phones N]
Prints figures per scenario and ends with ONE JSON line.

`--browser` measures the browser path instead (bench/ptt_browser.py): a phone client in
headless Chromium and a unit in one talk group, grant, mouth-to-ear both ways and late
entry, on a clean link and through a proxy with a mobile link's delay and loss
(bench/ptt_proxy.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from firmware.ptt_audio import FramesSource, NullSink  # noqa: E402
from gateway.client import Hooks, TalkGroupClient  # noqa: E402
from gateway.codec import CodecParams  # noqa: E402
from posko import topics  # noqa: E402
from posko.mqtt import MqttLink  # noqa: E402
from posko.settings.core import MqttSettings  # noqa: E402
from posko.settings.ptt import PttSettings  # noqa: E402

PARAMS = CodecParams()


def speechlike(seconds: float, seed: int) -> list[bytes]:
    """A voiced, syllable-modulated signal: Opus codes it like speech, not like a steady tone."""
    rng = np.random.default_rng(seed)
    n = np.arange(int(seconds * 16000))
    f0 = 110 + 30 * np.sin(2 * np.pi * 0.7 * n / 16000)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * n / 16000), 0, None) ** 0.5
    x = (5000 * voiced * envelope + 300 * rng.standard_normal(len(n))).astype("<i2").tobytes()
    step = PARAMS.frame_bytes
    return [x[i:i + step] for i in range(0, len(x) - step + 1, step)]


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


# --- worker process: listeners and/or talkers ----------------------------------------
def worker(args: argparse.Namespace) -> None:
    """Listeners listen until the parent writes "stop"; talkers talk after "go".

    Every unit is its own client (own MQTT connection, jitter buffers, decoder, threads),
    as on a real unit; several live in one process so that hundreds fit on a laptop.
    """
    mqtt = MqttSettings(port=args.port, topic_root=args.root, keepalive_s=10)
    ptt = PttSettings()
    plays: list[tuple[str, int, int, float, str]] = []
    events: list[tuple[str, dict]] = []
    lock = threading.Lock()
    clients, talkers = [], []
    raw = []
    poller = Poller(PARAMS.frame_ms / 1000)
    for spec in filter(None, args.units.split(",")):
        unit, group, role = spec.split("@")
        if role == "r":
            raw.append(_raw_listener(mqtt, unit, group, plays, lock))
            continue

        def trace(event: str, _u=unit, **f) -> None:
            if event == "play":
                plays.append((_u, f["spurt"], f["seq"], f["t"], f["action"]))  # atomic under the GIL
            elif event in ("tx", "grant", "deny"):
                with lock:
                    events.append((event, f))

        frames = speechlike(args.spurt_s, seed=sum(unit.encode())) if role == "t" else []
        link = MqttLink(mqtt, f"bench-{unit}")
        client = TalkGroupClient(link, unit, ptt, source_factory=lambda fr=frames: FramesSource(fr),
                                 sink=NullSink(), hooks=Hooks(trace=trace), group=group,
                                 play_tones=False)
        if role == "t" or not args.polled:
            client.start()
            link.start()
            talkers.append(client) if role == "t" else None
        else:
            client.start(playout_thread=False)
            poller.add(link, client)
        clients.append((client, link))
    poller.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
            link.connected.is_set() and c.status()["arbiter_online"] for c, link in clients):
        time.sleep(0.05)
    while time.monotonic() < deadline and not all(r.ready.is_set() for r in raw):
        time.sleep(0.05)
    print("ready", flush=True)
    cpu0, wall0 = time.process_time(), time.monotonic()
    sent0: dict[str, int] = {}
    link_bytes: list[int] = []
    down_bytes: list[int] = []
    while (line := sys.stdin.readline().strip()) not in ("stop", ""):
        if line == "go":
            sent0 = {t.unit: tcp_bytes_sent(t.link) for t in talkers}
            received0 = {t.unit: tcp_bytes_sent(t.link, "bytes_received") for t in talkers}
            for _ in range(args.spurts):
                for t in talkers:
                    t.press()
                done = time.monotonic() + args.spurt_s + 2.0
                time.sleep(0.05)
                while time.monotonic() < done and any(t.tx.value != "idle" for t in talkers):
                    time.sleep(0.01)
                for t in talkers:
                    t.release()
                time.sleep(0.3)
            link_bytes = [tcp_bytes_sent(t.link) - sent0[t.unit] for t in talkers]
            down_bytes = [tcp_bytes_sent(t.link, "bytes_received") - received0[t.unit] for t in talkers]
            print("done", flush=True)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    poller.stop()
    for client, link in clients:
        client.stop()
        link.stop()
    for r in raw:
        r.client.loop_stop()
        r.client.disconnect()
    Path(args.out).write_text(json.dumps({"plays": plays, "events": events, "cpu_s": cpu, "wall_s": wall,
                                          "link_bytes": link_bytes, "down_bytes": down_bytes,
                                          "listeners": len(clients) - len(talkers) + len(raw)}))


def tcp_bytes_sent(link: MqttLink, field: str = "bytes_sent") -> int:
    """What this end of the link has sent so far (TCP payload: MQTT packets whole), as the
    kernel counts it (`ss`); field "bytes_received" for what it received."""
    addr = link.local_address
    if addr is None:
        return 0
    out = subprocess.run(["ss", "-tinH", "state", "established", "src", f"{addr[0]}:{addr[1]}"],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(rf"{field}:(\d+)", out) or (
        field == "bytes_sent" and re.search(r"bytes_acked:(\d+)", out))
    return int(match.group(1)) if match else 0


class Poller:
    """One thread driving the listeners of a worker process: their MQTT sockets (paho's
    external-loop API) and their playout clock (`TalkGroupClient.tick`, one frame each
    per tick, as each unit's sound card would pull it).

    A unit runs one listener with its own network and playout threads; simulating 200
    of them on two cores with two threads each spends more CPU on switching threads
    than on listening. Each listener keeps its own connection, jitter buffers and
    decoder; only the threads are shared.
    """

    def __init__(self, frame_s: float) -> None:
        self.frame_s = frame_s
        self.units: list[tuple[MqttLink, TalkGroupClient]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, link: MqttLink, client: TalkGroupClient) -> None:
        self.units.append((link, client))

    def start(self) -> None:
        if self.units:
            self._thread = threading.Thread(target=self._run, name="bench-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        pahos = []
        for link, _client in self.units:
            paho = link.start_polled()
            sel.register(paho.socket(), selectors.EVENT_READ, paho)
            pahos.append(paho)
        clients = [c for _l, c in self.units]
        next_tick = next_misc = time.monotonic()
        while not self._stop.is_set():
            for key, _ev in sel.select(max(0.0, next_tick - time.monotonic())):
                if key.data.loop_read() != 0:  # the broker closed this connection
                    sel.unregister(key.fileobj)
                    print("bench: a listener lost its connection", file=sys.stderr)
            for paho in pahos:
                if paho.want_write():
                    paho.loop_write()
            now = time.monotonic()
            if now >= next_tick:
                for client in clients:
                    client.tick()
                next_tick += self.frame_s
                if next_tick < now - 0.2:  # a long stall: do not race to catch up
                    next_tick = now
            if now >= next_misc:  # keepalive pings
                for paho in pahos:
                    paho.loop_misc()
                next_misc = now + 1.0


class _Raw:
    def __init__(self, client, ready) -> None:
        self.client, self.ready = client, ready


def _raw_listener(mqtt: MqttSettings, unit: str, group: str, plays: list, lock: threading.Lock) -> _Raw:
    """A bare MQTT subscriber that notes when each frame arrives: the broker's fan-out
    alone, without a listener's decoding and jitter buffer."""
    import paho.mqtt.client as paho

    from gateway.packet import Frame

    ready = threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{unit}")

    def on_message(c, u, msg) -> None:
        now = time.time()
        try:
            frame = Frame.from_bytes(msg.payload)
        except ValueError:
            return
        if frame.payload:
            with lock:
                plays.append((unit, frame.spurt, frame.seq, now, "play"))

    client.on_connect = lambda c, u, f, rc, p: (c.subscribe(topics.group_audio(group, mqtt.topic_root), 0),
                                               ready.set())
    client.on_message = on_message
    client.connect(mqtt.host, mqtt.port, keepalive=30)
    client.loop_start()
    return _Raw(client, ready)


# --- the scenarios -------------------------------------------------------------------
def start_broker(tmp: Path):
    from posko.broker import BrokerConfig, MosquittoProcess, free_port

    cfg = BrokerConfig(state_dir=tmp / "broker", port=free_port(), persistence=False)
    return MosquittoProcess(cfg).start()


def spawn(port: int, root: str, units: list[str], out: Path, spurts: int, spurt_s: float,
          polled: bool = True):
    return subprocess.Popen([sys.executable, __file__, "--worker", "--port", str(port), "--root", root,
                             "--units", ",".join(units), "--out", str(out), "--spurts", str(spurts),
                             "--spurt-s", str(spurt_s)] + ([] if polled else ["--threads"]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run_scenario(name: str, port: int, groups: int, listeners_per_group: int, seconds: float,
                 max_procs: int, per_proc: int, tmp: Path, polled: bool = True) -> dict:
    root = f"bench/{name}/posko/v1"
    # The arbiter runs as it does in production: its own process (`posko arbiter`).
    env = {**os.environ, "POSKO_MQTT_PORT": str(port), "POSKO_MQTT_TOPIC_ROOT": root,
           "POSKO_POSKO_STATE_DIR": str(tmp / name / "arbiter"), "POSKO_POSKO_LOG_LEVEL": "WARNING"}
    arb = subprocess.Popen([sys.executable, "-m", "posko", "arbiter"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spurt_s = 1.0
    spurts = max(1, int(seconds / (spurt_s + 0.4)))
    role = "r" if name.endswith("raw") else "l"
    listeners = [f"l{g}x{i}@g{g}@{role}" for g in range(groups) for i in range(listeners_per_group)]
    talkers = [f"t{g}@g{g}@t" for g in range(groups)]
    nproc = max(1, min(max_procs, math.ceil(len(listeners) / per_proc)))
    procs = [spawn(port, root, listeners[i::nproc], tmp / name / f"l{i}.json", spurts, spurt_s, polled)
             for i in range(nproc)]
    # Talkers in processes of their own (up to 4), apart from the listeners.
    tprocs = max(1, min(4, len(talkers)))
    procs += [spawn(port, root, talkers[i::tprocs], tmp / name / f"t{i}.json", spurts, spurt_s)
              for i in range(tprocs)]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a bench worker failed to start")
    t_start = time.monotonic()
    for proc in procs[nproc:]:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs[nproc:]:
        proc.stdout.readline()  # "done"
    time.sleep(0.5)  # let the last frames play out
    talk_wall = time.monotonic() - t_start
    for proc in procs:
        proc.stdin.write("stop\n")
        proc.stdin.flush()
    results = []
    for i, proc in enumerate(procs):
        proc.wait(60)
        kind, index = ("l", i) if i < nproc else ("t", i - nproc)
        results.append((kind, json.loads((tmp / name / f"{kind}{index}.json").read_text())))
    arb.terminate()
    arb.wait(10)
    events = [(e, f) for kind, r in results if kind == "t" for e, f in r["events"]]

    sent = {(f["spurt"], f["seq"]): f for e, f in events if e == "tx"}
    grants = [f["grant_ms"] for e, f in events if e == "grant"]
    m2e, plc = [], 0
    played = 0  # frames decoded from a received packet (concealed ones are counted apart)
    for kind, r in results:
        if kind != "l":
            continue
        for _unit, spurt, seq, t, action in r["plays"]:
            if action != "play":
                plc += 1
                continue
            played += 1
            src = sent.get((spurt, seq))
            if src is not None and action == "play":
                m2e.append((t - src["t"]) * 1000)
    tx_frames = [f for e, f in events if e == "tx"]
    talk_s = len(tx_frames) * PARAMS.frame_ms / 1000 / max(1, groups)
    frame_bytes = sum(12 + f["bytes"] for f in tx_frames) / max(1, groups)  # header + Opus
    # The audio PUBLISH packets as sent: type byte, remaining length, an empty topic name
    # (2 bytes), properties length and the topic alias property (3 bytes): the topic
    # name itself goes once per connection and is left out here.
    mqtt_bytes = sum(1 + _varint_len(2 + 1 + 3 + 12 + f["bytes"]) + 2 + 1 + 3 + 12 + f["bytes"]
                     for f in tx_frames) / max(1, groups)
    link_bytes = [b for kind, r in results if kind == "t" for b in r["link_bytes"]]
    kbps_frames = frame_bytes * 8 / talk_s / 1000 if talk_s else float("nan")
    kbps = mqtt_bytes * 8 / talk_s / 1000 if talk_s else float("nan")
    kbps_link = (statistics.mean(link_bytes) * 8 / talk_s / 1000
                 if talk_s and link_bytes else float("nan"))
    # What the talker's link received while it talked: floor answers and acknowledgements
    # only, since its audio subscription has No Local (its own frames were 36.8 kbit/s).
    down = [b for kind, r in results if kind == "t" for b in r.get("down_bytes", [])]
    kbps_down = statistics.mean(down) * 8 / talk_s / 1000 if talk_s and down else float("nan")
    cpu = [r["cpu_s"] / r["wall_s"] / r["listeners"] * 100 for kind, r in results
           if kind == "l" and r["listeners"]]
    expected = len(tx_frames) * listeners_per_group
    figures = {
        "scenario": name, "groups": groups, "listeners": len(listeners), "spurts_per_talker": spurts,
        "grant_ms_p50": pct(grants, 50), "grant_ms_p95": pct(grants, 95), "grant_ms_p99": pct(grants, 99),
        "m2e_ms_p50": pct(m2e, 50), "m2e_ms_p95": pct(m2e, 95), "m2e_ms_p99": pct(m2e, 99),
        "kbps_per_talker": round(kbps, 2), "kbps_frames": round(kbps_frames, 2),
        "kbps_talker_link": round(kbps_link, 2), "kbps_talker_down": round(kbps_down, 2),
        "cpu_pct_per_listener": round(statistics.mean(cpu), 2) if cpu else None,
        "frames_expected": expected, "frames_played": played,
        "delivery": round(played / expected, 4) if expected else None, "concealed": plc,
        "wall_s": round(talk_wall, 1),
    }
    return figures


def _varint_len(n: int) -> int:
    """Bytes of an MQTT variable byte integer."""
    return 1 if n < 128 else 2 if n < 16384 else 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 talker, 10 listeners only (< 60 s)")
    ap.add_argument("--seconds", type=float, default=0.0, help="talking time per scenario")
    ap.add_argument("--max-procs", type=int, default=20, help="listener worker processes at most")
    ap.add_argument("--per-proc", type=int, default=20,
                    help="listeners per worker process (fewer processes cost less CPU per listener)")
    ap.add_argument("--only", action="append", default=[], help="run only this scenario (repeatable)")
    ap.add_argument("--threads", dest="polled", action="store_false",
                    help="each listener with its own network and playout threads, as on a unit "
                         "(default: one thread per worker process drives its listeners)")
    ap.add_argument("--browser", action="store_true",
                    help="the browser path: a phone in headless Chromium and a unit (scenarios "
                         "clean and mobile; --quick: 5 spurts each way, 3 late entries)")
    ap.add_argument("--phone-spurts", type=int, default=0, help="--browser: spurts each way (default 20)")
    ap.add_argument("--late", type=int, default=0, help="--browser: late entries (default 10)")
    ap.add_argument("--phones", type=int, default=1,
                    help="--browser: phones in the group (1 talks and listens; the others listen)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--root", default="", help=argparse.SUPPRESS)
    ap.add_argument("--units", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    ap.add_argument("--spurts", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--spurt-s", type=float, default=1.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.browser:
        import ptt_browser

        print(json.dumps(ptt_browser.main(args.quick, args.only, args.phone_spurts, args.late,
                                                phones=args.phones)))
        return
    seconds = args.seconds or (12.0 if args.quick else 10.0)
    # "1x200raw": the same 200 listeners as bare subscribers (arrival time, no decoding):
    # what the broker's fan-out costs, apart from 200 full listeners simulated on this host.
    plan = [("1x10", 1, 10)] if args.quick else [("1x1", 1, 1), ("1x10", 1, 10), ("1x50", 1, 50),
                                                  ("1x200", 1, 200), ("1x200raw", 1, 200),
                                                  ("20groups", 20, 1)]
    if args.only:
        plan = [p for p in plan if p[0] in args.only]
    started = time.monotonic()
    all_figures = []
    with tempfile.TemporaryDirectory(prefix="posko-bench-") as tmpname:
        tmp = Path(tmpname)
        broker = start_broker(tmp)
        try:
            for name, groups, per_group in plan:
                (tmp / name).mkdir()
                fig = run_scenario(name, broker.port, groups, per_group, seconds, args.max_procs,
                                   args.per_proc, tmp, args.polled)
                all_figures.append(fig)
                print(f"{name:>9}: grant p50/p95/p99 {fig['grant_ms_p50']}/{fig['grant_ms_p95']}/"
                      f"{fig['grant_ms_p99']} ms | {'capture-to-arrival' if name.endswith('raw') else 'mouth-to-ear'} p50/p95/p99 {fig['m2e_ms_p50']}/"
                      f"{fig['m2e_ms_p95']}/{fig['m2e_ms_p99']} ms | {fig['kbps_per_talker']} kbit/s "
                      f"(frames {fig['kbps_frames']}, whole link {fig['kbps_talker_link']}, "
                      f"received {fig['kbps_talker_down']}) | CPU/listener "
                      f"{fig['cpu_pct_per_listener']} % | delivered {fig['delivery']}", flush=True)
        finally:
            broker.stop()
    headline = next((f for f in all_figures if f["scenario"] == "1x10"), all_figures[0])
    full = [f for f in all_figures if not f["scenario"].endswith("raw")]
    summary = {
        "bench": "ptt", "quick": args.quick, "cpus": os.cpu_count(),
        "grant_ms_p95": max(f["grant_ms_p95"] for f in full),
        "m2e_ms_p95": max(f["m2e_ms_p95"] for f in full),
        "kbps_per_talker": headline["kbps_per_talker"],
        "kbps_frames": headline["kbps_frames"], "kbps_talker_link": headline["kbps_talker_link"],
        "kbps_talker_down": headline["kbps_talker_down"],
        "goals_met": None, "seconds": round(time.monotonic() - started, 1),
        "scenarios": all_figures,
    }
    summary["goals_met"] = (summary["grant_ms_p95"] <= 50 and summary["m2e_ms_p95"] <= 150
                            and summary["kbps_per_talker"] <= 24)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
