"""Load and validate the knowledge base: one YAML entry per file under `kb/<topic>/<id>.yaml`.

The knowledge base is data, not code. Every entry is checked on load; a malformed KB is
refused as a whole (`KbError` lists every problem with its file and field), so a kiosk keeps
its last good bundle instead of answering from half a KB.

Run `python -m assistant.kb [DIR]` to validate a folder and print a summary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import KbError

# libyaml's parser is ~10x faster than the pure-Python one; both are safe loaders.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SHIPPED_KB = Path(__file__).resolve().parent / "kb"
TOPICS = ("sim", "skck", "kehilangan", "lapor", "lalu-lintas", "pidana", "darurat", "nataru",
          "posko", "sapaan")
LANGS = ("id", "en")
MIN_QUESTIONS = 8
MAX_SPEECH_WORDS = 25
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\Z")
REQUIRED = ("id", "topic", "title", "questions", "answer", "speech", "sources", "checked")
OPTIONAL = ("featured", "related")
# Numbers the brief forbids quoting as emergency numbers (their owners are unconfirmed).
FORBIDDEN_NUMBER = re.compile(r"(?<![\w.,])(117|129)(?![\w]|[.,]\d)")
MARKDOWN_IN_SPEECH = re.compile(r"\*\*|^\s*[-*]\s|^\s*\d+\.\s|#", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """One knowledge-base entry, as written in its YAML file."""

    id: str
    topic: str
    title: dict[str, str]
    questions: tuple[str, ...]
    answer: dict[str, str]
    speech: dict[str, str]
    sources: tuple[str, ...]
    checked: dt.date
    featured: bool = False
    related: tuple[str, ...] = ()
    path: str = field(default="", compare=False)

    def text(self, part: str, lang: str) -> str:
        """`title`, `answer` or `speech` in `lang`, falling back to Indonesian."""
        values: dict[str, str] = getattr(self, part)
        return values.get(lang) or values["id"]


@dataclass(frozen=True)
class KnowledgeBase:
    """All entries of one KB folder, with a content hash that changes with any entry."""

    entries: dict[str, Entry]
    version: str
    root: str

    def get(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def __len__(self) -> int:
        return len(self.entries)

    def by_topic(self) -> dict[str, list[Entry]]:
        grouped: dict[str, list[Entry]] = {}
        for entry in self.entries.values():
            grouped.setdefault(entry.topic, []).append(entry)
        return grouped


def load_kb(kb_dir: str | Path | None = None) -> KnowledgeBase:
    """Load every `*.yaml` under `kb_dir` (default: the shipped KB) and validate it.

    Raises KbError listing every problem (file and field) when anything is wrong,
    including an empty or missing folder.
    """
    root = Path(kb_dir) if kb_dir else SHIPPED_KB
    if not root.is_dir():
        raise KbError([f"{root}: knowledge-base folder does not exist"])
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise KbError([f"{root}: no *.yaml entries found"])
    problems: list[str] = []
    entries: dict[str, Entry] = {}
    broken_ids: set[str] = set()  # ids of invalid entries: not reported again as unknown
    digest = hashlib.sha256()
    for path in files:
        rel = path.relative_to(root).as_posix()
        raw_bytes = path.read_bytes()
        digest.update(rel.encode() + b"\0" + raw_bytes + b"\0")
        entry = _parse_file(path, rel, raw_bytes, problems)
        if entry is None:
            broken_ids.add(path.stem)
            continue
        if entry.id in entries:
            problems.append(f"{rel}: id: duplicate id {entry.id!r} (also in {entries[entry.id].path})")
            continue
        entries[entry.id] = entry
    for entry in entries.values():
        for other in entry.related:
            if other not in entries and other not in broken_ids:
                problems.append(f"{entry.path}: related: unknown entry id {other!r}")
    if problems:
        raise KbError(problems)
    return KnowledgeBase(entries=entries, version=digest.hexdigest(), root=str(root))


def _parse_file(path: Path, rel: str, raw_bytes: bytes, problems: list[str]) -> Entry | None:
    try:
        data = yaml.load(raw_bytes.decode("utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{rel}: not valid UTF-8 YAML: {str(exc).splitlines()[0]}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{rel}: an entry must be a mapping of fields, got {type(data).__name__}")
        return None
    before = len(problems)
    errors = _Problems(rel, problems)
    for key in REQUIRED:
        if key not in data or data[key] in (None, "", [], {}):
            errors.add(key, "is required")
    for key in data:
        if key not in REQUIRED and key not in OPTIONAL:
            errors.add(str(key), "unknown field (allowed: " + ", ".join(REQUIRED + OPTIONAL) + ")")
    entry_id = data.get("id")
    if entry_id is not None:
        if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
            errors.add("id", f"{entry_id!r} must be lowercase a-z, 0-9 and '-'")
        elif path.stem != entry_id:
            errors.add("id", f"{entry_id!r} does not match the file name {path.name!r}")
    topic = data.get("topic")
    if topic is not None:
        if topic not in TOPICS:
            errors.add("topic", f"unknown topic {topic!r} (allowed: {', '.join(TOPICS)})")
        elif path.parent.name != topic and path.parent.name in TOPICS:
            errors.add("topic", f"{topic!r} but the file is in folder {path.parent.name!r}")
    title = _texts(data.get("title"), "title", errors)
    answer = _texts(data.get("answer"), "answer", errors)
    speech = _texts(data.get("speech"), "speech", errors)
    for lang, text in speech.items():
        words = len(text.split())
        if words > MAX_SPEECH_WORDS:
            errors.add(f"speech.{lang}", f"has {words} words, at most {MAX_SPEECH_WORDS}")
        if MARKDOWN_IN_SPEECH.search(text):
            errors.add(f"speech.{lang}", "must be plain sentences without markdown")
    for part, values in (("answer", answer), ("speech", speech), ("title", title)):
        for lang, text in values.items():
            if FORBIDDEN_NUMBER.search(text):
                errors.add(f"{part}.{lang}", "quotes 117 or 129, which are not confirmed numbers")
    questions = data.get("questions")
    if questions is not None:
        if not isinstance(questions, list) or not all(
            isinstance(q, str) and q.strip() for q in questions
        ):
            errors.add("questions", "must be a list of non-empty strings")
            questions = []
        elif len(questions) < MIN_QUESTIONS:
            errors.add("questions", f"has {len(questions)} questions, at least {MIN_QUESTIONS}")
        else:
            dupes = [q for q, n in Counter(q.strip().lower() for q in questions).items() if n > 1]
            if dupes:
                errors.add("questions", f"repeated question {dupes[0]!r}")
    sources = data.get("sources")
    if sources is not None and not (
        isinstance(sources, list) and sources and all(isinstance(s, str) and s.strip() for s in sources)
    ):
        errors.add("sources", "must be a non-empty list of strings (regulation and article, or official service)")
    checked = data.get("checked")
    if checked is not None:
        checked = _date(checked)
        if checked is None:
            errors.add("checked", "must be a date written YYYY-MM-DD")
    featured = data.get("featured", False)
    if not isinstance(featured, bool):
        errors.add("featured", "must be true or false")
    related = data.get("related") or []
    if not isinstance(related, list) or not all(isinstance(r, str) for r in related):
        errors.add("related", "must be a list of entry ids")
        related = []
    if len(problems) > before:
        return None
    return Entry(
        id=entry_id, topic=topic, title=title, questions=tuple(q.strip() for q in questions),
        answer=answer, speech=speech, sources=tuple(s.strip() for s in sources), checked=checked,
        featured=featured, related=tuple(related), path=rel,
    )


class _Problems:
    def __init__(self, rel: str, sink: list[str]) -> None:
        self.rel = rel
        self.sink = sink

    def add(self, field_name: str, message: str) -> None:
        self.sink.append(f"{self.rel}: {field_name}: {message}")


def _texts(value: Any, name: str, errors: _Problems) -> dict[str, str]:
    """A {id, en} mapping of non-empty strings; both languages are required."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(name, "must be a mapping with 'id' and 'en' texts")
        return {}
    out: dict[str, str] = {}
    for lang in LANGS:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            errors.add(f"{name}.{lang}", "is required (non-empty text)")
        else:
            out[lang] = text.strip()
    for lang in value:
        if lang not in LANGS:
            errors.add(f"{name}.{lang}", f"unknown language (allowed: {', '.join(LANGS)})")
    return out


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def summary(kb: KnowledgeBase) -> str:
    """A short human summary: entries and questions per topic, version."""
    lines = [f"{len(kb)} entries, version {kb.version[:12]}"]
    for topic in TOPICS:
        group = kb.by_topic().get(topic, [])
        questions = sum(len(e.questions) for e in group)
        lines.append(f"  {topic:12} {len(group):3} entries  {questions:4} questions")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        kb = load_kb(args[0] if args else None)
    except KbError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(summary(kb))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
