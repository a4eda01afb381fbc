"""The recorder: every spurt heard on a talk group saved as an Ogg Opus file.

Frames are collected per (group, unit, spurt) as they arrive, in sequence order, with
duplicates dropped; the spurt is written when its END frame arrives or when it has been
silent for `idle_ms` (its END frame was lost). Lost frames inside a spurt are filled with
encoded silence so the file keeps real time, within bounds, because the sequence numbers
come from the talker: a frame further than `MAX_SEQ_JUMP` from the stream is not of it
(dropped and counted, as the listener's jitter buffer does), one gap is filled with at
most `max_fill_frames` of silence, and a spurt never gets more silence than it has audio.
Without these, a floor holder whose sequence numbers jump by 32767 made a 2 s spurt a
18-hour file and held up the arbiter while it was built. Beside each `.opus` file a `.json` sidecar
holds group, unit, spurt, start, duration and losses; the hub lists recordings from these.

Layout: <dir>/<group>/<YYYY-MM-DD>/<HHMMSS>_<unit>_<spurt hex>.opus (UTC).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gateway.codec import DEFAULT_PARAMS, CodecParams, Encoder
from gateway.jitter import JitterBuffer
from gateway.ogg import OUTPUT_RATE, write_ogg_opus
from gateway.packet import Frame, seq_delta
from gateway.recordings import Recording

log = logging.getLogger(__name__)


@dataclass
class _Open:
    group: str
    unit: str
    spurt: int
    start: float
    last_arrival: float
    frames: dict[int, bytes] = field(default_factory=dict)  # extended seq -> Opus packet
    first: int = 0
    highest: int = 0


class Recorder:
    """Collects frames per spurt and writes finished spurts to `folder`."""

    MAX_SEQ_JUMP = JitterBuffer.MAX_SEQ_JUMP  # frames: further away is not this stream

    def __init__(self, folder: Path, params: CodecParams = DEFAULT_PARAMS, idle_ms: float = 2000.0,
                 max_frames: int = 4000, max_fill_frames: int = 50, background: bool = False) -> None:
        self.folder = Path(folder)
        self.params = params
        self.idle_ms = idle_ms
        self.max_frames = max_frames  # 80 s of 20 ms frames: longer than any allowed spurt
        self.max_fill_frames = max_fill_frames  # silence for one gap: 1 s of 20 ms frames
        self.out_of_range = 0  # frames dropped: sequence number implausibly far away
        self.trimmed = 0  # lost frames not filled with silence (gaps beyond the bounds)
        self._open: dict[tuple[str, str, int], _Open] = {}
        self._encoder = Encoder(params)
        self._silence = self._encoder.encode(bytes(params.frame_bytes))
        self._pre_skip_48k = self._encoder.lookahead * (OUTPUT_RATE // 16000)
        self.saved_count = 0
        self.recent: deque[Recording] = deque(maxlen=100)  # the latest, for status pages
        self.errors = 0
        # In the arbiter, files are written by a thread of their own: the Ogg checksum is
        # pure Python (~45 ms for a minute of speech here, more on a Pi) and must not hold
        # up floor decisions.
        self._queue: queue.Queue | None = None
        if background:
            self._queue = queue.Queue()
            threading.Thread(target=self._writer, name="recorder-writer", daemon=True).start()

    def add(self, group: str, unit: str, frame: Frame, now: float | None = None) -> Recording | None:
        """Take one frame; returns the Recording when this frame finished a spurt (written
        here; in background mode it is queued and None is returned)."""
        now = time.time() if now is None else now
        key = (group, unit, frame.spurt)
        spurt = self._open.get(key)
        if spurt is None:
            spurt = _Open(group, unit, frame.spurt, start=now, last_arrival=now,
                          first=frame.seq, highest=frame.seq)
            self._open[key] = spurt
        ext = spurt.highest + seq_delta(frame.seq, spurt.highest & 0xFFFF)
        if abs(ext - spurt.highest) > self.MAX_SEQ_JUMP:
            self.out_of_range += 1
            return None
        spurt.last_arrival = now
        if frame.payload and ext >= spurt.first and len(spurt.frames) < self.max_frames:
            spurt.frames.setdefault(ext, frame.payload)
            spurt.highest = max(spurt.highest, ext)
        if frame.end:
            return self._close(key)
        return None

    def tick(self, now: float | None = None) -> list[Recording]:
        """Write spurts that fell silent without an END frame."""
        now = time.time() if now is None else now
        done = []
        for key, spurt in list(self._open.items()):
            if (now - spurt.last_arrival) * 1000.0 >= self.idle_ms:
                rec = self._close(key)
                if rec is not None:
                    done.append(rec)
        return done

    def flush(self) -> list[Recording]:
        """Write every open spurt (at shutdown) and wait for the writer thread."""
        done = [r for r in (self._close(k) for k in list(self._open)) if r is not None]
        if self._queue is not None:
            self._queue.join()
        return done

    def _writer(self) -> None:
        assert self._queue is not None
        while True:
            spurt, packets, lost = self._queue.get()
            try:
                self._save(spurt, packets, lost)
            finally:
                self._queue.task_done()

    def _close(self, key: tuple[str, str, int]) -> Recording | None:
        spurt = self._open.pop(key)
        if not spurt.frames:
            return None
        # Walk the frames received, not the range of sequence numbers (which a talker can
        # make huge); each gap gets its silence within the bounds.
        budget = len(spurt.frames)  # never more silence than audio
        packets, lost, previous = [], 0, None
        for ext in sorted(spurt.frames):
            if previous is not None and ext - previous > 1:
                gap = ext - previous - 1
                fill = min(gap, self.max_fill_frames, budget)
                budget -= fill
                lost += fill
                packets.extend([self._silence] * fill)
                if fill < gap:
                    self.trimmed += gap - fill
            packets.append(spurt.frames[ext])
            previous = ext
        if self._queue is not None:
            self._queue.put((spurt, packets, lost))
            return None
        return self._save(spurt, packets, lost)

    def _save(self, spurt: _Open, packets: list[bytes], lost: int) -> Recording | None:
        try:
            return self._write(spurt, packets, lost)
        except (OSError, ValueError) as exc:
            self.errors += 1
            log.error("recorder: could not save spurt %08x of %s in %s: %s", spurt.spurt,
                      spurt.unit, spurt.group, exc)
            return None

    def _write(self, spurt: _Open, packets: list[bytes], lost: int) -> Recording:
        per_packet_48k = OUTPUT_RATE * self.params.frame_ms // 1000
        duration = max(0.0, (len(packets) * per_packet_48k - self._pre_skip_48k) / OUTPUT_RATE)
        when = datetime.fromtimestamp(spurt.start, UTC)
        rel = Path(spurt.group) / when.strftime("%Y-%m-%d") / (
            f"{when.strftime('%H%M%S')}_{spurt.unit}_{spurt.spurt:08x}.opus")
        path = self.folder / rel
        tags = {"title": f"{spurt.group} {spurt.unit} {when.isoformat()}",
                "posko_group": spurt.group, "posko_unit": spurt.unit,
                "posko_start": f"{spurt.start:.3f}", "posko_duration": f"{duration:.3f}"}
        data = write_ogg_opus(packets, per_packet_48k, pre_skip_48k=self._pre_skip_48k,
                              tags=tags, serial=spurt.spurt)
        rec = Recording(group=spurt.group, unit=spurt.unit, spurt=spurt.spurt, start=spurt.start,
                        duration_s=round(duration, 3), frames=len(packets), lost=lost,
                        file=str(rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write under a temporary name and rename, so a listing never sees half a file.
        tmp = path.with_suffix(".opus.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        side = path.with_suffix(".json")
        side.with_suffix(".json.tmp").write_text(json.dumps(asdict(rec), ensure_ascii=False))
        os.replace(side.with_suffix(".json.tmp"), side)
        self.recent.append(rec)
        self.saved_count += 1
        log.info("recorder: saved %s (%.1f s, %d lost)", rel, duration, lost)
        return rec
