"""Opus through libopus (opuslib): VOIP mode, 20 ms frames at 16 kHz, in-band FEC, PLC.

The encoder is told to expect some loss so it spends bits on in-band FEC (LBRR): when a
frame is lost and the next one has arrived, `decode_fec(next)` rebuilds the lost one from
the redundancy inside the next packet; with nothing to go on, `conceal()` runs Opus PLC.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import opuslib
import opuslib.api.ctl
import opuslib.api.decoder
import opuslib.api.encoder

from gateway.errors import CodecError

SAMPLE_RATE = 16000
SAMPLE_WIDTH = 2  # bytes, signed 16-bit little-endian
CHANNELS = 1
FRAME_MS_CHOICES = (10, 20, 40, 60)


@dataclass(frozen=True)
class CodecParams:
    """What both ends agree on."""

    frame_ms: int = 20
    bitrate_bps: int = 16000
    expected_loss_pct: int = 10  # makes the encoder put FEC into each packet

    def __post_init__(self) -> None:
        if self.frame_ms not in FRAME_MS_CHOICES:
            raise CodecError(f"codec: frame_ms must be one of {FRAME_MS_CHOICES}, got {self.frame_ms}")
        if not 6000 <= self.bitrate_bps <= 64000:
            raise CodecError(f"codec: bitrate_bps {self.bitrate_bps} is outside 6000..64000")

    @property
    def samples(self) -> int:
        """Samples per frame (320 for 20 ms at 16 kHz)."""
        return SAMPLE_RATE * self.frame_ms // 1000

    @property
    def frame_bytes(self) -> int:
        return self.samples * SAMPLE_WIDTH * CHANNELS


DEFAULT_PARAMS = CodecParams()


class Encoder:
    """PCM frames in, Opus packets out."""

    def __init__(self, params: CodecParams = DEFAULT_PARAMS) -> None:
        self.params = params
        try:
            self._enc = opuslib.Encoder(SAMPLE_RATE, CHANNELS, opuslib.APPLICATION_VOIP)
            self._enc.bitrate = params.bitrate_bps
            # opuslib 3.0's `inband_fec` property setter drops its value argument (a
            # TypeError), so the CTL is called directly.
            opuslib.api.encoder.encoder_ctl(self._enc.encoder_state,
                                            opuslib.api.ctl.set_inband_fec, 1)
            self._enc.packet_loss_perc = params.expected_loss_pct
            self._enc.vbr = 1
            self._enc.signal = opuslib.SIGNAL_VOICE
        except opuslib.OpusError as exc:
            raise CodecError(f"codec: libopus refused the encoder settings: {exc}") from None

    @property
    def fec_enabled(self) -> bool:
        return bool(self._enc.inband_fec)

    @property
    def lookahead(self) -> int:
        """Encoder delay in samples at 16 kHz (Ogg Opus pre-skip needs it)."""
        return int(self._enc.lookahead)

    def encode(self, pcm: bytes) -> bytes:
        """One frame of 16-bit mono PCM (exactly params.frame_bytes) to one Opus packet."""
        if len(pcm) != self.params.frame_bytes:
            raise CodecError(f"codec: expected {self.params.frame_bytes} bytes of PCM, got {len(pcm)}")
        try:
            return bytes(self._enc.encode(pcm, self.params.samples))
        except opuslib.OpusError as exc:
            raise CodecError(f"codec: encode failed: {exc}") from None

    def reset(self) -> None:
        """Forget the previous spurt (each spurt starts a fresh stream)."""
        self._enc.reset_state()


class Decoder:
    """Opus packets in, PCM frames out; FEC and PLC for the frames that never came."""

    def __init__(self, params: CodecParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self._dec = opuslib.Decoder(SAMPLE_RATE, CHANNELS)
        # opuslib's own decode() allocates a fresh ctypes array per frame and copies the
        # samples out through a list of Python ints; a listener decodes 50 frames a
        # second, so libopus is called directly into one buffer kept for the decoder.
        self._pcm = (ctypes.c_int16 * (params.samples * CHANNELS))()
        self._pcm_ptr = ctypes.cast(self._pcm, ctypes.POINTER(ctypes.c_int16))

    def decode(self, packet: bytes) -> bytes:
        return self._run(packet, fec=False)

    def decode_fec(self, next_packet: bytes) -> bytes:
        """Rebuild the frame before `next_packet` from the FEC data it carries."""
        return self._run(next_packet, fec=True)

    def conceal(self) -> bytes:
        """Packet-loss concealment for one missing frame (libopus PLC: data=NULL, len=0)."""
        return self._run(b"", fec=False)

    def reset(self) -> None:
        self._dec.reset_state()

    def _run(self, packet: bytes, fec: bool) -> bytes:
        # len 0 (or a NULL packet) asks libopus for concealment (PLC).
        n = opuslib.api.decoder.libopus_decode(self._dec.decoder_state, packet or None, len(packet),
                                               self._pcm_ptr, self.params.samples, int(fec))
        if n < 0:
            raise CodecError(f"codec: decode failed: {opuslib.OpusError(n)}")
        # A packet longer than our frame cannot fit the buffer (libopus refuses it with
        # BUFFER_TOO_SMALL above); a shorter one is padded with silence.
        pcm = ctypes.string_at(self._pcm, n * SAMPLE_WIDTH * CHANNELS)
        want = self.params.frame_bytes
        if len(pcm) != want:
            pcm = (pcm + bytes(want))[:want]
        return pcm
