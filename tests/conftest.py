"""Shared fixtures: one real Mosquitto per session, sound and GPIO sandboxes, one Chromium.

Area-specific fixtures live in the area's own conftest (tests/<area>/conftest.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.gpio import mock_pin_factory
from tests.support.mqtt import Client, RunningBroker, start_broker
from tests.support.sound import SoundSandbox

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


# The files that take longest, longest first (each file's setup, call and teardown time summed
# over a full run's `--durations=0`, 4 Dec 2026: 2,718 s of tests on three workers). With
# `--dist loadfile` a free worker takes the next file in collection order, so a long file
# collected last (tests/install and tests/phone sort late) ran alone at the end of the run;
# starting the long ones first lets the short ones fill the gaps (longest-first scheduling:
# 16 min 59 s -> 15 min 34 s on the idle machine, against 15 min 6 s for a perfect split).
LONG_FILES = (
    "tests/phone/test_emergency.py",
    "tests/phone/test_console.py",
    "tests/hub/test_kb_editor_browser.py",
    "tests/install/test_updates.py",
    "tests/hub/test_browser.py",
    "tests/install/test_roles_in_root.py",
    "tests/kiosk_ui/test_browser.py",
    "tests/phone/test_enrolment.py",
    "tests/hub/test_schemathesis.py",
    "tests/kiosk_ui/test_screens.py",
    "tests/hub/test_security.py",
    "tests/hub/test_api.py",
    "tests/install/test_proxy_slow_clients.py",
    "tests/phone/test_phone_browser.py",
    "tests/assistant/test_cli.py",
    "tests/hub/test_mqtt.py",
    "tests/kiosk_ui/test_emergency.py",
    "tests/install/test_extras.py",
    "tests/hub/test_alerts_flood.py",
    "tests/hub/test_security_load.py",
    "tests/phone/test_bench_browser.py",
    "tests/phone/test_lbt.py",
    "tests/phone/test_phone_wss.py",
    "tests/firmware/test_whisper.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    # A stable sort: the order inside each file, and of the other files, stays as collected.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(autouse=True)
def _clean_posko_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see a developer's own POSKO_* variables or posko.toml."""
    for key in list(os.environ):
        if key.startswith("POSKO_") and not key.startswith("POSKO_TEST_"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh state directory for this test, also exported as POSKO_POSKO_STATE_DIR."""
    path = tmp_path / "var"
    path.mkdir()
    monkeypatch.setenv("POSKO_POSKO_STATE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def broker_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RunningBroker]]:
    """Start extra brokers (passwords, ACL, WebSockets, bridge); all stop at session end."""
    started: list[RunningBroker] = []

    def make(**options) -> RunningBroker:
        folder = tmp_path_factory.mktemp("broker")
        running = start_broker(folder, **options)
        started.append(running)
        return running

    yield make
    for running in started:
        running.process.stop()


@pytest.fixture(scope="session")
def broker(broker_factory: Callable[..., RunningBroker]) -> RunningBroker:
    """The session's shared anonymous broker on a free loopback port."""
    return broker_factory()


@pytest.fixture
def topic_prefix() -> str:
    """A topic root of this test's own, so tests sharing the broker never hear each other."""
    return f"test/{uuid.uuid4().hex[:10]}/posko/v1"


@pytest.fixture
def mqtt_client(broker: RunningBroker) -> Iterator[Callable[..., Client]]:
    """Make connected clients on the shared broker; all disconnect after the test."""
    clients: list[Client] = []

    def make(**kwargs) -> Client:
        kwargs.setdefault("host", broker.host)
        port = kwargs.pop("port", broker.port)
        client = Client(port, **kwargs)
        clients.append(client)
        assert client.wait_connected(), "could not connect to the test broker"
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def sound(tmp_path: Path) -> SoundSandbox:
    """An ALSA file-plugin sound card for child processes (see tests/support/sound.py)."""
    return SoundSandbox(tmp_path / "soundhome")


@pytest.fixture
def mock_pins() -> Iterator[object]:
    """gpiozero's MockFactory for this test; the previous factory is restored after."""
    with mock_pin_factory() as factory:
        yield factory


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[object]:
    """The process's one Playwright (its sync API allows one per thread): every browser a
    test launches comes from it."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        yield pw
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def chromium(playwright_session) -> Iterator[object]:
    """One headless Debian Chromium for the whole session (Playwright browser object)."""
    path = chromium_path()
    if path is None:
        pytest.fail("Debian's chromium is not installed: run ./setup.sh dev")
    browser = playwright_session.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def new_page(chromium) -> Iterator[Callable[..., object]]:
    """Open pages in fresh contexts of the shared Chromium: new_page(width, height)."""
    contexts = []

    def make(width: int = 800, height: int = 480, **context_options):
        context = chromium.new_context(viewport={"width": width, "height": height},
                                       **context_options)
        contexts.append(context)
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests save screenshots and recordings for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
