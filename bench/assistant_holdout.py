"""Held-out evaluation: the old frozen splits (tests/assistant/devset/frozen1_* to 9_*)
against a brain whose intent model was trained WITHOUT them (any labelled question that
normalises to the same text as a held-out one is dropped before training).

They are no longer blind (each was measured, then its mistakes were read to fix data),
so these figures are evidence, not the frozen-split figures; they are what a design change is
judged by next to bench/assistant_cv.py, never the dev set the rules are tuned on.
Ends with ONE JSON line.

Split 9 comes in two halves by position in each of its files (the model is trained without
both): frozen9a (even positions 0, 2, 4 ...), whose mistakes may be read to fix kinds of
failure, and frozen9b (odd positions), whose totals only are ever shown (`--mistakes` is
refused for it): the ninth round's check of whether its levers carry over to unread text.

    .venv/bin/python bench/assistant_holdout.py                 # frozen1 + 2 + ... + 8 + 9a + 9b
    .venv/bin/python bench/assistant_holdout.py --split frozen9a --mistakes
    .venv/bin/python bench/assistant_holdout.py --split frozen9b    # totals only
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
          "frozen8", "frozen9a", "frozen9b")
HALVED = {"frozen9": ("frozen9a", "frozen9b")}  # split: (even positions, odd positions)
TOTALS_ONLY = ("frozen9b",)  # never list these mistakes


def split_of(item, position: int) -> str:
    """The held-out split an item of the dev set belongs to ('' if none): the prefix of its
    file, or for a halved split the half its position in the file falls in."""
    prefix = item.source.split("_", 1)[0]
    if prefix in HALVED:
        return HALVED[prefix][position % 2]
    return prefix if prefix in SPLITS else ""


def held_out_items(splits: tuple[str, ...] = SPLITS) -> list:
    from tests.assistant.evaluation import load_devset

    items, position = [], {}
    for item in load_devset():
        n = position.get(item.source, 0)
        position[item.source] = n + 1
        if split_of(item, n) in splits:
            items.append(item)
    return items


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
    if args.mistakes and set(splits) & set(TOTALS_ONLY):
        parser.error(f"--mistakes is refused for {', '.join(TOTALS_ONLY)}: totals only "
                     "(the round's unread check); list the mistakes of other splits")
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
