"""Held-out evaluation: the old frozen splits (tests/assistant/devset/frozen1_* to 8_*)
against a brain whose intent model was trained WITHOUT them (any labelled question that
normalises to the same text as a held-out one is dropped before training).

They are no longer blind (each was measured, then its mistakes were read to fix data),
so these figures are evidence, not the frozen-split figures; they are what a design change is
judged by next to bench/assistant_cv.py, never the dev set the rules are tuned on.
Ends with ONE JSON line.

    .venv/bin/python bench/assistant_holdout.py                 # frozen1 + 2 + 3 + 4 + 5 + 6 + 7 + 8
    .venv/bin/python bench/assistant_holdout.py --split frozen8 --mistakes
    .venv/bin/python bench/assistant_holdout.py --split frozen1 frozen2 frozen3 frozen4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SPLITS = ("frozen1", "frozen2", "frozen3", "frozen4", "frozen5", "frozen6", "frozen7",
          "frozen8")


def held_out_items(splits: tuple[str, ...] = SPLITS) -> list:
    from tests.assistant.evaluation import load_devset

    return [i for i in load_devset() if i.source.split("_", 1)[0] in splits]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", nargs="+", choices=(*SPLITS, "all"), default=["all"],
                        help="one or more held-out splits to report (default: all)")
    parser.add_argument("--mistakes", action="store_true", help="list every mistake")
    parser.add_argument("--cache", default="", help="folder for the held-out model (default: a temporary one)")
    args = parser.parse_args()

    from assistant import load_brain
    from tests.assistant.evaluation import evaluate

    splits = SPLITS if "all" in args.split else tuple(args.split)
    items = held_out_items(splits)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        brain = load_brain(holdout=[i.q for i in held_out_items()], cache_dir=args.cache or tmp)
    report = evaluate(brain, items)
    print(f"held out: {', '.join(splits)} (model trained without {', '.join(SPLITS)}, "
          f"{time.perf_counter() - started:.0f} s)")
    print(report.summary())
    print(report.table())
    if args.mistakes:
        print("mistakes:\n" + "\n".join(report.mistakes()))
    print(json.dumps({
        "bench": "assistant_holdout", "splits": list(splits), "questions": len(items),
        "escalation_recall": round(report.recall("escalate"), 4),
        "false_escalations": round(report.false_escalations, 4),
        "refusal_recall": round(report.recall("refuse"), 4),
        "answer_correct": round(report.answer_correct, 4),
        "answerable_refused": round(report.answerable_refused, 4),
        "answerable_fallback": round(report.answerable_fallback, 4),
        "fallback_recall": round(report.recall("fallback"), 4),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
