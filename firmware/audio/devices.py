"""Find sound devices by (part of) their name through PyAudio, on one PortAudio per process.

A USB sound card can vanish and come back; PortAudio only sees such changes when it is
initialised again, so `AudioSystem.refresh()` re-creates the process's PyAudio object.
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


class _PortAudio:
    """The process's one PyAudio object and the streams open on it.

    PortAudio counts initialisations: terminating one of two PyAudio objects re-scans
    nothing while the other lives. So every AudioSystem of a process (the voice part's and
    push-to-talk's) shares this one object, and a refresh re-creates it, at once when no
    stream is open, else as soon as the last open stream is closed (terminating PortAudio
    would close the streams under the speaker that is playing).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._pa = None
        self.open_streams = 0
        self.stale = False  # a refresh is due when the last stream closes

    def get(self):
        with self.lock:
            if self._pa is None:
                import pyaudio  # lazy: PyAudio starts PortAudio, which probes every sound card; only when audio is used

                try:
                    with _quiet_stderr():
                        self._pa = pyaudio.PyAudio()
                except OSError as exc:  # e.g. a broken ALSA configuration
                    raise AudioDeviceError(f"PortAudio could not start: {exc}") from exc
                self.stale = False
            return self._pa

    def refresh(self) -> bool:
        with self.lock:
            if self.open_streams:
                self.stale = True
                return False
            self._drop()
            self.get()
            return True

    def _drop(self) -> None:
        if self._pa is not None:
            with _quiet_stderr():
                self._pa.terminate()
            self._pa = None

    def open(self, **kwargs):
        with self.lock:
            stream = self.get().open(**kwargs)
            self.open_streams += 1
            return stream

    def closed(self) -> None:
        with self.lock:
            self.open_streams = max(0, self.open_streams - 1)
            if not self.open_streams and self.stale:
                self._drop()  # the next use initialises PortAudio again

    def terminate(self) -> None:
        with self.lock:
            if not self.open_streams:
                self._drop()


_PORTAUDIO = _PortAudio()


class AudioSystem:
    """Device lookups and streams on the process's PortAudio; thread-safe.

    Every instance uses the same PyAudio object (see `_PortAudio`), so the voice assistant
    and push-to-talk see the same devices and one `refresh()` re-scans for both. Subclasses
    may narrow what a device takes (tests mimic a 48 kHz-only USB card that way).
    """

    def __init__(self) -> None:
        self._lock = _PORTAUDIO.lock

    @property
    def pa(self):
        return _PORTAUDIO.get()

    @property
    def open_streams(self) -> int:
        return _PORTAUDIO.open_streams

    def refresh(self) -> bool:
        """Re-initialise PortAudio so hot-plugged devices appear (and vanished ones go).

        Returns False when streams are open: the re-scan then happens when the last of them
        closes, and lookups until then see the devices as they were.
        """
        return _PORTAUDIO.refresh()

    def close(self) -> None:
        """Terminate PortAudio if no stream is open (it starts again on the next use)."""
        _PORTAUDIO.terminate()

    def open_stream(self, **kwargs):
        """`PyAudio.open(**kwargs)`, counted; give the stream back with `close_stream`."""
        return _PORTAUDIO.open(**kwargs)

    def close_stream(self, stream, discard: bool = False) -> None:
        """Stop (letting written audio play out) and close a stream from `open_stream`.

        With `discard`, audio not yet played is dropped: PortAudio's Pa_CloseStream on an
        active stream aborts it (Pa_AbortStream) instead of draining it (Pa_StopStream).
        """
        try:
            if not discard:
                try:
                    stream.stop_stream()
                except OSError:
                    pass
            stream.close()
        finally:
            _PORTAUDIO.closed()

    def devices(self) -> list[DeviceInfo]:
        with self._lock:
            pa = self.pa
            out = []
            for i in range(pa.get_device_count()):
                d = pa.get_device_info_by_index(i)
                out.append(DeviceInfo(i, str(d["name"]), int(d["maxInputChannels"]),
                                      int(d["maxOutputChannels"]), int(d["defaultSampleRate"])))
            return out

    def find(self, name: str, *, output: bool, rescan: bool = False) -> DeviceInfo:
        """The device whose name equals `name`, else the first that contains it (any case).

        "default" with no device of that name is PortAudio's default device. With `rescan`,
        a name not found makes PortAudio look for devices again (a USB card re-plugged)
        before giving up. Raises AudioDeviceError naming the devices that do exist.
        """
        try:
            return self._find(name, output=output)
        except AudioDeviceError:
            if not rescan or not self.refresh():
                raise
            log.info("sound device %r not found; looked for devices again", name)
            return self._find(name, output=output)

    def _find(self, name: str, *, output: bool) -> DeviceInfo:
        kind = "playback" if output else "capture"
        devices = [d for d in self.devices()
                   if (d.max_output_channels if output else d.max_input_channels) > 0]
        for d in devices:
            if d.name == name:
                return d
        for d in devices:
            if name.lower() in d.name.lower():
                return d
        if name == "default":
            fallback = self._default_device(output)
            if fallback is not None:
                return fallback
        names = ", ".join(repr(d.name) for d in devices) or "none"
        raise AudioDeviceError(f"no {kind} device matching {name!r} (devices: {names})")

    def _default_device(self, output: bool) -> DeviceInfo | None:
        with self._lock:
            try:
                d = (self.pa.get_default_output_device_info() if output
                     else self.pa.get_default_input_device_info())
            except OSError:  # PortAudio has no default device of that kind
                return None
        return DeviceInfo(int(d["index"]), str(d["name"]), int(d["maxInputChannels"]),
                          int(d["maxOutputChannels"]), int(d["defaultSampleRate"]))

    def supports(self, device: DeviceInfo, rate_hz: int, *, output: bool) -> bool:
        import pyaudio  # lazy: PyAudio starts PortAudio, which probes every sound card; only when audio is used

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
