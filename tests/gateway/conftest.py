"""Fixtures of the push-to-talk suite: an arbiter and in-process units on the real broker."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.ptt_audio import FramesSource
from gateway.arbiter import Arbiter
from gateway.client import Hooks, TalkGroupClient
from gateway.codec import CodecParams
from posko import topics
from posko.messages import Heartbeat
from posko.mqtt import MqttLink, Will
from posko.settings.core import MqttSettings
from posko.settings.ptt import PttSettings

PARAMS = CodecParams()


def tone_frames(seconds: float, freq: float = 300.0) -> list[bytes]:
    n = np.arange(int(seconds * 16000))
    pcm = (7000 * np.sin(2 * np.pi * freq * n / 16000)).astype("<i2").tobytes()
    step = PARAMS.frame_bytes
    return [pcm[i:i + step] for i in range(0, len(pcm) - step + 1, step)]


# A microphone that says the given frames, then nothing (end of file).
ListSource = FramesSource


class EndlessSource:
    """A microphone with a jammed button in front of it: sound forever."""

    def __init__(self) -> None:
        self.frame = tone_frames(0.02)[0]

    def read(self) -> bytes:
        return self.frame

    def close(self) -> None:
        pass


class RecordingSink:
    """A speaker that remembers what it was given."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, pcm: bytes) -> None:
        self.frames.append(pcm)

    def close(self) -> None:
        pass

    def audible(self) -> int:
        return sum(1 for f in self.frames if np.abs(np.frombuffer(f, "<i2")).max() > 200)


class TimedSink(RecordingSink):
    """A speaker that remembers what it was given and when (time.time(), as the traces)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def write(self, pcm: bytes) -> None:
        self.times.append(time.time())
        self.frames.append(pcm)


@dataclasses.dataclass
class Unit:
    """An in-process unit: client, sink, what its hooks saw."""

    client: TalkGroupClient
    sink: RecordingSink
    link: MqttLink
    events: list[tuple[str, dict]]
    cuts: list[str]
    busy: threading.Event

    def seen(self, event: str) -> list[dict]:
        return [f for e, f in list(self.events) if e == event]


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


@pytest.fixture
def ptt_settings() -> PttSettings:
    return PttSettings(command_units=["command-center"], supervisor_units=["supervisor-1"])


@pytest.fixture
def mqtt_settings(broker, topic_prefix) -> MqttSettings:
    return MqttSettings(host=broker.host, port=broker.port, topic_root=topic_prefix, keepalive_s=5)


class Net:
    """Start an arbiter and units; everything stops at the end of the test."""

    def __init__(self, mqtt: MqttSettings, ptt: PttSettings, tmp: Path) -> None:
        self.mqtt, self.ptt, self.tmp = mqtt, ptt, tmp
        self.stoppers: list[Callable[[], None]] = []

    def arbiter(self, **overrides) -> Arbiter:
        ptt = dataclasses.replace(self.ptt, **overrides) if overrides else self.ptt
        arb = Arbiter(self.mqtt, ptt, self.tmp / "recordings").start()
        self.stoppers.append(arb.stop)
        assert arb.link.wait_connected(5)
        return arb

    def unit(self, name: str, source: Callable[[], object] | None = None, *, group: str | None = None,
             priority: str | None = None, ptt: PttSettings | None = None, mqtt: MqttSettings | None = None,
             wait_arbiter: bool = True, will: bool = False, continuous: bool = True,
             playout_thread: bool = True, scan: list[str] | None = None,
             sink: RecordingSink | None = None) -> Unit:
        events: list[tuple[str, dict]] = []
        cuts: list[str] = []
        busy = threading.Event()
        sink = sink if sink is not None else RecordingSink()
        sink.continuous = continuous  # False: like a unit's speaker, closed while quiet
        settings = mqtt or self.mqtt
        # As the unit agent does: the broker says "offline" for a unit that vanishes.
        last_will = Will(topics.unit_status(name, settings.topic_root), Heartbeat.offline(name),
                         qos=1, retain=True) if will else None
        link = MqttLink(settings, f"{name}-{id(events)}", will=last_will)
        hooks = Hooks(trace=lambda e, **f: events.append((e, f)), cut=cuts.append, busy=busy.set)
        client = TalkGroupClient(link, name, ptt or self.ptt,
                                 source_factory=source or (lambda: ListSource(tone_frames(1.0))),
                                 sink=sink, hooks=hooks, group=group, priority=priority, scan=scan)
        client.start(playout_thread=playout_thread)
        link.start()
        self.stoppers.append(lambda: (client.stop(), link.stop()))
        assert link.wait_connected(5)
        if wait_arbiter:
            assert wait_until(lambda: client.status()["arbiter_online"], 5), "no arbiter presence"
        return Unit(client, sink, link, events, cuts, busy)

    def close(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:  # noqa: S110 - a failed stop must not hide the test's result
                pass


@pytest.fixture
def net(mqtt_settings, ptt_settings, tmp_path) -> Iterator[Net]:
    n = Net(mqtt_settings, ptt_settings, tmp_path)
    try:
        yield n
    finally:
        n.close()
