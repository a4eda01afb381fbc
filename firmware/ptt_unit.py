"""Push-to-talk on a unit: the PTT panel (gpiozero) wired to the talk-group client.

Panel: the PTT button (pin, pull-up/down and active level from `[ptt]`; gpiozero edge
callbacks, no polling), a next-group button, a red TX LED, a green RX LED (blinks on a
busy floor), an online LED and an optional buzzer that beeps with the tones. The client
(gateway.client) does the protocol and the audio; this module only connects the two and
the unit's speech gate (set while radio speech plays, so the kiosk's TTS pauses).

The unit talks in its selected group (`ptt.group`, then the next-group button through
`ptt.groups`) and also hears the groups of `ptt.scan` in their priority order (gateway.scan);
the next-group button changes only the group it talks in. Announcements from the
dispatcher's console in any group it hears are spoken with the unit's TTS voice after an
alert tone, when the floors are free (firmware.ptt_announce).

Audio goes through the unit's audio layer (`firmware.audio`, via `gateway.audio`) on the
devices named in `[voice]` (input_device, output_device), the same process-wide PortAudio
as the voice assistant. The speaker is opened only while there is something to play and
closed after a second of silence, so the voice assistant can use the same sound card in
between; the microphone is open only while this unit transmits.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from firmware.errors import AudioDeviceError
from firmware.ptt_announce import Announcer
from gateway.client import Hooks, TalkGroupClient
from gateway.codec import CodecParams
from gateway.errors import GatewayError
from posko.config import Settings
from posko.settings.ptt import PttSettings

log = logging.getLogger(__name__)


class PttPanelError(GatewayError, ValueError):
    """The PTT panel's wiring in `[ptt]` is contradictory."""


def button_options(ptt: PttSettings) -> dict[str, Any]:
    """gpiozero Button arguments from the configured pull resistor and active level."""
    if ptt.ptt_pull == "none":
        return {"pull_up": None, "active_state": ptt.ptt_active == "high"}
    expected = "low" if ptt.ptt_pull == "up" else "high"
    if ptt.ptt_active != expected:
        raise PttPanelError(
            f"[ptt] ptt_active = '{ptt.ptt_active}' cannot work with ptt_pull = '{ptt.ptt_pull}': "
            f"a button with a pull-{ptt.ptt_pull} resistor reads {expected} when pressed")
    return {"pull_up": ptt.ptt_pull == "up"}


class PttPanel:
    """The PTT button, next-group button, TX/RX/online LEDs and buzzer."""

    def __init__(self, ptt: PttSettings) -> None:
        # lazy: the arbiter and `posko ptt` import this module; gpiozero loads only for a panel
        from gpiozero import LED, Button, Buzzer

        opts = button_options(ptt)
        bounce = ptt.bounce_ms / 1000 or None
        self._devices: list[Any] = []
        self.ptt = self._add(Button(ptt.ptt_pin, bounce_time=bounce, **opts))
        self.next_group = (self._add(Button(ptt.next_group_pin, bounce_time=bounce, **opts))
                           if ptt.next_group_pin >= 0 else None)
        # A radio's squelch / COS line through an optocoupler: active while the radio hears
        # someone, which keys the talk group like the PTT button (hw/README.md, radio interface).
        self.cos = (self._add(Button(ptt.cos_pin, pull_up=ptt.cos_active == "low", bounce_time=bounce))
                    if ptt.cos_pin >= 0 else None)
        self.tx_led = self._add(LED(ptt.tx_led_pin)) if ptt.tx_led_pin >= 0 else None
        self.rx_led = self._add(LED(ptt.rx_led_pin)) if ptt.rx_led_pin >= 0 else None
        self.online_led = self._add(LED(ptt.online_led_pin)) if ptt.online_led_pin >= 0 else None
        self.buzzer = self._add(Buzzer(ptt.buzzer_pin)) if ptt.buzzer_pin >= 0 else None

    def _add(self, device):
        self._devices.append(device)
        return device

    def close(self) -> None:
        for device in self._devices:
            try:
                device.close()
            except Exception:  # closing at shutdown must not raise
                pass


class LazySpeaker:
    """A speaker that is open only while there is sound to play."""

    IDLE_CLOSE_S = 1.0
    continuous = False  # the client need not feed it silence while nobody talks

    def __init__(self, frame_samples: int, device: str = "default") -> None:
        self.frame_samples = frame_samples
        self.device = device
        self._sink = None
        self._last_sound = 0.0
        self.failed = ""

    def write(self, pcm: bytes) -> None:
        now = time.monotonic()
        if any(pcm):
            self._last_sound = now
            if self._sink is None:
                self._open()
        elif self._sink is not None and now - self._last_sound > self.IDLE_CLOSE_S:
            self.close()
            return
        if self._sink is not None:
            self._sink.write(pcm)

    def _open(self) -> None:
        from firmware.ptt_audio import SpeakerSink  # lazy: PyAudio and numpy only when a card opens

        if not self.device:
            if not self.failed:
                log.error("ptt: no speaker configured ([voice] output_device is empty)")
            self.failed = "no speaker configured"
            return
        try:
            self._sink = SpeakerSink(self.frame_samples, self.device)
            self.failed = ""
        except AudioDeviceError as exc:
            if not self.failed:
                log.error("ptt: %s", exc)
            self.failed = str(exc)
            self.close()

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None


class PttComponent:
    """The unit agent's push-to-talk part (`UnitComponent`)."""

    name = "ptt"

    def __init__(self, settings: Settings, panel: PttPanel | None = None, sink=None,
                 source_factory=None, trace=None, load_voice=None) -> None:
        self.settings = settings
        self.ptt = settings.ptt
        self.groups = list(dict.fromkeys([self.ptt.group, *self.ptt.groups]))
        self._panel = panel
        self._sink = sink
        self._source_factory = source_factory
        self._trace = trace  # (event, **fields) timing events, for tests and the bench
        self.client: TalkGroupClient | None = None
        self._ctx = None
        self._busy_timer: threading.Timer | None = None
        self.announcer = Announcer(settings, load_voice)
        self.error = ""

    # --- UnitComponent -------------------------------------------------------------
    def start(self, ctx) -> None:
        self._ctx = ctx
        params = CodecParams(frame_ms=self.ptt.frame_ms, bitrate_bps=self.ptt.bitrate_bps)
        if self._panel is None:
            try:
                self._panel = PttPanel(self.ptt)
            except PttPanelError:
                raise
            except Exception as exc:  # no GPIO chip: keep the radio usable from software
                self.error = f"no PTT panel: {exc}"
                log.warning("ptt: %s", self.error)
        if self._sink is None:
            self._sink = LazySpeaker(params.samples, self.settings.voice.output_device)
        sink = self._sink
        self.client = TalkGroupClient(
            ctx.link, ctx.settings.posko.unit_id, self.ptt,
            source_factory=self._source_factory or self._open_mic, sink=sink,
            speech_gate=ctx.speech_gate, hooks=self._hooks())
        self.announcer.start(self.client)
        self.client.start()
        panel = self._panel
        if panel is not None:
            # gpiozero calls these on its own thread at each edge.
            panel.ptt.when_pressed = lambda: self.client.press()
            panel.ptt.when_released = lambda: self.client.release()
            if panel.next_group is not None:
                panel.next_group.when_pressed = lambda: self.next_group()
            if panel.cos is not None:
                panel.cos.when_pressed = lambda: self.client.press()
                panel.cos.when_released = lambda: self.client.release()
            self._led(panel.online_led, ctx.link.connected.is_set())

    def stop(self) -> None:
        if self.client is not None:
            self.client.stop()
        self.announcer.stop()
        if self._busy_timer is not None:
            self._busy_timer.cancel()
        if self._panel is not None:
            self._panel.close()
        if self._sink is not None:
            self._sink.close()

    def status(self) -> dict[str, Any]:
        out = self.client.status() if self.client is not None else {"mode": "stopped"}
        out["announcements"] = self.announcer.status()
        if self.error:
            out["error"] = self.error
        speaker_failed = getattr(self._sink, "failed", "")
        if speaker_failed:
            out["speaker_error"] = speaker_failed
        return out

    # --- actions ------------------------------------------------------------------
    def next_group(self) -> str:
        """Talk in the next configured group (cycling); returns the new group. The scanned
        groups are heard whichever group is selected."""
        assert self.client is not None
        current = self.client.group
        i = self.groups.index(current) if current in self.groups else -1
        group = self.groups[(i + 1) % len(self.groups)]
        self.client.set_group(group)
        log.info("ptt: now in talk group %s", group)
        self._heartbeat()
        return group

    def _open_mic(self):
        """The microphone for one spurt: [voice] input_device, shared with the assistant."""
        from firmware.ptt_audio import MicSource  # lazy: PyAudio and numpy only when a card opens

        device = self.settings.voice.input_device
        if not device:
            raise AudioDeviceError("no microphone configured ([voice] input_device is empty)")
        return MicSource(CodecParams(frame_ms=self.ptt.frame_ms).samples, device)

    # --- panel feedback -----------------------------------------------------------
    def _hooks(self) -> Hooks:
        return Hooks(tx=lambda on: self._led(self._get("tx_led"), on),
                     rx=lambda on: self._led(self._get("rx_led"), on),
                     busy=self._busy, online=self._online, cut=lambda reason: self._heartbeat(),
                     announce=self.announcer.submit,
                     **({"trace": self._trace} if self._trace is not None else {}))

    def _get(self, name: str):
        return getattr(self._panel, name, None) if self._panel is not None else None

    @staticmethod
    def _led(led, on: bool) -> None:
        if led is None:
            return
        led.on() if on else led.off()

    def _busy(self) -> None:
        led = self._get("rx_led")
        if led is not None:
            led.blink(on_time=0.1, off_time=0.1, n=5, background=True)
        buzzer = self._get("buzzer")
        if buzzer is not None:
            buzzer.beep(on_time=0.12, off_time=0.08, n=3, background=True)

    def _online(self, up: bool) -> None:
        self._led(self._get("online_led"), up)
        self._heartbeat()

    def _heartbeat(self) -> None:
        request = getattr(self._ctx, "request_heartbeat", None)
        if request is not None:
            request()


def make_component(settings: Settings) -> PttComponent:
    """The agent's entry point (firmware.agent.load_ptt_component)."""
    button_options(settings.ptt)  # contradictory wiring fails at start, in one line
    return PttComponent(settings)
