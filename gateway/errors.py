"""The gateway's exceptions: one root, each subclass also the matching built-in."""

from __future__ import annotations

from posko.errors import PoskoError


class GatewayError(PoskoError):
    """Something went wrong in talk-group audio or floor control."""


class BadFrame(GatewayError, ValueError):
    """A binary audio frame is malformed, truncated, oversized or of another version."""


class BadFloorMessage(GatewayError, ValueError):
    """A floor request or floor state message is not valid."""


class BadAnnouncement(GatewayError, ValueError):
    """A talk-group announcement (`tg/{group}/announce`) is not valid JSON of the console's shape."""


class CodecError(GatewayError, RuntimeError):
    """libopus refused to encode or decode."""


class RecordingError(GatewayError, OSError):
    """A spurt could not be written as Ogg Opus."""
