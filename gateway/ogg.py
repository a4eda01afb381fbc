"""Ogg Opus files (RFC 7845) from Opus packets that are already encoded.

Why not a library: PyOgg's and libsndfile's (soundfile) Ogg Opus writers take PCM and
encode it again, which would cost CPU at the arbiter and a second generation of coding
loss. The recorder already holds the talker's Opus packets, and the Ogg framing (RFC 3533)
they need is a page header, a lacing table and a CRC — small enough to write here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

OUTPUT_RATE = 48000  # Ogg Opus granule positions always count 48 kHz samples
_PAGE = struct.Struct("<4sBBqIIIB")
_MAX_PACKETS_PER_PAGE = 50  # about one second of 20 ms frames per page


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    """The Ogg page checksum: CRC-32, polynomial 0x04C11DB7, unreflected, init 0."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def _lacing(packet: bytes) -> bytes:
    n = len(packet)
    return bytes([255] * (n // 255) + [n % 255])


def _page(serial: int, seq: int, granule: int, packets: Sequence[bytes], *, bos: bool = False,
          eos: bool = False) -> bytes:
    lacing = b"".join(_lacing(p) for p in packets)
    if len(lacing) > 255:
        raise ValueError("ogg: too many segments for one page")
    header_type = (0x02 if bos else 0) | (0x04 if eos else 0)
    header = _PAGE.pack(b"OggS", 0, header_type, granule, serial, seq, 0, len(lacing)) + lacing
    body = b"".join(packets)
    crc = ogg_crc(header + body)
    header = header[:22] + struct.pack("<I", crc) + header[26:]
    return header + body


def opus_head(pre_skip_48k: int, input_rate: int = 16000, channels: int = 1) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip_48k, input_rate, 0, 0)


def opus_tags(tags: dict[str, str], vendor: str = "Posko") -> bytes:
    v = vendor.encode()
    out = [b"OpusTags", struct.pack("<I", len(v)), v, struct.pack("<I", len(tags))]
    for key, value in tags.items():
        entry = f"{key.upper()}={value}".encode()
        out += [struct.pack("<I", len(entry)), entry]
    return b"".join(out)


def write_ogg_opus(packets: Iterable[bytes], samples_per_packet_48k: int, *,
                   pre_skip_48k: int, tags: dict[str, str], serial: int,
                   input_rate: int = 16000) -> bytes:
    """A complete Ogg Opus stream holding `packets`, each of the same duration.

    Raises ValueError for an empty packet list or a packet too large for one page.
    """
    packets = list(packets)
    if not packets:
        raise ValueError("ogg: no packets")
    serial &= 0xFFFFFFFF
    pages = [_page(serial, 0, 0, [opus_head(pre_skip_48k, input_rate)], bos=True),
             _page(serial, 1, 0, [opus_tags(tags)])]
    seq = 2
    # Granule positions count every decoded sample, the encoder delay (pre-skip) included.
    granule = 0
    for start in range(0, len(packets), _MAX_PACKETS_PER_PAGE):
        chunk = packets[start:start + _MAX_PACKETS_PER_PAGE]
        granule_end = granule + len(chunk) * samples_per_packet_48k
        last = start + _MAX_PACKETS_PER_PAGE >= len(packets)
        pages.append(_page(serial, seq, granule_end, chunk, eos=last))
        granule = granule_end
        seq += 1
    return b"".join(pages)
