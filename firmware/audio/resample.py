"""Streaming sample-rate conversion of 16-bit mono PCM (pure numpy, no device).

A USB microphone often offers only 44.1 or 48 kHz while VAD and Vosk want 16 kHz. The
converter low-passes the source below the target's Nyquist frequency with a windowed-sinc
FIR (so 48 kHz hiss does not alias into speech), then interpolates linearly at the new rate.
It keeps its filter history and fractional position between blocks, so feeding a stream in
any block sizes gives the same result as feeding it at once.
"""

from __future__ import annotations

import numpy as np


def _lowpass(cutoff: float, taps: int) -> np.ndarray:
    """Windowed-sinc low-pass; cutoff as a fraction of the sample rate (0..0.5)."""
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    return h / h.sum()


class Resampler:
    """Convert int16 mono PCM from `src_hz` to `dst_hz`, block by block."""

    def __init__(self, src_hz: int, dst_hz: int, taps: int = 63) -> None:
        if src_hz <= 0 or dst_hz <= 0:
            raise ValueError("sample rates must be positive")
        self.src_hz, self.dst_hz = src_hz, dst_hz
        self._step = src_hz / dst_hz  # source samples per output sample
        self._filter = (_lowpass(0.45 * dst_hz / src_hz, taps) if dst_hz < src_hz else None)
        self._history = np.zeros(0 if self._filter is None else taps - 1, dtype=np.float64)
        self._carry = np.zeros(0, dtype=np.float64)  # filtered samples not yet used up
        self._pos = 0.0  # next output position, in samples of _carry

    @property
    def passthrough(self) -> bool:
        return self.src_hz == self.dst_hz

    def process(self, pcm: bytes) -> bytes:
        """Resample one block; returns the int16 bytes ready so far."""
        if self.passthrough:
            return pcm
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        if self._filter is not None:
            buf = np.concatenate([self._history, x])
            self._history = buf[len(buf) - (len(self._filter) - 1):]
            x = np.convolve(buf, self._filter, mode="valid")
        data = np.concatenate([self._carry, x])
        if len(data) < 2:
            self._carry = data
            return b""
        last = len(data) - 1  # interpolation needs a right neighbour
        count = int(np.floor((last - self._pos) / self._step)) + 1 if self._pos <= last - 1e-9 else 0
        if count <= 0:
            self._carry = data
            return b""
        where = self._pos + self._step * np.arange(count)
        where = where[where < last]
        left = np.floor(where).astype(np.int64)
        frac = where - left
        y = data[left] * (1 - frac) + data[left + 1] * frac
        next_pos = self._pos + self._step * len(where)
        drop = int(np.floor(next_pos))
        self._carry = data[drop:]
        self._pos = next_pos - drop
        return np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes()


def resample(pcm: bytes, src_hz: int, dst_hz: int) -> bytes:
    """One-shot conversion of a whole buffer."""
    return Resampler(src_hz, dst_hz).process(pcm)
