"""Cross-validation of the intent model's training set: 5 folds grouped by original question
(a question and its generated variants are always in the same fold, so no spelling of a
held-out question is trained on). Prints accuracy per kind of label and ends with ONE JSON line.

    .venv/bin/python bench/assistant_cv.py            # 5 folds (a few minutes on 2 cores)
    .venv/bin/python bench/assistant_cv.py --c 0.3    # another SVM C, to compare

It also reports the binary heads (intent.HEADS: "alarm" = a cry for help, "wary" = to refuse)
on the held-out questions: recall of their own kind and the share of the other questions above
each threshold, and the threshold it chooses: the lowest whose out-of-fold false-alarm share
stays within --max-false (alarm: of every non-emergency question; wary: of the KB questions,
where a refusal is the costly mistake). brain.py ships those thresholds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _kind(label: str) -> str:
    return label.split(":", 1)[0] + ":" if ":" in label else ("none" if label == "none" else "entry")


def _threshold(name: str, values: list[tuple[str, str, float]], own: set[str],
               against: tuple[str, ...] | None, max_false: float,
               quiet: bool = False) -> dict[str, float]:
    """Print a sweep of head `name` (values: kind, label, head value) and return the lowest
    threshold whose false share (of the `against` kinds, default every label not in `own`)
    is at most `max_false`."""
    mine = [v for _, label, v in values if label in own]
    other = [v for k, label, v in values
             if label not in own and (against is None or k in against)]
    if not quiet:
        print(f"  head {name}: {len(mine)} own questions, {len(other)} others")
    best = None
    for step in range(-60, 101, 5):
        t = step / 100
        recall = sum(v >= t for v in mine) / len(mine)
        false = sum(v >= t for v in other) / len(other)
        if best is None and false <= max_false:
            best = {"threshold": t, "recall": round(recall, 4), "false": round(false, 4)}
        if not quiet:
            print(f"    >= {t:+.2f}: recall {recall:.1%}, false {false:.2%}")
    return best or {"threshold": 1.0, "recall": 0.0, "false": 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--c", type=float, default=None, help="SVM C (default: the shipped one)")
    parser.add_argument("--no-frames", action="store_true",
                        help="train without the framed copies (to compare)")
    parser.add_argument("--max-false", type=float, default=0.005,
                        help="largest out-of-fold false share a head's threshold may give")
    args = parser.parse_args()

    from assistant.data import load_data
    from assistant.intent import SVM_C, IntentModel
    from assistant.kb import load_kb
    from assistant.normalise import Normaliser
    from assistant.training import frames, head_labels, labelled_questions, training_set

    c = SVM_C if args.c is None else args.c
    kb = load_kb()
    normaliser = Normaliser.from_data()
    for entry in kb.entries.values():
        for question in entry.questions:
            normaliser.learn(normaliser.tokens(question))
    safety, emergency = load_data("safety"), load_data("emergency")
    intents = load_data("intents")
    pairs = labelled_questions(kb, safety, emergency, intents)
    framing = frames(intents) if not args.no_frames else {}
    yes = head_labels(safety, emergency)
    stop = normaliser.stopwords
    right: Counter[str] = Counter()  # the exact label (entry or category)
    kind_right: Counter[str] = Counter()  # the right kind: entry, refuse:, escalate:, none
    total: Counter[str] = Counter()
    heads: list[tuple[str, str, float, float]] = []  # (kind, label, alarm, wary)
    tops: list[str] = []  # the kind of the top label, same order
    started = time.perf_counter()
    for fold in range(args.folds):
        train = [p for i, p in enumerate(pairs) if i % args.folds != fold]
        held = [p for i, p in enumerate(pairs) if i % args.folds == fold]
        model = IntentModel.train(training_set(train, normaliser, lambda w: w not in stop,
                                               framing=framing), c=c, heads=yes)
        known = set(model.labels)
        for raw, label in held:
            if label not in known:
                continue  # a label with all its questions in this fold cannot be learned
            kind = _kind(label)
            text = normaliser(raw)
            got = model.rank(text, 1)[0].label
            heads.append((kind, label, model.head("alarm", text), model.head("wary", text)))
            tops.append(_kind(got))
            total[kind] += 1
            right[kind] += got == label
            kind_right[kind] += _kind(got) == kind
        print(f"fold {fold + 1}/{args.folds}: {sum(right.values())}/{sum(total.values())} so far")
    result = {kind: round(right[kind] / total[kind], 4) for kind in sorted(total)}
    overall = sum(right.values()) / sum(total.values())
    kinds = {kind: round(kind_right[kind] / total[kind], 4) for kind in sorted(total)}
    for kind, share in result.items():
        print(f"  {kind:10} exact label {share:.1%}, right kind {kinds[kind]:.1%} of {total[kind]}")
    print(f"  overall    {overall:.1%} of {sum(total.values())} (C={c}, "
          f"{time.perf_counter() - started:.0f} s)")
    chosen = {}
    for name, column, against in (("alarm", 2, None), ("wary", 3, ("entry",))):
        chosen[name] = _threshold(name, [(h[0], h[1], h[column]) for h in heads], yes[name],
                                  against, args.max_false)
    # What a head adds to the one-vs-rest model: the top label of the right kind, or the head
    # at its threshold (the brain uses both).
    for name, column, kind, against in (("alarm", 2, "escalate:", None),
                                         ("wary", 3, "refuse:", ("entry",))):
        t = chosen[name]["threshold"]
        own = [i for i, h in enumerate(heads) if h[1] in yes[name]]
        other = [i for i, h in enumerate(heads)
                 if h[1] not in yes[name] and (against is None or h[0] in against)]
        for label_only in (True, False):
            fired = {i for i in (*own, *other)
                     if tops[i] == kind or (not label_only and heads[i][column] >= t)}
            recall = sum(i in fired for i in own) / len(own)
            false = sum(i in fired for i in other) / len(other)
            what = "top label only" if label_only else f"top label or head >= {t:+.2f}"
            print(f"  {name}: {what}: recall {recall:.1%}, false {false:.2%}")
            chosen[name]["union_recall" if not label_only else "label_recall"] = round(recall, 4)
            chosen[name]["union_false" if not label_only else "label_false"] = round(false, 4)
    chosen["alarm_sure"] = _threshold("alarm (sure)", [(h[0], h[1], h[2]) for h in heads],
                                      yes["alarm"], None, args.max_false / 5, quiet=True)
    print(f"  alarm sure (false <= {args.max_false / 5:.2%}): {chosen['alarm_sure']}")
    print(json.dumps({"bench": "assistant_cv", "folds": args.folds, "c": c,
                      "accuracy": round(overall, 4), "by_kind": result, "kind_right": kinds,
                      "questions": sum(total.values()), "heads": chosen}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
