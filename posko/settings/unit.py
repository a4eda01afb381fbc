"""Settings of the unit agent: heartbeat and the physical panel."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class UnitSettings:
    """The on-device agent (`posko unit`)."""

    heartbeat_s: int = setting(30, "Interval between status heartbeats.", unit="s", min=1, max=3600)
    assistant_enabled: bool = setting(True, "Run the voice assistant (false on PTT-only units).")
    pin_factory: str = setting("", "gpiozero pin factory: empty = gpiozero's choice (lgpio on a Pi 5), 'mock' on a laptop.")
