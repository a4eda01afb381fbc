"""The PTT audio path's edges: microphone and speaker adapters, WAV files, memory, silence.

The microphone and speaker are thin adapters over the unit's audio layer
(`firmware.audio`), which the voice assistant uses too: one PortAudio per process, devices
chosen by name, resampling for cards that only do 44.1/48 kHz. That layer (with PyAudio
and numpy) is imported only when a device is opened, so the arbiter and the pure modules
never load audio libraries. Sources return one frame of 16 kHz 16-bit mono PCM per
`read()` (None at the end of a file); sinks take one frame per `write()`. Pacing is the
caller's job: ALSA's file plugin (used in tests) does not block.
"""

from __future__ import annotations

import wave
from pathlib import Path

from gateway.codec import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH
from gateway.errors import AudioDeviceError


def _unit_error(exc: Exception) -> AudioDeviceError:
    """The unit audio layer's error as the gateway's (a subclass: both catch it)."""
    return AudioDeviceError(str(exc))


def _unit_audio(stream_class: str):
    """(AudioSystem, the stream class, the unit's AudioDeviceError), imported on first use."""
    try:
        from firmware.audio import devices, streams
        from firmware.errors import AudioDeviceError as UnitAudioDeviceError
    except ImportError as exc:  # pragma: no cover - numpy is a unit dependency
        raise AudioDeviceError(f"the unit's audio layer cannot load: {exc}") from None
    return devices.AudioSystem, getattr(streams, stream_class), UnitAudioDeviceError


def _frame_ms(frame_samples: int) -> int:
    ms, rest = divmod(frame_samples * 1000, SAMPLE_RATE)
    if rest or ms <= 0:
        raise ValueError(f"{frame_samples} samples is not a whole number of ms at {SAMPLE_RATE} Hz")
    return ms


def find_device(name: str, *, output: bool) -> str:
    """The full name of the device `name` picks (see MicSource); AudioDeviceError if none."""
    AudioSystem, _, UnitAudioDeviceError = _unit_audio("Microphone")
    try:
        return AudioSystem().find(name, output=output, rescan=True).name
    except UnitAudioDeviceError as exc:
        raise _unit_error(exc) from exc
    except ImportError as exc:  # pragma: no cover - PyAudio is a unit dependency
        raise AudioDeviceError(f"PyAudio is not installed: {exc}") from None


class MicSource:
    """Frames from a capture device chosen by (part of) its name ("default": the system's).

    Opens through the unit's audio layer (`firmware.audio`): the process's one PortAudio,
    the device's own rate resampled to 16 kHz, and a fresh device scan when the name is not
    found (a USB card re-plugged). `read()` blocks for one frame; AudioDeviceError on failure.
    """

    def __init__(self, frame_samples: int, device: str = "default", *, system=None) -> None:
        AudioSystem, Microphone, UnitAudioDeviceError = _unit_audio("Microphone")
        self.frame_samples = frame_samples
        self._mic = Microphone(system or AudioSystem(), device, SAMPLE_RATE,
                               frame_ms=_frame_ms(frame_samples), rescan=True)
        self._unit_error = UnitAudioDeviceError
        try:
            self._mic.open()
        except UnitAudioDeviceError as exc:
            raise _unit_error(exc) from exc
        except ImportError as exc:  # pragma: no cover - PyAudio is a unit dependency
            raise AudioDeviceError(f"PyAudio is not installed: {exc}") from None

    @property
    def device_name(self) -> str:
        """The name of the device that was opened."""
        return self._mic.device.name if self._mic.device is not None else ""

    def read(self) -> bytes | None:
        try:
            return self._mic.read_frame()
        except self._unit_error as exc:
            raise _unit_error(exc) from exc

    def close(self) -> None:
        self._mic.close()


class SpeakerSink:
    """Frames to a playback device chosen by (part of) its name ("default": the system's).

    Like MicSource, through the unit's audio layer; 16 kHz frames are resampled when the
    card plays only 44.1/48 kHz. `write()` takes one frame; AudioDeviceError on failure.
    """

    def __init__(self, frame_samples: int, device: str = "default", *, system=None) -> None:
        AudioSystem, SpeakerStream, UnitAudioDeviceError = _unit_audio("SpeakerStream")
        self._speaker = SpeakerStream(system or AudioSystem(), device, SAMPLE_RATE,
                                      frame_ms=_frame_ms(frame_samples), rescan=True)
        self._unit_error = UnitAudioDeviceError
        try:
            self._speaker.open()
        except UnitAudioDeviceError as exc:
            raise _unit_error(exc) from exc
        except ImportError as exc:  # pragma: no cover - PyAudio is a unit dependency
            raise AudioDeviceError(f"PyAudio is not installed: {exc}") from None

    @property
    def device_name(self) -> str:
        """The name of the device that was opened."""
        return self._speaker.device.name if self._speaker.device is not None else ""

    def write(self, pcm: bytes) -> None:
        try:
            self._speaker.write(pcm)
        except self._unit_error as exc:
            raise _unit_error(exc) from exc

    def close(self) -> None:
        self._speaker.close()


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
