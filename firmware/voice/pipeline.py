"""One question, spoken or typed, from the microphone to the speaker.

The run goes through ordered stages (LISTEN → TRANSCRIBE → ANSWER → SPEAK); it may start
later (a typed question starts at ANSWER, a "say" command at SPEAK). Every step emits a
typed, timestamped `PipelineEvent`; a failing stage emits an ERROR event with a code and
raises VoiceError; cleanup (closing the microphone) runs in `finally`.

The microphone is open only during LISTEN (it is closed before any sound is played, the
chime included), so the kiosk never transcribes its own answer.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from firmware.audio.streams import PlaybackStopped
from firmware.errors import AudioDeviceError, VoiceError
from firmware.voice.endpointing import EndpointRules, Heard, decide
from firmware.voice.tts import rate_for
from firmware.voice.vad import Segmenter, VadConfig

log = logging.getLogger(__name__)


class Stage(enum.IntEnum):
    LISTEN = 1
    TRANSCRIBE = 2
    ANSWER = 3
    SPEAK = 4


class EventType(enum.Enum):
    RUN_START = "run-start"
    MIC_OPEN = "mic-open"
    SPEECH_START = "speech-start"
    PARTIAL = "partial"
    SPEECH_END = "speech-end"
    MIC_CLOSED = "mic-closed"
    TRANSCRIPT = "transcript"
    ANSWER = "answer"
    SPEAK_START = "speak-start"
    FIRST_AUDIO = "first-audio"
    SPEAK_END = "speak-end"
    ERROR = "error"
    RUN_END = "run-end"


@dataclass(frozen=True)
class PipelineEvent:
    type: EventType
    session: str
    stage: Stage | None = None
    data: dict[str, Any] = field(default_factory=dict)
    mono: float = field(default_factory=time.monotonic)  # for latency figures
    time: float = field(default_factory=time.time)  # wall clock, for the screen and logs


class Brain(Protocol):
    def ask(self, text: str, lang: str = "id") -> Any: ...


@dataclass
class RunResult:
    session: str
    transcript: str = ""
    reply: dict[str, Any] | None = None
    spoken_s: float = 0.0
    stopped: bool = False
    cached: bool = False
    speech_end_mono: float = 0.0
    first_audio_mono: float = 0.0

    @property
    def first_audio_latency_s(self) -> float:
        """End of speech (or of the question) to the first sample handed to the speaker."""
        if self.speech_end_mono and self.first_audio_mono:
            return self.first_audio_mono - self.speech_end_mono
        return 0.0


class VoicePipeline:
    """Runs one question at a time; `stop` ends listening or speech at once."""

    def __init__(self, *, brain: Brain | None, recognizer=None, synth=None, cache=None,
                 mic=None, speaker=None, vad: VadConfig | None = None,
                 is_speech: Callable[[bytes], bool] | None = None,
                 speech_gate: threading.Event | None = None, chime: bytes = b"",
                 chime_rate_hz: int = 16000, early_decode_ms: int = 150,
                 endpointing: EndpointRules | None = None,
                 on_event: Callable[[PipelineEvent], None] | None = None) -> None:
        self.brain = brain
        self.recognizer = recognizer
        self.synth = synth
        self.cache = cache
        self.mic = mic
        self.speaker = speaker
        self.vad = vad or VadConfig()
        self.is_speech = is_speech
        self.speech_gate = speech_gate or threading.Event()
        self.chime = chime
        self.chime_rate_hz = chime_rate_hz
        # A recogniser that is not streaming (Whisper) starts decoding after this much
        # silence, while the VAD still waits for `silence_ms`; 0 turns it off.
        self.early_decode_ms = early_decode_ms
        # Early endpointing (firmware.voice.endpointing): the utterance may end before
        # silence_ms when what was said so far is a complete, confident question or an
        # emergency. None, or rules with both times 0, turn it off.
        self.endpointing = endpointing
        self._feeder: _AsrFeeder | None = None
        self.on_event = on_event or (lambda e: None)
        self.stop = threading.Event()
        self.busy = threading.Lock()

    def _emit(self, etype: EventType, session: str, stage: Stage | None = None, **data: Any) -> PipelineEvent:
        event = PipelineEvent(etype, session, stage, data)
        try:
            self.on_event(event)
        except Exception:  # a listener's bug must not break the run
            log.exception("pipeline event listener failed on %s", etype)
        return event

    def run(self, session: str, *, start: Stage = Stage.LISTEN, text: str = "",
            lang: str = "id") -> RunResult:
        """Run from `start` to SPEAK. Raises VoiceError (after an ERROR event) on failure."""
        if not self.busy.acquire(blocking=False):
            raise VoiceError("busy", "a question is already being handled")
        self.stop.clear()
        result = RunResult(session)
        stage = start
        self._emit(EventType.RUN_START, session, start, start=start.name.lower(), lang=lang)
        try:
            stream = None
            if start <= Stage.LISTEN:
                stage = Stage.LISTEN
                stream = self._listen(session, result, lang)
            if start <= Stage.TRANSCRIBE:
                stage = Stage.TRANSCRIBE
                transcript = stream.finish() if stream is not None else None  # waits for the decoder's backlog
                if transcript is None or not transcript.text.strip():
                    raise VoiceError("no-text", "nothing was understood")
                text = transcript.text
                result.transcript = text
                self._emit(EventType.TRANSCRIPT, session, stage, text=text,
                           confidence=round(transcript.confidence, 3),
                           words=transcript.to_dict()["words"])
            if start <= Stage.ANSWER:
                stage = Stage.ANSWER
                if not result.speech_end_mono:
                    result.speech_end_mono = time.monotonic()
                if self.brain is None:
                    raise VoiceError("no-brain", "the assistant brain is not loaded")
                try:
                    answer = self.brain.ask(text, lang=lang)
                except Exception as exc:
                    raise VoiceError("brain-failed", f"the brain failed: {exc}") from exc
                reply = answer.to_dict() if hasattr(answer, "to_dict") else dict(answer)
                result.reply = reply
                self._emit(EventType.ANSWER, session, stage, reply=reply, question=text)
                text = str(reply.get("speech") or "")
            if not result.speech_end_mono:
                result.speech_end_mono = time.monotonic()
            stage = Stage.SPEAK
            if text.strip() and not self.stop.is_set():
                self._speak(session, text, lang, result)
            result.stopped = result.stopped or self.stop.is_set()
        except VoiceError as exc:
            self._emit(EventType.ERROR, session, stage, code=exc.code, message=str(exc), lang=lang)
            raise
        except AudioDeviceError as exc:
            code = "mic-unavailable" if stage == Stage.LISTEN else "speaker-unavailable"
            self._emit(EventType.ERROR, session, stage, code=code, message=str(exc), lang=lang)
            raise VoiceError(code, str(exc)) from exc
        except Exception as exc:  # a library failing in a stage: an event, then a coded error
            log.exception("session %s failed in %s", session, stage.name)
            self._emit(EventType.ERROR, session, stage, code="internal", message=str(exc), lang=lang)
            raise VoiceError("internal", f"{stage.name.lower()} failed: {exc}") from exc
        finally:
            self._close_mic(session)
            self._emit(EventType.RUN_END, session, stage, stopped=result.stopped)
            self.busy.release()
        return result

    # LISTEN -----------------------------------------------------------------------
    def recogniser_busy(self) -> bool:
        """True while the recogniser has queued work (audio or an early decode) to do."""
        feeder = self._feeder
        return feeder is not None and feeder.busy()

    def _early_judge(self, lang: str) -> Callable[[str], Heard] | None:
        """What the early transcript is judged with: the brain's reply, asked without logging."""
        rules = self.endpointing
        if rules is None or not rules.enabled or self.brain is None:
            return None
        brain = self.brain

        def hear(text: str) -> Heard:
            if not text.strip():
                return Heard(text)
            # The brain's logging ask would put every fragment into the unanswered log.
            peek = getattr(brain, "peek", None)
            answer = peek(text, lang) if peek is not None else brain.ask(text, lang=lang)
            reply = answer.to_dict() if hasattr(answer, "to_dict") else dict(answer)
            topics = getattr(brain, "topics", None)
            named: frozenset[str] = frozenset()
            docs: frozenset[str] = frozenset()
            if topics is not None:
                named = topics.named(str(reply.get("normalised") or ""))
                docs = topics.entry_docs(reply["entry"]) if reply.get("entry") else frozenset()
            return Heard.from_reply(text, reply, named, docs)

        return hear

    def _listen(self, session: str, result: RunResult, lang: str = "id"):
        if self.mic is None:
            raise VoiceError("no-mic", "this unit has no microphone; please type the question")
        if self.recognizer is None:
            raise VoiceError("no-asr", "no speech recognition model is installed")
        if self.chime and self.speaker is not None:
            try:  # before the microphone opens, so the chime is never heard as speech
                self.speaker.play([self.chime], self.chime_rate_hz, stop=self.stop)
            except (AudioDeviceError, PlaybackStopped) as exc:
                log.warning("chime not played: %s", exc)
        segmenter = Segmenter(self.vad, self.is_speech)
        hear = self._early_judge(lang)
        feeder = _AsrFeeder(self.recognizer.stream(), self.vad.rate_hz,
                            lambda text: self._emit(EventType.PARTIAL, session, Stage.LISTEN, text=text),
                            hear=hear)
        rules = self.endpointing
        # The first look at the words so far: early_decode_ms, or (when that is off) the
        # soonest silence early endpointing could end at.
        look_ms = self.early_decode_ms or (rules.soonest_ms() if hear is not None else 0)
        self._feeder = feeder
        try:
            self.mic.open()
            self._emit(EventType.MIC_OPEN, session, Stage.LISTEN,
                       device=getattr(getattr(self.mic, "device", None), "name", ""),
                       device_rate_hz=getattr(self.mic, "device_rate_hz", self.vad.rate_hz))
            early_sent = False
            voiced_run = 0  # counts voiced stretches: an early transcript is of one of them
            while True:
                if self.stop.is_set():
                    result.stopped = True
                    raise VoiceError("stopped", "listening was stopped")
                step = segmenter.push(self.mic.read_frame())
                if step.kind == "timeout":
                    raise VoiceError("no-speech", "nobody spoke")
                if step.kind == "wait":
                    continue
                if step.kind == "start":
                    self._emit(EventType.SPEECH_START, session, Stage.LISTEN)
                if step.audio:
                    feeder.feed(step.audio, voiced=segmenter.last_voiced or step.kind == "start")
                if segmenter.last_voiced:
                    if early_sent:
                        voiced_run += 1
                    early_sent = False
                elif (not early_sent and look_ms and step.kind == "speech"
                      and segmenter.silence_run_ms >= look_ms):
                    feeder.decode_early(voiced_run)
                    early_sent = True
                reason, rule = step.reason, ""
                if (step.kind == "speech" and hear is not None and early_sent
                        and feeder.heard is not None and feeder.heard[0] == voiced_run):
                    verdict = decide(segmenter.silence_run_ms, feeder.heard[1], rules, lang)
                    if verdict is not None:
                        reason, rule = "early", verdict.reason
                if step.kind == "end" or reason == "early":
                    result.speech_end_mono = time.monotonic()
                    self._close_mic(session)
                    self._emit(EventType.SPEECH_END, session, Stage.LISTEN, reason=reason,
                               rule=rule, silence_ms=segmenter.silence_run_ms,
                               audio_s=round(feeder.fed_s, 2))
                    return feeder
        except BaseException:
            feeder.abandon()
            raise
        finally:
            self._feeder = None

    def _close_mic(self, session: str) -> None:
        if self.mic is not None and self.mic.is_open:
            self.mic.close()
            self._emit(EventType.MIC_CLOSED, session, Stage.LISTEN)

    # SPEAK ------------------------------------------------------------------------
    def _speak(self, session: str, text: str, lang: str, result: RunResult) -> None:
        if self.synth is None or self.speaker is None:
            # Nothing to speak with or through: the answer stays on the screen only.
            self._emit(EventType.SPEAK_END, session, Stage.SPEAK,
                       skipped="no voice" if self.synth is None else "no speaker")
            return
        cached = self.cache.get(text, lang) if self.cache is not None else None
        result.cached = cached is not None
        self._emit(EventType.SPEAK_START, session, Stage.SPEAK, text=text, cached=result.cached,
                   voice=self.synth.name, engine=self.synth.engine)
        rate = cached.rate_hz if cached is not None else rate_for(self.synth, lang)
        made: list[bytes] = []
        producer = None
        if cached is not None:
            chunks = iter([cached.pcm])
        else:
            # Synthesis runs one sentence ahead of playback in its own thread, so the
            # second sentence is ready when the first has been played.
            q: queue.Queue = queue.Queue(maxsize=2)
            failure: list[BaseException] = []

            def produce() -> None:
                try:
                    for pcm in self.synth.synthesize(text, lang):
                        if self.stop.is_set():
                            break
                        made.append(pcm)
                        q.put(pcm)
                except BaseException as exc:  # handed to the playing thread
                    failure.append(exc)
                finally:
                    q.put(None)

            producer = threading.Thread(target=produce, name="tts", daemon=True)
            producer.start()

            def drain():
                while (item := q.get()) is not None:
                    yield item
                if failure:
                    raise VoiceError("tts-failed", f"speech synthesis failed: {failure[0]}")

            chunks = drain()

        def first_audio() -> None:
            result.first_audio_mono = time.monotonic()
            self._emit(EventType.FIRST_AUDIO, session, Stage.SPEAK,
                       mic_open=bool(self.mic is not None and self.mic.is_open),
                       latency_s=round(result.first_audio_mono - result.speech_end_mono, 3))

        try:
            while self.speech_gate.is_set() and not self.stop.is_set():
                time.sleep(0.02)  # received radio speech plays first
            result.spoken_s = self.speaker.play(chunks, rate, stop=self.stop, gate=self.speech_gate,
                                                on_first_audio=first_audio)
            # Stopped between sentences: the producer quit early and playback just ran dry.
            result.stopped = self.stop.is_set()
        except PlaybackStopped:
            result.stopped = True
        finally:
            while producer is not None and producer.is_alive():
                try:  # unblock a producer waiting on a full queue
                    q.get_nowait()
                except queue.Empty:
                    producer.join(0.05)
        if cached is None and not result.stopped and made and self.cache is not None:
            self.cache.put(text, lang, rate, b"".join(made))
        self._emit(EventType.SPEAK_END, session, Stage.SPEAK, seconds=round(result.spoken_s, 2),
                   stopped=result.stopped)


def make_chime(rate_hz: int = 16000, seconds: float = 0.18) -> bytes:
    """A short two-tone 'ding' (int16 mono) that tells the resident to speak now."""
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    tone = np.where(t < seconds / 2, np.sin(2 * np.pi * 880 * t), np.sin(2 * np.pi * 1320 * t))
    envelope = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)
    return (tone * envelope * 0.3 * 32767).astype("<i2").tobytes()


class _AsrFeeder:
    """Feeds a recognition stream on its own thread, so capture and VAD never wait for it.

    On a slow unit Vosk may fall behind real time for a moment; the audio then queues here
    (at most one utterance) instead of overflowing the sound card's buffer. A stream that
    is not streaming (Whisper) is asked to decode early, when the speaker falls silent;
    a voiced frame after that makes the early transcript void (the stream forgets it).
    """

    _EARLY = object()

    def __init__(self, stream, rate_hz: int, on_partial: Callable[[str], None],
                 hear: Callable[[str], Heard] | None = None) -> None:
        self.stream = stream
        self.rate_hz = rate_hz
        self.on_partial = on_partial
        self.hear = hear
        # (voiced stretch, Heard): the words so far as of that stretch's end, judged.
        self.heard: tuple[int, Heard] | None = None
        self.fed_s = 0.0
        self.early_decodes = 0
        self._pending = 0  # items queued or being handled
        self._count = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="asr", daemon=True)
        self._thread.start()

    def feed(self, pcm: bytes, voiced: bool = True) -> None:
        self.fed_s += len(pcm) / 2 / self.rate_hz
        self._put((pcm, voiced))

    def _put(self, item) -> None:
        with self._count:
            self._pending += 1
        self._queue.put(item)

    def _done(self) -> None:
        with self._count:
            self._pending -= 1

    def decode_early(self, run: int = 0) -> None:
        """Decode what is there now, if the stream can (Whisper); with early endpointing also
        judge the words so far (Whisper's early transcript, Vosk's partial)."""
        if hasattr(self.stream, "transcribe_now") or self.hear is not None:
            self._put((self._EARLY, run))

    def busy(self) -> bool:
        return self._pending > 0

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                if self._abandoned:
                    self._done()
                    continue
                if item[0] is self._EARLY:
                    if hasattr(self.stream, "transcribe_now"):
                        text = self.stream.transcribe_now().text
                        self.early_decodes += 1
                    else:
                        text = self.stream.heard_so_far() if hasattr(self.stream, "heard_so_far") else ""
                    if self.hear is not None:
                        try:
                            self.heard = (item[1], self.hear(text))
                        except Exception:  # the utterance then ends at silence_ms
                            log.exception("early endpointing could not judge %r", text)
                    self._done()
                    continue
                pcm, voiced = item
                partial = self.stream.accept(pcm, self.rate_hz)
                if voiced and hasattr(self.stream, "forget_early"):
                    self.stream.forget_early()
                if partial:
                    self.on_partial(partial)
                self._done()
        except BaseException as exc:  # handed to finish()
            self._error = exc
            self._pending = 0
            while self._queue.get() is not None:
                pass

    def finish(self):
        """The Transcript, after every queued frame has been decoded."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.stream.finish()

    def abandon(self) -> None:
        self._abandoned = True
        self._queue.put(None)
