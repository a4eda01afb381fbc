"""A local log of questions the assistant could not answer, without personal data.

Officers read `posko ask --report` to see what residents ask most that the knowledge base
lacks. Before anything is written, `scrub()` removes phone numbers, plate numbers, NIK and
other long numbers, e-mail addresses, street addresses and the name after "nama saya".
Only the scrubbed question, its normalised form, the day, the action and the best guess
are stored: no time of day, no unit id, nothing that identifies the person asking.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.brain import Brain, Reply

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\w)(\+?62|0)[\s.-]?8[\d\s.-]{6,16}\d")
_LONG_NUMBER = re.compile(r"(?<!\w)\d(?:[\s.-]?\d){7,}(?!\w)")  # NIK (16), accounts, cards
# Indonesian plates: region letters, 1-4 digits, up to 3 letters ("B 1234 XYZ", "h4567ab").
_PLATE = re.compile(r"\b[A-Za-z]{1,2}[\s-]?\d{1,4}[\s-]?[A-Za-z]{1,3}\b")
_PLATE_LOWER_SHORT = re.compile(r"^[a-z]{1,2}[\s-]?\d{1,2}[\s-]?[a-z]{1,3}$")
_ADDRESS = re.compile(
    r"\b(jl|jln|jalan|gg|gang|perum|komplek|kompleks)\.?\s+[^,.;!?\n]{1,40}?"
    r"(\s+(no|nomor|nomer)\.?\s*\d+\w*|\s+rt\.?\s*\d+|(?=[,.;!?\n]|$))", re.I)
_RT_RW = re.compile(r"\brt\.?\s*\d+\s*/?\s*(rw\.?\s*\d+)?", re.I)
_NAME_INTRO = re.compile(
    r"\b(nama\s+(saya|aku|ku|gue|gw)|namaku|saya\s+bernama|aku\s+bernama|perkenalkan\s+saya"
    r"|my\s+name\s+is|i\s+am\s+called)\s*(adalah|:|ialah)?\s+", re.I)
# Words that end a name: what usually follows it in a question.
_NAME_STOP = {"mau", "ingin", "pengen", "dari", "tinggal", "umur", "usia", "asal", "tanya",
              "bertanya", "nanya", "pak", "bu", "mas", "mbak", "minta", "mohon", "and", "i",
              "saya", "aku", "dan", "yang", "bisa", "perlu", "butuh", "want", "need",
              "would", "from", "kok", "kenapa", "gimana", "bagaimana", "apa", "berapa"}


def scrub(text: str) -> str:
    """`text` without personal data; what is removed is replaced by a [marker]."""
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub("[telepon]", text)
    text = _LONG_NUMBER.sub("[angka]", text)
    text = _ADDRESS.sub("[alamat]", text)
    text = _RT_RW.sub("[alamat]", text)
    text = _PLATE.sub(_plate_or_keep, text)
    return _scrub_names(text)


def _plate_or_keep(match: re.Match[str]) -> str:
    found = match.group(0)
    # "sim c1 yg" looks like a plate in lower case; real plates are written in capitals or
    # have at least three digits.
    if found.isupper() or sum(c.isdigit() for c in found) >= 3:
        return "[plat]"
    if _PLATE_LOWER_SHORT.match(found):
        return found
    return "[plat]"


def _scrub_names(text: str) -> str:
    out = []
    pos = 0
    for match in _NAME_INTRO.finditer(text):
        if match.start() < pos:
            continue
        out.append(text[pos:match.end()])
        rest = text[match.end():]
        words = re.match(r"[^\s,.;!?]+(\s+[^\s,.;!?]+){0,3}", rest)
        taken = 0
        if words:
            for word in words.group(0).split():
                if word.lower() in _NAME_STOP:
                    break
                taken += 1
        consumed = 0
        for _ in range(taken):
            step = re.match(r"\s*[^\s,.;!?]+", rest[consumed:])
            consumed += step.end() if step else 0
        out.append("[nama]" if taken else "")
        pos = match.end() + consumed
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True)
class Frequent:
    """One line of the report: how often a (normalised) question was left unanswered."""

    count: int
    question: str
    best_guess: str | None
    last_seen: str


class UnansweredLog:
    """Append-only JSON-lines log; `record` is the brain's `on_unanswered` hook."""

    def __init__(self, path: str | Path, normalise: Callable[[str], str] | None = None) -> None:
        self.path = Path(path)
        self.normalise = normalise or (lambda s: " ".join(s.lower().split()))

    def record(self, question: str, reply: Reply) -> None:
        clean = scrub(question)
        row = {
            "day": dt.date.today().isoformat(),
            "q": clean,
            "key": self.normalise(clean),
            "action": reply.action,
            "best": reply.suggestions[0]["id"] if reply.suggestions else None,
            "confidence": reply.confidence,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(row, ensure_ascii=False) + "\n"
        # One write per line with O_APPEND: concurrent writers (CLI, unit agent) never
        # interleave inside a line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def report(self, limit: int = 20) -> list[Frequent]:
        """The most frequent unanswered questions, most frequent first."""
        if not self.path.exists():
            return []
        counts: Counter[str] = Counter()
        example: dict[str, dict] = {}
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line after a power cut is skipped, not fatal
                key = row.get("key") or row.get("q") or ""
                if not key:
                    continue
                counts[key] += 1
                example[key] = row
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [Frequent(n, example[k]["q"], example[k].get("best"), example[k].get("day", ""))
                for k, n in ranked]


def attach_log(brain: Brain, settings) -> UnansweredLog:
    """The configured unanswered log of `settings` (posko.config.Settings), hooked into
    `brain` when `assistant.log_unanswered` is on. Returns the log (for `report()`)."""
    conf = settings.assistant
    path = Path(conf.unanswered_log).expanduser()
    if not path.is_absolute():
        path = settings.state_dir / path
    log = UnansweredLog(path, brain.normalise)
    if conf.log_unanswered:
        brain.on_unanswered = log.record
    return log
