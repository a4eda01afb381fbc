"""Microphone and speaker streams over PyAudio (blocking I/O, 16-bit mono).

The microphone always delivers `rate_hz` audio (resampled when the device only offers
44.1/48 kHz) in fixed frames, and is opened only while the unit listens: while an answer
plays it is closed, so the kiosk never hears itself. The speaker plays at the voice's own
rate when the device takes it, pauses while a gate is set (received radio speech has
priority) and stops at once when asked. Push-to-talk plays frame by frame through
`SpeakerStream` (and captures through `Microphone`), via gateway.audio's adapters.
Every stream is opened and closed through the AudioSystem, which counts open streams so a
device re-scan never pulls PortAudio from under one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator

from firmware.audio.devices import AudioSystem, DeviceInfo
from firmware.audio.resample import Resampler
from firmware.errors import AudioDeviceError

log = logging.getLogger(__name__)

SAMPLE_WIDTH = 2  # bytes: every Posko stream is 16-bit signed little-endian mono


class _FrameStream:
    """A PortAudio stream of 16-bit mono frames at `rate_hz`, on a device chosen by name,
    resampled to and from the device's own rate when it does not take `rate_hz`."""

    output = False
    kind = "capture"

    def __init__(self, system: AudioSystem, device_name: str, rate_hz: int = 16000,
                 frame_ms: int = 20, *, rescan: bool = False) -> None:
        self.system = system
        self.device_name = device_name
        self.rescan = rescan  # a name not found makes PortAudio look again (see AudioSystem.find)
        self.rate_hz = rate_hz
        self.frame_ms = frame_ms
        self.frame_bytes = rate_hz * frame_ms // 1000 * SAMPLE_WIDTH
        self.device: DeviceInfo | None = None
        self.device_rate_hz = 0
        self._stream = None
        self._resampler: Resampler | None = None

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def open(self) -> None:
        """Open the stream; AudioDeviceError when the device is missing or fails."""
        import pyaudio  # lazy: PyAudio starts PortAudio, which probes every sound card; only when audio is used

        if self._stream is not None:
            return
        self.device = self.system.find(self.device_name, output=self.output, rescan=self.rescan)
        self.device_rate_hz = self.system.pick_rate(self.device, self.rate_hz, output=self.output)
        self._resampler = (Resampler(self.rate_hz, self.device_rate_hz) if self.output
                           else Resampler(self.device_rate_hz, self.rate_hz))
        direction = ({"output": True, "output_device_index": self.device.index} if self.output
                     else {"input": True, "input_device_index": self.device.index})
        try:
            self._stream = self.system.open_stream(
                format=pyaudio.paInt16, channels=1, rate=self.device_rate_hz,
                frames_per_buffer=self.device_block, **direction)
        except (OSError, ValueError) as exc:
            self._stream = None
            raise AudioDeviceError(f"cannot open {self.kind} device {self.device.name!r}: {exc}") from exc
        if self.device_rate_hz != self.rate_hz:
            log.info("%s device %r runs at %d Hz, resampled from/to %d Hz",
                     self.kind, self.device.name, self.device_rate_hz, self.rate_hz)

    @property
    def device_block(self) -> int:
        """Samples of one frame at the device's rate."""
        return max(1, self.device_rate_hz * self.frame_ms // 1000)

    def close(self) -> None:
        """Close (a playback stream after what was written has been played)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self.system.close_stream(stream)


class Microphone(_FrameStream):
    """Capture from the configured device as `frame_ms` frames at `rate_hz`."""

    def __init__(self, system: AudioSystem, device_name: str, rate_hz: int = 16000,
                 frame_ms: int = 30, *, rescan: bool = False) -> None:
        super().__init__(system, device_name, rate_hz, frame_ms, rescan=rescan)
        self._pending = b""

    def open(self) -> None:
        if self._stream is None:
            self._pending = b""
        super().open()

    def read_frame(self) -> bytes:
        """One frame of `frame_ms` at `rate_hz`; AudioDeviceError if the device fails."""
        if self._stream is None or self._resampler is None:
            raise AudioDeviceError("microphone is not open")
        block = self.device_block
        while len(self._pending) < self.frame_bytes:
            try:
                raw = self._stream.read(block, exception_on_overflow=False)
            except OSError as exc:
                raise AudioDeviceError(f"capture device {self.device_name!r} failed: {exc}") from exc
            self._pending += self._resampler.process(raw)
        frame, self._pending = self._pending[:self.frame_bytes], self._pending[self.frame_bytes:]
        return frame

    def frames(self) -> Iterator[bytes]:
        while True:
            yield self.read_frame()


class PlaybackStopped(Exception):
    """Playback was stopped by a person (screen touch or button)."""


class Speaker:
    """Play 16-bit mono chunks on the configured device."""

    def __init__(self, system: AudioSystem, device_name: str, block_ms: int = 40) -> None:
        self.system = system
        self.device_name = device_name
        self.block_ms = block_ms
        self.device: DeviceInfo | None = None
        self.opens = 0  # how often the device was opened (for status and tests)

    def play(self, chunks: Iterable[bytes], rate_hz: int, *,
             stop: threading.Event | None = None, gate: threading.Event | None = None,
             on_first_audio=None) -> float:
        """Play the chunks (int16 bytes at `rate_hz`); returns seconds of audio played.

        While `gate` is set the device is released (closed), so push-to-talk can play
        received speech on the same card, and reopened when the gate clears. Raises
        PlaybackStopped as soon as `stop` is set, and AudioDeviceError when the device is
        missing or fails. `on_first_audio()` is called right after the first samples are
        handed to the device.
        """
        self.device = self.system.find(self.device_name, output=True)
        device_rate = self.system.pick_rate(self.device, rate_hz, output=True)
        resampler = Resampler(rate_hz, device_rate)
        block_bytes = max(2, device_rate * self.block_ms // 1000 * SAMPLE_WIDTH)
        stream = self._open(device_rate, block_bytes)
        played = 0
        first = True
        stopped = False
        try:
            for chunk in chunks:
                data = resampler.process(chunk)
                for i in range(0, len(data), block_bytes):
                    if stop is not None and stop.is_set():
                        raise PlaybackStopped()
                    if gate is not None and gate.is_set():
                        self.system.close_stream(stream)
                        stream = None
                        while gate.is_set():
                            if stop is not None and stop.is_set():
                                raise PlaybackStopped()
                            time.sleep(0.02)
                        stream = self._open(device_rate, block_bytes)
                    block = data[i:i + block_bytes]
                    try:
                        stream.write(block)
                    except OSError as exc:
                        raise AudioDeviceError(f"playback device {self.device_name!r} failed: {exc}") from exc
                    played += len(block) // SAMPLE_WIDTH
                    if first:
                        first = False
                        if on_first_audio is not None:
                            on_first_audio()
        except PlaybackStopped:
            stopped = True
            raise
        finally:
            if stream is not None:
                # Stopped by the resident: drop what the card still holds (up to its whole
                # buffer, 100+ ms on USB cards) instead of letting it play out.
                self.system.close_stream(stream, discard=stopped)
        return played / device_rate

    def _open(self, device_rate: int, block_bytes: int):
        import pyaudio  # lazy: PyAudio starts PortAudio, which probes every sound card; only when audio is used

        assert self.device is not None
        try:
            stream = self.system.open_stream(format=pyaudio.paInt16, channels=1, rate=device_rate,
                                             output=True, output_device_index=self.device.index,
                                             frames_per_buffer=block_bytes // SAMPLE_WIDTH)
        except (OSError, ValueError) as exc:
            raise AudioDeviceError(f"cannot open playback device {self.device.name!r}: {exc}") from exc
        self.opens += 1
        return stream


class SpeakerStream(_FrameStream):
    """Playback frame by frame (push-to-talk): open once, `write()` frames, `close()`.

    Frames are 16-bit mono at `rate_hz`; a device that does not take that rate gets them
    resampled to one it does (a USB card that plays only 48 kHz).
    """

    output = True
    kind = "playback"

    def write(self, pcm: bytes) -> None:
        """Play one frame (blocks while the device's buffer is full)."""
        if self._stream is None or self._resampler is None:
            raise AudioDeviceError("speaker is not open")
        data = self._resampler.process(pcm)
        if not data:
            return
        try:
            self._stream.write(data)
        except OSError as exc:
            raise AudioDeviceError(f"playback device {self.device_name!r} failed: {exc}") from exc
