"""The unit's physical panel: Tanya button, panic button, listening LED, status LED.

Built from gpiozero's simple devices on the pins from `[unit]`; the pin factory is
gpiozero's choice on a Pi (lgpio on a Pi 5), `mock` on a laptop (buttons then exist only
in software) or `none` for no panel at all. Push-to-talk adds its own button and LEDs and
shares the status LED through `UnitContext`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable

from gpiozero import LED, Button, Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from posko.settings.unit import UnitSettings

log = logging.getLogger(__name__)


def install_pin_factory(name: str) -> None:
    """Select gpiozero's pin factory from `[unit] pin_factory` ('' keeps gpiozero's choice)."""
    if not name or name == "none":
        return
    if name == "mock":
        if not isinstance(Device.pin_factory, MockFactory):
            Device.pin_factory = MockFactory(pin_class=MockPWMPin)
        return
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", name)


class StatusLed:
    """Steady on when healthy; blinking while something (a sound device) is missing."""

    def __init__(self, led) -> None:
        self.led = led
        self.problems: set[str] = set()
        self.led.on()

    def problem(self, name: str) -> None:
        if name not in self.problems:
            self.problems.add(name)
            self.led.blink(on_time=0.25, off_time=0.25, background=True)

    def resolved(self, name: str) -> None:
        if name in self.problems:
            self.problems.discard(name)
            if not self.problems:
                self.led.on()

    @property
    def blinking(self) -> bool:
        return bool(self.problems)


class Panel:
    """Buttons and LEDs of one unit; callbacks run on gpiozero's thread."""

    def __init__(self, settings: UnitSettings, *, on_tanya: Callable[[], None] | None = None,
                 on_panic: Callable[[], None] | None = None) -> None:
        bounce = settings.bounce_ms / 1000 or None
        self.tanya = Button(settings.tanya_pin, pull_up=True, bounce_time=bounce)
        self.panic = Button(settings.panic_pin, pull_up=True, bounce_time=bounce,
                            hold_time=max(0.01, settings.panic_hold_s))
        self.listening_led = LED(settings.listening_led_pin)
        self.status = StatusLed(LED(settings.status_led_pin))
        if on_tanya is not None:
            self.tanya.when_pressed = lambda: on_tanya()
        if on_panic is not None:
            if settings.panic_hold_s > 0:
                self.panic.when_held = lambda: on_panic()
            else:
                self.panic.when_pressed = lambda: on_panic()

    def close(self) -> None:
        for device in (self.tanya, self.panic, self.listening_led, self.status.led):
            try:
                device.close()
            except Exception:  # closing during shutdown must not raise
                pass


class NoPanel:
    """A unit without GPIO (pin_factory 'none' or no GPIO chip): LEDs are remembered only."""

    class _Led:
        def __init__(self) -> None:
            self.is_lit = False

        def on(self) -> None:
            self.is_lit = True

        def off(self) -> None:
            self.is_lit = False

        def blink(self, **_kwargs) -> None:
            self.is_lit = True

        def close(self) -> None:
            pass

    def __init__(self) -> None:
        self.listening_led = self._Led()
        self.status = StatusLed(self._Led())

    def close(self) -> None:
        pass


def build_panel(settings: UnitSettings, **callbacks) -> Panel | NoPanel:
    """The real panel, or NoPanel (logged) when there is no GPIO to drive."""
    if settings.pin_factory == "none":
        return NoPanel()
    install_pin_factory(settings.pin_factory)
    try:
        with warnings.catch_warnings():
            # gpiozero warns once per back end it tries; the outcome is logged below.
            warnings.simplefilter("ignore")
            return Panel(settings, **callbacks)
    except Exception as exc:  # gpiozero raises many kinds when no GPIO chip exists
        log.warning("no GPIO panel (%s: %s); buttons and LEDs are off. Use [unit] pin_factory = "
                    "'mock' on a laptop", exc.__class__.__name__, exc)
        return NoPanel()
