"""Server-sent events: new reports, alerts, acknowledgements and unit changes, live.

The ingest process and the API write `events` rows; each open dashboard's stream (in any
gunicorn worker) polls that table for rows newer than the last one it sent, so every
worker's dashboards see everything within a second. A stream ends after a few minutes
and the browser's EventSource reconnects with Last-Event-ID, resuming where it stopped.
"""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, request, stream_with_context
from sqlalchemy import func, select

from hub.auth import requires_role, stream_guard
from hub.db import sessions
from hub.models import Event

bp = Blueprint("live", __name__)

POLL_S = 0.4
KEEPALIVE_S = 15.0
STREAM_MAX_S = 240.0


@bp.get("/live/stream")
@requires_role("operator")
def stream():
    factory = sessions().reader
    last = request.headers.get("Last-Event-ID", "") or request.args.get("since", "")
    with factory() as db:
        newest = db.scalar(select(func.max(Event.id))) or 0
    try:
        last_id = min(int(last), newest) if last else newest
    except ValueError:
        last_id = newest

    alive = stream_guard("operator")

    def generate():
        nonlocal last_id
        yield "retry: 1500\n\n"
        started = quiet_since = time.monotonic()
        while time.monotonic() - started < STREAM_MAX_S:
            if not alive():  # logged out (or ended) elsewhere: nothing more for this browser
                yield "event: logout\ndata: {}\n\n"
                return
            with factory() as db:
                rows = list(db.scalars(select(Event).where(Event.id > last_id)
                                       .order_by(Event.id).limit(200)))
            for row in rows:
                last_id = row.id
                payload = json.dumps(row.data, ensure_ascii=False, separators=(",", ":"))
                yield f"id: {row.id}\nevent: {row.kind}\ndata: {payload}\n\n"
            now = time.monotonic()
            if rows:
                quiet_since = now
            elif now - quiet_since >= KEEPALIVE_S:
                quiet_since = now
                yield ": keep-alive\n\n"
            time.sleep(POLL_S)

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
