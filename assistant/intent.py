"""The learned intent model: which KB entry, refusal or emergency a question is about.

Features are TF-IDF character n-grams within words (2-5 letters, robust to spelling: "prpnjg"
still shares "pn", "nj", "jg"... with "perpanjang") plus word unigrams and bigrams. The model
is a linear SVM (scikit-learn LinearSVC, one-vs-rest) trained on the KB's example questions,
the examples of safety.yaml, emergency.yaml and intents.yaml, and generated variants of each
(assistant/augment.py).

Training takes several seconds on a small machine, so the model for the shipped KB is trained
at build time and shipped as data (`data/intent-model.npz`, `python -m assistant.intent`
rebuilds it). It carries the SHA-256 of its training set: a brain whose KB or data differ
(a new bundle from the hub) trains its own model at load and can keep it in a cache folder.
Model and KB therefore never disagree.

Scoring needs numpy only: the analyzers below reproduce scikit-learn's `char_wb` and word
n-grams, and the weights are int8 with one scale per label (1/4 of float32; the decisions
on the dev set are the same).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHAR_NGRAMS = (2, 5)
WORD_NGRAMS = (1, 2)
MIN_DF = 2  # features seen in one training question only are noise (and memory)
SVM_C = 0.5  # chosen by cross-validation on the training set (docs/assistant.md)
FORMAT = 2  # 2: binary heads after the labels' columns
# Binary heads: one yes/no SVM per kind of label, trained on ALL its labels' questions
# against everything else (class weights balanced: the few cries for help weigh as much as
# the many KB questions). A head pools every category's examples, so it can say "this is a
# cry for help" for a phrasing no single category has seen; brain.py decides with a
# threshold chosen by cross-validation (bench/assistant_cv.py).
# By default a head's "yes" labels are those with its prefix; the brain passes its own sets
# (training.head_labels: "wary" is only the crime and personal-data refusals).
HEADS = {"alarm": "escalate:", "wary": "refuse:"}
SHIPPED_MODEL = Path(__file__).resolve().parent / "data" / "intent-model.npz"
_SPACES = re.compile(r"\s\s+")


@dataclass(frozen=True)
class Scored:
    """One label with its SVM decision value (about -1 far away, above 0 inside the class)."""

    label: str
    score: float


def char_ngrams(text: str) -> list[str]:
    """scikit-learn's `char_wb` analyzer: n-grams inside space-padded words."""
    out = []
    low, high = CHAR_NGRAMS
    for word in _SPACES.sub(" ", text.lower()).split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            if n > length:
                break
            out.extend(padded[i:i + n] for i in range(length - n + 1))
    return out


def word_ngrams(text: str) -> list[str]:
    """scikit-learn's word analyzer with the token pattern `\\S+`."""
    tokens = text.lower().split()
    low, high = WORD_NGRAMS
    out = list(tokens) if low == 1 else []
    for n in range(max(2, low), high + 1):
        out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out


ANALYZERS: tuple[Callable[[str], list[str]], ...] = (char_ngrams, word_ngrams)


def fingerprint(samples: Iterable[tuple[str, str]], *extra: bytes) -> str:
    """SHA-256 of training pairs, the model's settings and `extra` inputs (data files that
    shape the training set, e.g. the normaliser's)."""
    digest = hashlib.sha256(repr((FORMAT, CHAR_NGRAMS, WORD_NGRAMS, MIN_DF, SVM_C)).encode())
    for part in extra:
        digest.update(hashlib.sha256(part).digest())
    for text, label in samples:
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


class IntentModel:
    """Scores every label for a normalised question; build with `train` or `load`."""

    def __init__(self, labels: Sequence[str], vocabularies: Sequence[Sequence[str]],
                 idfs: Sequence[np.ndarray], weights: np.ndarray, scales: np.ndarray,
                 intercept: np.ndarray, trained_on: str, heads: Sequence[str] = ()) -> None:
        self.labels = [str(x) for x in labels]
        self.heads = [str(x) for x in heads]  # their columns follow the labels' ones
        self.trained_on = trained_on
        self._last: tuple[str, np.ndarray] | None = None  # one scoring per question
        self._index: list[dict[str, int]] = []  # feature -> row of `_weights`
        self._idf: list[np.ndarray] = []
        self._offsets: list[int] = []
        offset = 0
        for vocabulary, idf in zip(vocabularies, idfs, strict=True):
            self._index.append({str(f): offset + i for i, f in enumerate(vocabulary)})
            self._idf.append(np.asarray(idf, dtype=np.float32))
            self._offsets.append(offset)
            offset += len(vocabulary)
        self._weights = np.ascontiguousarray(weights, dtype=np.int8)  # features x labels
        self._scales = np.asarray(scales, dtype=np.float32)
        self._intercept = np.asarray(intercept, dtype=np.float32)

    # -- building --------------------------------------------------------------------------

    @classmethod
    def train(cls, samples: Sequence[tuple[str, str]], c: float = SVM_C,
              trained_on: str | None = None,
              heads: Mapping[str, Collection[str]] | None = None) -> IntentModel:
        """Fit on (normalised text, label) pairs (needs scikit-learn). `trained_on`: the
        fingerprint to record (default: of `samples`).

        Raises ValueError with fewer than two labels.
        """
        # lazy: scikit-learn (and SciPy) load only to train; the shipped model runs on numpy
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        texts = [t for t, _ in samples]
        labels = [label for _, label in samples]
        if len(set(labels)) < 2:
            raise ValueError("the intent model needs at least two labels")
        min_df = MIN_DF if len(texts) > 200 else 1
        vectorizers = [TfidfVectorizer(analyzer=a, sublinear_tf=True, min_df=min_df,
                                       dtype=np.float32) for a in ANALYZERS]
        matrix = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
        svm = LinearSVC(C=c, tol=1e-2, random_state=0).fit(matrix, labels)  # reproducible
        columns, intercepts = [svm.coef_.T], [svm.intercept_]
        if heads is None:
            heads = {name: {x for x in labels if x.startswith(prefix)}
                     for name, prefix in HEADS.items()}
        names = []
        for name, members in heads.items():
            yes = np.array([label in members for label in labels])
            if yes.any() and not yes.all():
                head = LinearSVC(C=c, tol=1e-2, class_weight="balanced",
                                 random_state=0).fit(matrix, yes)
                columns.append(head.coef_.T)
                intercepts.append(head.intercept_)
                names.append(name)
        coef = np.hstack(columns).astype(np.float32)  # features x (labels + heads)
        scales = np.abs(coef).max(axis=0) / 127.0
        scales[scales == 0] = 1.0
        weights = np.round(coef / scales).astype(np.int8)
        vocabularies = []
        for v in vectorizers:
            ordered = sorted(v.vocabulary_.items(), key=lambda kv: kv[1])
            vocabularies.append([f for f, _ in ordered])
        return cls(svm.classes_, vocabularies, [v.idf_ for v in vectorizers], weights, scales,
                   np.concatenate(intercepts), trained_on or fingerprint(samples), names)

    def save(self, path: Path) -> None:
        """Write the model as one compressed .npz (no pickles)."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT), "trained_on": np.array(self.trained_on),
            "labels": np.array(self.labels), "heads": np.array(self.heads, dtype=str),
            "weights": self._weights, "scales": self._scales,
            "intercept": self._intercept,
        }
        for i, (index, idf) in enumerate(zip(self._index, self._idf, strict=True)):
            arrays[f"vocabulary{i}"] = np.array(sorted(index, key=index.__getitem__), dtype=str)
            arrays[f"idf{i}"] = idf
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        # beside it, then renamed: a power cut or a second process never leaves half a model
        # where the next load looks for it
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            with part.open("wb") as out:
                out.write(buffer.getvalue())
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> IntentModel | None:
        """The model in `path`, or None when it is missing or of another format."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["format"]) != FORMAT:
                    return None
                count = len(ANALYZERS)
                return cls(data["labels"].tolist(),
                           [data[f"vocabulary{i}"].tolist() for i in range(count)],
                           [data[f"idf{i}"] for i in range(count)], data["weights"],
                           data["scales"], data["intercept"], str(data["trained_on"]),
                           data["heads"].tolist())
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return None  # a damaged file (a cut write of an older version): trained again

    # -- scoring ---------------------------------------------------------------------------

    def scores(self, text: str) -> np.ndarray:
        """Decision values of all labels (in `labels` order) for one normalised text."""
        return self._vector(text)[:len(self.labels)]

    def head(self, name: str, text: str) -> float:
        """Decision value of binary head `name` ("alarm": a cry for help, "wary": to refuse)
        for one normalised text; -inf when the model has no such head."""
        if name not in self.heads:
            return float("-inf")
        return float(self._vector(text)[len(self.labels) + self.heads.index(name)])

    def _vector(self, text: str) -> np.ndarray:
        last = self._last
        if last is not None and last[0] == text:
            return last[1]
        vector = self._score(text)
        self._last = (text, vector)
        return vector

    def _score(self, text: str) -> np.ndarray:
        columns: list[int] = []
        values: list[float] = []
        for analyze, index, idf, offset in zip(ANALYZERS, self._index, self._idf, self._offsets,
                                               strict=True):
            counts = Counter(analyze(text))
            part_cols, part_vals = [], []
            for feature, count in counts.items():
                column = index.get(feature)
                if column is not None:
                    part_cols.append(column)
                    part_vals.append(1.0 + math.log(count))
            if not part_cols:
                continue
            vals = np.asarray(part_vals, dtype=np.float32) * idf[np.asarray(part_cols) - offset]
            vals /= float(np.linalg.norm(vals)) or 1.0
            columns.extend(part_cols)
            values.extend(vals.tolist())
        if not columns:
            return self._intercept.copy()
        rows = self._weights[np.asarray(columns)].astype(np.float32)
        return (np.asarray(values, dtype=np.float32) @ rows) * self._scales + self._intercept

    def rank(self, text: str, limit: int = 5, keep: Callable[[str], bool] | None = None,
             scores: np.ndarray | None = None) -> list[Scored]:
        """The best `limit` labels (optionally only those `keep` accepts), best first.
        `scores`: the text's `scores()` when already computed (one scoring per question)."""
        scores = self.scores(text) if scores is None else scores
        out = []
        for i in np.argsort(-scores):
            label = self.labels[i]
            if keep is None or keep(label):
                out.append(Scored(label, float(scores[i])))
                if len(out) >= limit:
                    break
        return out

    def known(self, word: str) -> bool:
        """Whether `word` (one normalised token) is a word feature of the model: a word some
        training question used, not only letters it shares with them."""
        return word in self._index[ANALYZERS.index(word_ngrams)]

    @property
    def nbytes(self) -> int:
        return int(self._weights.nbytes + self._scales.nbytes + self._intercept.nbytes
                   + sum(i.nbytes for i in self._idf))


def obtain(key: str, samples: Callable[[], Sequence[tuple[str, str]]],
           cache_dir: Path | None = None, shipped: Path = SHIPPED_MODEL,
           heads: Mapping[str, Collection[str]] | None = None) -> IntentModel:
    """The model whose inputs have fingerprint `key`: the shipped one, else one from
    `cache_dir`, else one trained now on `samples()` (and kept in `cache_dir` when given).
    The training set is only built when a model must be trained (it costs ~0.5 s)."""
    candidates = [shipped]
    if cache_dir is not None:
        candidates.append(Path(cache_dir) / f"intent-{key[:16]}.npz")
    for path in candidates:
        model = IntentModel.load(path) if path.is_file() else None
        if model is not None and model.trained_on == key:
            return model
    model = IntentModel.train(samples(), trained_on=key, heads=heads)
    if cache_dir is not None:
        try:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            model.save(candidates[-1])
        except OSError:
            pass  # a read-only cache only costs the training time at the next load
    return model


def main(argv: Iterable[str] | None = None) -> int:
    """Rebuild the shipped model from the shipped KB and data files."""
    from assistant.brain import shipped_training_inputs  # lazy: brain imports this module

    key, build, heads = shipped_training_inputs()
    samples = build()
    model = IntentModel.train(samples, trained_on=key, heads=heads)
    model.save(SHIPPED_MODEL)
    print(f"{SHIPPED_MODEL.name}: {len(model.labels)} labels, {len(samples)} questions, "
          f"{SHIPPED_MODEL.stat().st_size / 1024:.0f} KiB, training set {model.trained_on[:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
