"""Find sound devices by (part of) their name through PyAudio.

A USB sound card can vanish and come back; PortAudio only sees such changes when it is
initialised again, so `AudioSystem.refresh()` re-creates the PyAudio object.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from firmware.errors import AudioDeviceError

log = logging.getLogger(__name__)

# Rates tried, in order, when a device does not take the wanted rate directly.
FALLBACK_RATES = (48000, 44100, 32000, 16000, 22050, 24000, 8000)


@dataclass(frozen=True)
class DeviceInfo:
    """A PortAudio device as Posko uses it."""

    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_rate_hz: int


@contextmanager
def _quiet_stderr():
    """ALSA and JACK print pages of probing noise on fd 2 while PortAudio initialises."""
    if os.environ.get("POSKO_DEV_AUDIO_DEBUG"):
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class AudioSystem:
    """The process's PyAudio instance and device lookups; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pa = None

    @property
    def pa(self):
        with self._lock:
            if self._pa is None:
                import pyaudio

                with _quiet_stderr():
                    self._pa = pyaudio.PyAudio()
            return self._pa

    def refresh(self) -> None:
        """Re-initialise PortAudio so hot-plugged devices appear (and vanished ones go)."""
        with self._lock:
            if self._pa is not None:
                with _quiet_stderr():
                    self._pa.terminate()
                self._pa = None
            _ = self.pa

    def close(self) -> None:
        with self._lock:
            if self._pa is not None:
                self._pa.terminate()
                self._pa = None

    def devices(self) -> list[DeviceInfo]:
        with self._lock:
            pa = self.pa
            out = []
            for i in range(pa.get_device_count()):
                d = pa.get_device_info_by_index(i)
                out.append(DeviceInfo(i, str(d["name"]), int(d["maxInputChannels"]),
                                      int(d["maxOutputChannels"]), int(d["defaultSampleRate"])))
            return out

    def find(self, name: str, *, output: bool) -> DeviceInfo:
        """The device whose name equals `name`, else the first that contains it (any case).

        Raises AudioDeviceError naming the devices that do exist.
        """
        kind = "playback" if output else "capture"
        devices = [d for d in self.devices()
                   if (d.max_output_channels if output else d.max_input_channels) > 0]
        for d in devices:
            if d.name == name:
                return d
        for d in devices:
            if name.lower() in d.name.lower():
                return d
        names = ", ".join(repr(d.name) for d in devices) or "none"
        raise AudioDeviceError(f"no {kind} device matching {name!r} (devices: {names})")

    def supports(self, device: DeviceInfo, rate_hz: int, *, output: bool) -> bool:
        import pyaudio

        kwargs = ({"output_device": device.index, "output_channels": 1,
                   "output_format": pyaudio.paInt16} if output else
                  {"input_device": device.index, "input_channels": 1,
                   "input_format": pyaudio.paInt16})
        try:
            with self._lock:
                return bool(self.pa.is_format_supported(rate_hz, **kwargs))
        except ValueError:
            return False

    def pick_rate(self, device: DeviceInfo, wanted_hz: int, *, output: bool) -> int:
        """`wanted_hz` if the device takes it, else the first fallback rate it takes."""
        for rate in (wanted_hz, *FALLBACK_RATES, device.default_rate_hz):
            if self.supports(device, rate, output=output):
                return rate
        raise AudioDeviceError(f"device {device.name!r} takes none of the usual sample rates")


def sound_fingerprint() -> tuple:
    """What changes when a sound card comes or goes, or ALSA's configuration is edited.

    Cheap to compute (a few stat calls), so it can be polled every second: the card list
    and /dev/snd nodes (USB hot-plug), and the mtimes of the ALSA configuration files.
    """
    parts: list[object] = []
    try:
        parts.append(Path("/proc/asound/cards").read_text())
    except OSError:
        parts.append(None)
    try:
        parts.append(tuple(sorted(os.listdir("/dev/snd"))))
    except OSError:
        parts.append(None)
    for conf in (Path.home() / ".asoundrc", Path("/etc/asound.conf")):
        try:
            st = conf.stat()
            parts.append((str(conf), st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append((str(conf), None))
    return tuple(parts)
