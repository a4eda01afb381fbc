"""Settings of the assistant brain (Tanya Pak Polisi)."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class AssistantSettings:
    """Knowledge base and decision thresholds."""

    kb_dir: str = setting("", "Knowledge-base folder; empty uses the bundle shipped with Posko.")
    min_confidence: float = setting(0.35, "Below this retrieval confidence the answer is a fallback.", min=0.0, max=1.0)
