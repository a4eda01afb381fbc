"""A unit speaks the dispatcher's talk-group announcements with its own TTS voice.

The talk-group client (gateway.client) subscribes to `tg/{group}/announce` of every group
the unit hears, refuses stale and duplicate ones (gateway.announce) and hands the rest to
`Announcer.submit`. One worker thread synthesises the text with the unit's voice — the same
one the assistant speaks with: `[voice] tts_voice` (Piper), else the espeak-ng fallback
(`[voice] tts_fallback`) — resamples it to 16 kHz and gives it back to the client, which
plays it through the PTT speaker after the alert tone once every floor the unit hears is
free (gateway.scan). A unit without any voice plays the alert tone alone and logs that it
cannot speak the text.

The voice is loaded at the first announcement, not at start: most announcements are rare
and a Piper voice holds ~100 MB on a Pi.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from firmware.errors import ModelNotInstalled, VoiceError
from firmware.voice.tts import load_synthesizer, rate_for
from gateway.announce import Admitted
from models.paths import tts_voice_path
from posko.config import Settings

log = logging.getLogger(__name__)

RATE_HZ = 16000  # the PTT speaker's rate
_QUEUE = 8


def load_unit_voice(settings: Settings):
    """The unit's TTS voice (Piper, else the espeak-ng fallback), or None. Loaded from
    firmware.voice.tts itself, not the kiosk's voice set-up: that one brings the assistant,
    which a PTT-only unit (the `unit` extra) does not install."""
    v = settings.voice
    return load_synthesizer(tts_voice_path(settings), fallback=v.tts_fallback,
                            espeak_voice=v.espeak_voice, threads=v.tts_threads)


class Announcer:
    """Text in (`submit`), 16 kHz speech out to the client's `queue_announcement`."""

    def __init__(self, settings: Settings, load_voice: Callable[[Settings], Any] | None = None) -> None:
        self.settings = settings
        self._load_voice = load_voice or load_unit_voice
        self._queue: queue.Queue[Admitted | None] = queue.Queue(maxsize=_QUEUE)
        self._thread: threading.Thread | None = None
        self._client = None
        self._voice = None
        self._loaded = False
        self.voice_name = ""
        self.voiceless = 0  # announcements that got the alert tone only

    def start(self, client) -> None:
        self._client = client
        self._thread = threading.Thread(target=self._run, name="ptt-announce", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
            self._thread.join(2)

    def submit(self, admitted: Admitted) -> None:
        """Called on the MQTT thread: queue the announcement for synthesis."""
        try:
            self._queue.put_nowait(admitted)
        except queue.Full:
            log.warning("ptt: %d announcements wait to be spoken; one from %s dropped",
                        _QUEUE, admitted.announcement.sender)

    def status(self) -> dict[str, Any]:
        return {"voice": self.voice_name if self._loaded else "not loaded",
                "voiceless": self.voiceless}

    # --- the worker -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            admitted = self._queue.get()
            if admitted is None:
                return
            speech = self._speak(admitted)
            if self._client is not None:
                self._client.queue_announcement(admitted, speech)

    def _speak(self, admitted: Admitted) -> bytes:
        ann = admitted.announcement
        voice = self._voice_once()
        if voice is None:
            self.voiceless += 1
            log.warning("ptt: announcement in %s from %s cannot be spoken: no TTS voice installed "
                        "(`posko models fetch`); the alert tone plays alone. Text: %s",
                        ann.group, ann.sender, ann.text)
            return b""
        from firmware.audio.resample import resample  # lazy: numpy only once something is spoken

        try:
            pcm = b"".join(voice.synthesize(ann.text, "id"))
        except (VoiceError, OSError) as exc:
            self.voiceless += 1
            log.error("ptt: announcement in %s could not be synthesised: %s", ann.group, exc)
            return b""
        rate = rate_for(voice, "id")
        return resample(pcm, rate, RATE_HZ) if rate != RATE_HZ else pcm

    def _voice_once(self):
        if not self._loaded:
            self._loaded = True
            try:
                self._voice = self._load_voice(self.settings)
            except (ModelNotInstalled, VoiceError, OSError, ImportError) as exc:
                # ImportError: a PTT-only install without the voice extras (piper, onnxruntime).
                log.warning("ptt: no voice for announcements: %s", exc)
                self._voice = None
            self.voice_name = self._voice.name if self._voice is not None else "none"
        return self._voice
