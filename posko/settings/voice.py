"""Settings of the voice pipeline: audio devices, VAD, Vosk, Piper, the speech cache."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class VoiceSettings:
    """Microphone, speaker, utterance detection and speech models."""

    input_device: str = setting("default", "Capture device (voice and push-to-talk), chosen by (part of) its name; empty: no microphone (typed chat only).")
    output_device: str = setting("default", "Playback device (voice and push-to-talk), chosen by (part of) its name; empty: no speaker (answers only on screen).")
    sample_rate_hz: int = setting(16000, "Capture rate fed to VAD and ASR; the device is resampled to it when it offers only 44.1/48 kHz.", unit="Hz", choices=(8000, 16000, 32000, 48000))
    vad_aggressiveness: int = setting(2, "webrtcvad aggressiveness: 0 keeps most sound as speech, 3 filters noise hardest.", min=0, max=3)
    silence_ms: int = setting(600, "Silence after speech that ends an utterance.", unit="ms", min=150, max=5000)
    pre_roll_ms: int = setting(300, "Audio kept from before speech starts, so first syllables are not clipped.", unit="ms", min=0, max=2000)
    min_speech_ms: int = setting(120, "Speech shorter than this (a click, a cough) does not start an utterance.", unit="ms", min=30, max=2000)
    max_utterance_s: float = setting(10.0, "An utterance is cut after this long.", unit="s", min=1.0, max=60.0)
    no_speech_timeout_s: float = setting(6.0, "Listening stops when nobody speaks for this long.", unit="s", min=1.0, max=60.0)
    asr_engine: str = setting("vosk", "Speech recogniser: 'vosk' (streaming, grammar bias; needs a Vosk model, none is public for Indonesian) or 'whisper' (faster-whisper, decodes each utterance when the speaker falls silent).", choices=("vosk", "whisper"))
    asr_model: str = setting("vosk-model-small-id", "Vosk model: a name from models/manifest.toml (installed under <state_dir>/models/) or a folder path.")
    whisper_model: str = setting("whisper-base", "Whisper model (CTranslate2 format) when asr_engine = 'whisper': a name from models/manifest.toml (whisper-tiny, whisper-base, whisper-small) or a folder path.")
    whisper_language: str = setting("id", "Language Whisper is told the resident speaks (ISO 639-1).")
    whisper_threads: int = setting(0, "CTranslate2 threads for Whisper; 0: one per core, at most 4.", min=0, max=16)
    early_decode_ms: int = setting(150, "A non-streaming recogniser (Whisper) starts decoding after this much silence, while the utterance end still waits for silence_ms; 0: decode only at the end.", unit="ms", min=0, max=5000)
    early_end_ms: int = setting(300, "Early endpointing: an utterance whose words so far already get a confident answer (and do not end on a word like 'bikin', 'untuk', 'di', nor lack the document the answer is about) ends after this much silence instead of silence_ms; 0: always wait silence_ms.", unit="ms", min=0, max=5000)
    early_end_emergency_ms: int = setting(200, "Early endpointing: an utterance the assistant would escalate (an emergency) ends after this much silence; 0: as early_end_ms.", unit="ms", min=0, max=5000)
    grammar_bias: bool = setting(True, "Bias Vosk toward the knowledge base's words when the model supports runtime grammars (graph/HCLr.fst); '[unk]' is always kept.")
    tts_voice: str = setting("id_ID-news_tts-medium", "Piper voice: a name from models/manifest.toml or a path to its .onnx file.")
    tts_voice_en: str = setting("en_US-joe-medium", "Piper voice for English answers (the kiosk's English mode): a manifest name or a path to its .onnx; when not installed, English answers are spoken by the Indonesian voice (the espeak-ng fallback switches to -v en).")
    tts_fallback: str = setting("espeak-ng", "Voice used when the Piper voice is not installed; 'none' leaves the kiosk silent.", choices=("espeak-ng", "none"))
    espeak_voice: str = setting("id", "espeak-ng voice of the fallback (and of Piper's phonemiser check).")
    tts_threads: int = setting(0, "onnxruntime threads for Piper; 0 lets onnxruntime choose (all cores).", min=0, max=16)
    cache_dir: str = setting("", "Speech cache folder; empty: <state_dir>/tts-cache.")
    warm_on_start: bool = setting(True, "Fill the speech cache with every knowledge-base answer in the background after start (paused while a resident is served).")
    chime: bool = setting(True, "Play a short chime when listening starts.")
    device_check_s: float = setting(2.0, "How often a missing sound device is looked for again.", unit="s", min=0.2, max=60.0)
