"""Kiosk outbox bench: durable submit latency (fsync'd) and sync throughput to a hub process.

    .venv/bin/python bench/outbox.py [--quick] [--reports N]

Submit: reports committed to a fresh outbox (WAL, synchronous=FULL), without a photo and
with one photo (a 1600x1200 camera-like image, scaled and re-encoded as the kiosk does).
Sync: the same reports sent by the sync worker over real HTTP to the minimal intake server
of the tests (tests/kiosk_ui/intake_server.py) in another process.
Prints figures, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from kiosk_ui.outbox import Outbox  # noqa: E402
from kiosk_ui.photos import prepare_photo  # noqa: E402
from kiosk_ui.sync import SyncWorker  # noqa: E402
from posko.broker import free_port  # noqa: E402
from posko.hubclient import HubClient  # noqa: E402

REPORT = {"category": "pencurian", "description": "motor beat hitam plat G 1234 XY hilang di parkiran pasar",
          "occurred_at": "2026-11-20T21:10:00+07:00", "location": {"text": "Posko Alun-alun"}}


def camera_like_png(seed: int) -> bytes:
    """Smooth noise: compresses like a real photo, not like pure noise."""
    rnd = random.Random(seed)
    img = Image.frombytes("RGB", (400, 300), rnd.randbytes(400 * 300 * 3)).resize((1600, 1200))
    out = io.BytesIO()
    img.filter(ImageFilter.GaussianBlur(2)).save(out, "PNG")
    return out.getvalue()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reports (about 10 s)")
    parser.add_argument("--reports", type=int, default=0)
    args = parser.parse_args()
    n = args.reports or (40 if args.quick else 200)
    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox.open(Path(tmp) / "outbox")
        plain, with_photo, prep = [], [], []
        m = 10 if args.quick else 25
        photos_raw = [camera_like_png(i) for i in range(m)]  # distinct: each one is really written
        for i in range(n):
            started = time.perf_counter()
            box.submit(dict(REPORT, description=f"{REPORT['description']} #{i}"))
            plain.append((time.perf_counter() - started) * 1000)
        for i in range(m):
            started = time.perf_counter()
            photo = prepare_photo(photos_raw[i], 1600)
            prepared = time.perf_counter()
            box.submit(dict(REPORT, description=f"foto #{i}"), [photo])
            prep.append((prepared - started) * 1000)
            with_photo.append((time.perf_counter() - prepared) * 1000)
        total = len(box.list())
        print(f"submit without photo: n={len(plain)} p50 {statistics.median(plain):.1f} ms, "
              f"p95 {pct(plain, 0.95):.1f} ms")
        print(f"photo scale+re-encode (1600x1200): p50 {statistics.median(prep):.0f} ms")
        print(f"submit with one photo (photo fsync + commit): p50 {statistics.median(with_photo):.1f} ms")

        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "tests.kiosk_ui.intake_server", "--port", str(port),
                                   "--db", str(Path(tmp) / "hub.db"), "--token", "bench"],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    requests.get(url + "/api/v1/openapi.json", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.05)
            worker = SyncWorker(box, HubClient(url, lambda: "bench"), blocklist_refresh_s=1e9)
            started = time.perf_counter()
            while box.stats()["pending"]:
                worker.run_once()
            elapsed = time.perf_counter() - started
        finally:
            server.kill()
            server.wait()
        rate = total / elapsed
        print(f"sync to a hub process: {total} reports in {elapsed:.2f} s = {rate:.1f} reports/s")
    print(json.dumps({"submit_p50_ms": round(statistics.median(plain), 2),
                      "submit_p95_ms": round(pct(plain, 0.95), 2),
                      "photo_prepare_p50_ms": round(statistics.median(prep), 1),
                      "submit_with_photo_p50_ms": round(statistics.median(with_photo), 2),
                      "sync_reports_per_s": round(rate, 1), "reports": total}))


if __name__ == "__main__":
    main()
