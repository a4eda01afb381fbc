"""Tanya Pak Polisi on the unit: commands and the Tanya button drive the voice pipeline.

The component loads the brain and the models once (in a thread, so the agent is up at
once), handles `assistant/command` (listen / stop / say), publishes `assistant/event`,
raises an Alert for an `escalate` answer, and watches the sound devices: a microphone or
speaker that disappears is logged, blinks the status LED, and is looked for again every
`[voice] device_check_s` until it is back, without restarting anything. With no
microphone the unit still speaks answers of typed questions; with no model it says so.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from assistant.holder import BrainHolder
from firmware.audio.devices import AudioSystem, sound_fingerprint
from firmware.audio.streams import Microphone, Speaker
from firmware.errors import AudioDeviceError, VoiceError
from firmware.voice import memory
from firmware.voice.pipeline import EventType, PipelineEvent, Stage, VoicePipeline, make_chime
from firmware.voice.setup import (
    build_cache,
    endpoint_rules,
    kb_vocabulary,
    load_recognizer,
    load_tts,
    vad_config,
)
from posko import topics
from posko.errors import PoskoError
from posko.kb_paths import bundle_version
from posko.messages import AssistantCommand, AssistantEvent, BadMessage

log = logging.getLogger(__name__)

ARENA_MAX = 2  # malloc arenas of the voice process (as MALLOC_ARENA_MAX=2 in the systemd unit)

_MESSAGES_FILE = Path(__file__).parent / "voice" / "messages.yaml"
FORCED_RESCAN_S = 300.0  # sound devices are re-scanned at least this often even with no change seen
MISSING_RESCAN_S = 30.0  # ... and this often while one is missing (a failing card may not change the fingerprint)


@functools.cache
def _messages() -> dict[str, dict[str, str]]:
    with open(_MESSAGES_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def screen_message(code: str, lang: str = "id") -> str:
    """What the screen says for an error code, in the session's language (Indonesian default)."""
    texts = _messages().get(code) or _messages()["internal"]
    return texts.get(lang) or texts["id"]

# Pipeline events that the kiosk screen sees, as AssistantEvent types.
_SCREEN_EVENTS = {
    EventType.PARTIAL: "partial",
    EventType.TRANSCRIPT: "transcript",
    EventType.ANSWER: "answer",
    EventType.SPEAK_START: "speaking",
    EventType.ERROR: "error",
    EventType.RUN_END: "done",
}


def _kb_version(brain) -> str:
    """The hub's bundle version when the KB came from one, else the first 12 digits of the
    KB's own content hash (a kb_dir folder or the shipped KB)."""
    kb = getattr(brain, "kb", None)
    if kb is None:
        return ""
    root = getattr(kb, "root", "")
    return (bundle_version(root) if root else None) or kb.version[:12]


class DeviceState:
    """Whether one sound device is usable; changes are logged once, not every check."""

    def __init__(self, role: str, name: str) -> None:
        self.role, self.name = role, name
        self.present: bool | None = None
        self.detail = ""
        self.changes = 0

    def mark(self, present: bool, detail: str = "") -> bool:
        """Record a check; True when the state changed."""
        changed = present != self.present
        if changed:
            if present:
                log.warning("%s %r is %s", self.role, self.name, "back" if self.present is False else "ready")
            else:
                log.warning("%s %r is GONE: %s", self.role, self.name, detail)
            self.changes += 1
        self.present, self.detail = present, detail
        return changed

    def status(self) -> str:
        return "none configured" if not self.name else (
            "ok" if self.present else ("missing" if self.present is False else "unknown"))


class VoiceComponent:
    """The assistant's voice on a unit (a UnitComponent)."""

    name = "voice"

    _NOT_GIVEN = object()

    def __init__(self, *, brain=None, recognizer=None, synth=None, cache=None,
                 audio: AudioSystem | None = None, is_speech=None, mic=_NOT_GIVEN,
                 speaker=_NOT_GIVEN) -> None:
        """Parts left out are built from the settings at start (tests and the bench pass some)."""
        self._given = {"brain": brain, "recognizer": recognizer, "synth": synth, "cache": cache}
        self._given_mic, self._given_speaker = mic, speaker
        self.audio = audio or AudioSystem()
        self.is_speech = is_speech
        self.pipeline: VoicePipeline | None = None
        self.ready = threading.Event()
        self.ctx = None
        self.load_error = ""
        self._lock = threading.Lock()
        # Requests run one at a time on one worker thread, never on paho's or gpiozero's.
        self._requests: queue.Queue = queue.Queue()
        self._active = threading.Event()  # a request is queued or running
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None
        self.mic_state = DeviceState("microphone", "")
        self.speaker_state = DeviceState("speaker", "")
        self.runs = 0
        self.last_latency_s = 0.0
        self.warm_state = "off"
        self._reload_wanted = False
        self.holder: BrainHolder | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self, ctx) -> None:
        self.ctx = ctx
        s = ctx.settings
        self.mic_state = DeviceState("microphone", s.voice.input_device)
        self.speaker_state = DeviceState("speaker", s.voice.output_device)
        self._worker = threading.Thread(target=self._work, name="voice-worker", daemon=True)
        self._worker.start()
        ctx.link.subscribe(topics.assistant_command(ctx.unit, ctx.root), self._on_command, qos=0)
        threading.Thread(target=self._load, name="voice-load", daemon=True).start()

    def _load(self) -> None:
        s = self.ctx.settings
        # `posko unit` started by hand has no MALLOC_ARENA_MAX (systemd sets it): cap the
        # arenas before the recogniser's and the voice's threads exist (docs/voice.md, Memory).
        if not os.environ.get("MALLOC_ARENA_MAX"):
            memory.limit_arenas(ARENA_MAX)
        try:
            self.holder = BrainHolder(s, brain=self._given["brain"])
            brain = self.holder.load_now()
            recognizer = self._given["recognizer"] or load_recognizer(s, brain)
            synth = self._given["synth"] or load_tts(s)
            cache = self._given["cache"] or build_cache(s, brain, synth)
        except Exception as exc:  # a broken KB or model must not take the unit down
            self.load_error = str(exc)
            log.error("voice assistant unavailable: %s", exc, exc_info=not isinstance(exc, PoskoError))
            self.ctx.status_led.problem("voice")
            self.ready.set()
            self._request_heartbeat()
            return
        mic = Microphone(self.audio, s.voice.input_device, s.voice.sample_rate_hz) if s.voice.input_device else None
        speaker = Speaker(self.audio, s.voice.output_device) if s.voice.output_device else None
        if self._given_mic is not self._NOT_GIVEN:
            mic = self._given_mic
        if self._given_speaker is not self._NOT_GIVEN:
            speaker = self._given_speaker
        self.pipeline = VoicePipeline(
            brain=brain, recognizer=recognizer, synth=synth, cache=cache, mic=mic, speaker=speaker,
            vad=vad_config(s), is_speech=self.is_speech, speech_gate=self.ctx.speech_gate,
            chime=make_chime(16000) if s.voice.chime else b"", chime_rate_hz=16000,
            early_decode_ms=s.voice.early_decode_ms, endpointing=endpoint_rules(s),
            on_event=self._on_pipeline_event)
        if synth is not None and getattr(synth, "engine", "") == "espeak-ng":
            log.warning("voice: FALLBACK espeak-ng in use (%s)", synth.name)
        self.holder.on_swap(self._brain_swapped)
        self._check_devices()
        self.ready.set()
        self._request_heartbeat()
        if self._reload_wanted:  # a new KB was installed while this was loading
            self._reload_wanted = False
            self.reload()
        self._watch = threading.Thread(target=self._watch_devices, name="device-watch", daemon=True)
        self._watch.start()
        if (s.voice.warm_on_start and cache is not None and synth is not None and speaker is not None
                and hasattr(brain, "spoken_answers")):
            # A voice or KB changed while the unit was off: the last generation on disk
            # keeps serving until the new one is warm.
            if cache.adopt_previous() is not None:
                log.info("speech cache %s is being rebuilt; %s serves meanwhile",
                         cache.generation, cache.previous.generation)
            threading.Thread(target=self._warm, args=(brain, synth, cache), name="voice-warm",
                             daemon=True).start()
        log.info("voice assistant ready: asr=%s tts=%s mic=%s speaker=%s",
                 recognizer.status() if recognizer else None, synth.name if synth else None,
                 self.mic_state.status(), self.speaker_state.status())

    def _warm(self, brain, synth, cache) -> None:
        """Speak every KB answer into the cache while the unit is idle."""
        self.warm_state = "warming"
        started = time.monotonic()
        try:
            counts = cache.warm(list(brain.spoken_answers()), synth,
                                wait_while=lambda: self.busy, cancel=self._stopping)
        except Exception:
            log.exception("warming the speech cache failed")
            self.warm_state = "failed"
            return
        self.warm_state = "cancelled" if counts.get("cancelled") else "done"
        log.info("speech cache %s: %d made, %d already there, %d failed in %.0f s", cache.generation,
                 counts["made"], counts["kept"], counts["failed"], time.monotonic() - started)
        self._request_heartbeat()

    def reload(self) -> bool:
        """Load the knowledge base again (after a new bundle was installed); True if it changed.

        The holder swaps the brain only once the new KB has loaded (a broken one keeps the
        old); `_brain_swapped` then moves the pipeline to it.
        """
        p = self.pipeline
        if p is None or p.brain is None or self.holder is None:
            self._reload_wanted = True  # still loading: look again once loaded
            return False
        return self.holder.reload()

    def _brain_swapped(self, old, new) -> None:
        """The holder has a new brain: its cache generation and grammar take over for the
        next question, and the cache is warmed again in the background."""
        p = self.pipeline
        if p is None:
            return
        s = self.ctx.settings
        changed = old is None or new.kb.version != old.kb.version
        warm = s.voice.warm_on_start and p.speaker is not None
        with self._lock:
            p.brain = new
            if changed:
                old_cache = p.cache
                p.cache = build_cache(s, new, p.synth)
                if warm and p.cache is not None and old_cache is not None:
                    p.cache.previous = old_cache  # keeps answering until the new one is warm
                if p.recognizer is not None and s.voice.grammar_bias:
                    p.recognizer = p.recognizer.with_vocabulary(kb_vocabulary(new))
        if changed and s.voice.warm_on_start and p.cache is not None and p.speaker is not None:
            threading.Thread(target=self._warm, args=(new, p.synth, p.cache), name="voice-warm",
                             daemon=True).start()
        self._request_heartbeat()

    def stop(self) -> None:
        self._stopping.set()
        if self.pipeline is not None:
            self.pipeline.stop.set()
        self._requests.put(None)
        if self._worker is not None:
            self._worker.join(5)
        if self.ctx is not None:
            self.ctx.panel.listening_led.off()

    # -- devices -----------------------------------------------------------------
    def _check_devices(self, refresh: bool = False) -> bool:
        """Look the devices up again; True when any state changed."""
        if refresh:
            try:
                self.audio.refresh()
            except Exception as exc:  # PortAudio itself failing is a missing device too
                log.warning("audio system refresh failed: %s", exc)
        changed = False
        for state, output in ((self.mic_state, False), (self.speaker_state, True)):
            if not state.name:
                continue
            try:
                self.audio.find(state.name, output=output)
                changed |= state.mark(True)
            except (AudioDeviceError, OSError) as exc:
                changed |= state.mark(False, str(exc))
        self._show_device_health()
        if changed:
            self._request_heartbeat()
        return changed

    def _show_device_health(self) -> None:
        if self.ctx is None:
            return
        for state in (self.mic_state, self.speaker_state):
            if state.present is False:
                self.ctx.status_led.problem(state.role)
            else:
                self.ctx.status_led.resolved(state.role)

    def _watch_devices(self) -> None:
        """Re-scan the sound devices when the system's sound setup changed; never while busy.

        Re-initialising PortAudio costs CPU and (in ALSA) a little memory each time, so on
        a unit that runs for months it is done only when the fingerprint of the sound setup
        (cards, device nodes, ALSA configuration files) changes — a USB card plugged or
        unplugged — and otherwise at most every FORCED_RESCAN_S as a safety net.
        """
        s = self.ctx.settings.voice
        last = sound_fingerprint()
        scanned = time.monotonic()
        while not self._stopping.wait(s.device_check_s):
            now_fp = sound_fingerprint()
            missing = any(st.present is False for st in (self.mic_state, self.speaker_state))
            age = time.monotonic() - scanned
            if now_fp == last and age < FORCED_RESCAN_S and not (missing and age >= MISSING_RESCAN_S):
                continue
            with self._lock:
                if self.busy or (self.pipeline is not None and self.pipeline.busy.locked()):
                    continue  # look again at the next tick
                self._check_devices(refresh=True)
            last, scanned = now_fp, time.monotonic()

    # -- commands ----------------------------------------------------------------
    def _on_command(self, topic: str, payload: bytes) -> None:
        try:
            cmd = AssistantCommand.from_json(payload)
        except BadMessage as exc:
            log.warning("bad assistant command dropped: %s", exc)
            return
        if cmd.command == "stop":
            self.stop_speaking()
        elif cmd.command == "listen":
            self.listen(session=cmd.session, lang=cmd.lang, source="screen")
        elif cmd.command == "say":
            self.say(cmd.text, session=cmd.session, lang=cmd.lang)

    def toggle(self, source: str = "button") -> None:
        """The Tanya button: stop what is going on, or start listening."""
        if self.busy:
            self.stop_speaking()
        else:
            self.listen(source=source)

    @property
    def busy(self) -> bool:
        return self._active.is_set()

    def stop_speaking(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop.set()

    def listen(self, session: str = "", lang: str | None = None, source: str = "screen") -> str:
        return self._start_run(session, Stage.LISTEN, "", lang, source)

    def say(self, text: str, session: str = "", lang: str | None = None) -> str:
        return self._start_run(session, Stage.SPEAK, text, lang, "screen")

    def ask_text(self, text: str, session: str = "", lang: str | None = None) -> str:
        """A typed question, answered on screen and aloud."""
        return self._start_run(session, Stage.ANSWER, text, lang, "typed")

    def _start_run(self, session: str, stage: Stage, text: str, lang: str | None, source: str) -> str:
        session = session or uuid.uuid4().hex[:12]
        lang = lang or self.ctx.settings.posko.language
        with self._lock:
            if self.busy:
                self.stop_speaking()  # a new question replaces the one going on
            self._active.set()
            self._requests.put((session, stage, text, lang, source))
        return session

    def _work(self) -> None:
        while (request := self._requests.get()) is not None:
            try:
                self._run(*request)
            finally:
                with self._lock:
                    if self._requests.empty():
                        self._active.clear()

    def _run(self, session: str, stage: Stage, text: str, lang: str, source: str) -> None:
        if not self.ready.wait(120) or self.pipeline is None:
            self._publish(AssistantEvent("error", session, text=screen_message("not-ready", lang),
                                         reply={"code": "not-ready", "message": self.load_error or "voice assistant is still loading"}))
            self._publish(AssistantEvent("done", session))
            return
        if stage == Stage.LISTEN:
            self._publish(AssistantEvent("listening", session, text=source))
        try:
            result = self.pipeline.run(session, start=stage, text=text, lang=lang)
            self.runs += 1
            if result.first_audio_latency_s:
                self.last_latency_s = result.first_audio_latency_s
        except VoiceError as exc:
            log.info("session %s ended: %s (%s)", session, exc.code, exc)
            if exc.code in ("mic-unavailable", "speaker-unavailable"):
                state = self.mic_state if exc.code == "mic-unavailable" else self.speaker_state
                if state.mark(False, str(exc)):
                    self._show_device_health()
                    self._request_heartbeat()
        except Exception:  # the pipeline already sent error + done; keep the unit alive
            log.exception("session %s failed", session)
        finally:
            self.ctx.panel.listening_led.off()

    # -- pipeline events -> screen, LED, alert -------------------------------------
    def _on_pipeline_event(self, event: PipelineEvent) -> None:
        log.debug("pipeline %s %s %s", event.session, event.type.value, event.data)
        if event.type == EventType.MIC_OPEN:
            self.ctx.panel.listening_led.on()
        elif event.type == EventType.MIC_CLOSED:
            self.ctx.panel.listening_led.off()
        kind = _SCREEN_EVENTS.get(event.type)
        if kind is None:
            return
        d = event.data
        if kind == "answer":
            reply = d.get("reply", {})
            self._publish(AssistantEvent("answer", event.session, text=str(reply.get("text", "")),
                                         reply=reply, time=event.time))
            if reply.get("action") == "escalate":
                self.ctx.raise_alert("assistant", str(d.get("question", "")))
            return
        if kind == "error":
            code = str(d.get("code", "internal"))
            self._publish(AssistantEvent("error", event.session, text=screen_message(code, d.get("lang", "id")),
                                         reply={"code": code, "message": d.get("message", "")},
                                         time=event.time))
            return
        extra = ({"confidence": d.get("confidence", 0.0), "words": d.get("words", [])}
                 if kind == "transcript" else {})  # Vosk's word confidences, for the screen
        self._publish(AssistantEvent(kind, event.session, text=str(d.get("text", "")), reply=extra,
                                     time=event.time))

    def _publish(self, event: AssistantEvent) -> None:
        if self.ctx is None:
            return
        self.ctx.link.publish(topics.assistant_event(self.ctx.unit, self.ctx.root), event.to_json(), qos=0)

    def _request_heartbeat(self) -> None:
        request = getattr(self.ctx, "request_heartbeat", None)
        if request is not None:
            request()

    def status(self) -> dict[str, Any]:
        p = self.pipeline
        models: dict[str, Any] = {}
        out: dict[str, Any] = {"ready": self.ready.is_set(), "error": self.load_error,
                               "kb_version": _kb_version(p.brain if p is not None else None),
                               "microphone": self.mic_state.status(),
                               "speaker": self.speaker_state.status(),
                               "runs": self.runs, "last_first_audio_s": round(self.last_latency_s, 3)}
        if p is not None:
            models["asr"] = p.recognizer.status() if p.recognizer else {"name": None, "mode": "not installed"}
            models["tts"] = p.synth.status() if p.synth else {"name": None}
            out["tts_fallback"] = bool(p.synth is not None and p.synth.engine == "espeak-ng")
            if p.cache is not None:
                out["cache"] = {"entries": p.cache.entries(), "hits": p.cache.hits,
                                "misses": p.cache.misses, "generation": p.cache.generation,
                                "previous_hits": p.cache.previous_hits,
                                "rebuilding_from": p.cache.previous.generation if p.cache.previous else None,
                                "warm": self.warm_state}
            out["typed_only"] = p.mic is None or p.recognizer is None or self.mic_state.present is False
        out["models"] = models
        return out
