"""The Tanya screen's link to the assistant brain, and answer markup.

The brain itself is held by `assistant.holder.BrainHolder`, the same holder the voice
uses: loaded once in the background, following the knowledge base the unit fetched from
the hub (`<state_dir>/kb/current`) unless `[assistant] kb_dir` fixes one, and swapped
only once a new KB has loaded. When it is not loaded (yet), `BrainHandle.status` says so
and the screen tells the resident the assistant is not available: it never makes up an
answer.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from markupsafe import Markup, escape

from assistant.holder import BrainHolder

log = logging.getLogger(__name__)


class BrainHandle:
    """The kiosk's view of the brain holder: typed questions, featured questions, entries."""

    def __init__(self, kb_dir: str = "", brain: Any = None, settings: Any = None) -> None:
        self.holder = BrainHolder(settings, kb_dir=kb_dir or None, brain=brain, follow=brain is None)

    @property
    def status(self) -> str:
        return self.holder.status

    @property
    def error(self) -> str:
        return self.holder.error

    def start(self) -> BrainHandle:
        self.holder.start()
        return self

    def wait(self, timeout_s: float) -> bool:
        return self.holder.wait(timeout_s)

    @property
    def brain(self) -> Any:
        return self.holder.brain

    def ask(self, question: str, lang: str) -> dict[str, Any] | None:
        """The brain's reply as a dict for the screen, or None when no brain is available.

        The screen shows suggestions as buttons and an emergency's true alert state itself,
        so `text` loses the fallback's suggestion list and the escalation's "officers are
        being alerted" lead (the kiosk says that only once it is true)."""
        brain = self.brain
        if brain is None:
            return None
        reply = brain.ask(question, lang=lang)
        data = reply.to_dict() if hasattr(reply, "to_dict") else dict(reply)
        data["suggestions"] = [dict(s, title=sentence_case(s.get("title", "")))
                               for s in data.get("suggestions") or [] if isinstance(s, dict)]
        text = data.get("text", "") or ""
        if data.get("action") == "escalate":
            text = strip_lead(text, _escalation_lead(brain, lang))
        elif data.get("action") == "fallback" and data["suggestions"]:
            text = strip_suggestions(text, [s["title"] for s in data["suggestions"]])
        data["text"] = text
        return data

    def featured(self, lang: str) -> list[dict[str, str]]:
        brain = self.brain
        if brain is None or not hasattr(brain, "featured"):
            return []
        try:
            return list(brain.featured(lang))[:6]
        except Exception:
            log.exception("kiosk: featured questions failed")
            return []

    def entry_answer(self, entry_id: str, lang: str) -> Markup | None:
        """The screen answer of one KB entry, rendered, or None when it is not available."""
        brain = self.brain
        if brain is None:
            return None
        try:
            entry = brain.kb.get(entry_id)
        except Exception:
            return None
        if entry is None:
            return None
        answer = entry.answer if hasattr(entry, "answer") else entry.get("answer")
        if isinstance(answer, dict):
            text = answer.get(lang) or answer.get("id") or ""
        else:
            text = getattr(answer, lang, None) or getattr(answer, "id", "") or str(answer)
        return render_markup(text) if text else None


def _escalation_lead(brain: Any, lang: str) -> str:
    try:
        return brain.emergency.common["text"][lang]
    except (AttributeError, KeyError, TypeError):
        return ""


def sentence_case(title: str) -> str:
    """First letter upper case ("fee for a SIM" -> "Fee for a SIM"); the rest kept."""
    title = title.strip()
    return title[:1].upper() + title[1:]


def strip_lead(text: str, lead: str) -> str:
    """`text` without the lines of `lead` at its start (compared line by line, stripped)."""
    lead_lines = [ln.strip() for ln in lead.splitlines() if ln.strip()]
    lines = text.splitlines()
    i = 0
    while i < len(lines) and lead_lines and lines[i].strip() == lead_lines[0]:
        lead_lines.pop(0)
        i += 1
    return "\n".join(lines[i:]).strip() if not lead_lines else text


def strip_suggestions(text: str, titles: list[str]) -> str:
    """`text` without its trailing "- title" lines and the lead line just before them."""
    bullets = {f"- {t.strip()}".lower() for t in titles}
    lines = text.rstrip().splitlines()
    cut = len(lines)
    while cut and lines[cut - 1].strip().lower() in bullets:
        cut -= 1
    if cut < len(lines) and cut and lines[cut - 1].strip().endswith(":"):
        cut -= 1
    return "\n".join(lines[:cut]).strip()


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_STEP = re.compile(r"^\d+\.\s+")


def render_markup(text: str) -> Markup:
    """KB answer markup -> safe HTML: paragraphs, "- " bullets, "1. " steps, **bold**.

    Everything is escaped first; only the tags made here are HTML.
    """
    blocks: list[str] = []
    kind: str | None = None
    items: list[str] = []

    def flush() -> None:
        nonlocal kind, items
        if kind and items:
            tag = "ul" if kind == "ul" else "ol"
            blocks.append(f"<{tag}>" + "".join(f"<li>{i}</li>" for i in items) + f"</{tag}>")
        kind, items = None, []

    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        inline = _BOLD.sub(r"<strong>\1</strong>", str(escape(line.lstrip("-").strip()
                                                              if line.startswith("- ") else
                                                              _STEP.sub("", line))))
        if line.startswith("- "):
            if kind != "ul":
                flush()
                kind = "ul"
            items.append(inline)
        elif _STEP.match(line):
            if kind != "ol":
                flush()
                kind = "ol"
            items.append(inline)
        else:
            flush()
            blocks.append(f"<p>{inline}</p>")
    flush()
    return Markup("".join(blocks))
