"""Pure audio logic: utterance segmentation, resampling, speakable text (no device)."""

from __future__ import annotations

import numpy as np
import pytest

from firmware.audio.resample import Resampler, resample
from firmware.voice.textnorm import sentences, speakable, speech_units, terbilang
from firmware.voice.vad import Segmenter, VadConfig
from tests.support.sound import speech_raw

FRAME = VadConfig().frame_bytes


def frames(pcm: bytes, size: int = FRAME):
    pcm = pcm + b"\x00" * (-len(pcm) % size)
    return [pcm[i:i + size] for i in range(0, len(pcm), size)]


def run(segmenter: Segmenter, pcm: bytes):
    steps = []
    for f in frames(pcm):
        step = segmenter.push(f)
        steps.append(step)
        if step.kind in ("end", "timeout"):
            break
    return steps


def test_real_speech_starts_and_ends_after_the_configured_silence() -> None:
    speech = speech_raw("selamat pagi, saya mau tanya biaya SKCK", "id")
    pcm = b"\x00" * 32000 + speech + b"\x00" * 64000  # 1 s, speech, 2 s
    seg = Segmenter(VadConfig(silence_ms=600, pre_roll_ms=300))
    steps = run(seg, pcm)
    kinds = [s.kind for s in steps]
    assert "start" in kinds and kinds[-1] == "end" and steps[-1].reason == "silence"
    utterance = b"".join(s.audio for s in steps if s.kind in ("start", "speech", "end"))
    # It holds (nearly) all the speech plus the pre-roll, and ends ~0.6 s after it.
    assert len(utterance) >= len(speech) * 0.9
    end_frame = len(steps)
    loud = np.nonzero(np.abs(np.frombuffer(speech, dtype="<i2")) > 300)[0]
    speech_end_frame = (32000 + 2 * int(loud[-1])) // FRAME  # espeak adds trailing silence
    assert 0.5 <= (end_frame - speech_end_frame) * 0.03 <= 0.9


def test_pre_roll_keeps_the_frames_before_speech_was_confirmed() -> None:
    # Frames 0-9 silent, 10+ speech: with min_speech 90 ms (3 frames) speech is confirmed at
    # frame 12; the start step carries 300 ms before that frame plus the frame itself.
    marks = [bytes([i]) * FRAME for i in range(40)]
    seg = Segmenter(VadConfig(pre_roll_ms=300, min_speech_ms=90),
                    is_speech=lambda f: f[0] >= 10)
    for m in marks[:13]:
        step = seg.push(m)
    assert step.kind == "start"
    kept = [step.audio[i] for i in range(0, len(step.audio), FRAME)]
    assert kept == list(range(2, 13))  # frames 2-9 of silence, then speech frames 10-12


def test_nobody_speaking_times_out_and_endless_speech_is_cut() -> None:
    quiet = Segmenter(VadConfig(no_speech_timeout_s=1.0), is_speech=lambda f: False)
    steps = run(quiet, b"\x00" * (FRAME * 100))
    assert steps[-1].kind == "timeout" and len(steps) == 33
    talker = Segmenter(VadConfig(max_utterance_s=2.0), is_speech=lambda f: True)
    steps = run(talker, b"\x01" * (FRAME * 200))
    assert steps[-1].kind == "end" and steps[-1].reason == "max_length"
    assert len(steps) <= 2.0 / 0.03 + 1


def test_a_click_shorter_than_min_speech_does_not_start_an_utterance() -> None:
    pattern = [True, False, False, False] * 30
    it = iter(pattern)
    seg = Segmenter(VadConfig(min_speech_ms=90, no_speech_timeout_s=3.0), is_speech=lambda f: next(it))
    kinds = {seg.push(b"\x00" * FRAME).kind for _ in range(100)}
    assert "start" not in kinds


def test_bad_frame_size_and_bad_config_are_refused() -> None:
    with pytest.raises(ValueError, match="frame of 10 bytes"):
        Segmenter(VadConfig(), is_speech=lambda f: True).push(b"\x00" * 10)
    with pytest.raises(ValueError, match="frame_ms"):
        VadConfig(frame_ms=25)


def tone(freq: float, rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 12000).astype("<i2").tobytes()


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize("src", [48000, 44100])
def test_resampling_keeps_pitch_and_duration(src: int) -> None:
    out = resample(tone(1000, src, 1.0), src, 16000)
    assert abs(len(out) / 2 - 16000) <= 2
    assert abs(dominant_hz(out, 16000) - 1000) < 5


def test_resampling_suppresses_what_would_alias() -> None:
    loud_in = np.abs(np.frombuffer(tone(11000, 48000, 0.5), dtype="<i2")).mean()
    out = np.abs(np.frombuffer(resample(tone(11000, 48000, 0.5), 48000, 16000), dtype="<i2")).mean()
    assert out < loud_in * 0.05  # 11 kHz would fold to 5 kHz without the low-pass


def test_blockwise_resampling_equals_one_shot() -> None:
    pcm = tone(440, 44100, 0.5)
    whole = resample(pcm, 44100, 16000)
    r = Resampler(44100, 16000)
    parts = b"".join(r.process(pcm[i:i + 882]) for i in range(0, len(pcm), 882))
    n = min(len(whole), len(parts))
    assert n > len(whole) - 8 and parts[:n] == whole[:n]


def test_speakable_indonesian_numbers() -> None:
    assert terbilang(30000) == "tiga puluh ribu"
    assert terbilang(1_250_000) == "satu juta dua ratus lima puluh ribu"
    assert terbilang(111) == "seratus sebelas"
    assert speakable("Biaya SKCK Rp30.000.") == "Biaya SKCK tiga puluh ribu rupiah."
    assert speakable("Telepon 110 atau 112.") == "Telepon satu satu nol atau satu satu dua."
    assert speakable("Pas foto 4x6 latar merah.") == "Pas foto empat kali enam latar merah."
    assert sentences("**Satu.** Dua?  Tiga!") == ["Satu.", "Dua?", "Tiga!"]


def test_a_long_first_sentence_is_split_at_its_first_comma() -> None:
    text = ("Biaya SKCK tiga puluh ribu rupiah, bisa dibayar tunai, QRIS, atau BRIVA. "
            "Perpanjangan juga sama.")
    assert speech_units(text) == ["Biaya SKCK tiga puluh ribu rupiah,",
                                  "bisa dibayar tunai, QRIS, atau BRIVA.", "Perpanjangan juga sama."]
    assert speech_units("Ya, betul sekali Bapak, silakan datang ke Polres besok pagi.") == \
        ["Ya, betul sekali Bapak, silakan datang ke Polres besok pagi."]  # "Ya," is too short
    assert speech_units("Silakan datang ke Satpas.") == ["Silakan datang ke Satpas."]


def test_no_speech_unit_is_longer_than_max_words() -> None:
    """Piper's memory grows with the unit: a long sentence is cut at its commas, then evenly."""
    text = ("Melanggar rambu, marka, atau melawan arus, denda maksimal lima ratus ribu rupiah "
            "menurut UU dua puluh dua/dua ribu sembilan Pasal dua ratus delapan puluh tujuh ayat satu.")
    units = speech_units(text, first_max_words=0, max_words=14)
    assert " ".join(units) == text
    assert all(len(u.split()) <= 14 for u in units)
    assert units[0] == "Melanggar rambu, marka, atau melawan arus,"  # cut at a comma
    assert speech_units(text, first_max_words=0, max_words=0) == [text]
    words = " ".join(["satu"] * 30) + "."
    assert [len(u.split()) for u in speech_units(words, max_words=14)] == [10, 10, 10]
