"""The knowledge-base editor on the hub (role `kb_editor`; every step audited).

The hub keeps a working copy of the KB in `kb_entries` (seeded from the bundle in use, else
the configured KB folder). An editor never changes it directly: each edit, new entry or
retirement is a `KbChange` draft (hub/kb_review.py) that a second person approves; only
approved changes reach the working copy, and only a publish makes a bundle for the kiosks.

An entry as the editor holds it (`data`) is the YAML entry of assistant/kb/ with sources as
{title, regulation, url, checked} mappings and optional `valid_from`/`valid_until`. In the
YAML a source stays one string (the format the brain's loader reads), written as
``title — regulation (url) [dicek YYYY-MM-DD]``, and the entry's `checked` is the oldest
date checked of its sources.
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import re
import tarfile
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assistant import kb
from assistant.kb import TOPICS
from hub import kb as hub_kb
from hub import kb_review
from hub.auth import requires_role
from hub.db import get_db
from hub.models import AuditEntry, KbChange, KbEntry, utcnow

bp = Blueprint("kb", __name__)

LANGS = ("id", "en")
TEXT_PARTS = ("title", "answer", "speech")
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\Z")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_SOURCE = re.compile(r"^(?P<title>.*?)(?: — (?P<reg>[^()\[\]]*?))?(?: \((?P<url>https?://[^)\s]+)\))?"
                     r"(?: \[dicek (?P<date>\d{4}-\d{2}-\d{2})\])?\s*\Z")
_URL_IN_PARENS = re.compile(r"\s*\((https?://[^)\s]+)\)")


class EntryProblem(ValueError):
    """An entry the editor cannot accept; `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# -- pure conversions ----------------------------------------------------------------
def parse_source(text: str, checked: str = "") -> dict[str, str]:
    """A YAML source string as {title, regulation, url, checked}; `checked` fills a missing date."""
    text = " ".join(str(text).split())
    m = _SOURCE.match(text)
    if m and (m.group("reg") or m.group("date") or m.group("url")):
        return {"title": m.group("title").strip(), "regulation": (m.group("reg") or "").strip(),
                "url": m.group("url") or "", "checked": m.group("date") or checked}
    url = _URL_IN_PARENS.search(text)
    title = _URL_IN_PARENS.sub("", text).strip() if url else text
    return {"title": title, "regulation": "", "url": url.group(1) if url else "", "checked": checked}


def format_source(source: dict[str, str]) -> str:
    """The one-line YAML form of a source mapping (parse_source reads it back)."""
    out = source.get("title", "").strip()
    if source.get("regulation", "").strip():
        out += f" — {source['regulation'].strip()}"
    if source.get("url", "").strip():
        out += f" ({source['url'].strip()})"
    if source.get("checked", "").strip():
        out += f" [dicek {source['checked'].strip()}]"
    return out


def from_yaml(raw: dict[str, Any]) -> dict[str, Any]:
    """An entry read from a KB YAML file, in the editor's form."""
    checked = _iso(raw.get("checked"))
    data = {
        "id": str(raw.get("id", "")), "topic": str(raw.get("topic", "")),
        "title": _pair(raw.get("title")), "questions": [str(q) for q in raw.get("questions") or []],
        "answer": _pair(raw.get("answer")), "speech": _pair(raw.get("speech")),
        "sources": [parse_source(s, checked) for s in raw.get("sources") or []],
        "featured": bool(raw.get("featured", False)),
        "related": [str(r) for r in raw.get("related") or []],
        "valid_from": _iso(raw.get("valid_from")), "valid_until": _iso(raw.get("valid_until")),
    }
    return data


def loader_knows_validity() -> bool:
    """Whether the brain's KB loader reads valid_from/valid_until (the assistant's issue adds them)."""
    return "valid_from" in getattr(kb, "OPTIONAL", ()) or "valid_from" in getattr(kb, "REQUIRED", ())


def to_yaml(data: dict[str, Any], *, validity: bool | None = None) -> str:
    """The entry as a KB YAML file. valid_from/valid_until are written only when the loader
    reads them (else the hub applies them at publish: see `in_force`)."""
    validity = loader_knows_validity() if validity is None else validity
    dates = [s["checked"] for s in data.get("sources", []) if s.get("checked")]
    out: dict[str, Any] = {
        "id": data["id"], "topic": data["topic"], "title": dict(data["title"]),
        "questions": list(data["questions"]), "answer": dict(data["answer"]),
        "speech": dict(data["speech"]),
        "sources": [format_source(s) for s in data.get("sources", [])],
        "checked": dt.date.fromisoformat(min(dates)) if dates else None,
    }
    if data.get("featured"):
        out["featured"] = True
    if data.get("related"):
        out["related"] = list(data["related"])
    if validity:
        for key in ("valid_from", "valid_until"):
            if data.get(key):
                out[key] = dt.date.fromisoformat(data[key])
    return yaml.dump(out, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


def in_force(data: dict[str, Any], today: dt.date) -> bool:
    """Whether today lies within the entry's validity dates (open ends allowed)."""
    start, end = data.get("valid_from") or "", data.get("valid_until") or ""
    return not ((start and today < dt.date.fromisoformat(start))
                or (end and today > dt.date.fromisoformat(end)))


def publish_problems(data: dict[str, Any]) -> list[EntryProblem]:
    """What keeps an entry from a kiosk: no source, or a source without a date checked."""
    problems = []
    sources = data.get("sources") or []
    if not sources:
        problems.append(EntryProblem("sources", "at least one source (title and date checked) is required"))
    for i, s in enumerate(sources):
        if not s.get("title", "").strip():
            problems.append(EntryProblem(f"sources[{i}].title", "is required"))
        if not DATE.match(s.get("checked", "") or ""):
            problems.append(EntryProblem(f"sources[{i}].checked", "a date checked (YYYY-MM-DD) is required"))
    return problems


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(kind, line) of a unified diff of two entries ('+', '-', ' ' or '@'); None is no entry."""
    a = _readable(before).splitlines() if before else []
    b = _readable(after).splitlines() if after else []
    out = []
    for line in difflib.unified_diff(a, b, "sebelum", "sesudah", n=2, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        out.append((line[:1] if line[:1] in "+-@" else " ", line))
    return out


def from_form(form, entry_id: str, topic: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """An entry from the editor's form. Raises EntryProblem naming the field."""
    if not ID_PATTERN.match(entry_id or ""):
        raise EntryProblem("id", "lowercase a-z, 0-9 and '-' only")
    if topic not in TOPICS:
        raise EntryProblem("topic", f"unknown topic {topic!r} (allowed: {', '.join(TOPICS)})")
    data: dict[str, Any] = {"id": entry_id, "topic": topic}
    for part in TEXT_PARTS:
        data[part] = {}
        for lang in LANGS:
            value = (form.get(f"{part}_{lang}") or "").replace("\r\n", "\n").strip()
            if not value:
                raise EntryProblem(f"{part}_{lang}", "is required")
            data[part][lang] = value + ("\n" if part == "answer" else "")
    questions = [q.strip() for q in (form.get("questions") or "").splitlines() if q.strip()]
    if not questions:
        raise EntryProblem("questions", "at least one example question is required")
    data["questions"] = questions
    sources = []
    for i in range(_source_rows(form)):
        s = {k: (form.get(f"source_{i}_{k}") or "").strip() for k in ("title", "regulation", "url", "checked")}
        if not any(s.values()):
            continue
        if s["url"] and not re.match(r"^https?://\S+\Z", s["url"]):
            raise EntryProblem(f"source_{i}_url", "must start with http:// or https://")
        if s["checked"] and not _valid_date(s["checked"]):
            raise EntryProblem(f"source_{i}_checked", "must be a date YYYY-MM-DD")
        sources.append(s)
    data["sources"] = sources
    for key in ("valid_from", "valid_until"):
        value = (form.get(key) or "").strip()
        if value and not _valid_date(value):
            raise EntryProblem(key, "must be a date YYYY-MM-DD")
        data[key] = value
    if data["valid_from"] and data["valid_until"] and data["valid_until"] < data["valid_from"]:
        raise EntryProblem("valid_until", "is before valid_from")
    data["featured"] = bool(base.get("featured")) if base else False
    data["related"] = list(base.get("related", [])) if base else []
    return data


def _source_rows(form) -> int:
    try:
        return max(0, min(int(form.get("source_rows") or 0), 50))
    except ValueError:
        raise EntryProblem("source_rows", "must be a number") from None


def _valid_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return bool(DATE.match(value))


# The order of an entry's fields in a diff, whatever order the stored dict has (the seeded
# files' and the form's differ): a change to one field shows as that field only.
DIFF_ORDER = ("id", "topic", "title", "questions", "answer", "speech", "sources", "valid_from",
              "valid_until", "featured", "related")


def _readable(data: dict[str, Any]) -> str:
    rank = {key: i for i, key in enumerate(DIFF_ORDER)}
    ordered = {k: data[k] for k in sorted(data, key=lambda k: (rank.get(k, len(rank)), k))}
    # No wrapping: one changed sentence is one changed line of the diff.
    return yaml.dump(ordered, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1_000_000)


def _pair(value: Any) -> dict[str, str]:
    value = value if isinstance(value, dict) else {}
    return {lang: str(value.get(lang, "")) for lang in LANGS}


def _iso(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value) if value else ""


class _Dumper(yaml.SafeDumper):
    """Multi-line texts as `|` blocks, so the YAML reads like the hand-written KB."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar(
    "tag:yaml.org,2002:str", s, style="|" if "\n" in s.strip("\n") else None))


# -- the working copy ----------------------------------------------------------------
def read_folder(folder: Path) -> list[dict[str, Any]]:
    """Every entry of a KB folder in the editor's form (the folder was validated before)."""
    out = []
    for path in sorted(folder.rglob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and raw.get("id"):
            out.append(from_yaml(raw))
    return out


def read_bundle(data: bytes) -> list[dict[str, Any]]:
    """Every entry of a bundle (tar.gz of YAML files) in the editor's form."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and member.name.endswith((".yaml", ".yml")):
                raw = yaml.safe_load(tar.extractfile(member).read().decode("utf-8"))
                if isinstance(raw, dict) and raw.get("id"):
                    out.append(from_yaml(raw))
    return out


def seed(db, settings) -> None:
    """Fill an empty working copy from the bundle in use, else from the configured KB folder."""
    if db.scalar(select(KbEntry.id).limit(1)) is not None:
        return
    current = hub_kb.read_current(settings)
    path = hub_kb.bundle_path(settings, current.version) if current else None
    entries = read_bundle(path.read_bytes()) if path else read_folder(hub_kb.kb_dir_of(settings))
    replace_all(db, entries, "sistem")


def replace_all(db, entries: list[dict[str, Any]], actor: str) -> None:
    """Make `entries` the working copy (committed); a concurrent seed by another worker wins."""
    now = utcnow()
    try:
        for row in db.scalars(select(KbEntry)):
            db.delete(row)
        db.flush()
        for data in entries:
            db.add(KbEntry(id=data["id"], topic=data["topic"], data=data, retired=False,
                           updated_at=now, updated_by=actor))
        db.commit()
    except IntegrityError:
        db.rollback()


def working_entries(db, *, with_retired: bool = False) -> list[KbEntry]:
    query = select(KbEntry).order_by(KbEntry.topic, KbEntry.id)
    if not with_retired:
        query = query.where(KbEntry.retired.is_(False))
    return list(db.scalars(query))


def write_folder(entries: list[dict[str, Any]], folder: Path, today: dt.date | None = None) -> int:
    """Write entries as a KB folder (topic/id.yaml); returns how many were written.

    When the loader does not read validity dates, entries not in force today are left out
    (the hub applies the dates at publish time)."""
    validity = loader_knows_validity()
    today = today or dt.date.today()
    count = 0
    for data in entries:
        if not validity and not in_force(data, today):
            continue
        path = folder / data["topic"] / f"{data['id']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_yaml(data, validity=validity), encoding="utf-8")
        count += 1
    return count


def audit(db, action: str, detail: str) -> None:
    """One line of the audit trail (who, what, when); committed with the caller's change."""
    db.add(AuditEntry(report_id=None, actor=current_user.username, action=action[:32],
                      detail=detail, at=utcnow()))


# -- views ---------------------------------------------------------------------------
def _settings():
    return current_app.config["POSKO_SETTINGS"]


@bp.get("/kb")
@requires_role("kb_editor")
def index():
    """Entries by topic; `q` searches id, title, questions and answers; `topic` filters."""
    db = get_db()
    seed(db, _settings())
    q = (request.args.get("q") or "").strip().lower()
    topic = request.args.get("topic") or ""
    rows = working_entries(db, with_retired=True)
    topics = sorted({r.topic for r in rows})
    if topic:
        rows = [r for r in rows if r.topic == topic]
    if q:
        rows = [r for r in rows if q in _haystack(r.data)]
    drafts = {c.entry_id for c in db.scalars(select(KbChange).where(KbChange.state == "draft"))}
    return render_template("kb/index.html", rows=rows, topics=topics, q=q, topic=topic, drafts=drafts)


def _haystack(data: dict[str, Any]) -> str:
    parts = [data.get("id", "")] + list(data.get("title", {}).values()) + list(data.get("questions", []))
    parts += list(data.get("answer", {}).values())
    return "\n".join(parts).lower()


@bp.get("/kb/entri/<entry_id>")
@requires_role("kb_editor")
def edit(entry_id: str):
    db = get_db()
    seed(db, _settings())
    row = db.get(KbEntry, entry_id)
    if row is None:
        abort(404)
    return render_template("kb/edit.html", data=row.data, row=row, new=False, problem=None,
                           validity_in_yaml=loader_knows_validity())


@bp.get("/kb/baru")
@requires_role("kb_editor")
def new():
    data = {"id": request.args.get("id", ""), "topic": request.args.get("topic", ""),
            "title": {"id": "", "en": ""}, "answer": {"id": "", "en": ""}, "speech": {"id": "", "en": ""},
            "questions": [q for q in request.args.getlist("question") if q.strip()],
            "sources": [], "valid_from": "", "valid_until": ""}
    return render_template("kb/edit.html", data=data, row=None, new=True, problem=None, topics=TOPICS,
                           validity_in_yaml=loader_knows_validity())


@bp.post("/kb/entri/<entry_id>")
@requires_role("kb_editor")
def save(entry_id: str):
    """An edit becomes a draft change (hub/kb_review.py); nothing reaches a kiosk yet."""
    db = get_db()
    row = db.get(KbEntry, entry_id)
    if row is None:
        abort(404)
    try:
        data = from_form(request.form, entry_id, row.topic, base=row.data)
        change = kb_review.propose(db, _settings(), entry_id, "edit", row.data, data)
    except EntryProblem as exc:
        db.rollback()
        return render_template("kb/edit.html", data=_echo(request.form, row.data), row=row, new=False,
                               problem=exc, validity_in_yaml=loader_knows_validity()), 400
    flash(f"Perubahan {entry_id} disimpan sebagai draf #{change.id}; menunggu persetujuan orang kedua.", "ok")
    return redirect(url_for("kbreview.change", change_id=change.id)), 303


@bp.post("/kb/baru")
@requires_role("kb_editor")
def create():
    db = get_db()
    entry_id = (request.form.get("id") or "").strip()
    topic = (request.form.get("topic") or "").strip()
    try:
        if db.get(KbEntry, entry_id) is not None:
            raise EntryProblem("id", f"entry {entry_id} exists already")
        data = from_form(request.form, entry_id, topic)
        change = kb_review.propose(db, _settings(), entry_id, "add", None, data)
    except EntryProblem as exc:
        db.rollback()
        echo = _echo(request.form, {"id": entry_id, "topic": topic})
        return render_template("kb/edit.html", data=echo, row=None, new=True, problem=exc, topics=TOPICS,
                               validity_in_yaml=loader_knows_validity()), 400
    flash(f"Entri baru {entry_id} disimpan sebagai draf #{change.id}.", "ok")
    return redirect(url_for("kbreview.change", change_id=change.id)), 303


@bp.post("/kb/entri/<entry_id>/pensiun")
@requires_role("kb_editor")
def retire(entry_id: str):
    db = get_db()
    row = db.get(KbEntry, entry_id)
    if row is None or row.retired:
        abort(404)
    change = kb_review.propose(db, _settings(), entry_id, "retire", row.data, None)
    flash(f"Penghapusan {entry_id} disimpan sebagai draf #{change.id}.", "ok")
    return redirect(url_for("kbreview.change", change_id=change.id)), 303


def _echo(form, base: dict[str, Any]) -> dict[str, Any]:
    """What the officer typed, to show again with the problem (nothing typed is lost)."""
    data = dict(base)
    for part in TEXT_PARTS:
        data[part] = {lang: form.get(f"{part}_{lang}", "") for lang in LANGS}
    data["questions"] = [q for q in (form.get("questions") or "").splitlines()]
    data["sources"] = [{k: form.get(f"source_{i}_{k}", "") for k in ("title", "regulation", "url", "checked")}
                       for i in range(_source_rows(form))]
    for key in ("valid_from", "valid_until"):
        data[key] = form.get(key, "")
    return data
