"""A minimal hub intake server for kiosk fault tests: the documented contract, nothing more.

Implements the idempotency contract of the hub's intake API (`POST /api/v1/reports`,
`PUT /api/v1/photos/<sha256>`, `GET /api/v1/tickets/<ticket>`, `GET /api/v1/blocked-phones`)
on its own SQLite file, so the kiosk's outbox can be tested against a real HTTP process
that can be stopped, killed and restarted. `GET /_test/state` lists what it holds.

Run: python -m tests.kiosk_ui.intake_server --port P --db FILE --token TOKEN [--block +62…]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import sqlite3
import threading

from flask import Flask, jsonify, request
from PIL import Image
from werkzeug.serving import make_server

CATEGORIES = {"kehilangan", "pencurian", "kecelakaan", "bencana", "kekerasan", "gangguan", "lainnya"}
PHONE_KEY = "intake-test-key"


def create_app(db_path: str, token: str, blocked: list[str]) -> Flask:
    app = Flask(__name__)
    lock = threading.Lock()
    db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript("""
        CREATE TABLE IF NOT EXISTS reports (id TEXT PRIMARY KEY, body TEXT, ticket TEXT UNIQUE,
                                            pin TEXT, answer TEXT);
        CREATE TABLE IF NOT EXISTS photos (sha256 TEXT PRIMARY KEY, size INTEGER);
        CREATE TABLE IF NOT EXISTS posts (id TEXT, status INTEGER);
    """)
    keys = [hmac.new(PHONE_KEY.encode(), p.encode(), hashlib.sha256).hexdigest() for p in blocked]

    def authorised() -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {token}"

    def fail(status: int, message: str, fields: dict | None = None):
        body = {"error": "invalid" if status == 422 else "error", "message": message}
        if fields:
            body["fields"] = fields
        return jsonify(body), status

    @app.post("/api/v1/reports")
    def reports():
        if not authorised():
            return fail(401, "a valid unit token is required")
        try:
            body = json.loads(request.get_data())
        except ValueError:
            return fail(422, "not JSON", {"body": "must be JSON"})
        fields = {}
        if body.get("category") not in CATEGORIES:
            fields["category"] = "unknown category"
        if not isinstance(body.get("description"), str) or not 1 <= len(body["description"]) <= 4000:
            fields["description"] = "1-4000 characters"
        if not isinstance(body.get("id"), str) or not isinstance(body.get("ticket"), str):
            fields["id"] = "required"
        if not isinstance(body.get("photos"), list):
            fields["photos"] = "list required"
        if fields:
            return fail(422, "some fields are not valid", fields)
        phone = (body.get("reporter") or {}).get("phone")
        if phone and phone in blocked:
            return fail(403, "nomor ini diblokir")
        canonical = json.dumps(body, sort_keys=True)
        with lock:
            row = db.execute("SELECT body, answer FROM reports WHERE id=?", (body["id"],)).fetchone()
            if row is not None:
                if row[0] != canonical:
                    db.execute("INSERT INTO posts VALUES (?, 409)", (body["id"],))
                    return fail(409, "a different report has this id")
                db.execute("INSERT INTO posts VALUES (?, 200)", (body["id"],))
                return jsonify(json.loads(row[1])), 200
            have = {r[0] for r in db.execute("SELECT sha256 FROM photos")}
            answer = {"id": body["id"], "ticket": body["ticket"], "state": "baru",
                      "missing_photos": [p for p in body["photos"] if p not in have]}
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO reports VALUES (?,?,?,?,?)", (body["id"], canonical, body["ticket"],
                                                                  body.get("pin"), json.dumps(answer)))
            db.execute("INSERT INTO posts VALUES (?, 201)", (body["id"],))
            db.execute("COMMIT")
        return jsonify(answer), 201

    @app.put("/api/v1/photos/<sha256>")
    def photos(sha256: str):
        if not authorised():
            return fail(401, "a valid unit token is required")
        data = request.get_data()
        if hashlib.sha256(data).hexdigest() != sha256:
            return fail(422, "hash mismatch", {"sha256": "does not match the body"})
        try:
            Image.open(io.BytesIO(data)).load()
        except Exception:
            return fail(422, "not an image", {"body": "must be an image"})
        with lock:
            db.execute("INSERT OR IGNORE INTO photos VALUES (?, ?)", (sha256, len(data)))
        return jsonify({"sha256": sha256, "stored": True}), 200

    @app.get("/api/v1/tickets/<ticket>")
    def tickets(ticket: str):
        row = db.execute("SELECT pin, answer FROM reports WHERE ticket=?", (ticket,)).fetchone()
        if row is None or row[0] != request.args.get("pin"):
            return fail(404, "not found")
        return jsonify({"ticket": ticket, "state": "diverifikasi",
                        "note": "Petugas sudah menghubungi Anda", "updated": "2026-12-24T22:45:00+07:00"})

    @app.get("/api/v1/blocked-phones")
    def blocked_phones():
        if not authorised():
            return fail(401, "a valid unit token is required")
        return jsonify({"algorithm": "hmac-sha256", "key": PHONE_KEY, "hashes": keys, "updated": ""})

    @app.get("/api/v1/openapi.json")
    def openapi():
        return jsonify({"openapi": "3.0.3"})

    @app.get("/_test/state")
    def state():
        reports = [{"id": r[0], "ticket": r[1], "photos": json.loads(r[2])["photos"],
                    "description": json.loads(r[2])["description"]}
                   for r in db.execute("SELECT id, ticket, body FROM reports")]
        photos = {r[0]: r[1] for r in db.execute("SELECT sha256, size FROM photos")}
        posts = [{"id": r[0], "status": r[1]} for r in db.execute("SELECT id, status FROM posts")]
        return jsonify({"reports": reports, "photos": photos, "posts": posts})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--block", action="append", default=[])
    args = parser.parse_args()
    server = make_server("127.0.0.1", args.port, create_app(args.db, args.token, args.block),
                         threaded=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
