"""Settings of the kiosk touchscreen app and its report outbox."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class KioskSettings:
    """The resident-facing web app served on the kiosk's localhost."""

    bind: str = setting("127.0.0.1", "Address the kiosk web app listens on.")
    port: int = setting(18081, "TCP port of the kiosk web app.", min=1, max=65535)
    hub_url: str = setting("http://127.0.0.1:18080", "Base URL of the central hub.")
    idle_reset_s: int = setting(90, "Seconds without a touch before the screen returns to Beranda and clears every field.", unit="s", min=10, max=3600)
