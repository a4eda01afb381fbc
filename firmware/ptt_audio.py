"""Push-to-talk's audio edges on the unit: microphone and speaker, WAV files, memory, silence.

The microphone and speaker are thin adapters over the unit's one audio layer
(`firmware.audio`), which the voice assistant uses too: one PortAudio per process, devices
chosen by name, resampling for cards that only do 44.1/48 kHz. PyAudio and numpy load
only when a device is opened (`posko ptt --send` and the PTT tests of pure parts never
need them); a failure is `firmware.errors.AudioDeviceError` (an OSError). Sources return one frame of 16 kHz 16-bit mono PCM per
`read()` (None at the end of a file); sinks take one frame per `write()`. Pacing is the
caller's job: ALSA's file plugin (used in tests) does not block.
"""

from __future__ import annotations

import wave
from pathlib import Path

from firmware.errors import AudioDeviceError
from gateway.codec import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH


def _frame_ms(frame_samples: int) -> int:
    ms, rest = divmod(frame_samples * 1000, SAMPLE_RATE)
    if rest or ms <= 0:
        raise ValueError(f"{frame_samples} samples is not a whole number of ms at {SAMPLE_RATE} Hz")
    return ms


def find_device(name: str, *, output: bool) -> str:
    """The full name of the device `name` picks (see MicSource); AudioDeviceError if none."""
    from firmware.audio.devices import AudioSystem  # lazy: PyAudio only when a device is wanted

    return AudioSystem().find(name, output=output, rescan=True).name


class _DeviceStream:
    """A stream of the unit's audio layer, opened at once."""

    stream_class = ""  # the class in firmware.audio.streams

    def __init__(self, frame_samples: int, device: str = "default", *, system=None) -> None:
        self.frame_samples = frame_samples
        from firmware.audio import (  # lazy: PyAudio and numpy only when a card opens
            devices,
            streams,
        )

        self._stream = getattr(streams, self.stream_class)(
            system or devices.AudioSystem(), device, SAMPLE_RATE,
            frame_ms=_frame_ms(frame_samples), rescan=True)
        self._stream.open()

    @property
    def device_name(self) -> str:
        """The name of the device that was opened."""
        return self._stream.device.name if self._stream.device is not None else ""

    @property
    def device_rate_hz(self) -> int:
        """The rate the card runs at (16 kHz frames are resampled to and from it)."""
        return self._stream.device_rate_hz

    def close(self) -> None:
        self._stream.close()


class MicSource(_DeviceStream):
    """Frames from a capture device chosen by (part of) its name ("default": the system's).

    Opens through the unit's audio layer (`firmware.audio`): the process's one PortAudio,
    the device's own rate resampled to 16 kHz, and a fresh device scan when the name is not
    found (a USB card re-plugged). `read()` blocks for one frame; AudioDeviceError on failure.
    """

    stream_class = "Microphone"

    def read(self) -> bytes | None:
        return self._stream.read_frame()


class SpeakerSink(_DeviceStream):
    """Frames to a playback device chosen by (part of) its name ("default": the system's).

    Like MicSource, through the unit's audio layer; 16 kHz frames are resampled when the
    card plays only 44.1/48 kHz. `write()` takes one frame; AudioDeviceError on failure.
    """

    stream_class = "SpeakerStream"

    def write(self, pcm: bytes) -> None:
        self._stream.write(pcm)


class WavSource:
    """Frames from a WAV file that must be 16 kHz, 16-bit, mono."""

    def __init__(self, path: Path, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        try:
            self._wav = wave.open(str(path), "rb")  # noqa: SIM115 - closed in close()
        except (OSError, wave.Error, EOFError) as exc:
            raise AudioDeviceError(f"{path}: not a readable WAV file: {exc}") from None
        got = (self._wav.getframerate(), self._wav.getsampwidth(), self._wav.getnchannels())
        if got != (SAMPLE_RATE, SAMPLE_WIDTH, CHANNELS):
            self._wav.close()
            raise AudioDeviceError(
                f"{path}: need 16000 Hz, 16-bit, mono; found {got[0]} Hz, {8 * got[1]}-bit, "
                f"{got[2]} channel(s) (convert with: sox in.wav -r 16000 -c 1 -b 16 out.wav)")

    def read(self) -> bytes | None:
        data = self._wav.readframes(self.frame_samples)
        if not data:
            return None
        want = self.frame_samples * SAMPLE_WIDTH
        return data + bytes(want - len(data)) if len(data) < want else data

    def close(self) -> None:
        self._wav.close()


class FramesSource:
    """A microphone that says these PCM frames, then nothing (canned speech for benches and tests)."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = list(frames)

    def read(self) -> bytes | None:
        return self.frames.pop(0) if self.frames else None

    def close(self) -> None:
        pass


class WavSink:
    """Frames appended to a WAV file (16 kHz, 16-bit, mono)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115 - closed in close()
        self._wav.setnchannels(CHANNELS)
        self._wav.setsampwidth(SAMPLE_WIDTH)
        self._wav.setframerate(SAMPLE_RATE)

    def write(self, pcm: bytes) -> None:
        self._wav.writeframes(pcm)

    def close(self) -> None:
        self._wav.close()


class NullSink:
    """A speaker that discards everything (a headless listener, the bench)."""

    continuous = False  # nothing to keep fed while nobody talks

    def write(self, pcm: bytes) -> None:
        pass

    def close(self) -> None:
        pass
