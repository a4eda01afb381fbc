"""The binary audio frame on `tg/{group}/audio/{unit}`: a 12-byte header and one Opus packet.

    offset size  field
    0      1     version (1)
    1      1     flags: bit 0 START (first frame of a spurt), bit 1 END (end of spurt);
                 the other bits must be 0 in version 1
    2      2     sequence number, big-endian, +1 per frame, wraps at 65536
    4      4     sample timestamp of the frame's first sample at 16 kHz, from the spurt start
    8      4     spurt id (random per transmission, so a listener can tell spurts apart)
    12     n     one Opus packet (n ≤ 1275); an END frame may carry none

Anything else is a `BadFrame`: receivers drop it and count it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.errors import BadFrame, GatewayError

__all__ = ["BadFrame", "Frame", "GatewayError", "HEADER", "MAX_FRAME_BYTES", "VERSION"]

VERSION = 1
FLAG_START = 0x01
FLAG_END = 0x02
_KNOWN_FLAGS = FLAG_START | FLAG_END
HEADER = struct.Struct(">BBHII")
MAX_OPUS_BYTES = 1275  # RFC 6716: the largest Opus packet for one frame
MAX_FRAME_BYTES = HEADER.size + MAX_OPUS_BYTES
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32


@dataclass(frozen=True)
class Frame:
    """One 20 ms (by default) slice of a spurt as it travels over MQTT."""

    seq: int
    timestamp: int  # samples at 16 kHz since the spurt began
    spurt: int
    payload: bytes = b""
    start: bool = False
    end: bool = False

    def to_bytes(self) -> bytes:
        """The wire form; BadFrame when a field is out of range."""
        if not 0 <= self.seq < SEQ_MOD:
            raise BadFrame(f"frame: seq {self.seq} is outside 0..65535")
        if not 0 <= self.timestamp < TS_MOD:
            raise BadFrame(f"frame: timestamp {self.timestamp} is outside 0..2^32-1")
        if not 0 <= self.spurt < TS_MOD:
            raise BadFrame(f"frame: spurt {self.spurt} is outside 0..2^32-1")
        if len(self.payload) > MAX_OPUS_BYTES:
            raise BadFrame(f"frame: payload of {len(self.payload)} bytes exceeds {MAX_OPUS_BYTES}")
        if not self.payload and not self.end:
            raise BadFrame("frame: only an END frame may have an empty payload")
        flags = (FLAG_START if self.start else 0) | (FLAG_END if self.end else 0)
        return HEADER.pack(VERSION, flags, self.seq, self.timestamp, self.spurt) + bytes(self.payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frame:
        """Parse a frame; BadFrame (a ValueError) for anything malformed."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise BadFrame("frame: payload is not bytes")
        size = len(data)
        if size < HEADER.size:
            raise BadFrame(f"frame: {size} bytes is shorter than the {HEADER.size}-byte header")
        if size > MAX_FRAME_BYTES:
            raise BadFrame(f"frame: {size} bytes exceeds the {MAX_FRAME_BYTES}-byte maximum")
        version, flags, seq, timestamp, spurt = HEADER.unpack_from(data)
        if version != VERSION:
            raise BadFrame(f"frame: version {version} is not supported (expected {VERSION})")
        if flags & ~_KNOWN_FLAGS:
            raise BadFrame(f"frame: unknown flags 0x{flags:02x}")
        payload = bytes(data[HEADER.size:])
        end = bool(flags & FLAG_END)
        if not payload and not end:
            raise BadFrame("frame: empty payload without the END flag")
        if payload and not _plausible_opus(payload):
            raise BadFrame("frame: payload is not a single-frame Opus packet")
        return cls(seq=seq, timestamp=timestamp, spurt=spurt, payload=payload,
                   start=bool(flags & FLAG_START), end=end)


def _plausible_opus(payload: bytes) -> bool:
    """A cheap check of the Opus TOC byte (RFC 6716 §3.1): exactly one frame (code 0).

    Posko's sender puts exactly one 20 ms frame in each packet (code 0); rejecting
    multi-frame packets here keeps a forged packet from making the decoder emit 120 ms.
    """
    code = payload[0] & 0x03
    return code == 0


def seq_delta(a: int, b: int) -> int:
    """Signed distance from sequence number b to a, modulo 65536 (−32768..32767)."""
    d = (a - b) % SEQ_MOD
    return d - SEQ_MOD if d >= SEQ_MOD // 2 else d
