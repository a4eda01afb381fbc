"""The Tanya screen's link to the assistant brain (`firmware.assistant`), and answer markup.

The brain is loaded once in a background thread (the first screen must not wait for it).
When this build has no brain, or it fails to load, `BrainHandle.status` says so and the
screen tells the resident the assistant is not available: it never makes up an answer.

With no `[assistant] kb_dir`, the brain follows the knowledge base the unit fetched from
the hub (`<state_dir>/kb/current`, see posko/kb_paths.py): when that pointer changes, the
new KB is loaded in the background and takes over; until then (or if it fails to load)
the screen keeps answering from the one it has.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

log = logging.getLogger(__name__)


class BrainHandle:
    """Loads the brain once and answers typed questions with it."""

    POINTER_CHECK_S = 2.0  # how often a question looks whether the unit installed a new KB

    def __init__(self, kb_dir: str = "", brain: Any = None, settings: Any = None) -> None:
        self.kb_dir = kb_dir
        self.settings = settings  # for the unanswered-questions log and the installed KB
        self._brain = brain
        self.status = "ready" if brain is not None else "loading"
        self.error = ""
        self._loaded = threading.Event()
        self._loaded_from: Path | None = None  # the KB folder of the brain in use (None: shipped)
        self._follow = brain is None and not kb_dir and settings is not None
        self._checked = 0.0
        self._swap_lock = threading.Lock()
        self._swapping = False
        self._failed_folder: Path | None = None
        if brain is not None:
            self._loaded.set()

    def _folder(self) -> Path | None:
        if self.kb_dir:
            return Path(self.kb_dir)
        if self.settings is None:
            return None
        from posko.kb_paths import active_kb_dir

        return active_kb_dir(self.settings)

    def start(self) -> BrainHandle:
        if not self._loaded.is_set():
            threading.Thread(target=self._load, name="brain-load", daemon=True).start()
        return self

    def _load(self) -> None:
        try:
            from firmware.assistant import load_brain
        except ImportError as exc:
            self.status, self.error = "missing", f"assistant not in this build: {exc}"
            log.warning("kiosk: %s", self.error)
            self._loaded.set()
            return
        try:
            folder = self._folder()
            self._brain = load_brain(folder)
            self._loaded_from = folder
            self.status = "ready"
            self._attach_unanswered_log()
        except Exception as exc:  # a broken KB must not take the kiosk down
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("kiosk: the assistant brain failed to load")
        self._loaded.set()

    def _follow_installed(self) -> None:
        """Load the unit's newly installed KB in the background when the pointer moved."""
        now = time.monotonic()
        if not self._follow or self.status != "ready" or now - self._checked < self.POINTER_CHECK_S:
            return
        self._checked = now
        folder = self._folder()
        if folder == self._loaded_from or folder == self._failed_folder:
            return
        with self._swap_lock:
            if self._swapping:
                return
            self._swapping = True
        threading.Thread(target=self._swap, args=(folder,), name="brain-reload", daemon=True).start()

    def _swap(self, folder: Path | None) -> None:
        try:
            from firmware.assistant import load_brain

            brain = load_brain(folder)
            self._attach_unanswered_log(brain)
        except Exception as exc:  # keep answering from the KB in use
            self._failed_folder = folder
            log.error("kiosk: knowledge base %s NOT loaded, keeping the one in use: %s", folder,
                      str(exc).splitlines()[0])
        else:
            self._brain, self._loaded_from = brain, folder
            log.info("kiosk: knowledge base %s loaded", folder)
        finally:
            self._swapping = False

    def _attach_unanswered_log(self, brain: Any = None) -> None:
        """Typed questions the brain could not answer go to the assistant's own log too."""
        if self.settings is None:
            return
        try:
            from firmware.assistant.unanswered import attach_log
        except ImportError:
            return
        try:
            attach_log(brain if brain is not None else self._brain, self.settings)
        except Exception:  # the log is a maintainer aid; answering must go on without it
            log.exception("kiosk: the unanswered-questions log could not be attached")

    def wait(self, timeout_s: float) -> bool:
        return self._loaded.wait(timeout_s)

    @property
    def brain(self) -> Any:
        self._follow_installed()
        return self._brain if self.status == "ready" else None

    def ask(self, question: str, lang: str) -> dict[str, Any] | None:
        """The brain's reply as a dict plus `html`, or None when no brain is available."""
        brain = self.brain
        if brain is None:
            return None
        reply = brain.ask(question, lang=lang)
        data = reply.to_dict() if hasattr(reply, "to_dict") else dict(reply)
        data["html"] = str(render_markup(data.get("text", "")))
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
