"""Audio of spoken answers, made ahead of time and reused.

Entries live in one generation folder per (knowledge-base version, voice id): when either
changes, a new generation is built (warmed in the background) and `prune()` removes the
stale ones once it is complete. Until then the previous generation keeps answering
(`previous`): audio is keyed by its exact text, so an answer whose words did not change is
still right, and nothing is silent or slow while the new generation is built. Each entry
is a WAV file named by the SHA-256 of (language, text), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from firmware.voice.tts import rate_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedAudio:
    rate_hz: int
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate_hz if self.rate_hz else 0.0


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


class SpeechCache:
    """WAV files under `folder/<generation>/`."""

    def __init__(self, folder: Path, kb_version: str, voice_id: str) -> None:
        self.folder = Path(folder)
        self.kb_version = kb_version
        self.voice_id = voice_id
        self.generation = _digest(kb_version, voice_id)[:20]
        self.dir = self.folder / self.generation
        self.hits = 0
        self.misses = 0
        # An older generation that answers while this one is being built (a new KB or
        # voice): audio is keyed by its exact text, so it still says the right words.
        self.previous: SpeechCache | None = None
        self.previous_hits = 0

    def adopt_previous(self) -> SpeechCache | None:
        """Serve from the newest other generation on disk until this one is warm.

        Returns that generation's cache, or None when there is none.
        """
        if not self.folder.is_dir():
            return None
        others = [d for d in self.folder.iterdir()
                  if d.is_dir() and d.name != self.generation and (d / "generation.json").is_file()]
        if not others:
            return None
        newest = max(others, key=lambda d: (d / "generation.json").stat().st_mtime)
        try:
            meta = json.loads((newest / "generation.json").read_text())
        except (OSError, ValueError):
            return None
        old = SpeechCache(self.folder, str(meta.get("kb_version", "")), str(meta.get("voice_id", "")))
        if old.generation != newest.name:
            return None  # not written by this code: do not guess
        self.previous = old
        return old

    def _path(self, text: str, lang: str) -> Path:
        return self.dir / f"{_digest(lang, ' '.join(text.split()))[:32]}.wav"

    def get(self, text: str, lang: str = "id") -> CachedAudio | None:
        path = self._path(text, lang)
        try:
            with wave.open(str(path), "rb") as w:
                audio = CachedAudio(w.getframerate(), w.readframes(w.getnframes()))
        except (OSError, EOFError, wave.Error):
            old = self.previous.get(text, lang) if self.previous is not None else None
            if old is not None:
                self.previous_hits += 1
                return old
            self.misses += 1
            return None
        self.hits += 1
        return audio

    def put(self, text: str, lang: str, rate_hz: int, pcm: bytes) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "generation.json"
        if not meta.exists():
            meta.write_text(json.dumps({"kb_version": self.kb_version, "voice_id": self.voice_id}))
        path = self._path(text, lang)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate_hz)
            w.writeframes(pcm)
        os.replace(tmp, path)
        return path

    def __contains__(self, key: tuple[str, str]) -> bool:
        return self._path(key[0], key[1]).is_file()

    def prune(self) -> int:
        """Delete every other generation; returns how many folders went."""
        removed = 0
        if self.folder.is_dir():
            for child in self.folder.iterdir():
                if child.is_dir() and child.name != self.generation:
                    shutil.rmtree(child, ignore_errors=True)
                    removed += 1
        return removed

    def entries(self) -> int:
        return len(list(self.dir.glob("*.wav"))) if self.dir.is_dir() else 0

    def warm(self, spoken: Iterable[tuple[str, str, str]], synth, progress=None,
             wait_while=None, cancel=None) -> dict:
        """Synthesise every (entry_id, lang, speech) not cached yet; returns counts.

        `wait_while()` True pauses between answers (the unit is busy with a resident);
        a set `cancel` event stops early (counts so far, no pruning).
        """
        made = kept = failed = 0
        for _entry, lang, speech in spoken:
            while wait_while is not None and wait_while():
                if cancel is not None and cancel.wait(0.2):
                    break
            if cancel is not None and cancel.is_set():
                return {"made": made, "kept": kept, "failed": failed, "pruned_generations": 0,
                        "generation": self.generation, "cancelled": True}
            if not speech or not speech.strip():
                continue
            if (speech, lang) in self:
                kept += 1
            else:
                try:
                    pcm = b"".join(synth.synthesize(speech, lang))
                    self.put(speech, lang, rate_for(synth, lang), pcm)
                    made += 1
                except Exception as exc:  # one bad answer must not stop the warm-up
                    if cancel is not None and cancel.is_set():
                        continue  # shutting down: the synthesiser was stopped with us
                    log.warning("could not synthesise %r: %s", speech[:60], exc)
                    failed += 1
            if progress is not None:
                progress()
        pruned = self.prune()
        self.previous = None  # complete: the old generation is gone and no longer needed
        return {"made": made, "kept": kept, "failed": failed, "pruned_generations": pruned,
                "generation": self.generation}
