"""The topic check: the document a question names must be one the answering entry is about.

"STNK saya ikut terbakar" names STNK, so the fire-safety entry (which never names it) may not
answer; the STNK entry does. The documents are data (intents.yaml `documents`); an entry is
about the documents its own example questions and titles name. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from assistant.kb import KnowledgeBase


class TopicCheck:
    """Documents named by each entry, and by a question."""

    def __init__(self, documents: Iterable[str], kb: KnowledgeBase,
                 normalise: Callable[[str], str]) -> None:
        self.documents = frozenset(normalise(str(d)) for d in documents)
        self._entry_docs: dict[str, frozenset[str]] = {}
        for entry in kb.entries.values():
            named: set[str] = set()
            for text in (*entry.questions, *entry.title.values()):
                named |= self.named(normalise(text))
            self._entry_docs[entry.id] = frozenset(named)

    def named(self, normalised: str) -> frozenset[str]:
        """The documents a normalised question names."""
        return frozenset(t for t in normalised.split() if t in self.documents)

    def entry_docs(self, entry_id: str) -> frozenset[str]:
        return self._entry_docs.get(entry_id, frozenset())
