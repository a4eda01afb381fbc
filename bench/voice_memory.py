"""Peak memory of the voice process: Whisper base + the Piper medium voice en_US-joe-medium +
the brain, loaded, then questions decoded and answers spoken as the kiosk does. Prints the
resident memory after each step and the peak (VmHWM), then ONE JSON line.

    .venv/bin/python bench/voice_memory.py                      # as the unit runs it
    .venv/bin/python bench/voice_memory.py --arena-max 0        # glibc's default arenas
    .venv/bin/python bench/voice_memory.py --whisper-threads 4 --tts-threads 0

The measurement runs in a child process whose environment carries MALLOC_ARENA_MAX (glibc
reads it at start), so the figures are those of a fresh process.
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

QUESTIONS = ["berapa biaya bikin skck", "apa yang harus dilakukan ketika terjadi kebakaran di rumah",
             "bagaimana cara memperpanjang sim yang sudah mati", "saya kehilangan dompet di pasar"]


def child(args) -> dict:
    from assistant import load_brain
    from firmware.procinfo import peak_rss_mb, rss_mb
    from firmware.voice.speech import espeak_pcm
    from firmware.voice.tts import PiperSynth
    from firmware.voice.whisper_asr import WhisperRecognizer

    sys.path.insert(0, str(ROOT / "bench"))
    from voice import joe_voice_path, whisper_base_dir

    from firmware.voice import memory

    if args.no_trim:
        memory.release = lambda: False
    if args.ort_arena:
        import firmware.voice.tts as tts

        tts.ORT_CPU_ARENA = True
    steps: list[tuple[str, float, float]] = []

    def mark(label: str) -> None:
        steps.append((label, round(rss_mb()), round(peak_rss_mb())))

    mark("start")
    audio = [espeak_pcm(q, "id") for q in QUESTIONS]
    brain = load_brain()
    mark("brain")
    with tempfile.TemporaryDirectory() as tmp:
        recognizer = WhisperRecognizer(whisper_base_dir(Path(tmp)), threads=args.whisper_threads,
                                       compute_type=args.compute_type).load()
        mark("whisper loaded")
        synth = PiperSynth(joe_voice_path(), args.tts_threads).load()
        mark("piper loaded")
        answers = [e.speech.get("en", "") for e in list(brain.kb.entries.values())[:12]]
        for round_ in range(args.rounds):
            for pcm in audio:
                text = recognizer.transcribe(pcm).text
                brain.ask(text)
            mark(f"round {round_ + 1}: decoded")
            for answer in answers:
                if answer:
                    for _ in synth.synthesize(answer, "en"):
                        pass
            mark(f"round {round_ + 1}: spoken")
    return {"steps": steps, "rss_mb": steps[-1][1], "peak_rss_mb": round(peak_rss_mb()),
            "rss_loaded_mb": steps[3][1], "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX", ""),
            "compute_type": args.compute_type, "whisper_threads": recognizer.threads or "auto",
            "tts_threads": args.tts_threads, "trim": not args.no_trim, "ort_arena": args.ort_arena}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arena-max", type=int, default=2,
                        help="MALLOC_ARENA_MAX for the child (0: unset, glibc's default)")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--whisper-threads", type=int, default=0)
    parser.add_argument("--tts-threads", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-trim", action="store_true",
                        help="do not give freed memory back after each decode / sentence")
    parser.add_argument("--ort-arena", action="store_true",
                        help="keep onnxruntime's CPU memory arena (its default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if args.arena_max:
        env["MALLOC_ARENA_MAX"] = str(args.arena_max)
    started = time.monotonic()
    cmd = [sys.executable, __file__, "--child", "--compute-type", args.compute_type,
           "--whisper-threads", str(args.whisper_threads), "--tts-threads", str(args.tts_threads),
           "--rounds", str(args.rounds)] + (["--no-trim"] if args.no_trim else []) + (
               ["--ort-arena"] if args.ort_arena else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for label, rss, peak in result["steps"]:
        print(f"{label:<22} rss {rss:>5} MB   peak so far {peak:>5} MB")
    result["load_average"] = round(os.getloadavg()[0], 1)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
