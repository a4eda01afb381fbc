"""Posko updates on a unit, with rollback (a UnitComponent named "update").

Layout (made by `./setup.sh kiosk|ptt`): `<prefix>/releases/<version>/` is one venv per
release and `<prefix>/current` a symlink to the running one; every service starts
`<prefix>/current/bin/posko`.

1. The hub announces a release retained on `release/current` (hub/releases.py).
2. When it is not the running version (and not one that already failed here), the updater
   waits until the unit is idle (no resident being served, no report open, no transmission),
   downloads the wheel, checks its size and SHA-256, and installs it into a new venv beside
   the running one. Posko's own code comes from the wheel; its third-party packages from the
   release setup.sh installed (a `.pth` file), so an offline unit needs no package index.
3. It records the try (`<state_dir>/unit/update.json`: version, previous, deadline), switches
   `current` with one rename and asks for a restart (the root-owned posko-update-restart.path
   restarts the unit's services).
4. The new agent checks its health (services up, MQTT link, hub reachable, a test question
   answered) and marks the release good, or switches back and restarts when the check fails
   or has not passed by the deadline (5 minutes). A release that cannot even start is rolled
   back by `guard()`, which posko-unit.service runs before every start with the system
   Python from a copy of this file (so it must stay standard library only at import time).

Pure parts (`should_update`, `busy_reasons`, `UpdateState`, `Releases`) are tested directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HEALTH_DEADLINE_S = 300.0  # a release that is not healthy 5 minutes after the switch goes back
HEALTH_EVERY_S = 10.0
MAX_WHEEL_BYTES = 200 * 1024 * 1024
STAMP = ".posko-installed"  # written by setup.sh (and here): "<extras> <digest>"
BASE = ".posko-base"  # in an updated release: the release whose packages it uses


@dataclasses.dataclass
class UpdateState:
    """What the updater is doing; kept in <state_dir>/unit/update.json across restarts.

    state: idle | waiting | installing | trying | ok | rolled-back | failed
    """

    state: str = "idle"
    version: str = ""  # the release being (or last) tried
    previous: str = ""  # the release to go back to
    since: float = 0.0  # unix time the state began
    deadline: float = 0.0  # unix time by which a "trying" release must be healthy
    reason: str = ""

    @classmethod
    def load(cls, path: Path) -> UpdateState:
        try:
            data = json.loads(path.read_text())
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self)))
        os.replace(tmp, path)


def should_update(announced: str, running: str, state: UpdateState) -> bool:
    """True when `announced` should be installed: new here, and not already failed here."""
    if not announced or announced == running:
        return False
    return not (state.version == announced and state.state in ("rolled-back", "failed"))


def busy_reasons(ptt: dict[str, Any] | None, voice_busy: bool, kiosk: dict[str, Any] | None = None) -> list[str]:
    """Why an update must wait now (empty: the unit is idle).

    ptt: push-to-talk's heartbeat status (`tx` is "idle" unless transmitting, `talker` is set
    while someone is heard); voice_busy: the voice component is serving a resident; kiosk: the
    kiosk app's local status, when it reports a resident at the screen (`busy`).
    """
    reasons = []
    ptt = ptt or {}
    if ptt.get("tx", "idle") != "idle":
        reasons.append("a transmission is on")
    elif ptt.get("talker"):
        reasons.append(f"receiving {ptt['talker']}")
    if voice_busy:
        reasons.append("a resident is being served (voice)")
    if (kiosk or {}).get("busy"):  # the kiosk app's presence (kiosk_ui/presence.py)
        reason = kiosk.get("reason")
        reasons.append(reason if isinstance(reason, str) and reason else "a resident is using the kiosk")
    return reasons


class Releases:
    """The releases under `prefix` and the `current` link."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = Path(prefix)

    @property
    def enabled(self) -> bool:
        """Only an installed unit updates itself (not a checkout running `posko up`)."""
        return (self.prefix / "current").is_symlink()

    def path(self, version: str) -> Path:
        return self.prefix / "releases" / version

    def current(self) -> str:
        """The version `current` points at ("" when there is none)."""
        try:
            return Path(os.readlink(self.prefix / "current")).name
        except OSError:
            return ""

    def base_of(self, version: str) -> Path:
        """The release whose third-party packages `version` uses (setup.sh's own release)."""
        rel = self.path(version)
        marker = rel / BASE
        return Path(marker.read_text().strip()) if marker.exists() else rel

    def switch(self, version: str) -> None:
        """Point `current` at `version` with one rename: never a moment without a release."""
        if not (self.path(version) / "bin" / "python").exists():
            raise FileNotFoundError(f"release {version} is not installed in {self.path(version)}")
        tmp = self.prefix / ".current.new"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(f"releases/{version}", tmp)
        os.replace(tmp, self.prefix / "current")

    def install(self, version: str, wheel: Path, python: str = sys.executable) -> Path:
        """A new venv for `version` with Posko from `wheel`, beside the running release.

        Raises subprocess.CalledProcessError when venv or pip fail (nothing is switched).
        """
        running = self.current()
        base = self.base_of(running) if running else None
        rel = self.path(version)
        if rel.exists():
            subprocess.run(["rm", "-rf", str(rel)], check=True)
        subprocess.run([python, "-m", "venv", str(rel)], check=True, capture_output=True)
        if base is not None:
            site = next((rel / "lib").glob("python3*/site-packages"))
            base_site = next((base / "lib").glob("python3*/site-packages"))
            # After the new release's own site-packages: its Posko wins over the base's.
            (site / "posko-base.pth").write_text(f"{base_site}\n")
            (rel / BASE).write_text(f"{base}\n")
        subprocess.run([str(rel / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                        "--no-index", "--no-cache-dir", str(wheel)], check=True, capture_output=True)
        (rel / STAMP).write_text(f"update {hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]}\n")
        return rel

    def prune(self, keep: set[str]) -> None:
        """Remove releases not in `keep` and not a base of one that is kept."""
        bases = {self.base_of(v).name for v in keep if self.path(v).exists()}
        for rel in (self.prefix / "releases").iterdir():
            if rel.name not in keep | bases:
                subprocess.run(["rm", "-rf", str(rel)], check=False)


def guard(prefix: Path, state_file: Path, now: float | None = None) -> str:
    """Before a start: a release still not healthy after its deadline goes back. Returns what
    was done (for the journal). Standard library only: it runs when the new release cannot."""
    now = time.time() if now is None else now
    state = UpdateState.load(state_file)
    releases = Releases(prefix)
    if state.state != "trying" or now < state.deadline or not state.previous:
        return f"update guard: nothing to do ({state.state})"
    if releases.current() == state.version:
        releases.switch(state.previous)
    state.state, state.since = "rolled-back", now
    state.reason = state.reason or "not healthy before the deadline (it may not start at all)"
    state.save(state_file)
    return f"update guard: rolled back {state.version} -> {state.previous}: {state.reason}"


class Updater:
    """The UnitComponent: follows release/current, installs, switches, checks, rolls back."""

    name = "update"

    def __init__(self, prefix: Path | str = "/opt/posko", *, busy: Callable[[], list[str]] | None = None,
                 health: Callable[[], list[str]] | None = None, restart: Callable[[], None] | None = None,
                 deadline_s: float = HEALTH_DEADLINE_S, health_every_s: float = HEALTH_EVERY_S,
                 idle_wait_s: float = 5.0) -> None:
        self.releases = Releases(Path(prefix))
        self.busy = busy or (lambda: [])
        self._health = health
        self._restart = restart
        self.deadline_s = deadline_s
        self.health_every_s = health_every_s
        self.idle_wait_s = idle_wait_s
        self.ctx = None
        self.state = UpdateState()
        self.waiting_for: list[str] = []
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.ctx.state_dir / "unit" / "update.json"

    def start(self, ctx) -> None:
        from posko import topics  # lazy: guard() runs this file alone (system Python)

        self.ctx = ctx
        self.state = UpdateState.load(self.state_file)
        if not self.releases.enabled:
            log.info("updates off: %s/current is not a release link (not an installed unit)",
                     self.releases.prefix)
            return
        self._spawn(self._work, "update")
        if self.state.state == "trying":
            self._spawn(self._check_after_switch, "update-health")
        ctx.link.subscribe(topics.release_current(ctx.root), self._on_current, qos=1)

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self._jobs.put(None)
        for thread in self._threads:
            thread.join(5)

    def status(self) -> dict[str, Any]:
        if not self.releases.enabled:
            return {"state": "off", "running": ""}
        out = {"state": self.state.state, "running": self.releases.current(),
               "version": self.state.version, "reason": self.state.reason}
        if self.waiting_for:
            out["waiting_for"] = list(self.waiting_for)
        return out

    def _set(self, state: str, reason: str = "", **changes: Any) -> None:
        self.state = dataclasses.replace(self.state, state=state, reason=reason, since=time.time(), **changes)
        self.state.save(self.state_file)
        log.info("update: %s %s %s", state, self.state.version, reason)
        if self.ctx is not None:
            self.ctx.request_heartbeat()

    # -- announcement -> install -> switch ----------------------------------------------
    def _on_current(self, topic: str, payload: bytes) -> None:
        # lazy: guard() runs this file alone with the system Python (standard library only)
        from posko.messages import BadMessage, ReleaseCurrent

        try:
            self._jobs.put(ReleaseCurrent.from_json(payload))
        except BadMessage as exc:
            log.warning("bad release/current dropped: %s", exc)

    def _work(self) -> None:
        while not self._stopping.is_set():
            job = self._jobs.get()
            if job is None:
                return
            try:
                self.handle(job)
            except Exception as exc:  # logged and reported; a newer announcement tries again
                log.exception("update to %s failed", job.version)
                self._set("failed", f"{type(exc).__name__}: {exc}", version=job.version)

    def handle(self, current) -> bool:
        """Install and switch to an announced release; True when it switched."""
        if self.state.state == "trying" or not should_update(current.version, self.releases.current(), self.state):
            return False
        while not self._stopping.is_set():
            self.waiting_for = self.busy()
            if not self.waiting_for:
                break
            if self.state.state != "waiting":
                self._set("waiting", "; ".join(self.waiting_for), version=current.version)
            self._stopping.wait(self.idle_wait_s)
        self._set("installing", version=current.version)
        wheel = self.fetch(current)
        self.releases.install(current.version, wheel)
        previous = self.releases.current()
        self._set("trying", "switched; checking health", version=current.version, previous=previous,
                  deadline=time.time() + self.deadline_s)
        self.releases.switch(current.version)
        self.restart()
        return True

    def fetch(self, current) -> Path:
        """The announced wheel, size- and SHA-256-checked, in <state_dir>/unit/releases/."""
        # lazy: guard() runs this file alone with the system Python (standard library only)
        from posko.enroll import read_token
        from posko.hubclient import HubClient

        s = self.ctx.settings
        if current.size > MAX_WHEEL_BYTES:
            raise ValueError(f"release {current.version} is {current.size} bytes (limit {MAX_WHEEL_BYTES})")
        token = read_token(s)
        if token is None:
            raise RuntimeError("this unit is not enrolled (posko enroll); no token for the hub")
        hub = HubClient(s.kiosk.hub_url, lambda: token, timeout_s=max(60.0, s.kiosk.http_timeout_s),
                        ca_file=s.kiosk.hub_ca_file)
        status, data = hub.download(current.path, MAX_WHEEL_BYTES)
        if status != 200:
            raise RuntimeError(f"HTTP {status} from {current.path}")
        if len(data) != current.size or hashlib.sha256(data).hexdigest() != current.sha256:
            raise ValueError(f"release {current.version}: size or SHA-256 differs from the announcement")
        folder = self.ctx.state_dir / "unit" / "releases"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / current.path.rsplit("/", 1)[-1]
        path.write_bytes(data)
        return path

    def restart(self) -> None:
        """Ask for the unit's services to be restarted on the new `current`."""
        if self._restart is not None:
            self._restart()
            return
        # posko-update-restart.path (root) watches this file and restarts the services.
        request = self.ctx.state_dir / "unit" / "restart-request"
        request.write_text(f"{time.time()}\n")

    # -- after the switch: health check or rollback --------------------------------------
    def health_problems(self) -> list[str]:
        """What is wrong with the running release ([] = healthy)."""
        if self._health is not None:
            return self._health()
        return default_health(self.ctx, self.releases.prefix, self.state.version)

    def _check_after_switch(self) -> None:
        while not self._stopping.is_set():
            if self.releases.current() != self.state.version:
                self._set("rolled-back", "current no longer points at the release")
                return
            problems = self.health_problems()
            if not problems:
                self._set("ok", "healthy after the switch")
                self.releases.prune({self.state.version, self.state.previous})
                return
            if time.time() >= self.state.deadline:
                self.rollback("; ".join(problems))
                return
            self._stopping.wait(self.health_every_s)

    def rollback(self, reason: str) -> None:
        previous = self.state.previous
        log.error("update %s not healthy, going back to %s: %s", self.state.version, previous, reason)
        self.releases.switch(previous)
        self._set("rolled-back", reason)
        self.restart()


def release_problems(prefix: Path, version: str, ask: bool = True, timeout_s: float = 120.0) -> list[str]:
    """Does the release `current` points at run, say its version, and answer a test question?"""
    posko = Path(prefix) / "current" / "bin" / "posko"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    try:
        result = subprocess.run([str(posko), "--version"], capture_output=True, text=True,
                                timeout=timeout_s, env=env)
        if result.returncode != 0 or version not in result.stdout:
            return [f"posko --version failed in {version}: {(result.stderr or result.stdout)[-300:].strip()}"]
        if ask:
            result = subprocess.run([str(posko), "ask", "bagaimana cara membuat SIM"], capture_output=True,
                                    text=True, timeout=timeout_s, env=env)
            if result.returncode != 0 or "SIM" not in result.stdout:
                return [f"the assistant of {version} did not answer a test question: "
                        f"{(result.stderr or result.stdout)[-300:].strip()}"]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"release {version} did not run: {exc}"]
    return []


def default_health(ctx, prefix: Path, version: str) -> list[str]:
    """The checks of a release on a real unit: services, MQTT link, hub, a test question."""
    # lazy: guard() runs this file alone with the system Python (standard library only)
    from posko.enroll import read_token
    from posko.hubclient import HubClient

    problems = []
    if not ctx.link.connected.is_set():
        problems.append("MQTT link to the local broker is down")
    services = ["posko-unit"] + (["posko-kiosk-ui"] if ctx.settings.unit.assistant_enabled else [])
    for service in services:
        state = subprocess.run(["systemctl", "is-active", f"{service}.service"], capture_output=True,
                               text=True).stdout.strip()
        if state != "active":
            problems.append(f"{service} is {state or 'unknown'}")

    token = read_token(ctx.settings)
    if not HubClient(ctx.settings.kiosk.hub_url, lambda: token, ca_file=ctx.settings.kiosk.hub_ca_file).ping():
        problems.append(f"hub {ctx.settings.kiosk.hub_url} not reachable")
    return problems + release_problems(prefix, version, ask=ctx.settings.unit.assistant_enabled)


def main(argv: list[str]) -> int:
    """`python3 updater.py guard [PREFIX STATE_FILE]` (posko-unit.service's ExecStartPre)."""
    if argv[:1] != ["guard"]:
        print("usage: updater.py guard [PREFIX STATE_FILE]", file=sys.stderr)
        return 2
    prefix = Path(argv[1]) if len(argv) > 1 else Path("/opt/posko")
    state = Path(argv[2]) if len(argv) > 2 else Path("/var/lib/posko/unit/update.json")
    print(guard(prefix, state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
