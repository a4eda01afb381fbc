"""The binary audio frame: round trip, every kind of bad input, and a fuzzed receiver."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.packet import (
    HEADER,
    MAX_FRAME_BYTES,
    MAX_OPUS_BYTES,
    BadFrame,
    Frame,
    seq_delta,
)

OPUS_TOC = bytes([9 << 3])  # SILK wideband 20 ms, one frame (code 0)


def test_round_trip_keeps_every_field() -> None:
    frame = Frame(seq=65535, timestamp=2**32 - 320, spurt=0xDEADBEEF, payload=OPUS_TOC + b"abc",
                  start=True, end=False)
    data = frame.to_bytes()
    assert len(data) == HEADER.size + 4
    assert data[0] == 1
    assert Frame.from_bytes(data) == frame


def test_end_frame_may_be_empty_but_audio_may_not() -> None:
    end = Frame(seq=7, timestamp=0, spurt=1, end=True)
    assert Frame.from_bytes(end.to_bytes()).end
    with pytest.raises(BadFrame, match="only an END frame"):
        Frame(seq=7, timestamp=0, spurt=1).to_bytes()


def test_bad_frame_is_a_value_error_and_a_gateway_error() -> None:
    assert issubclass(BadFrame, ValueError)
    assert issubclass(BadFrame, GatewayError)


@pytest.mark.parametrize("data, words", [
    (b"", "shorter"),
    (b"\x01\x00\x00", "shorter"),
    (struct.pack(">BBHII", 2, 0, 1, 0, 1) + OPUS_TOC, "version 2"),
    (struct.pack(">BBHII", 0, 0, 1, 0, 1) + OPUS_TOC, "version 0"),
    (struct.pack(">BBHII", 1, 0x80, 1, 0, 1) + OPUS_TOC, "unknown flags"),
    (struct.pack(">BBHII", 1, 0, 1, 0, 1), "empty payload"),
    (struct.pack(">BBHII", 1, 0, 1, 0, 1) + OPUS_TOC + bytes(MAX_OPUS_BYTES), "exceeds"),
    (struct.pack(">BBHII", 1, 0, 1, 0, 1) + bytes([(9 << 3) | 3, 0x83]), "single-frame"),
])
def test_malformed_frames_are_refused_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(BadFrame, match=words):
        Frame.from_bytes(data)


def test_out_of_range_fields_cannot_be_sent() -> None:
    for bad in (Frame(seq=65536, timestamp=0, spurt=1, payload=OPUS_TOC),
                Frame(seq=0, timestamp=-1, spurt=1, payload=OPUS_TOC),
                Frame(seq=0, timestamp=0, spurt=2**32, payload=OPUS_TOC),
                Frame(seq=0, timestamp=0, spurt=1, payload=OPUS_TOC * (MAX_OPUS_BYTES + 1))):
        with pytest.raises(BadFrame):
            bad.to_bytes()


def test_seq_delta_wraps() -> None:
    assert seq_delta(0, 65535) == 1
    assert seq_delta(65535, 0) == -1
    assert seq_delta(100, 90) == 10


@given(seq=st.integers(0, 65535), ts=st.integers(0, 2**32 - 1), spurt=st.integers(0, 2**32 - 1),
       body=st.binary(min_size=0, max_size=200), start=st.booleans(), end=st.booleans())
def test_any_valid_frame_round_trips(seq, ts, spurt, body, start, end) -> None:
    payload = OPUS_TOC + body if body or not end else b""
    frame = Frame(seq=seq, timestamp=ts, spurt=spurt, payload=payload, start=start, end=end)
    assert Frame.from_bytes(frame.to_bytes()) == frame


def random_frames(count: int, seed: int = 7) -> list[bytes]:
    """Random, truncated, oversized, wrong-version and bit-flipped frames (and some valid)."""
    rng = random.Random(seed)
    good = Frame(seq=5, timestamp=1600, spurt=99, payload=OPUS_TOC + bytes(40)).to_bytes()
    out = []
    for i in range(count):
        kind = i % 6
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(0, 80)))
        elif kind == 1:
            out.append(good[: rng.randrange(0, len(good))])
        elif kind == 2:
            out.append(good + rng.randbytes(rng.randrange(MAX_FRAME_BYTES, MAX_FRAME_BYTES + 4000)))
        elif kind == 3:
            out.append(bytes([rng.choice([0, 2, 3, 255])]) + good[1:])
        elif kind == 4:
            flipped = bytearray(good)
            for _ in range(rng.randrange(1, 6)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            out.append(bytes(flipped))
        else:
            out.append(bytes([1, rng.randrange(4)]) + rng.randbytes(rng.randrange(10, 300)))
    return out


def test_ten_thousand_random_frames_parse_or_raise_bad_frame_only() -> None:
    parsed = refused = 0
    for data in random_frames(12000):
        try:
            Frame.from_bytes(data)
            parsed += 1
        except BadFrame:
            refused += 1
    assert parsed + refused == 12000
    assert refused > 8000  # most of them are garbage and must be refused
    assert parsed > 0  # bit flips in the body still make valid frames
