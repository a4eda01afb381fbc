"""Opus through libopus: settings that matter, FEC and PLC; the signalling tones."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from gateway import tones
from gateway.codec import CodecParams, Decoder, Encoder
from gateway.errors import CodecError


def sine(freq: float, frames: int, params: CodecParams) -> list[bytes]:
    n = np.arange(frames * params.samples)
    pcm = (8000 * np.sin(2 * np.pi * freq * n / 16000)).astype("<i2").tobytes()
    return [pcm[i:i + params.frame_bytes] for i in range(0, len(pcm), params.frame_bytes)]


def test_encoder_is_voip_with_fec_and_stays_within_the_bitrate() -> None:
    params = CodecParams(frame_ms=20, bitrate_bps=16000)
    enc = Encoder(params)
    assert enc.fec_enabled
    packets = [enc.encode(f) for f in sine(300, 250, params)]  # 5 s of a loud tone
    kbps = sum(len(p) for p in packets) * 8 / 5.0 / 1000
    assert kbps <= 24.0, kbps
    assert all(p[0] & 0x03 == 0 for p in packets)  # one frame per packet
    assert all((p[0] >> 3) < 12 for p in packets)  # SILK (voice) configurations


def test_decode_fec_and_plc_produce_a_full_frame() -> None:
    params = CodecParams()
    enc, dec = Encoder(params), Decoder(params)
    packets = [enc.encode(f) for f in sine(440, 20, params)]
    assert len(dec.decode(packets[0])) == params.frame_bytes
    rebuilt = dec.decode_fec(packets[2])  # frame 1 lost, rebuilt from frame 2's FEC
    assert len(rebuilt) == params.frame_bytes
    assert np.abs(np.frombuffer(rebuilt, "<i2")).max() > 100  # it carries sound, not zeros
    assert len(dec.conceal()) == params.frame_bytes


def test_bad_input_raises_codec_error() -> None:
    params = CodecParams()
    with pytest.raises(CodecError, match="expected 640 bytes"):
        Encoder(params).encode(b"\x00" * 10)
    with pytest.raises(CodecError):
        CodecParams(frame_ms=25)
    with pytest.raises(CodecError):
        Decoder(params).decode(bytes([0xFF, 0xFF, 0xFF]))


def dominant_hz(pcm: bytes) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * 16000 / len(x))


def test_tones_have_their_pitch_and_length(tmp_path) -> None:
    assert abs(dominant_hz(tones.busy()) - 425) < 15
    assert abs(dominant_hz(tones.roger()) - 1600) < 20
    assert 0.14 < len(tones.go_ahead()) / 32000 < 0.16
    # Measured with sox as a person would: a raw file's length and loudness.
    raw = tmp_path / "roger.raw"
    raw.write_bytes(tones.roger())
    stat = subprocess.run(["sox", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1",
                           str(raw), "-n", "stat"], capture_output=True, text=True).stderr
    length = float(next(line for line in stat.splitlines() if line.startswith("Length")).split()[-1])
    peak = float(next(line for line in stat.splitlines() if line.startswith("Maximum amplitude")).split()[-1])
    assert abs(length - 0.09) < 0.002
    assert 0.3 < peak < 0.4
