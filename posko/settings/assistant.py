"""Settings of the assistant brain (Tanya Pak Polisi)."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class AssistantSettings:
    """Knowledge base, decision threshold and the log of unanswered questions."""

    kb_dir: str = setting("", "Knowledge-base folder; empty uses the bundle fetched from the hub (<state_dir>/kb/current), else the one shipped with Posko.")
    min_confidence: float = setting(0.25, "Below this confidence (intent model and retrieval combined) the answer is a fallback (chosen on the held-out old frozen splits; see docs/assistant.md).", min=0.0, max=1.0)
    log_unanswered: bool = setting(True, "Keep a local log of fallback questions (personal data removed) for `posko ask --report`.")
    unanswered_log: str = setting("assistant/unanswered.jsonl", "Log of unanswered questions; relative paths are inside the state directory.")
