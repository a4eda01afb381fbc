"""The voice pipeline of Tanya Pak Polisi: VAD, Vosk ASR, Piper TTS, the speech cache.

`vad`, `textnorm` and the pipeline's stage logic take values and return values; `asr` and
`tts` wrap the model libraries; audio devices are reached only through `firmware.audio`.
"""
