"""Tanya Pak Polisi: the assistant brain (pure Python, no audio or hardware).

    from assistant import load_brain
    brain = load_brain()
    reply = brain.ask("brp biaya skck", lang="id")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.brain import Brain, Reply, load_brain
    from assistant.errors import AssistantError, KbError

__all__ = ["AssistantError", "Brain", "KbError", "Reply", "load_brain"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `python -m assistant.kb` runs without the brain.
    if name in ("Brain", "Reply", "load_brain"):
        from assistant import brain

        return getattr(brain, name)
    if name in ("AssistantError", "KbError"):
        from assistant import errors

        return getattr(errors, name)
    raise AttributeError(name)
