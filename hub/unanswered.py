"""Questions the kiosks could not answer, gathered on the hub and grouped for the KB editors.

Units send the lines of their unanswered log (assistant/unanswered.py: already scrubbed of
personal data on the unit) with `POST /api/v1/unanswered` and their token; a line sent twice
is kept once (its digest per unit). The editor's page groups similar questions, counts them
per posko and per day, and turns a group into example questions of an entry (a draft
change), into a new entry draft, or dismisses it.

Grouping is our own small greedy clustering over word sets (Jaccard similarity of the
normalised keys): a few hundred short questions need nothing heavier, and it keeps the hub
free of a clustering library.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from hub import kb_editor, kb_review
from hub.auth import requires_role
from hub.db import get_db
from hub.models import KbEntry, KbUnanswered, Unit, utcnow

bp = Blueprint("unanswered", __name__)

MAX_ITEMS = 500  # lines per call
SIMILAR = 0.5  # Jaccard similarity of word sets that puts two questions in one group
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class UnansweredInvalid(ValueError):
    """A field of the upload is wrong; `fields` maps each to its problem."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


# -- pure ----------------------------------------------------------------------------
def parse_items(body: Any) -> list[dict[str, Any]]:
    """The checked lines of an upload {"items": [{day, q, key?, action?, best?}, ...]}.

    Raises UnansweredInvalid naming the field of the first bad item."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise UnansweredInvalid({"items": "must be a list of unanswered questions"})
    items = body["items"]
    if len(items) > MAX_ITEMS:
        raise UnansweredInvalid({"items": f"at most {MAX_ITEMS} a call"})
    out = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict):
            raise UnansweredInvalid({f"items[{i}]": "must be an object"})
        q = _text(raw.get("q"))
        if not isinstance(q, str) or not q.strip() or len(q) > 500:
            raise UnansweredInvalid({f"items[{i}].q": "must be a question of 1-500 characters"})
        day = raw.get("day")
        if not isinstance(day, str) or not DAY.match(day):
            raise UnansweredInvalid({f"items[{i}].day": "must be a date YYYY-MM-DD"})
        key = _text(raw.get("key")) or q
        best = _text(raw.get("best")) or ""
        action = raw.get("action") if raw.get("action") in ("fallback", "refuse", "escalate", "answer") else "fallback"
        # n: the line's number in the unit's log, so two residents asking the same on one day
        # stay two lines while a resend of the same line stays one.
        n = raw.get("n") if isinstance(raw.get("n"), int) and not isinstance(raw.get("n"), bool) else None
        canon = json.dumps({"day": day, "q": q, "key": key, "action": action, "best": best, "n": n}, sort_keys=True,
                           ensure_ascii=False)
        out.append({"day": day, "q": " ".join(q.split())[:500], "key": " ".join(key.lower().split())[:500],
                    "action": action, "best": best[:80],
                    "digest": hashlib.sha256(canon.encode("utf-8")).hexdigest()})
    return out


def _text(value: Any) -> str | None:
    """A string the databases can hold (UTF-8, no NUL), else None."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from JSON "\ud800"
        return None
    return value.replace("\x00", "")  # PostgreSQL text holds no NUL


def words(key: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(key.lower()) if len(w) > 1)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


@dataclass
class Group:
    """Similar questions: the most frequent wording first, counts per posko and per day."""

    ids: list[int] = field(default_factory=list)
    questions: Counter = field(default_factory=Counter)
    per_posko: Counter = field(default_factory=Counter)
    per_day: Counter = field(default_factory=Counter)
    best: Counter = field(default_factory=Counter)
    words: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def example(self) -> str:
        return self.questions.most_common(1)[0][0]


def group(rows: list[tuple[int, str, str, str, str, str]]) -> list[Group]:
    """Group (id, question, key, posko, day, best) rows; biggest group first."""
    groups: list[Group] = []
    for row_id, question, key, posko, day, best in sorted(rows, key=lambda r: r[0]):
        w = words(key)
        target = None
        for g in groups:
            if key in g.questions or similarity(w, g.words) >= SIMILAR:
                target = g
                break
        if target is None:
            target = Group(words=w)
            groups.append(target)
        target.ids.append(row_id)
        target.questions[question] += 1
        target.per_posko[posko] += 1
        target.per_day[day] += 1
        if best:
            target.best[best] += 1
        target.words = target.words | w if len(target.words) < 12 else target.words
    return sorted(groups, key=lambda g: (-g.count, g.example))


# -- storage ---------------------------------------------------------------------------
def store(db, unit_id: str, items: list[dict[str, Any]]) -> int:
    """Keep new lines of this unit (committed); returns how many were new."""
    known = set(db.scalars(select(KbUnanswered.digest).where(KbUnanswered.unit_id == unit_id)
                           .where(KbUnanswered.digest.in_([i["digest"] for i in items]))))
    new = 0
    now = utcnow()
    for item in items:
        if item["digest"] in known:
            continue
        known.add(item["digest"])
        db.add(KbUnanswered(unit_id=unit_id, digest=item["digest"], day=item["day"], question=item["q"],
                            key=item["key"], action=item["action"], best=item["best"], state="open",
                            received_at=now))
        new += 1
    db.commit()
    return new


def open_groups(db) -> list[Group]:
    names = {u.id: (u.name or u.id) for u in db.scalars(select(Unit))}
    rows = [(r.id, r.question, r.key, names.get(r.unit_id, r.unit_id), r.day, r.best)
            for r in db.scalars(select(KbUnanswered).where(KbUnanswered.state == "open"))]
    return group(rows)


def _rows_of(db, ids: list[int]) -> list[KbUnanswered]:
    return list(db.scalars(select(KbUnanswered).where(KbUnanswered.id.in_(ids))
                           .where(KbUnanswered.state == "open")))


# -- views -----------------------------------------------------------------------------
@bp.get("/kb/tak-terjawab")
@requires_role("kb_editor")
def groups():
    db = get_db()
    kb_editor.seed(db, current_app.config["POSKO_SETTINGS"])
    entries = list(db.scalars(select(KbEntry.id).where(KbEntry.retired.is_(False)).order_by(KbEntry.id)))
    return render_template("kb/unanswered.html", groups=open_groups(db), entries=entries)


def _ids() -> list[int]:
    try:
        ids = [int(x) for x in (request.form.get("ids") or "").split(",") if x.strip()]
    except ValueError:
        abort(400)
    if not ids or len(ids) > 5000:
        abort(400)
    return ids


@bp.post("/kb/tak-terjawab/tolak")
@requires_role("kb_editor")
def dismiss():
    db = get_db()
    rows = _rows_of(db, _ids())
    for row in rows:
        row.state = "dismissed"
    kb_editor.audit(db, "kb_unanswered_dismiss", f"{len(rows)} questions")
    db.commit()
    flash(f"{len(rows)} pertanyaan diabaikan.", "ok")
    return redirect(url_for("unanswered.groups")), 303


@bp.post("/kb/tak-terjawab/ke-entri")
@requires_role("kb_editor")
def to_entry():
    """The group's wordings become example questions of an entry: a draft change."""
    db = get_db()
    rows = _rows_of(db, _ids())
    entry = db.get(KbEntry, request.form.get("entry_id") or "")
    if entry is None or entry.retired or not rows:
        flash("Pilih entri yang ada untuk pertanyaan ini.", "error")
        return redirect(url_for("unanswered.groups")), 303
    data = json.loads(json.dumps(entry.data))
    have = {q.strip().lower() for q in data["questions"]}
    for row in rows:
        if row.question.strip().lower() not in have:
            have.add(row.question.strip().lower())
            data["questions"].append(row.question)
    try:
        change = kb_review.propose(db, current_app.config["POSKO_SETTINGS"], entry.id, "edit", entry.data, data)
    except kb_editor.EntryProblem as exc:
        db.rollback()
        flash(f"Tidak dapat dijadikan draf: {exc}", "error")
        return redirect(url_for("unanswered.groups")), 303
    for row in _rows_of(db, [r.id for r in rows]):
        row.state = "used"
    db.commit()
    flash(f"{len(rows)} pertanyaan ditambahkan ke {entry.id} sebagai draf #{change.id}.", "ok")
    return redirect(url_for("kbreview.change", change_id=change.id)), 303


@bp.post("/kb/tak-terjawab/entri-baru")
@requires_role("kb_editor")
def to_new_entry():
    """Open the new-entry form with the group's wordings as its example questions."""
    db = get_db()
    rows = _rows_of(db, _ids())
    # Not marked used: the group stays until the new entry's draft exists or it is dismissed.
    questions = list(dict.fromkeys(r.question for r in rows))
    return redirect(url_for("kb.new", question=questions)), 303
