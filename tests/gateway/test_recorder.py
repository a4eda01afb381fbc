"""The recorder writes spurts as Ogg Opus that ffmpeg decodes at the right length."""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest

from gateway.codec import CodecParams, Encoder
from gateway.errors import RecordingError
from gateway.ogg import ogg_crc
from gateway.packet import Frame
from gateway.recorder import Recorder
from gateway.recordings import apply_retention, list_recordings, safe_recording_path


def speechlike(frames: int) -> list[bytes]:
    params = CodecParams()
    n = np.arange(frames * params.samples)
    pcm = (6000 * np.sin(2 * np.pi * 220 * n / 16000) * (1 + np.sin(2 * np.pi * 3 * n / 16000))).astype("<i2")
    raw = pcm.tobytes()
    return [raw[i:i + params.frame_bytes] for i in range(0, len(raw), params.frame_bytes)]


def encode_spurt(frames: int, spurt: int, skip: set[int] = frozenset()) -> list[Frame]:
    enc = Encoder()
    out = []
    for i, pcm in enumerate(speechlike(frames)):
        packet = enc.encode(pcm)
        if i not in skip:
            out.append(Frame(seq=(65500 + i) & 0xFFFF, timestamp=i * 320, spurt=spurt, payload=packet,
                             start=i == 0))
    out.append(Frame(seq=(65500 + frames) & 0xFFFF, timestamp=frames * 320, spurt=spurt, end=True))
    return out


def ffprobe_duration(path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert data["streams"][0]["codec_name"] == "opus"
    return float(data["format"]["duration"])


def decoded_seconds(path) -> float:
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1",
                          "-ar", "16000", "-"], capture_output=True, check=True).stdout
    return len(pcm) / 32000


def test_ogg_crc_matches_the_reference_value() -> None:
    # CRC of "OggS" with the Ogg polynomial (unreflected 0x04C11DB7, init 0).
    assert ogg_crc(b"") == 0
    assert ogg_crc(b"123456789") == 0x89A1897F


def test_spurt_becomes_a_valid_ogg_opus_file_of_the_right_length(tmp_path) -> None:
    rec = Recorder(tmp_path)
    frames = encode_spurt(150, spurt=0xABCDEF)  # 3.0 s, sequence numbers wrap inside
    result = None
    start = time.time()
    for f in frames[:-1] + [frames[5]]:  # with a duplicate thrown in
        assert rec.add("batang-kota", "dewi", f, now=start) is None
    result = rec.add("batang-kota", "dewi", frames[-1], now=start)
    assert result is not None and result.frames == 150 and result.lost == 0
    path = tmp_path / result.file
    assert path.suffix == ".opus" and path.parent.parent.name == "batang-kota"
    assert abs(ffprobe_duration(path) - 3.0) < 0.03
    assert abs(decoded_seconds(path) - result.duration_s) < 0.03
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["group"] == "batang-kota" and side["unit"] == "dewi"
    assert abs(side["duration_s"] - 2.9935) < 0.01


def test_lost_frames_are_filled_so_the_file_keeps_real_time(tmp_path) -> None:
    rec = Recorder(tmp_path)
    frames = encode_spurt(100, spurt=7, skip={10, 11, 12, 50})
    for f in frames:
        result = rec.add("g1", "u1", f)
    assert result.lost == 4 and result.frames == 100
    assert abs(decoded_seconds(tmp_path / result.file) - 2.0) < 0.03


def test_spurt_without_end_is_saved_after_idle_time(tmp_path) -> None:
    rec = Recorder(tmp_path, idle_ms=2000)
    for f in encode_spurt(20, spurt=9)[:-1]:
        rec.add("g1", "u1", f, now=1000.0)
    assert rec.tick(now=1001.0) == []
    saved = rec.tick(now=1002.5)
    assert len(saved) == 1 and saved[0].frames == 20


def test_listing_by_group_and_time_and_retention(tmp_path) -> None:
    rec = Recorder(tmp_path)
    now = time.time()
    for group, unit, spurt, start in (("g1", "a", 1, now - 40 * 86400), ("g1", "b", 2, now - 60),
                                      ("g2", "c", 3, now - 30)):
        for f in encode_spurt(10, spurt=spurt):
            rec.add(group, unit, f, now=start)
    assert [r.unit for r in list_recordings(tmp_path)] == ["c", "b", "a"]
    assert [r.unit for r in list_recordings(tmp_path, group="g1")] == ["b", "a"]
    assert [r.unit for r in list_recordings(tmp_path, since=now - 3600)] == ["c", "b"]
    (tmp_path / "g2" / "junk.json").write_text("{not json")  # a damaged sidecar hides nothing else
    assert len(list_recordings(tmp_path)) == 3
    assert apply_retention(tmp_path, days=30, now=now) == 1
    assert [r.unit for r in list_recordings(tmp_path)] == ["c", "b"]
    assert apply_retention(tmp_path, days=0, now=now + 10**9) == 0  # 0 keeps everything


def test_safe_path_refuses_escapes(tmp_path) -> None:
    rec = Recorder(tmp_path)
    for f in encode_spurt(5, spurt=1):
        result = rec.add("g1", "a", f)
    assert safe_recording_path(tmp_path, result.file).is_file()
    for bad in ("../etc/passwd", "g1/../../x.opus", result.file.replace(".opus", ".json"), "nope.opus"):
        with pytest.raises(RecordingError):
            safe_recording_path(tmp_path, bad)


def jumping(frames: int, spurt: int, step: int) -> list[Frame]:
    """A floor holder's valid frames whose sequence number jumps by `step` each time."""
    out = []
    for i, f in enumerate(encode_spurt(frames, spurt=spurt)):
        out.append(Frame(seq=(f.seq + i * (step - 1)) & 0xFFFF, timestamp=f.timestamp, spurt=spurt,
                         payload=f.payload, start=f.start, end=f.end))
    return out


def test_sequence_jumps_of_32767_do_not_make_a_day_long_recording(tmp_path) -> None:
    """Issue 16 item 14: each jump was filled with silence, 2 s became 64,879 s (31 MB)."""
    rec = Recorder(tmp_path)
    other = encode_spurt(100, spurt=2)  # a normal spurt in another group at the same time
    results = {}
    t0 = time.time()
    for i, (bad, good) in enumerate(zip(jumping(100, 1, 32767), other, strict=True)):
        now = t0 + i * 0.02
        results["bad"] = rec.add("g-attack", "evil", bad, now=now) or results.get("bad")
        results["good"] = rec.add("g-other", "dewi", good, now=now) or results.get("good")
    rec.tick(now=t0 + 10)  # the attacker's END frame jumped out too: saved when silent
    bad = results.get("bad") or list(rec.recent)[-1]
    assert bad.unit == "evil" and bad.duration_s < 3.0 and bad.frames <= 100
    # 2 x 32767 is -2 modulo 65536: every other frame lands back near the stream and is
    # kept; the others are dropped as out of range.
    assert rec.out_of_range >= 45
    assert (tmp_path / bad.file).stat().st_size < 50_000
    good = results["good"]
    assert good.frames == 100 and good.lost == 0  # the other group is untouched
    assert abs(ffprobe_duration(tmp_path / good.file) - 2.0) < 0.05


def test_jumps_within_range_get_bounded_silence_never_more_than_the_audio(tmp_path) -> None:
    rec = Recorder(tmp_path, max_fill_frames=50)
    t0 = time.time()
    result = None
    for i, f in enumerate(jumping(100, 3, 400)):  # each jump below the out-of-range limit
        result = rec.add("g1", "evil", f, now=t0 + i * 0.02) or result
    assert result is not None and result.frames - result.lost == 100
    assert result.lost <= 100 and result.duration_s <= 4.05  # at most as much silence as audio
    assert rec.trimmed > 0


def test_a_real_dropout_of_one_second_keeps_real_time(tmp_path) -> None:
    rec = Recorder(tmp_path)
    frames = encode_spurt(150, spurt=4, skip=set(range(50, 100)))  # Wi-Fi gone for 1 s
    for f in frames:
        result = rec.add("g1", "u1", f)
    assert result.lost == 50 and result.frames == 150 and rec.trimmed == 0
    assert abs(decoded_seconds(tmp_path / result.file) - 3.0) < 0.03
