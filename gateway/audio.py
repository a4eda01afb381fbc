"""The PTT audio path's edges: PyAudio microphone and speaker, WAV files, silence.

This is the only gateway module that imports PyAudio, and only when a device is opened,
so the arbiter and the pure modules never load audio libraries. Sources return one frame
of 16-bit mono PCM per `read()` (None at the end of a file); sinks take one frame per
`write()`. Pacing is the caller's job: ALSA's file plugin (used in tests) does not block.
"""

from __future__ import annotations

import contextlib
import os
import wave
from pathlib import Path

from gateway.codec import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH
from gateway.errors import AudioDeviceError


@contextlib.contextmanager
def _quiet_stderr():
    """PortAudio's probing of JACK/OSS prints pages to fd 2; hide them while it does."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class PyAudioDevice:
    """One PortAudio instance shared by a process's microphone and speaker streams."""

    def __init__(self) -> None:
        try:
            import pyaudio
        except ImportError as exc:  # pragma: no cover - PyAudio is a unit dependency
            raise AudioDeviceError(f"PyAudio is not installed: {exc}") from None
        self._pyaudio = pyaudio
        with _quiet_stderr():
            self.pa = pyaudio.PyAudio()

    def open(self, *, input: bool, frame_samples: int):  # noqa: A002 - PyAudio's name
        try:
            with _quiet_stderr():
                return self.pa.open(rate=SAMPLE_RATE, channels=CHANNELS,
                                    format=self._pyaudio.paInt16, input=input,
                                    output=not input, frames_per_buffer=frame_samples)
        except OSError as exc:
            kind = "microphone" if input else "speaker"
            raise AudioDeviceError(f"cannot open the {kind}: {exc}") from None

    def close(self) -> None:
        self.pa.terminate()


class MicSource:
    """Frames from the default capture device."""

    def __init__(self, device: PyAudioDevice, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        self._stream = device.open(input=True, frame_samples=frame_samples)

    def read(self) -> bytes | None:
        try:
            return self._stream.read(self.frame_samples, exception_on_overflow=False)
        except OSError as exc:
            raise AudioDeviceError(f"microphone read failed: {exc}") from None

    def close(self) -> None:
        self._stream.stop_stream()
        self._stream.close()


class SpeakerSink:
    """Frames to the default playback device."""

    def __init__(self, device: PyAudioDevice, frame_samples: int) -> None:
        self._stream = device.open(input=False, frame_samples=frame_samples)

    def write(self, pcm: bytes) -> None:
        try:
            self._stream.write(pcm)
        except OSError as exc:
            raise AudioDeviceError(f"speaker write failed: {exc}") from None

    def close(self) -> None:
        self._stream.stop_stream()
        self._stream.close()


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
