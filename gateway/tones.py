"""The radio's signalling tones as 16-bit mono PCM at 16 kHz (pure: no device).

go-ahead  two rising beeps: the floor is yours, speak
busy      three low pulses: someone else holds the floor
roger     one short high beep: the talker has finished
cut       a falling sweep: your transmission was cut (pre-emption or time-out)
alert     three rising notes (a chime): an announcement from the command center follows
"""

from __future__ import annotations

import math
from array import array

RATE = 16000
AMPLITUDE = 0.35 * 32767


def _tone(freq_hz: float, ms: int, end_freq_hz: float | None = None) -> array:
    n = RATE * ms // 1000
    out = array("h")
    phase = 0.0
    fade = min(n // 2, RATE * 5 // 1000)  # 5 ms ramps so tones do not click
    for i in range(n):
        f = freq_hz if end_freq_hz is None else freq_hz + (end_freq_hz - freq_hz) * i / n
        phase += 2 * math.pi * f / RATE
        gain = min(1.0, i / fade, (n - 1 - i) / fade) if fade else 1.0
        out.append(int(AMPLITUDE * gain * math.sin(phase)))
    return out


def _silence(ms: int) -> array:
    return array("h", bytes(2 * (RATE * ms // 1000)))


def _join(*parts: array) -> bytes:
    out = array("h")
    for part in parts:
        out.extend(part)
    return out.tobytes()


def go_ahead() -> bytes:
    return _join(_tone(880, 60), _silence(30), _tone(1320, 60))


def busy() -> bytes:
    return _join(*(p for _ in range(3) for p in (_tone(425, 120), _silence(80))))


def roger() -> bytes:
    return _join(_tone(1600, 90))


def cut() -> bytes:
    return _join(_tone(1200, 250, end_freq_hz=400))


def alert() -> bytes:
    return _join(_tone(660, 150), _silence(40), _tone(880, 150), _silence(40), _tone(1100, 220),
                 _silence(250))


TONES = {"go_ahead": go_ahead, "busy": busy, "roger": roger, "cut": cut, "alert": alert}


def frames_of(pcm: bytes, frame_bytes: int) -> list[bytes]:
    """pcm cut into frames of frame_bytes, the last one padded with silence."""
    return [(pcm[i:i + frame_bytes] + bytes(frame_bytes))[:frame_bytes] for i in range(0, len(pcm), frame_bytes)]
