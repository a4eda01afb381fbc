"""Settings of push-to-talk talk groups (Ngobrol Kamtibmas)."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class PttSettings:
    """Talk group membership and transmit limits."""

    group: str = setting("batang-kota", "Talk group this unit joins at start.")
    tx_timeout_s: int = setting(60, "A transmission is cut after this long so a stuck button cannot jam the group.", unit="s", min=5, max=600)
