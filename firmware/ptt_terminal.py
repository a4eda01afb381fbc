"""`posko ptt`'s body: a talk-group client driven by the keyboard or a WAV file.

A terminal sends no key-up events, so "hold SPACE to talk" is read from the key's
auto-repeat: the floor is held while repeats keep coming and released
`HOLD_GAP_S` after the last one. Enter toggles talking for terminals without repeat.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import sys
import termios
import threading
import time
import tty
from pathlib import Path

import click

from firmware.errors import AudioDeviceError
from firmware.ptt_audio import MicSource, NullSink, SpeakerSink, WavSink, WavSource, find_device
from gateway.client import Hooks, TalkGroupClient
from gateway.codec import CodecParams
from gateway.errors import GatewayError
from gateway.transmit import Tx
from posko import topics
from posko.config import Settings
from posko.messages import Heartbeat
from posko.mqtt import MqttLink, Will

log = logging.getLogger(__name__)

HOLD_GAP_S = 0.8  # longer than the initial auto-repeat delay (console 0.25 s, X11 0.66 s)


class SpurtFiles:
    """--record DIR: one WAV file per spurt heard."""

    def __init__(self, folder: Path, say) -> None:
        self.folder = folder
        self.say = say
        self._open: dict[tuple[str, int], WavSink] = {}
        self.saved: list[Path] = []

    def audio(self, unit: str, spurt: int, pcm: bytes) -> None:
        sink = self._open.get((unit, spurt))
        if sink is None:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            sink = WavSink(self.folder / f"{stamp}_{unit}_{spurt:08x}.wav")
            self._open[(unit, spurt)] = sink
        sink.write(pcm)

    def end(self, unit: str, spurt: int) -> None:
        sink = self._open.pop((unit, spurt), None)
        if sink is not None:
            sink.close()
            self.saved.append(sink.path)
            self.say("saved", path=sink.path)

    def close(self) -> None:
        for key in list(self._open):
            self.end(*key)


def run_terminal_client(settings: Settings, *, texts: dict[str, str], group: str, unit: str,
                        send_file: Path | None, record_dir: Path | None, priority: str | None,
                        listen_s: float, speaker: bool, wait_floor_free_s: float,
                        trace_file: Path | None = None, input_device: str = "default",
                        output_device: str = "default") -> int:
    """Run until the file is sent (and listened after), `listen_s` passes, q or Ctrl-C.

    `input_device`/`output_device` name the microphone and speaker by (part of) their name
    ("default": the system's default device).
    """
    topics.check_id("unit", unit)
    topics.check_id("group", group)

    def say(key: str, **fields) -> None:
        click.echo(texts[key].format(**fields))
        sys.stdout.flush()

    params = CodecParams(frame_ms=settings.ptt.frame_ms, bitrate_bps=settings.ptt.bitrate_bps)
    if send_file is not None:
        try:  # a wrong file is said at once, not after the floor was granted
            WavSource(send_file, params.samples).close()
        except AudioDeviceError as exc:
            click.echo(f"posko ptt: {exc}", err=True)
            return 2
    sink = NullSink()
    if speaker:
        try:
            sink = SpeakerSink(params.samples, output_device)
        except AudioDeviceError as exc:
            log.warning("%s; playing nothing (use --record DIR to keep what is heard)", exc)

    if send_file is not None:
        def source_factory():
            return WavSource(send_file, params.samples)
    else:
        try:  # a missing microphone is said at start, not only when SPACE is pressed
            log.info("microphone: %s", find_device(input_device, output=False))
        except AudioDeviceError as exc:
            log.warning("%s", exc)

        def source_factory():
            return MicSource(params.samples, input_device)

    recorder = SpurtFiles(record_dir, say) if record_dir else None
    done = threading.Event()
    state = {"last_holder": None}

    def on_talker(holder: str | None) -> None:
        if holder == state["last_holder"]:
            return
        state["last_holder"] = holder
        if holder is None:
            say("floor_free")
        elif holder == unit:
            say("talking_you")
        else:
            say("talking_other", unit=holder)

    def on_cut(reason: str) -> None:
        key = {"timeout": "cut_timeout", "preempted": "cut_preempted"}.get(reason, "cut_other")
        say(key, reason=reason)

    trace_out = open(trace_file, "a", encoding="utf-8") if trace_file else None  # noqa: SIM115
    trace_lock = threading.Lock()

    def on_trace(event: str, **fields) -> None:
        if trace_out is not None:
            with trace_lock:
                trace_out.write(json.dumps({"event": event, **fields}) + "\n")
                trace_out.flush()
        if event == "tx_end" and send_file is not None:
            done.set()
        if event == "deny" and send_file is not None:
            done.set()

    hooks = Hooks(talker=on_talker, cut=on_cut, busy=lambda: say("busy"),
                  online=lambda up: say("online" if up else "offline"),
                  rx_audio=recorder.audio if recorder else Hooks.rx_audio,
                  rx_end=recorder.end if recorder else Hooks.rx_end, trace=on_trace)
    status_topic = topics.unit_status(unit, settings.mqtt.topic_root)
    link = MqttLink(settings.mqtt, f"{unit}-ptt",
                    will=Will(status_topic, Heartbeat.offline(unit), qos=1, retain=True))
    client = TalkGroupClient(link, unit, settings.ptt, source_factory=source_factory, sink=sink,
                             hooks=hooks, group=group, priority=priority)
    started = time.time()

    def heartbeat() -> None:
        hb = Heartbeat(unit=unit, state="online", uptime_s=time.time() - started,
                       talk_group=client.group, interval_s=10, parts={"ptt": client.status()})
        link.publish(status_topic, hb.to_json(), qos=1, retain=True)

    client.start()
    link.start()
    if not link.wait_connected(10):
        say("offline")
    code = 0
    try:
        heartbeat()
        if send_file is not None:
            code = _send(client, texts, say, send_file, listen_s, wait_floor_free_s, done, group, unit)
        else:
            say("ready", group=group, unit=unit)
            _keyboard(client, listen_s, heartbeat)
    except GatewayError as exc:
        click.echo(f"posko ptt: {exc}", err=True)
        code = 1
    finally:
        client.stop()
        if recorder is not None:
            recorder.close()
        if link.connected.is_set():
            link.publish(status_topic, Heartbeat.offline(unit), qos=1, retain=True).wait_for_publish(2)
        link.stop()
        sink.close()
        if trace_out is not None:
            trace_out.close()
        say("done")
        click.echo(json.dumps({"unit": unit, "group": group, **client.status()["counters"]}))
    return code


def _send(client: TalkGroupClient, texts, say, send_file: Path, listen_s: float,
          wait_free_s: float, done: threading.Event, group: str, unit: str) -> int:
    say("ready_send", group=group, unit=unit, file=send_file)
    deadline = time.monotonic() + wait_free_s
    while time.monotonic() < deadline:  # a scripted sender waits its turn like a person
        holder = client.status()["holder"]
        if not holder or holder == unit:
            break
        time.sleep(0.05)
    client.press()
    while not done.wait(0.05):
        if client.tx is Tx.IDLE and client.counters.grants == 0 and client.counters.denials:
            break
    granted = client.counters.grants > 0
    time.sleep(0.3)  # let the END frame and the release leave
    if listen_s:
        _sleep_interruptibly(listen_s)
    return 0 if granted else 3


def _sleep_interruptibly(seconds: float) -> None:
    end = time.monotonic() + seconds
    with contextlib.suppress(KeyboardInterrupt):
        while time.monotonic() < end:
            time.sleep(0.05)


def _keyboard(client: TalkGroupClient, run_s: float, heartbeat) -> None:
    """Hold SPACE (auto-repeat) or toggle with Enter; q quits. No TTY: just listen."""
    end = time.monotonic() + run_s if run_s else float("inf")
    last_beat = time.monotonic()
    if not sys.stdin.isatty():
        while time.monotonic() < end:
            time.sleep(0.1)
            if time.monotonic() - last_beat >= 10:
                heartbeat()
                last_beat = time.monotonic()
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    toggled = False
    last_space = 0.0
    try:
        tty.setcbreak(fd)
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            now = time.monotonic()
            if ready:
                key = os.read(fd, 1)
                if key in (b"q", b"Q", b"\x03"):
                    break
                if key == b" ":
                    last_space = now
                    if client.tx is Tx.IDLE and not toggled:
                        client.press()
                elif key in (b"\n", b"\r"):
                    toggled = not toggled
                    client.press() if toggled else client.release()
            if last_space and not toggled and now - last_space > HOLD_GAP_S:
                last_space = 0.0
                client.release()
            if now - last_beat >= 10:
                heartbeat()
                last_beat = now
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
