"""Settings of the unit agent: heartbeat and the physical panel."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class UnitSettings:
    """The on-device agent (`posko unit`). Pins are BCM numbers (GPIO17 = 17)."""

    heartbeat_s: int = setting(30, "Interval between status heartbeats.", unit="s", min=1, max=3600)
    unanswered_upload_s: int = setting(300, "How often the unit sends new lines of its unanswered-questions log (personal data already removed) to the hub; 0 sends none.", unit="s", min=0, max=86400)
    broker_login_check_s: int = setting(60, "How often the unit asks the hub (HTTPS, its token) whether its login at the central broker is still current; after a rotation it fetches the new one and rewrites its bridge, so its uplink is down at most about this long. 0 never asks (the bridge's login is then only what enrolment gave).", unit="s", min=0, max=86400)
    assistant_enabled: bool = setting(True, "Run the voice assistant (false on PTT-only units).")
    pin_factory: str = setting("", "gpiozero pin factory: empty = gpiozero's choice (lgpio on a Pi 5), 'mock' on a laptop, 'none' for a unit without a panel.")
    tanya_pin: int = setting(5, "Tanya (ask) button, to ground; pressing it starts listening or stops the answer.", min=0, max=27)
    panic_pin: int = setting(6, "Panic button, to ground; held for panic_hold_s it raises an alert.", min=0, max=27)
    listening_led_pin: int = setting(12, "LED lit while the unit listens.", min=0, max=27)
    status_led_pin: int = setting(16, "Status LED: steady when healthy, blinking when a sound device is missing.", min=0, max=27)
    panic_hold_s: float = setting(1.0, "How long the panic button must be held, so a brush does not raise an alert.", unit="s", min=0.0, max=10.0)
    bounce_ms: int = setting(30, "Button debounce time.", unit="ms", min=0, max=500)
