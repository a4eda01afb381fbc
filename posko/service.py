"""Running under systemd: READY / STOPPING / WATCHDOG pings (sd_notify) and `posko watch`.

A service pings systemd's watchdog only while it is well, so that a hung service (alive but
not working) is killed and restarted by systemd (`WatchdogSec=` in its unit):

* Python services with a main loop call `Watchdog.beat()` from that loop; the watchdog
  thread pings only while the last beat is recent. A loop that hangs stops the pings.
* Services that are not ours to change (gunicorn's master, cage + Chromium) run under
  `posko watch`, which starts the command, forwards signals, and pings while a check of what
  the service does passes: an HTTP answer, or a page that still renders (Chrome DevTools
  protocol: a requestAnimationFrame callback runs only while the renderer paints).

Without NOTIFY_SOCKET (a laptop, `posko up`) every call here does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Mapping as MappingABC

import click

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET (nothing when it is unset).

    Written here instead of using `sdnotify` so that the abstract socket names systemd uses
    ('@...') and errors are handled the same way everywhere; it is a dozen lines.
    """

    def __init__(self, environ: MappingABC[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address = ("\0" + path[1:]) if path.startswith("@") else path
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, state: str) -> bool:
        """Send one state line ("READY=1", "WATCHDOG=1", ...); False when it could not."""
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(state.encode(), self.address)
            return True
        except OSError as exc:
            log.warning("sd_notify %s failed: %s", state, exc)
            return False


def watchdog_interval_s(environ: MappingABC[str, str] | None = None) -> float | None:
    """How often to ping (a third of WatchdogSec), or None when systemd wants no pings."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6 / 3


class Watchdog:
    """Pings systemd's watchdog while `healthy()` holds; `beat()` marks a main loop alive.

    healthy: called every interval from the watchdog thread; the default is "beat() was
    called within the last two intervals", so a hung main loop stops the pings.
    interval_s: seconds between pings (default: watchdog_interval_s(), i.e. WatchdogSec / 3).
    """

    def __init__(self, healthy: Callable[[], bool] | None = None, interval_s: float | None = None,
                 notifier: Notifier | None = None) -> None:
        self.notifier = notifier or Notifier()
        self.interval_s = interval_s if interval_s is not None else watchdog_interval_s()
        self._healthy = healthy or self._beating
        self._last_beat = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    def _beating(self) -> bool:
        return time.monotonic() - self._last_beat < 2 * (self.interval_s or 1.0)

    def ready(self, status: str = "") -> None:
        self.notifier.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        self.notifier.notify("STOPPING=1")

    def start(self) -> Watchdog:
        if self.interval_s and self.notifier.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                ok = self._healthy()
            except Exception:
                log.exception("watchdog health check failed")
                ok = False
            if ok and self.notifier.notify("WATCHDOG=1"):
                self.pings += 1
            elif not ok:
                log.warning("unhealthy: not pinging systemd's watchdog")

    def stop(self) -> None:
        self._stop.set()


# --- checks for `posko watch` ------------------------------------------------------------

def http_check(url: str, timeout_s: float) -> Callable[[], bool]:
    """Healthy while url answers with any status below 500 within timeout_s."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def check() -> bool:
        try:
            with opener.open(url, timeout=timeout_s) as response:
                return response.status < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except (OSError, ValueError):
            return False

    return check


RENDER_PROBE = "new Promise(r => requestAnimationFrame(() => r(document.readyState)))"


def render_check(port: int, timeout_s: float) -> Callable[[], bool]:
    """Healthy while Chromium's page (DevTools on 127.0.0.1:port) still paints a frame."""

    def check() -> bool:
        import websocket  # lazy: websocket-client is in the [kiosk] extra; only a kiosk watches its page

        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=timeout_s) as response:
                pages = [t for t in json.load(response) if t.get("type") == "page"]
            if not pages:
                return False
            ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout_s,
                                             suppress_origin=True)
            try:
                ws.send(json.dumps({"id": 1, "method": "Runtime.evaluate",
                                    "params": {"expression": RENDER_PROBE, "awaitPromise": True,
                                               "returnByValue": True}}))
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    answer = json.loads(ws.recv())
                    if answer.get("id") == 1:
                        return answer.get("result", {}).get("result", {}).get("value") == "complete"
                return False
            finally:
                ws.close()
        except Exception as exc:  # any failure to reach or drive the page is "not rendering"
            log.debug("render check failed: %s", exc)
            return False

    return check


def supervise(argv: list[str], healthy: Callable[[], bool], watchdog: Watchdog,
              start_timeout_s: float = 120.0) -> int:
    """Run argv; READY once healthy, pings while healthy; returns the child's exit code.

    The child does not see NOTIFY_SOCKET (this process speaks for it). SIGTERM, SIGINT and
    SIGHUP are passed on to it.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    child = subprocess.Popen(argv, env=env)

    def forward(signum, frame) -> None:
        if signum != signal.SIGHUP:
            watchdog.stopping()
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    started = time.monotonic()
    ready = False
    while child.poll() is None and not ready:
        if healthy():
            watchdog.ready()
            ready = True
            break
        if time.monotonic() - started > start_timeout_s:
            log.error("%s not healthy after %.0f s", argv[0], start_timeout_s)
            child.terminate()
            break
        time.sleep(0.5)
    if ready:
        watchdog._healthy = lambda: child.poll() is None and healthy()
        watchdog.start()
    while True:
        try:
            return child.wait()
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
            continue


@click.command("watch", context_settings={"ignore_unknown_options": True})
@click.option("--http", "http_url", default=None, help="Healthy while this URL answers (< 500).")
@click.option("--render", "render_port", type=int, default=None,
              help="Healthy while Chromium's page (DevTools port on 127.0.0.1) renders.")
@click.option("--timeout", "timeout_s", type=float, default=5.0, show_default=True,
              help="Seconds one check may take.")
@click.option("--start-timeout", "start_timeout_s", type=float, default=120.0, show_default=True,
              envvar="POSKO_WATCH_START_TIMEOUT",
              help="Seconds the command has to become healthy before it is stopped "
                   "(also $POSKO_WATCH_START_TIMEOUT: for a machine much slower than a Pi, "
                   "with systemd's TimeoutStartSec= raised as well).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def watch(http_url: str | None, render_port: int | None, timeout_s: float, start_timeout_s: float,
          command: tuple[str, ...]) -> None:
    """Run COMMAND under systemd's watchdog: ping only while it answers (or renders)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    checks = []
    if http_url:
        checks.append(http_check(http_url, timeout_s))
    if render_port:
        checks.append(render_check(render_port, timeout_s))
    if not checks:
        raise click.UsageError("give --http URL and/or --render PORT")
    code = supervise(list(command), lambda: all(c() for c in checks), Watchdog(),
                     start_timeout_s=start_timeout_s)
    sys.exit(code if code >= 0 else 128 - code)
