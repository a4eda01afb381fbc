"""A sound card made of two files: ALSA's file plugin behind real PyAudio.

`SoundSandbox(folder)` writes an `.asoundrc` whose default capture device reads `in.raw`
and whose default playback device writes `out.raw` (16-bit signed little-endian PCM).
PortAudio reads ALSA's configuration from `$HOME` when it initialises, so the code under
test runs in a process whose environment is `sandbox.env()`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from array import array
from pathlib import Path

ASOUNDRC = """\
pcm.!default {{ type asym  playback.pcm "fileout"  capture.pcm "filein" }}
pcm.fileout  {{ type file  slave.pcm "null"  file "{out}"  format "raw" }}
pcm.filein   {{ type file  slave.pcm "null"  file "/dev/null"  infile "{inp}"  format "raw" }}
"""


class SoundSandbox:
    """A HOME folder whose ALSA default device is a pair of raw PCM files."""

    def __init__(self, folder: Path) -> None:
        self.home = folder
        self.home.mkdir(parents=True, exist_ok=True)
        self.input = self.home / "in.raw"
        self.output = self.home / "out.raw"
        self.input.write_bytes(b"")
        (self.home / ".asoundrc").write_text(ASOUNDRC.format(out=self.output, inp=self.input))

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["HOME"] = str(self.home)
        env.pop("ALSA_CONFIG_PATH", None)
        env.update(extra)
        return env

    def feed(self, samples: array | bytes) -> None:
        """Make the microphone 'hear' these 16-bit samples."""
        data = samples.tobytes() if isinstance(samples, array) else samples
        self.input.write_bytes(data)

    def played(self) -> array:
        """The 16-bit samples written to the speaker so far."""
        out = array("h")
        if self.output.exists():
            raw = self.output.read_bytes()
            out.frombytes(raw[: len(raw) - len(raw) % 2])
        return out

    def run_python(self, code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        """Run Python code in a child whose PortAudio sees this sandbox."""
        return subprocess.run([sys.executable, "-c", code], env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)


def speech_raw(text: str, voice: str = "id", rate_hz: int = 16000) -> bytes:
    """Speech made by espeak-ng and converted by sox to raw 16-bit mono PCM."""
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        raise RuntimeError("espeak-ng and sox are needed (./setup.sh dev installs them)")
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text],
                         capture_output=True, check=True).stdout
    raw = subprocess.run(["sox", "-t", "wav", "-", "-r", str(rate_hz), "-c", "1", "-b", "16",
                          "-e", "signed-integer", "-t", "raw", "-"],
                         input=wav, capture_output=True, check=True).stdout
    return raw
