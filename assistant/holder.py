"""The one holder of the assistant brain on a unit: load it, follow `kb/current`, swap it.

The kiosk screen (`posko kiosk-ui`) and the voice (`posko unit`) each hold a brain in
their own process; both use this class, so both follow a newly installed knowledge base
the same way:

* the brain is loaded once in a background thread (the first screen must not wait);
* with no fixed `[assistant] kb_dir`, every `POINTER_CHECK_S` a use of `brain` looks at
  the unit's KB pointer (`posko.kb_paths`, written by the KB updater) and, when it names
  another folder, loads that folder in the background; `refresh()` looks at once (the
  unit's KB updater calls it through the agent right after an install);
* the new brain takes over only once it has loaded: until then, and for ever if it fails
  to load, the brain in use keeps answering;
* listeners (`on_swap`) hear of each swap with the old and the new brain, so the voice can
  rebuild its speech cache and recogniser grammar for the new KB.

Status is "loading", "ready" or "failed" (with `error`); a screen that finds no brain
says the assistant is not available, it never makes up an answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.brain import Brain, load_brain
from assistant.unanswered import attach_log
from posko.kb_paths import active_kb_dir

log = logging.getLogger(__name__)

SwapListener = Callable[[Brain | None, Brain], None]


class BrainHolder:
    """Loads the brain once, answers with it, and swaps in the unit's newly installed KB."""

    POINTER_CHECK_S = 2.0  # how often a use of the brain looks whether a new KB was installed

    def __init__(self, settings: Any = None, *, kb_dir: str | Path | None = None,
                 brain: Brain | None = None, log_unanswered: bool = True,
                 follow: bool | None = None,
                 loader: Callable[[Path | None], Brain] | None = None) -> None:
        """settings: a posko.config.Settings (KB pointer, min_confidence, unanswered log);
        kb_dir: a fixed KB folder (never followed); brain: an already loaded brain (tests);
        follow: watch the KB pointer (default: when neither kb_dir nor [assistant] kb_dir
        fixes the folder)."""
        self.settings = settings
        self.kb_dir = Path(kb_dir) if kb_dir else None
        self.log_unanswered = log_unanswered and settings is not None
        self._loader = loader or self._load_folder
        self._brain = brain
        self.status = "ready" if brain is not None else "loading"
        self.error = ""
        self._loaded = threading.Event()
        self._loaded_from: Path | None = self._folder() if brain is not None else None
        fixed = self.kb_dir is not None or settings is None or bool(settings.assistant.kb_dir)
        self._follow = (not fixed) if follow is None else (follow and not fixed)
        self._checked = 0.0
        self._lock = threading.Lock()
        self._swapping = False
        self._failed_folder: Path | None = None
        self._listeners: list[SwapListener] = []
        if brain is not None:
            self._loaded.set()

    # -- loading -------------------------------------------------------------------
    def _folder(self) -> Path | None:
        """The KB folder to use now: the fixed one, else the installed bundle, else None
        (the KB shipped with Posko)."""
        if self.kb_dir is not None:
            return self.kb_dir
        if self.settings is None:
            return None
        return active_kb_dir(self.settings)

    def _load_folder(self, folder: Path | None) -> Brain:
        min_conf = self.settings.assistant.min_confidence if self.settings is not None else None
        # A KB bundle from the hub needs its own intent model: trained once, then kept here.
        cache = self.settings.state_dir / "assistant" / "models" if self.settings is not None else None
        brain = load_brain(folder, min_confidence=min_conf, cache_dir=cache)
        if self.log_unanswered:
            # Questions the brain could not answer go to the unit's log (personal data removed).
            attach_log(brain, self.settings)
        return brain

    def start(self) -> BrainHolder:
        """Load the brain in a background thread (returns at once)."""
        if not self._loaded.is_set():
            threading.Thread(target=self._first_load, name="brain-load", daemon=True).start()
        return self

    def load_now(self) -> Brain:
        """Load the brain in this thread (command-line use); raises KbError on a broken KB."""
        if self._brain is None:
            folder = self._folder()
            self._brain, self._loaded_from = self._loader(folder), folder
            self.status = "ready"
            self._loaded.set()
        return self._brain

    def _first_load(self) -> None:
        folder = self._folder()
        try:
            brain = self._loader(folder)
        except Exception as exc:  # a broken KB must not take the kiosk or the unit down
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("assistant: the brain failed to load from %s: %s", folder or "the shipped KB",
                      str(exc).splitlines()[0])
        else:
            self._brain, self._loaded_from, self.status = brain, folder, "ready"
            self._tell(None, brain)
        self._loaded.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once the first load has finished (ready or failed)."""
        return self._loaded.wait(timeout_s)

    # -- following the installed KB ------------------------------------------------------
    def on_swap(self, listener: SwapListener) -> None:
        """Call listener(old, new) after the first load and after every swap."""
        self._listeners.append(listener)

    def _tell(self, old: Brain | None, new: Brain) -> None:
        for listener in list(self._listeners):
            try:
                listener(old, new)
            except Exception:  # one listener must not stop the others or the swap
                log.exception("assistant: a brain-swap listener failed")

    def refresh(self, *, wait: bool = False) -> bool:
        """Look at the KB pointer now; start (or with wait, run) a swap when it moved.

        Returns True when a swap was started or done."""
        if not self._follow or self.status != "ready":
            return False
        self._checked = time.monotonic()
        folder = self._folder()
        if folder == self._loaded_from or folder == self._failed_folder:
            return False
        with self._lock:
            if self._swapping:
                return False
            self._swapping = True
        if wait:
            self._swap(folder)
        else:
            threading.Thread(target=self._swap, args=(folder,), name="brain-reload",
                             daemon=True).start()
        return True

    def _swap(self, folder: Path | None) -> None:
        try:
            brain = self._loader(folder)
        except Exception as exc:  # keep answering from the KB in use
            self._failed_folder = folder
            log.error("assistant: knowledge base %s NOT loaded, keeping the one in use: %s",
                      folder, str(exc).splitlines()[0])
        else:
            old, self._brain, self._loaded_from = self._brain, brain, folder
            log.info("assistant: knowledge base %s loaded (%s)", folder or "shipped",
                     brain.kb.version[:12])
            self._tell(old, brain)
        finally:
            self._swapping = False

    def reload(self) -> bool:
        """Load the KB folder in use now again, in this thread (a new bundle was installed,
        or a maintainer changed the folder): True when the knowledge base changed.

        A KB that fails to load keeps the brain in use. The same entries from another
        folder (the hub's bundle of the shipped KB) take over without counting as a change,
        so that the heartbeat names the installed bundle."""
        current = self._brain
        if current is None:
            return False
        folder = self._folder()
        try:
            brain = self._loader(folder)
        except Exception as exc:
            log.error("assistant: knowledge base %s NOT loaded, keeping version %s: %s",
                      folder or "shipped", current.kb.version[:12], str(exc).splitlines()[0])
            return False
        changed = brain.kb.version != current.kb.version
        if changed or getattr(brain.kb, "root", "") != getattr(current.kb, "root", ""):
            self._brain, self._loaded_from = brain, folder
            self._tell(current, brain)
        log.info("assistant: knowledge base %s (%s)", "loaded" if changed else "unchanged",
                 brain.kb.version[:12])
        return changed

    @property
    def swapping(self) -> bool:
        return self._swapping

    @property
    def brain(self) -> Brain | None:
        """The brain in use (None while loading or after a failed first load)."""
        if self._follow and time.monotonic() - self._checked >= self.POINTER_CHECK_S:
            self.refresh()
        return self._brain if self.status == "ready" else None
