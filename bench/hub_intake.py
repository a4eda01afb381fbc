"""Hub intake throughput and latency, measured from a client in another process.

Starts `posko hub serve` (gunicorn, no MQTT ingest) on a free port with a fresh state dir,
enrols a unit, then sends JSON-only reports and reports with one ~1 MB JPEG (POST report +
PUT photo) from a pool of client threads, on SQLite and, when a server answers at
127.0.0.1:5432, on PostgreSQL (a throw-away database). Prints a table and ends with one
JSON line of the figures (`reports_per_s_sqlite`, p50/p95 in ms, …).

    .venv/bin/python bench/hub_intake.py --quick     # under a minute
    .venv/bin/python bench/hub_intake.py             # longer runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from posko.broker import free_port, wait_for_port  # noqa: E402
from posko.tickets import new_pin, new_ticket  # noqa: E402

PG_ADMIN = os.environ.get("POSKO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def report(photo: str | None = None) -> bytes:
    body = {
        "id": str(uuid.uuid4()), "category": random.choice(["pencurian", "kehilangan", "kecelakaan"]),
        "description": "motor beat hitam plat G 1234 XY hilang di parkiran pasar " + uuid.uuid4().hex,
        "occurred_at": dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).replace(microsecond=0).isoformat(),
        "location": {"text": "Posko Alun-alun", "lat": -6.9, "lon": 109.73},
        "reporter": {"name": "Ibu Sari", "phone": "0812-3456-789"},
        "photos": [photo] if photo else [], "ticket": new_ticket(), "pin": new_pin(),
    }
    return json.dumps(body).encode()


def noise_jpeg(seed: int, target: int = 1_000_000) -> bytes:
    """A ~1 MB JPEG (noise does not compress), different for every seed."""
    from PIL import Image

    rng = random.Random(seed)
    side = 1000
    img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92)
    return out.getvalue()


class Hub:
    def __init__(self, db_url: str | None, workers: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="posko-bench-hub-"))
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_") or k.startswith("POSKO_DEV_")}
        self.env.update(POSKO_POSKO_STATE_DIR=str(self.dir / "var"), POSKO_HUB_PORT=str(self.port),
                        POSKO_HUB_WORKERS=str(workers), POSKO_POSKO_LOG_LEVEL="WARNING",
                        POSKO_HUB_MQTT_INGEST="false")
        if db_url:
            self.env["POSKO_HUB_DATABASE_URL"] = db_url
        self.proc: subprocess.Popen | None = None

    def posko(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "posko", *args], env=self.env, cwd=self.dir,
                              capture_output=True, text=True, check=True, timeout=60).stdout

    def start(self) -> str:
        self.posko("hub", "migrate")
        self.proc = subprocess.Popen([sys.executable, "-m", "posko", "hub", "serve", "--no-migrate"],
                                     env=self.env, cwd=self.dir, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(self.port, timeout_s=30, proc=self.proc)
        code = self.posko("hub", "units", "add", "bench-kiosk").strip().splitlines()[-1]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", "/api/v1/enroll", json.dumps({"unit": "bench-kiosk", "code": code}),
                     {"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())["token"]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_load(port: int, token: str, count: int, threads: int, photos: list[bytes] | None) -> dict:
    """Send `count` reports from `threads` keep-alive connections; latency per report."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    todo = list(range(count))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not todo:
                    break
                index = todo.pop()
            photo = photos[index] if photos else None
            sha = hashlib.sha256(photo).hexdigest() if photo else None
            start = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/reports", report(sha), headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 201
                if ok and photo:
                    conn.request("PUT", f"/api/v1/photos/{sha}", photo,
                                 {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"})
                    put = conn.getresponse()
                    put.read()
                    ok = put.status == 201
            except (OSError, http.client.HTTPException) as exc:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                response = type("R", (), {"status": repr(exc)})
            elapsed = time.perf_counter() - start
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors.append(str(response.status))
        conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "n": len(latencies), "errors": len(errors), "wall_s": wall,
        "per_s": len(latencies) / wall if wall else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
    }


def bench_backend(name: str, db_url: str | None, args) -> dict:
    hub = Hub(db_url, args.workers)
    try:
        token = hub.start()
        run_load(hub.port, token, min(50, args.reports), args.threads, None)  # warm-up
        json_only = run_load(hub.port, token, args.reports, args.threads, None)
        photos = [noise_jpeg(i + int(time.time())) for i in range(args.photo_reports)]
        with_photo = run_load(hub.port, token, args.photo_reports, min(args.threads, 4), photos)
    finally:
        hub.stop()
    photo_mb = statistics.mean(len(p) for p in photos) / 1e6
    print(f"{name:<11} json-only: {json_only['per_s']:7.1f} reports/s  p50 {json_only['p50_ms']:6.1f} ms  "
          f"p95 {json_only['p95_ms']:6.1f} ms  ({json_only['n']} ok, {json_only['errors']} errors)")
    print(f"{name:<11} +1 photo : {with_photo['per_s']:7.1f} reports/s  p50 {with_photo['p50_ms']:6.1f} ms  "
          f"p95 {with_photo['p95_ms']:6.1f} ms  ({with_photo['n']} ok, {with_photo['errors']} errors, "
          f"photo {photo_mb:.2f} MB)")
    return {
        f"reports_per_s_{name}": round(json_only["per_s"], 1),
        f"p50_ms_{name}": round(json_only["p50_ms"], 2), f"p95_ms_{name}": round(json_only["p95_ms"], 2),
        f"errors_{name}": json_only["errors"] + with_photo["errors"],
        f"photo_reports_per_s_{name}": round(with_photo["per_s"], 2),
        f"photo_p50_ms_{name}": round(with_photo["p50_ms"], 1),
        f"photo_p95_ms_{name}": round(with_photo["p95_ms"], 1),
        f"photo_mb_{name}": round(photo_mb, 2),
    }


def postgres_db() -> tuple[str | None, object, str]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        return None, None, f"{exc.__class__.__name__}"
    name = f"posko_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}", admin, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (under a minute)")
    # 16 connections: a Polres has dozens of kiosks; more concurrent writers let the
    # group commit put more reports into each fsync.
    parser.add_argument("--threads", type=int, default=16, help="client threads (connections, like kiosks)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    args.reports = 800 if args.quick else 5000
    args.photo_reports = 20 if args.quick else 100
    print(f"hub intake bench: {args.reports} JSON reports, {args.photo_reports} reports with a photo, "
          f"{args.threads} client threads, {args.workers} gunicorn workers, {os.cpu_count()} CPUs")
    # Other programs on the machine change these figures a lot; say how busy it was.
    figures: dict = {"quick": args.quick, "threads": args.threads, "workers": args.workers,
                     "loadavg_1m_at_start": round(os.getloadavg()[0], 2)}
    figures.update(bench_backend("sqlite", None, args))
    if args.no_postgres:
        figures["postgresql"] = "skipped (--no-postgres)"
    else:
        url, admin, name = postgres_db()
        if url is None:
            figures["postgresql"] = f"skipped: no server at {PG_ADMIN} ({name})"
            print(f"postgresql  skipped: {figures['postgresql']}")
        else:
            try:
                figures.update(bench_backend("postgresql", url, args))
            finally:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                admin.close()
    figures["goal_reports_per_s_sqlite"] = 300
    figures["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
