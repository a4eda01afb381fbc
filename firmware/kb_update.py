"""Knowledge-base updates on a unit: fetch the bundle the hub announces, keep the last good one.

On `kb/current` (retained, so it also arrives at every connect) with a version other than
the installed one, the component downloads `GET <hub_url><path>` with the unit's token,
checks the SHA-256, unpacks into `<state_dir>/kb/<version>.tmp`, validates it with the
brain's own loader, renames it to `<state_dir>/kb/<version>` and switches the `kb/current`
pointer atomically (posko/kb_paths.py). The previous version stays on disk as the last good
one; older ones are deleted. Then the agent reloads its components (the voice's brain), and
the kiosk screen sees the pointer change by itself.

A bad bundle (wrong hash, not a tar.gz, a KB that does not validate, a 404) is refused and
logged once, and the unit keeps answering from what it has. A failed download (hub away,
connection cut, 5xx) is tried again with backoff until it works or another version is
announced. With `[assistant] kb_dir` set the operator chose the folder: nothing is fetched.
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import shutil
import tarfile
import threading
from pathlib import Path
from typing import Any

from assistant.errors import KbError
from assistant.kb import load_kb
from firmware.errors import FirmwareError
from posko import topics
from posko.enroll import read_token
from posko.hubclient import HubClient, HubUnreachable
from posko.kb_paths import MARKER, VERSION_PATTERN, installed_version, kb_store, write_pointer
from posko.messages import BadMessage, KbCurrent

log = logging.getLogger(__name__)

MAX_BUNDLE_BYTES = 20 * 1024 * 1024  # compressed download
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
MAX_MEMBERS = 20000
RETRY_FIRST_S = 5.0
RETRY_MAX_S = 600.0


class KbUpdateError(FirmwareError, ValueError):
    """A bundle was refused for good (its bytes or its content are wrong)."""


class KbFetchError(FirmwareError, OSError):
    """A bundle could not be downloaded now (worth trying again later)."""


class KbUpdater:
    """The unit's knowledge-base updater (a UnitComponent named "kb")."""

    name = "kb"

    def __init__(self, *, timeout_s: float | None = None, retry_first_s: float = RETRY_FIRST_S) -> None:
        self.ctx = None
        self.timeout_s = timeout_s
        self.retry_first_s = retry_first_s
        self.installed: str | None = None
        self.last_error = ""
        self.refused: dict[str, str] = {}  # "version sha256" -> why (refused for good)
        self.installs = 0
        self._announced: queue.Queue[KbCurrent | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------
    def start(self, ctx) -> None:
        self.ctx = ctx
        self.installed = installed_version(ctx.settings)
        if ctx.settings.assistant.kb_dir:
            log.info("knowledge base from [assistant] kb_dir; updates from the hub are not fetched")
            return
        self._thread = threading.Thread(target=self._work, name="kb-update", daemon=True)
        self._thread.start()
        ctx.link.subscribe(topics.kb_current(ctx.root), self._on_current, qos=1)

    def stop(self) -> None:
        self._stopping.set()
        self._announced.put(None)
        if self._thread is not None:
            self._thread.join(5)

    def status(self) -> dict[str, Any]:
        return {"installed": self.installed or "", "error": self.last_error,
                "refused": sorted(key.split()[0] for key in self.refused), "installs": self.installs}

    # -- announcements -----------------------------------------------------------
    def _on_current(self, topic: str, payload: bytes) -> None:
        try:
            current = KbCurrent.from_json(payload)
        except BadMessage as exc:
            log.warning("bad kb/current dropped: %s", exc)
            return
        self._announced.put(current)

    def _work(self) -> None:
        pending: KbCurrent | None = None
        delay = self.retry_first_s
        while not self._stopping.is_set():
            try:
                # While a download failed, wait for a newer announcement or the retry time.
                item = self._announced.get(timeout=delay if pending is not None else None)
            except queue.Empty:
                item = pending
            if item is None:
                if self._stopping.is_set():
                    return
                continue
            if pending is None or item.version != pending.version:
                delay = self.retry_first_s
            try:
                self.handle(item)
                pending = None
            except Exception as exc:  # KbFetchError, or a full disk: try again later
                if pending is None or pending.version != item.version:  # logged once per version
                    log.warning("knowledge base %s not installed yet (trying again): %s", item.version, exc,
                                exc_info=not isinstance(exc, KbFetchError))
                pending, delay = item, min(delay * 2, RETRY_MAX_S)
                self.last_error = f"{item.version}: {exc}"
                self._heartbeat()

    def handle(self, current: KbCurrent) -> bool:
        """Install an announced bundle unless it is installed or was refused; True if installed.

        Raises KbFetchError when it could not be downloaded now.
        """
        key = f"{current.version} {current.sha256}"
        with self._lock:
            if current.version == self.installed or key in self.refused:
                return False
            try:
                data = self.fetch(current)
                folder = self.install(current, data)
            except KbUpdateError as exc:
                self.refused[key] = str(exc)
                self.last_error = f"{current.version}: {exc}"
                log.error("knowledge base %s REFUSED, keeping %s: %s", current.version,
                          self.installed or "the shipped one", exc)
                self._heartbeat()
                return False
            self.installed = current.version
            self.installs += 1
            self.last_error = ""
        log.info("knowledge base %s installed in %s", current.version, folder)
        reload = getattr(self.ctx, "kb_installed", None)
        if reload is not None:
            reload()
        self._heartbeat()
        return True

    # -- steps -------------------------------------------------------------------
    def fetch(self, current: KbCurrent) -> bytes:
        """The bundle's bytes, checked against the announced SHA-256 and version."""
        s = self.ctx.settings
        if not VERSION_PATTERN.match(current.version) or not current.path.startswith("/"):
            raise KbUpdateError(f"malformed announcement (version {current.version!r}, path {current.path!r})")
        token = read_token(s)
        if token is None:
            raise KbFetchError("this unit is not enrolled (posko enroll); no token for the hub")
        hub = HubClient(s.kiosk.hub_url, lambda: token, timeout_s=self.timeout_s or s.kiosk.http_timeout_s,
                        ca_file=s.kiosk.hub_ca_file)
        try:
            status, data = hub.download(current.path, MAX_BUNDLE_BYTES)
        except HubUnreachable as exc:
            raise KbFetchError(str(exc)) from None
        except ValueError:
            raise KbUpdateError(f"bundle larger than {MAX_BUNDLE_BYTES} bytes") from None
        if status == 404:
            raise KbUpdateError(f"the hub has no bundle at {current.path}")
        if status != 200:
            raise KbFetchError(f"HTTP {status} from {current.path}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != current.sha256.lower():
            raise KbUpdateError(f"SHA-256 {digest[:12]}… does not match the announced {current.sha256[:12]}…")
        if digest[:12] != current.version:
            raise KbUpdateError(f"version {current.version} is not the bundle's SHA-256 {digest[:12]}…")
        return data

    def install(self, current: KbCurrent, data: bytes) -> Path:
        """Unpack, validate, rename into place, switch the pointer, prune old versions."""
        store = kb_store(self.ctx.settings)
        store.mkdir(parents=True, exist_ok=True)
        tmp = store / f"{current.version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _unpack(data, tmp)
            (tmp / MARKER).write_text(current.version + "\n", encoding="ascii")
            try:
                load_kb(tmp)
            except KbError as exc:
                raise KbUpdateError(f"not a valid knowledge base: {exc.problems[0] if exc.problems else exc}"
                                    + (f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else "")) from None
            final = store / current.version
            if final.exists():  # a leftover of an earlier install of the same version
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        previous = installed_version(self.ctx.settings)
        write_pointer(self.ctx.settings, current.version)
        keep = {current.version, previous}
        for child in store.iterdir():
            if child.is_dir() and child.name not in keep:
                shutil.rmtree(child, ignore_errors=True)
        return final

    def _heartbeat(self) -> None:
        request = getattr(self.ctx, "request_heartbeat", None)
        if request is not None:
            request()


def _unpack(data: bytes, into: Path) -> None:
    """Extract a bundle: regular files and folders only, inside `into`, within size limits."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise KbUpdateError(f"bundle has more than {MAX_MEMBERS} members")
            total = 0
            for m in members:
                parts = Path(m.name).parts
                if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in parts:
                    raise KbUpdateError(f"bundle member {m.name!r} is not a plain file or folder inside it")
                total += m.size
            if total > MAX_UNPACKED_BYTES:
                raise KbUpdateError(f"bundle unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            tar.extractall(into, filter="data")
    except KbUpdateError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise KbUpdateError(f"not a readable tar.gz bundle: {exc}") from None
