"""Settings of the kiosk touchscreen app and its report outbox."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class KioskSettings:
    """The resident-facing web app served on the kiosk's localhost, its outbox and sync worker."""

    bind: str = setting("127.0.0.1", "Address the kiosk web app listens on.")
    port: int = setting(18081, "TCP port of the kiosk web app.", min=1, max=65535)
    hub_url: str = setting("http://127.0.0.1:18080", "Base URL of the central hub.")
    idle_reset_s: int = setting(90, "Seconds without a touch before the screen returns to Beranda and clears every field.", unit="s", min=1, max=3600)
    threads: int = setting(16, "Request threads of the kiosk web server (each open live-update stream holds one).", min=4, max=64)
    outbox_path: str = setting("", "Folder of the report outbox (SQLite database and photos); empty means <state_dir>/kiosk/outbox.")
    photo_max_px: int = setting(1600, "Photos are scaled down so that their longer side is at most this.", unit="px", min=320, max=8000)
    photo_max_pixels: int = setting(24_000_000, "Largest photo (width × height) the kiosk decodes; checked from the header before decoding, so a small file that decodes to a huge image is refused.", unit="px", min=1_000_000, max=100_000_000)
    photo_max_bytes: int = setting(12_000_000, "Largest photo upload the kiosk accepts from its own camera page.", unit="bytes", min=100_000, max=100_000_000)
    photo_quality: int = setting(85, "JPEG quality of stored photos.", min=40, max=95)
    retention_days: int = setting(14, "Synced reports (and their photos) are purged after this many days.", unit="days", min=1, max=3650)
    sync_interval_s: float = setting(5.0, "How often the sync worker looks for pending reports when nothing wakes it.", unit="s", min=0.1, max=3600)
    sync_backoff_base_s: float = setting(2.0, "First retry delay after a failed send; doubles each failure (full jitter).", unit="s", min=0.05, max=600)
    sync_backoff_cap_s: float = setting(300.0, "Longest retry delay after repeated failures.", unit="s", min=0.1, max=3600)
    sync_probe_s: float = setting(10.0, "How often the hub's reachability is probed while offline, so a returning link is used at once.", unit="s", min=0.1, max=600)
    http_timeout_s: float = setting(10.0, "Timeout of each request to the hub.", unit="s", min=0.5, max=300)
    reconcile_every_s: float = setting(86400.0, "How often the kiosk compares its synced reports' ids and digests with the hub's receipts (proof of delivery; 0 = only on `posko outbox reconcile`).", unit="s", min=0, max=604800)
    sync_enabled: bool = setting(True, "Run the sync worker inside `posko kiosk-ui`.")
    idle_warn_s: int = setting(20, "Before an idle reset the screen asks \"Masih di sini?\" and counts down this long; a touch keeps everything. Never while an emergency is unacknowledged.", unit="s", min=3, max=600)
    display_tz: str = setting("Asia/Jakarta", "Time zone the kiosk shows times in, labelled on screen (WIB; Asia/Makassar for WITA, Asia/Jayapura for WIT); same as the hub's display_tz by default.")
    allowed_hosts: str = setting("", "Comma-separated extra host names the kiosk app answers to (besides 127.0.0.1, localhost and its bind address); any other Host header is refused (DNS rebinding).")
    alert_retry_s: float = setting(2.0, "How often an emergency alert the hub has not confirmed is sent again (HTTP and MQTT).", unit="s", min=0.2, max=60)
