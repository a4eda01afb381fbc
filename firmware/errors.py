"""Exceptions of the unit firmware (audio, voice, panel, agent).

The assistant brain (`assistant`) has its own root, AssistantError.
"""

from __future__ import annotations

from posko.errors import PoskoError


class FirmwareError(PoskoError):
    """Something went wrong on the unit."""


class AudioDeviceError(FirmwareError, OSError):
    """A sound device is missing, busy, or failed while in use."""


class ModelNotInstalled(FirmwareError, FileNotFoundError):
    """A speech model named in the configuration is not on this unit."""


class VoiceError(FirmwareError, RuntimeError):
    """A stage of the voice pipeline failed; `code` says which kind of failure."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
