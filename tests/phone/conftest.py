"""Phone and console tests: a real Mosquitto with its WebSocket listener, the real arbiter,
`posko hub serve`, `posko ptt` units in their own processes, and Debian's Chromium with a
fake microphone that says a WAV file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from gateway.arbiter import Arbiter
from posko.settings.core import MqttSettings
from posko.settings.ptt import PttSettings
from tests.hub.support import HubProcess
from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.correlate import best_correlation

GROUP = "ojol-kuta"


def read_wav(path: Path) -> np.ndarray:
    """16 kHz mono 16-bit WAV as float samples."""
    import wave

    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)


def heard_share(heard: np.ndarray, said: np.ndarray, window_s: float = 0.5,
                threshold: float = 0.6) -> float:
    """The share of `heard`'s voiced half-second windows that match `said` (0..1).

    One correlation over the whole recording falls to ~0.45 when a loaded machine makes
    the receiver conceal a few frames mid-spurt, though every word was heard; windows
    judge each part on its own. Silence and noise score near 0."""
    size = int(16000 * window_s)
    windows = [heard[i:i + size] for i in range(0, len(heard) - size + 1, size)]
    voiced = [w for w in windows if np.sqrt(np.mean((w - w.mean()) ** 2)) > 300]
    if not voiced:
        return 0.0
    return sum(best_correlation(w, said) >= threshold for w in voiced) / len(voiced)


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> tuple[Path, Path]:
    """Indonesian speech from espeak-ng: (48 kHz WAV for Chromium's fake microphone, the same
    at 16 kHz mono for the units and the comparison)."""
    folder = tmp_path_factory.mktemp("speech")
    raw = folder / "raw.wav"
    subprocess.run(["espeak-ng", "-v", "id", "-s", "150", "-w", str(raw),
                    "Selamat pagi, ini pos Kuta. Jalan Legian macet, ada kecelakaan ringan di depan pasar."],
                   check=True)
    mic = folder / "mic.wav"
    wav16 = folder / "speech16k.wav"
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(mic), "pad", "0", "0.3"], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav16), "pad", "0", "0.3"], check=True)
    return mic, wav16


@pytest.fixture(scope="session")
def ws_broker(broker_factory):
    """An anonymous Mosquitto with a WebSocket listener."""
    return broker_factory(websockets=True)


@pytest.fixture
def root() -> str:
    return f"test/{uuid.uuid4().hex[:8]}/posko/v1"


@pytest.fixture
def ptt_settings() -> PttSettings:
    return PttSettings(command_units=["command-center"])


@pytest.fixture
def arbiter(ws_broker, root, ptt_settings, tmp_path) -> Iterator[Arbiter]:
    mqtt = MqttSettings(host="127.0.0.1", port=ws_broker.port, topic_root=root, keepalive_s=5)
    arb = Arbiter(mqtt, ptt_settings, tmp_path / "recordings").start()
    assert arb.link.wait_connected(5)
    try:
        yield arb
    finally:
        arb.stop()


@pytest.fixture
def hub(ws_broker, root, tmp_path) -> Iterator[HubProcess]:
    """`posko hub serve` whose phone app points at the broker's WebSocket listener."""
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=ws_broker.port, topic_root=root,
                     extra_env={"POSKO_PTT_PHONE_BROKER_URL": f"ws://{{host}}:{ws_broker.websockets_port}"}).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def browser(speech, playwright_session) -> Iterator[object]:
    """A Chromium of its own whose fake microphone says the speech file (launched from the
    session's one Playwright: a second sync Playwright in the same thread is refused)."""
    path = chromium_path()
    if path is None:
        pytest.fail("Debian's chromium is not installed: run ./setup.sh dev")
    b = playwright_session.chromium.launch(
        executable_path=path, headless=True,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={speech[0]}",
              "--autoplay-policy=no-user-gesture-required"])
    try:
        yield b
    finally:
        b.close()


def open_phone(browser, hub: HubProcess, config: dict | None, *, fragment: str = "",
               init_scripts: tuple[Path, ...] = ()):
    """The phone app in a phone-sized page; `config` is what enrolment leaves in the phone;
    `init_scripts` run before the page's own (e.g. the bench's probe, bench/ptt_browser.js,
    whose audio tap is a blob: worklet that the hub's content policy would refuse)."""
    context = browser.new_context(viewport={"width": 412, "height": 860}, is_mobile=True, has_touch=True,
                                  permissions=["microphone"], bypass_csp=bool(init_scripts))
    for script in init_scripts:
        context.add_init_script(path=str(script))
    if config is not None:
        context.add_init_script(f"localStorage.setItem('posko-hp', {json.dumps(json.dumps(config))});")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.goto(f"{hub.base}/hp/{fragment}")
    return page


def wait_online(page, timeout_ms: int = 10000) -> None:
    page.wait_for_selector("#conn[data-state='online']", timeout=timeout_ms)


def hold(page, seconds: float) -> None:
    """Hold the PTT button with a finger for `seconds`, then lift it."""
    box = page.locator("#ptt").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    time.sleep(seconds)
    page.mouse.up()


class Ptt:
    """`posko ptt` processes (real units' code in their own processes)."""

    def __init__(self, broker, root: str, tmp: Path) -> None:
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("POSKO_")},
                    "POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": root,
                    "POSKO_PTT_GROUP": GROUP, "POSKO_POSKO_STATE_DIR": str(tmp / "ptt-var")}
        self.procs: list[subprocess.Popen] = []

    def listen(self, unit: str, record: Path, seconds: int = 120) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "posko", "ptt", "--unit", unit, "--no-speaker",
                                 "--record", str(record), "--listen", str(seconds)], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def send(self, unit: str, wav: Path, *extra: str, wait: bool = True):
        argv = [sys.executable, "-m", "posko", "ptt", "--unit", unit, "--no-speaker", "--send", str(wav), *extra]
        if wait:
            return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> str:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        return out

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)


@pytest.fixture
def ptt(ws_broker, root, tmp_path) -> Iterator[Ptt]:
    p = Ptt(ws_broker, root, tmp_path)
    try:
        yield p
    finally:
        p.close()


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
