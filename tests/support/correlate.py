"""How much of what was said is in what was heard: the measure the phone tests and the
browser bench (bench/ptt_browser.py) both use."""

from __future__ import annotations

import numpy as np


def best_correlation(heard: np.ndarray, said: np.ndarray) -> float:
    """The largest normalised cross-correlation of `heard` against `said` played in a loop
    (Chromium's fake microphone loops its file), over lags of one loop; 0..1."""
    heard = heard.astype(np.float64) - heard.mean()
    said = said.astype(np.float64)
    n = len(heard)
    if n < 1600 or not heard.any():
        return 0.0
    loop = np.tile(said, 2 + n // max(len(said), 1))
    size = len(loop) + n
    corr = np.fft.irfft(np.fft.rfft(loop, size) * np.conj(np.fft.rfft(heard, size)), size)[: len(loop) - n + 1]
    power = np.concatenate([[0.0], np.cumsum(loop ** 2)])
    energy = np.sqrt(np.maximum(power[n:] - power[:-n], 0.0))[: len(corr)] * np.linalg.norm(heard)
    return float(np.max(np.abs(corr) / np.maximum(energy, 1e-9)))
