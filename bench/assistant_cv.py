"""Cross-validation of the intent model's training set: 5 folds grouped by original question
(a question and its generated variants are always in the same fold, so no spelling of a
held-out question is trained on). Prints accuracy per kind of label and ends with ONE JSON line.

    .venv/bin/python bench/assistant_cv.py            # 5 folds (a few minutes on 2 cores)
    .venv/bin/python bench/assistant_cv.py --c 0.3    # another SVM C, to compare
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--c", type=float, default=None, help="SVM C (default: the shipped one)")
    args = parser.parse_args()

    from assistant.data import load_data
    from assistant.intent import SVM_C, IntentModel
    from assistant.kb import load_kb
    from assistant.normalise import Normaliser
    from assistant.training import labelled_questions, training_set

    c = SVM_C if args.c is None else args.c
    kb = load_kb()
    normaliser = Normaliser.from_data()
    for entry in kb.entries.values():
        for question in entry.questions:
            normaliser.learn(normaliser.tokens(question))
    pairs = labelled_questions(kb, load_data("safety"), load_data("emergency"), load_data("intents"))
    stop = normaliser.stopwords
    right: Counter[str] = Counter()  # the exact label (entry or category)
    kind_right: Counter[str] = Counter()  # the right kind: entry, refuse:, escalate:, none
    total: Counter[str] = Counter()
    started = time.perf_counter()
    for fold in range(args.folds):
        train = [p for i, p in enumerate(pairs) if i % args.folds != fold]
        held = [p for i, p in enumerate(pairs) if i % args.folds == fold]
        model = IntentModel.train(training_set(train, normaliser, lambda w: w not in stop), c=c)
        known = set(model.labels)
        for raw, label in held:
            if label not in known:
                continue  # a label with all its questions in this fold cannot be learned
            kind = _kind(label)
            got = model.rank(normaliser(raw), 1)[0].label
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
    print(json.dumps({"bench": "assistant_cv", "folds": args.folds, "c": c,
                      "accuracy": round(overall, 4), "by_kind": result, "kind_right": kinds,
                      "questions": sum(total.values())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
