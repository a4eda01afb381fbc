"""Evaluate the brain on the labelled dev set (tests/assistant/devset/*.yaml).

Shared by the evaluation test and bench/assistant.py. Pure reporting: no assertions here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEVSET_DIR = Path(__file__).resolve().parent / "devset"
FROZEN_DIR = Path(__file__).resolve().parent / "frozen"
STYLES = ("plain", "alay", "asr", "jv", "su", "en", "story", "hard_negative")
ACTIONS = ("answer", "refuse", "escalate", "fallback")


@dataclass(frozen=True)
class Item:
    q: str
    action: str
    entry: str | None
    source: str
    style: str = ""
    accept: tuple[str, ...] = ()  # entries that answer it correctly (the first is `entry`)


@dataclass
class Result:
    item: Item
    action: str
    entry: str | None
    confidence: float


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    def _of(self, expected: str) -> list[Result]:
        return [r for r in self.results if r.item.action == expected]

    def recall(self, action: str) -> float:
        group = self._of(action)
        return sum(r.action == action for r in group) / len(group) if group else 1.0

    @property
    def answerable_refused(self) -> float:
        group = self._of("answer")
        return sum(r.action == "refuse" for r in group) / len(group) if group else 0.0

    @property
    def answer_correct(self) -> float:
        group = self._of("answer")
        return (sum(_correct(r) for r in group) / len(group) if group else 1.0)

    @property
    def answerable_fallback(self) -> float:
        group = self._of("answer")
        return sum(r.action == "fallback" for r in group) / len(group) if group else 0.0

    @property
    def false_escalations(self) -> float:
        group = [r for r in self.results if r.item.action != "escalate"]
        return sum(r.action == "escalate" for r in group) / len(group) if group else 0.0

    def by(self, key: str) -> dict[str, Report]:
        """Sub-reports per `style` or per expected `action`."""
        out: dict[str, Report] = {}
        for r in self.results:
            out.setdefault(getattr(r.item, key), Report()).results.append(r)
        return out

    def table(self) -> str:
        """Markdown rows: per style and per action, correct share and count."""
        lines = ["| group | questions | correct |", "|---|---:|---:|"]
        for key in ("style", "action"):
            for name, sub in sorted(self.by(key).items()):
                ok = sum(_correct(r) if r.item.action == "answer" else r.action == r.item.action
                         for r in sub.results)
                lines.append(f"| {key} {name} | {len(sub.results)} | {ok / len(sub.results):.1%} |")
        return "\n".join(lines)

    def confusion(self) -> dict[str, dict[str, int]]:
        table = {a: dict.fromkeys(ACTIONS, 0) for a in ACTIONS}
        for r in self.results:
            table[r.item.action][r.action] += 1
        return table

    def mistakes(self) -> list[str]:
        lines = []
        for r in self.results:
            wrong_action = r.action != r.item.action
            wrong_entry = r.item.action == "answer" and not _correct(r)
            if wrong_action or wrong_entry:
                want = r.item.action + (f":{r.item.entry}" if r.item.entry else "")
                got = r.action + (f":{r.entry}" if r.entry else "")
                lines.append(f"[{r.item.source}] {r.item.q!r}: expected {want}, got {got} "
                             f"({r.confidence:.2f})")
        return lines

    def summary(self) -> str:
        lines = [f"{len(self.results)} questions",
                 f"escalation recall {self.recall('escalate'):.1%}",
                 f"refusal recall {self.recall('refuse'):.1%}",
                 f"fallback recall {self.recall('fallback'):.1%}",
                 f"answerable refused {self.answerable_refused:.1%}",
                 f"answerable with the correct entry {self.answer_correct:.1%}",
                 f"fallback on answerable {self.answerable_fallback:.1%}",
                 f"false escalations {self.false_escalations:.1%}",
                 "confusion (rows expected, columns got): " + ", ".join(ACTIONS)]
        for action, row in self.confusion().items():
            lines.append(f"  {action:9} " + " ".join(f"{row[a]:5}" for a in ACTIONS))
        return "\n".join(lines)


def _correct(r: Result) -> bool:
    return r.action == "answer" and r.entry in (r.item.accept or (r.item.entry,))


def load_devset(folder: Path = DEVSET_DIR) -> list[Item]:
    items = []
    for path in sorted(folder.glob("*.yaml")):
        for i, raw in enumerate(yaml.safe_load(path.read_text(encoding="utf-8")) or []):
            where = f"{path.name}[{i}]"
            if not isinstance(raw, dict) or not isinstance(raw.get("q"), str):
                raise ValueError(f"{where}: each item needs a string 'q'")
            action = raw.get("action")
            if action not in ACTIONS:
                raise ValueError(f"{where}: action must be one of {ACTIONS}, got {action!r}")
            entry = raw.get("entry")
            if action == "answer" and not entry:
                raise ValueError(f"{where}: an 'answer' item needs an 'entry'")
            accept = tuple(entry) if isinstance(entry, list) else ((entry,) if entry else ())
            style = str(raw.get("style", ""))
            if folder != DEVSET_DIR and style not in STYLES:
                raise ValueError(f"{where}: style must be one of {STYLES}, got {style!r}")
            items.append(Item(raw["q"], action, accept[0] if accept else None, path.name,
                              style, accept))
    return items


def evaluate(brain, items: Iterable[Item]) -> Report:
    report = Report()
    for item in items:
        reply = brain.ask(item.q)
        report.results.append(Result(item, reply.action, reply.entry, reply.confidence))
    return report
