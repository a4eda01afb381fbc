"""Rank knowledge-base entries against a normalised question.

Each example question (and each title) of an entry is a document. A document is three sparse
TF-IDF vectors: word stems, stem bigrams, and character 4- and 5-grams of the words (which carry
typos and word-form variants that the stemmer misses). The similarity of a question to a
document is a weighted sum of the three cosines; an entry scores by its best documents.
Unknown query words are first corrected to the closest KB word (rapidfuzz), so "perpanjng"
meets "perpanjang". The index is built once at load; a search touches only the postings of
the query's own features, which keeps it at a few milliseconds for ~1000 questions.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from assistant.kb import Entry, KnowledgeBase
from assistant.normalise import Normaliser

# Weights of the three similarities; they sum to 1, so the score stays within 0..1.
WEIGHTS = {"w": 0.5, "b": 0.15, "c": 0.35}
CHAR_NGRAMS = (4, 5)  # trigrams cost 2-3x the time (long postings) for no gain on the dev set
FUZZY_MIN_LEN = 5  # "hari" must not become "hai": short words are left to char n-grams
FUZZY_CUTOFF = 80.0
FUZZY_CUTOFF_SHORT = 90.0  # words of 5-6 letters: one missing or extra letter only
CACHE_LIMIT = 20_000  # words remembered by the stemmer and the typo fixer (a unit runs for months)
COVERAGE_FLOOR = 0.5


@dataclass(frozen=True)
class Hit:
    """One ranked entry."""

    entry: Entry
    score: float
    matched: str  # the example question that matched best


@dataclass
class Stemmer:
    """Light Indonesian affix stripping (data in normalise.yaml, `stem`)."""

    particles: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    min_stem: int = 4
    keep: frozenset[str] = frozenset()
    _cache: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> Stemmer:
        data = data or {}
        by_length = lambda items: tuple(sorted((str(i) for i in items), key=len, reverse=True))  # noqa: E731
        return cls(by_length(data.get("particles", [])), by_length(data.get("suffixes", [])),
                   by_length(data.get("prefixes", [])), int(data.get("min_stem", 4)),
                   frozenset(str(k) for k in data.get("keep", [])))

    def __call__(self, word: str) -> str:
        cached = self._cache.get(word)
        if cached is None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            cached = self._cache[word] = self._stem(word)
        return cached

    def _stem(self, word: str) -> str:
        if word in self.keep or word.isdigit() or len(word) <= self.min_stem:
            return word
        for particle in self.particles:
            if word.endswith(particle) and len(word) - len(particle) >= self.min_stem:
                word = word[: -len(particle)]
                break
        for suffix in self.suffixes:
            # Suffixes need one letter more of stem: "dengan" must not become "deng".
            if word.endswith(suffix) and len(word) - len(suffix) >= self.min_stem + 1:
                word = word[: -len(suffix)]
                break
        for prefix in self.prefixes:
            if word.startswith(prefix) and len(word) - len(prefix) >= self.min_stem:
                word = word[len(prefix):]
                break
        return word


class Retriever:
    """The search index over one knowledge base."""

    def __init__(self, kb: KnowledgeBase, normaliser: Normaliser, stemmer: Stemmer) -> None:
        self.kb = kb
        self.normaliser = normaliser
        self.stemmer = stemmer
        self.doc_entry: list[str] = []
        self.doc_text: list[str] = []
        self.entry_stems: dict[str, set[str]] = {}
        docs: list[dict[str, Counter[str]]] = []
        vocabulary: set[str] = set()
        for entry in kb.entries.values():
            texts = [*entry.questions, entry.title["id"], entry.title.get("en", "")]
            for text in texts:
                tokens = normaliser.content_tokens(normaliser.tokens(text))
                if not tokens:
                    continue
                vocabulary.update(tokens)
                features = self._features(tokens)
                docs.append(features)
                self.entry_stems.setdefault(entry.id, set()).update(features["w"])
                self.doc_entry.append(entry.id)
                self.doc_text.append(text)
        self.vocabulary = sorted(t for t in vocabulary if not t.isdigit())
        self._known = set(vocabulary) | normaliser.vocabulary | normaliser.stopwords
        self.idf: dict[str, dict[str, float]] = {}
        self.unknown_idf: dict[str, float] = {}
        self.postings: dict[str, dict[str, list[tuple[int, float]]]] = {}
        n_docs = len(docs)
        for kind in WEIGHTS:
            df: Counter[str] = Counter()
            for doc in docs:
                df.update(doc[kind].keys())
            idf = {f: math.log((n_docs + 1) / (d + 1)) + 1.0 for f, d in df.items()}
            postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
            for index, doc in enumerate(docs):
                vector = _weighted(doc[kind], idf)
                for feature, weight in vector.items():
                    postings[feature].append((index, weight))
            self.idf[kind] = idf
            self.unknown_idf[kind] = math.log(n_docs + 1) + 1.0
            self.postings[kind] = dict(postings)
        self._fix_cache: dict[str, str] = {}

    # -- features ------------------------------------------------------------------------

    def _features(self, tokens: list[str]) -> dict[str, Counter[str]]:
        stems = [self.stemmer(t) for t in tokens]
        chars: Counter[str] = Counter()
        for token in tokens:
            padded = f"#{token}#"
            for n in CHAR_NGRAMS:
                for i in range(max(1, len(padded) - n + 1)):
                    chars[padded[i:i + n]] += 1
        return {
            "w": Counter(stems),
            "b": Counter(f"{a}_{b}" for a, b in zip(stems, stems[1:], strict=False)),
            "c": chars,
        }

    def correct(self, tokens: Iterable[str]) -> list[str]:
        """Replace unknown words by the closest knowledge-base word, if one is close enough."""
        out = []
        for token in tokens:
            if token in self._known or len(token) < FUZZY_MIN_LEN or token.isdigit():
                out.append(token)
                continue
            fixed = self._fix_cache.get(token)
            if fixed is None:
                # Short words need a closer match: "dibuka" must not become "dibuat".
                cutoff = FUZZY_CUTOFF if len(token) > 6 else FUZZY_CUTOFF_SHORT
                match = process.extractOne(token, self.vocabulary, scorer=fuzz.ratio,
                                           score_cutoff=cutoff)
                fixed = match[0] if match else token
                if len(self._fix_cache) >= CACHE_LIMIT:
                    self._fix_cache.clear()
                self._fix_cache[token] = fixed
            out.append(fixed)
        return out

    # -- search --------------------------------------------------------------------------

    def search(self, normalised: str, limit: int = 5) -> list[Hit]:
        """Entries ranked by score (0..1), best first; empty when nothing overlaps."""
        tokens = self.correct(self.normaliser.content_tokens(normalised.split()))
        if not tokens:
            return []
        features = self._features(tokens)
        sims: dict[int, float] = defaultdict(float)
        for kind, weight in WEIGHTS.items():
            query = _weighted(features[kind], self.idf[kind], self.unknown_idf[kind])
            postings = self.postings[kind]
            for feature, q_weight in query.items():
                for doc, d_weight in postings.get(feature, ()):
                    sims[doc] += weight * q_weight * d_weight
        best_docs: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for doc, sim in sims.items():
            best_docs[self.doc_entry[doc]].append((sim, doc))
        idf_w = self.idf["w"]
        query_stems = {s: idf_w.get(s, self.unknown_idf["w"]) for s in features["w"]}
        query_mass = sum(query_stems.values()) or 1.0
        hits = []
        for entry_id, scored in best_docs.items():
            scored.sort(reverse=True)
            top = scored[0][0]
            second = scored[1][0] if len(scored) > 1 else 0.0
            # The best phrasing decides; a second good phrasing adds a little confidence.
            score = min(1.0, 0.85 * top + 0.15 * second)
            # Words of the question that this entry never uses (IDF-weighted) lower the
            # score: "bank bri buka jam berapa" shares "buka jam berapa" with the 110 entry
            # but "bank bri" is about something else.
            stems = self.entry_stems[entry_id]
            coverage = sum(w for s, w in query_stems.items() if s in stems) / query_mass
            score *= COVERAGE_FLOOR + (1.0 - COVERAGE_FLOOR) * coverage
            hits.append(Hit(self.kb.entries[entry_id], score, self.doc_text[scored[0][1]]))
        hits.sort(key=lambda h: (-h.score, h.entry.id))
        return hits[:limit]


def _weighted(counts: Counter[str], idf: dict[str, float],
              unknown_idf: float | None = None) -> dict[str, float]:
    """Sublinear TF x IDF, L2-normalised. Query features unknown to the index still count
    in the norm (with `unknown_idf`), so a question full of unknown words scores low."""
    vector = {}
    for feature, count in counts.items():
        weight = idf.get(feature)
        if weight is None:
            if unknown_idf is None:
                continue
            weight = unknown_idf
        vector[feature] = (1.0 + math.log(count)) * weight
    norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
    return {f: v / norm for f, v in vector.items()}
