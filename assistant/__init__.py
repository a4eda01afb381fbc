"""Tanya Pak Polisi: the assistant brain (pure Python, no audio or hardware).

    from assistant import load_brain
    brain = load_brain()
    reply = brain.ask("brp biaya skck", lang="id")
"""

from __future__ import annotations

from assistant.brain import Brain, Reply, load_brain
from assistant.errors import AssistantError, KbError

__all__ = ["AssistantError", "Brain", "KbError", "Reply", "load_brain"]
