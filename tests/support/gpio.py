"""gpiozero's mock pin factory, installed for one test and restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def mock_pin_factory(pwm: bool = False) -> Iterator[object]:
    """Swap in MockFactory (MockPWMPin pins when pwm) and restore the previous factory."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    previous = Device.pin_factory
    factory = MockFactory(pin_class=MockPWMPin) if pwm else MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous
