"""The kiosk app's outbox figures, read over its local API (`GET /api/outbox` on localhost).

The unit agent puts them into its heartbeat and `posko doctor` prints them; neither opens
the kiosk's database (the kiosk app owns its schema and its migrations).
"""

from __future__ import annotations

from typing import Any

import requests

from posko.config import Settings

FIELDS = ("pending", "oldest_pending_s", "parked")


def kiosk_url(settings: Settings) -> str:
    host = settings.kiosk.bind
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # listening everywhere: ask over loopback
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.kiosk.port}"


def outbox_figures(settings: Settings, timeout_s: float = 1.0) -> dict[str, Any] | None:
    """{"pending", "oldest_pending_s", "parked", ...} from the running kiosk app, or None
    when no kiosk app answers (a PTT-only unit, or the kiosk app is down)."""
    try:
        with requests.Session() as session:
            session.trust_env = False  # localhost: never a proxy from the environment
            answer = session.get(kiosk_url(settings) + "/api/outbox", timeout=timeout_s,
                                 headers={"Accept": "application/json"})
    except requests.RequestException:
        return None
    if answer.status_code != 200 or "json" not in answer.headers.get("Content-Type", ""):
        return None
    try:
        data = answer.json()
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(k in data for k in FIELDS):
        return None
    return data
