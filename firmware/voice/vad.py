"""Where an utterance starts and ends: webrtcvad frame decisions plus a small state machine.

Vosk's PyPI wheel has no endpointer, so Posko ends utterances itself: speech must last
`min_speech_ms` to start an utterance (a click does not), the `pre_roll_ms` before it are
kept (so the first syllable is not clipped), and `silence_ms` of silence ends it. Long
talk is cut at `max_utterance_s`; nobody speaking for `no_speech_timeout_s` gives up.

`Segmenter` is pure: feed it frames, read decisions. The frame classifier is injectable so
the logic can be tested with numbers; by default it is webrtcvad.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

FRAME_MS_CHOICES = (10, 20, 30)
VAD_RATES = (8000, 16000, 32000, 48000)


@dataclass(frozen=True)
class VadConfig:
    """Utterance detection parameters (units in the names)."""

    rate_hz: int = 16000
    frame_ms: int = 30
    aggressiveness: int = 2
    silence_ms: int = 600
    pre_roll_ms: int = 300
    min_speech_ms: int = 120
    max_utterance_s: float = 10.0
    no_speech_timeout_s: float = 6.0

    def __post_init__(self) -> None:
        if self.frame_ms not in FRAME_MS_CHOICES:
            raise ValueError(f"frame_ms must be one of {FRAME_MS_CHOICES}, got {self.frame_ms}")
        if self.rate_hz not in VAD_RATES:
            raise ValueError(f"rate_hz must be one of {VAD_RATES}, got {self.rate_hz}")
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError("aggressiveness must be 0..3")

    @property
    def frame_bytes(self) -> int:
        return self.rate_hz * self.frame_ms // 1000 * 2


@dataclass(frozen=True)
class VadStep:
    """What one frame changed.

    kind: "wait" (no speech yet), "start" (speech began: `audio` = pre-roll + this frame),
    "speech" (inside an utterance: `audio` = this frame), "end" (utterance over: `audio` =
    this frame, `reason` silence | max_length), "timeout" (nobody spoke).
    """

    kind: str
    audio: bytes = b""
    reason: str = ""


def webrtc_classifier(config: VadConfig) -> Callable[[bytes], bool]:
    import webrtcvad  # lazy: only the kiosk's voice uses the VAD (kiosk extra)

    vad = webrtcvad.Vad(config.aggressiveness)
    return lambda frame: vad.is_speech(frame, config.rate_hz)


class Segmenter:
    """Turns a stream of frames into one utterance."""

    def __init__(self, config: VadConfig, is_speech: Callable[[bytes], bool] | None = None) -> None:
        self.config = config
        self.is_speech = is_speech or webrtc_classifier(config)
        fm = config.frame_ms
        self._pre_roll: collections.deque[bytes] = collections.deque(
            maxlen=max(1, config.pre_roll_ms // fm + 1))
        self._need_speech = max(1, -(-config.min_speech_ms // fm))
        self._need_silence = max(1, -(-config.silence_ms // fm))
        self._max_frames = int(config.max_utterance_s * 1000 // fm)
        self._timeout_frames = int(config.no_speech_timeout_s * 1000 // fm)
        self.reset()

    def reset(self) -> None:
        self.started = False
        self.done = False
        self._pre_roll.clear()
        self._speech_run = 0
        self._silence_run = 0
        self._frames = 0  # frames seen since reset
        self._utterance_frames = 0
        self.last_voiced = False  # the classifier's decision on the last frame pushed

    @property
    def silence_run_ms(self) -> int:
        """How long the speaker has been silent inside the utterance (0 before it starts)."""
        return self._silence_run * self.config.frame_ms if self.started else 0

    def push(self, frame: bytes) -> VadStep:
        """Classify one frame of exactly `config.frame_bytes`; ValueError otherwise."""
        if len(frame) != self.config.frame_bytes:
            raise ValueError(f"frame of {len(frame)} bytes; expected {self.config.frame_bytes}")
        if self.done:
            return VadStep("end", b"", "done")
        self._frames += 1
        speech = self.is_speech(frame)
        self.last_voiced = speech
        if not self.started:
            self._pre_roll.append(frame)
            self._speech_run = self._speech_run + 1 if speech else 0
            if self._speech_run >= self._need_speech:
                self.started = True
                self._utterance_frames = len(self._pre_roll)
                audio = b"".join(self._pre_roll)
                self._pre_roll.clear()
                return VadStep("start", audio)
            if self._frames >= self._timeout_frames:
                self.done = True
                return VadStep("timeout")
            return VadStep("wait")
        self._utterance_frames += 1
        self._silence_run = 0 if speech else self._silence_run + 1
        if self._silence_run >= self._need_silence:
            self.done = True
            return VadStep("end", frame, "silence")
        if self._utterance_frames >= self._max_frames:
            self.done = True
            return VadStep("end", frame, "max_length")
        return VadStep("speech", frame)
