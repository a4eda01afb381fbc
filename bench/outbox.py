"""Kiosk outbox soak: N random field faults between a real kiosk and a real hub.

    nice .venv/bin/python bench/outbox.py [--faults N] [--seed S]

`posko kiosk-ui` (gunicorn + sync worker) sends to `posko hub serve` (SQLite) through a
captive-portal proxy and a cutting TCP proxy, all on loopback. Residents submit reports
(a third with a photo) while one random fault of these kinds is applied at a time:

* kill      SIGKILL of the kiosk's process group at a random instant, then a restart;
* cut       the next connection is cut after a few hundred bytes (mid-request);
* portal    for 1-3 s every request is answered `200 text/html` ("kuota habis");
* redirect  for 1-3 s every request is answered `302` to a login page;
* clock     what a clock stepped back an hour leaves in the outbox: every waiting report's
            next attempt an hour further away (the kiosk's process clock itself cannot be
            stepped without root-wide tools; the stored times are what the step changes);
* hub       SIGKILL of the hub, down for 1-3 s, then a restart.

Then the link is left clean, and once the outbox has drained it prints tickets shown /
at the hub / lost / duplicated / photos intact, then ONE JSON line. The goal is 0 lost and
0 duplicated over 200 faults. Nothing here is part of the test run's pass/fail.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from PIL import Image  # noqa: E402

from tests.kiosk_ui.captive import CaptivePortal  # noqa: E402
from tests.kiosk_ui.conftest import RealHub  # noqa: E402
from tests.kiosk_ui.test_faults import KioskProcess  # noqa: E402
from tests.support.tcpproxy import TcpProxy  # noqa: E402

KINDS = ("kill", "cut", "portal", "redirect", "clock", "hub")


def photo(seed: int) -> bytes:
    rnd = random.Random(seed)
    out = io.BytesIO()
    Image.frombytes("RGB", (320, 240), rnd.randbytes(320 * 240 * 3)).save(out, "PNG")
    return out.getvalue()


def submit(kiosk: KioskProcess, description: str, image: bytes | None) -> str | None:
    """The ticket the kiosk showed, or None (no ticket shown: the resident would try again)."""
    form = {"category": "pencurian", "description": description, "where": "here", "when_offset_min": "0"}
    files = {"photo": ("p.png", image, "image/png")} if image else None
    try:
        answer = requests.post(kiosk.url + "/api/lapor", data=form, files=files, timeout=15)
    except requests.RequestException:
        return None
    if answer.status_code != 200:
        return None
    return answer.json()["ticket"].replace("-", "")


def step_clock_back(kiosk: KioskProcess) -> None:
    import sqlite3

    db = sqlite3.connect(kiosk.folder / "var" / "kiosk" / "outbox" / "outbox.db", timeout=10)
    try:
        db.execute("UPDATE outbox SET next_attempt_at = next_attempt_at + 3600 WHERE state='pending'")
        db.commit()
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261224)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    counts = dict.fromkeys(KINDS, 0)
    shown: dict[str, str] = {}
    attempted = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        hub = RealHub(Path(tmp) / "hub").start()
        cutter = TcpProxy(hub.port)
        portal = CaptivePortal(cutter.port, "pass")
        folder = Path(tmp) / "kiosk"
        folder.mkdir()
        kiosk = KioskProcess(folder, portal.url, hub.token).start()
        try:
            for i in range(args.faults):
                kind = rng.choice(KINDS)
                counts[kind] += 1
                killer = None
                if kind == "kill":
                    killer = threading.Timer(rng.uniform(0.0, 0.4), kiosk.kill)
                    killer.start()
                elif kind == "cut":
                    cutter.cut_next(after_bytes=rng.randint(50, 4000))
                elif kind in ("portal", "redirect"):
                    portal.mode = kind
                elif kind == "clock":
                    step_clock_back(kiosk)
                elif kind == "hub":
                    hub.stop()
                for j in range(rng.randint(1, 2)):
                    description = f"soak {i}.{j}"
                    attempted += 1
                    ticket = submit(kiosk, description, photo(i * 10 + j) if rng.random() < 0.33 else None)
                    if ticket:
                        shown[ticket] = description
                if killer:
                    killer.join()
                time.sleep(rng.uniform(0.2, 1.5) if kind in ("portal", "redirect", "hub") else rng.uniform(0, 0.4))
                portal.mode = "pass"
                if kind == "hub":
                    hub.start()
                if not kiosk.alive():
                    kiosk.start()
                if (i + 1) % 20 == 0:
                    print(f"{i + 1} faults, {len(shown)} tickets shown", file=sys.stderr, flush=True)
            drain_started = time.monotonic()
            while time.monotonic() - drain_started < args.drain_timeout:
                if kiosk.outbox().stats()["pending"] == 0:
                    break
                time.sleep(0.5)
            drain_s = time.monotonic() - drain_started
            time.sleep(1.0)  # a late duplicate would show here
            state = hub.state()
            stats = kiosk.outbox().stats()
        finally:
            kiosk.kill()
            portal.close()
            cutter.close()
            hub.close()
    tickets = [r["ticket"] for r in state["reports"]]
    by_ticket = {r["ticket"]: r for r in state["reports"]}
    descriptions = [r["description"] for r in state["reports"]]
    lost = [t for t in shown if t not in by_ticket]
    duplicated = (len(tickets) - len(set(tickets))) + (len(descriptions) - len(set(descriptions)))
    wrong = [t for t, d in shown.items() if t in by_ticket and by_ticket[t]["description"] != d]
    named = [p for r in state["reports"] for p in r["photos"]]
    intact = sum(1 for p in named if p in state["photos"])
    print(f"faults: {args.faults} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    print(f"submissions: {attempted}, tickets shown: {len(shown)}, at hub: {len(state['reports'])}")
    print(f"lost: {len(lost)}, duplicated: {duplicated}, wrong body: {len(wrong)}, "
          f"photos intact: {intact}/{len(named)}")
    print(f"outbox after drain ({drain_s:.1f} s): pending {stats['pending']}, parked {stats['parked']}; "
          f"quarantined at hub: {len(state['quarantine'])}; kiosk kills: {kiosk.kills}")
    print(json.dumps({"faults": args.faults, "kinds": counts, "shown": len(shown),
                      "at_hub": len(state["reports"]), "lost": len(lost), "duplicated": duplicated,
                      "wrong_body": len(wrong), "photos": len(named), "photos_intact": intact,
                      "pending_after": stats["pending"], "parked_after": stats["parked"],
                      "drain_s": round(drain_s, 1), "seconds": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
