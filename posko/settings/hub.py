"""Settings of the central hub (intake API, dashboard, fleet, alerts)."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class HubSettings:
    """The command center's Flask hub served by gunicorn."""

    bind: str = setting("127.0.0.1", "Address the hub listens on.")
    port: int = setting(18080, "TCP port of the hub.", min=1, max=65535)
    database_url: str = setting("", "SQLAlchemy URL; empty means SQLite at <state_dir>/hub/hub.db. PostgreSQL: postgresql+psycopg://user@host/db")
    sqlite_synchronous: str = setting("FULL", "SQLite fsync policy: FULL survives a power cut after every answered report; NORMAL is faster but a power cut may lose the last reports the hub already answered.", choices=("FULL", "NORMAL"))
    secret_key: str = setting("", "Flask session signing key; empty makes and keeps one under the state dir.", secret=True)
    workers: int = setting(2, "gunicorn worker processes.", min=1, max=64)
    threads: int = setting(4, "Real threads per worker for CPU-heavy work (photo decoding, password checks), so the worker keeps answering meanwhile.", min=1, max=64)
    worker_connections: int = setting(1000, "Open connections one worker holds at once (slow or idle clients and live streams included; each is a greenlet, not a thread).", min=50, max=20000)
    mqtt_ingest: bool = setting(True, "`posko hub serve` also runs the one MQTT ingest process (heartbeats, alerts, the kb/current announcement).")
    report_max_bytes: int = setting(65536, "Largest accepted report body.", unit="bytes", min=4096, max=1048576)
    photo_max_bytes: int = setting(8388608, "Largest accepted photo upload.", unit="bytes", min=65536, max=67108864)
    photo_max_pixels: int = setting(40000000, "Largest accepted photo size in pixels (decompression-bomb guard).", min=10000, max=200000000)
    enrol_code_valid_h: int = setting(24, "How long a unit's one-time enrolment code stays valid.", unit="h", min=1, max=720)
    ticket_fail_limit: int = setting(10, "Wrong ticket/PIN look-ups one client may make per window before 429.", min=1, max=1000)
    ticket_fail_window_s: int = setting(600, "Window of the ticket look-up failure limit.", unit="s", min=10, max=86400)
    enrol_fail_limit: int = setting(10, "Wrong enrolment codes one client may send per window before 429.", min=1, max=1000)
    ticket_unit_fail_limit: int = setting(200, "Wrong ticket/PIN look-ups one kiosk (all its residents together) may make per window before 429; each ticket also has ticket_fail_limit per kiosk and for all clients together.", min=1, max=100000)
    login_backoff_after: int = setting(3, "Failed logins of one user name from one client before each further try from that client must wait.", min=1, max=100)
    login_backoff_max_s: int = setting(300, "Longest wait after repeated failed logins (it doubles per failure).", unit="s", min=1, max=86400)
    login_client_fail_limit: int = setting(30, "Failed logins one client (any user names) may make per login_client_window_s before 429.", min=1, max=100000)
    login_client_window_s: int = setting(900, "Window of login_client_fail_limit.", unit="s", min=10, max=86400)
    proxy_hops: int = setting(0, "Reverse proxies in front of the hub whose X-Forwarded-For/-Proto is trusted (1 behind nginx); 0 uses the TCP peer as the client.", min=0, max=5)
    heartbeat_offline_factor: float = setting(3.0, "A unit silent for this many heartbeat intervals is shown offline.", min=1.5, max=20.0)
    fleet_disk_low_mb: float = setting(500.0, "A unit whose heartbeat reports less free disk than this is flagged on the fleet page (as `posko doctor` fails on the unit); under a tenth of it, as full.", unit="MB", min=0, max=1_000_000)
    prank_block_count: int = setting(3, "Reports rejected as 'laporan palsu' that block a phone number.", min=1, max=100)
    session_cookie_secure: bool = setting(False, "Send the session cookie only over HTTPS (set true behind TLS).")
    session_hours: int = setting(12, "An officer's login lasts this long (one shift).", unit="h", min=1, max=168)
    display_tz: str = setting("Asia/Jakarta", "Time zone the dashboard shows times in (WIB; Asia/Makassar for WITA, Asia/Jayapura for WIT).")
    kb_eval_dir: str = setting("", "Folder of the labelled evaluation set (YAML items q/action/entry) the KB editor runs every draft against; empty: no evaluation. A change that lowers escalation or refusal recall is flagged.")
    page_size: int = setting(50, "Reports per page in the queue.", min=5, max=500)
    overdue_high_min: int = setting(15, "A high-severity report still new or only verified this long after it arrived is marked overdue in the queue.", unit="min", min=1, max=10080)
    overdue_medium_min: int = setting(60, "Overdue mark for medium-severity reports (accident, violence, disaster).", unit="min", min=1, max=10080)
    overdue_normal_min: int = setting(240, "Overdue mark for the other reports.", unit="min", min=1, max=10080)
    map_tiles: str = setting("", "MBTiles file of the offline map (PNG or JPEG raster tiles); empty means <state_dir>/hub/tiles.mbtiles, which `posko hub tiles install` writes.")
    map_center: str = setting("-6.9075,109.7300", "Where the map opens when no report or posko has a position yet: latitude,longitude (Batang).")
    export_max_rows: int = setting(20000, "Most reports one CSV or GeoJSON export holds.", min=100, max=1000000)
    alert_rate_limit: int = setting(5, "New alerts one unit may raise per alert_rate_window_s; more are counted on its newest open alert (the first always passes).", min=1, max=1000)
    alert_rate_window_s: float = setting(60.0, "Window of alert_rate_limit.", unit="s", min=1.0, max=3600.0)
    alert_collapse_s: float = setting(600.0, "An open alert takes identical repeats (same unit, source and text) heard within this long as a count.", unit="s", min=0.0, max=86400.0)
