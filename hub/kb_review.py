"""Review, try and publish knowledge-base changes.

* A change (`KbChange`) is a draft until a second person approves it: another kb_editor, a
  supervisor or an admin, never its author. Approving applies it to the working copy.
* Each change is checked when it is proposed (the brain's own loader: a field problem is shown
  on the form at once) and then evaluated in the background: the draft KB (working copy + this
  change) and the published KB answer the labelled evaluation set (`[hub] kb_eval_dir`). That
  trains the draft's intent model and asks it thousands of questions (half a minute on a small
  machine, minutes on a busy one), so the save does not wait for it: the change's page shows
  "being evaluated" and reloads itself when the scores are in. A change cannot be approved
  before its scores are in; one that lowers escalation or refusal recall is flagged, and
  approving it needs an explicit confirmation.
* Publishing validates the working copy with the brain's own loader, refuses entries without
  a source and a date checked, makes a bundle (hub/kb.py) and stores it as current; the
  ingest process announces it on `kb/current`. Any earlier bundle is re-published in one
  click (rollback); the working copy becomes that bundle's entries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import queue
import shutil
import socket
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from assistant.brain import load_brain
from assistant.errors import KbError
from assistant.kb import load_kb
from hub import kb, kb_editor, offload
from hub.auth import requires_role
from hub.db import get_db, sessions
from hub.models import KbChange, KbEntry, KbPublication, utcnow

log = logging.getLogger(__name__)
bp = Blueprint("kbreview", __name__)

ACTIONS = ("answer", "refuse", "escalate", "fallback")
GUARDED = ("escalate", "refuse")  # recall that must never drop
# A pending evaluation whose process is gone (a recycled worker, a restart) is started again
# when its page is looked at; one on another host after this long.
EVAL_STALE_S = 900


class PublishProblem(ValueError):
    """The working copy cannot be published; `problems` lists each entry's field problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0] if problems else "cannot publish")
        self.problems = problems


# -- evaluation (pure over a brain and labelled items) -------------------------------------
@dataclass(frozen=True)
class Labelled:
    q: str
    action: str
    entry: str | None


def load_labelled(folder: str | Path) -> list[Labelled]:
    """The labelled questions of every `*.yaml` in folder (items {q, action, entry?}).

    The format of the team's dev set (tests/assistant/devset) and of any frozen split.
    Raises ValueError naming the file and item of a malformed one.
    """
    items = []
    for path in sorted(Path(folder).glob("*.yaml")):
        for i, raw in enumerate(yaml.safe_load(path.read_text(encoding="utf-8")) or []):
            if not isinstance(raw, dict) or not isinstance(raw.get("q"), str) or raw.get("action") not in ACTIONS:
                raise ValueError(f"{path.name}[{i}]: needs a string 'q' and an action in {ACTIONS}")
            items.append(Labelled(raw["q"], raw["action"], raw.get("entry")))
    return items


def score(brain, items: Iterable[Labelled]) -> dict[str, Any]:
    """Recall per expected action, and answers with the right entry (0..1 each)."""
    got: dict[str, list[bool]] = {a: [] for a in ACTIONS}
    right_entry: list[bool] = []
    misses: list[str] = []
    for item in items:
        reply = brain.ask(item.q)
        got[item.action].append(reply.action == item.action)
        if item.action == "answer":
            right_entry.append(reply.action == "answer" and reply.entry == item.entry)
        if reply.action != item.action and item.action in GUARDED:
            misses.append(f"{item.q} → {reply.action}" + (f" ({reply.entry})" if reply.entry else ""))
    out: dict[str, Any] = {f"{a}_recall": round(sum(v) / len(v), 4) if v else None for a, v in got.items()}
    out["answer_correct"] = round(sum(right_entry) / len(right_entry), 4) if right_entry else None
    out["items"] = sum(len(v) for v in got.values())
    out["guarded_misses"] = misses[:20]
    return out


def flags(draft: dict[str, Any], published: dict[str, Any]) -> list[str]:
    """The guarded recalls (escalation, refusal) the draft lowers, e.g. ["escalate_recall"]."""
    out = []
    for action in GUARDED:
        key = f"{action}_recall"
        if draft.get(key) is not None and published.get(key) is not None and draft[key] < published[key]:
            out.append(key)
    return out


# -- brains of folders, cached by content ------------------------------------------------
_brains: OrderedDict[str, Any] = OrderedDict()
_scores: dict[tuple[str, str], dict[str, Any]] = {}
_lock = threading.Lock()


def brain_of_entries(entries: list[dict[str, Any]], settings=None):
    """A brain over these entries (cached by their content; its intent model also under the
    hub's state folder, so a restart or another worker does not train it again); raises
    PublishProblem when the entries do not make a valid KB. CPU-heavy: call it through
    `offload.run` from a request."""
    folder = Path(tempfile.mkdtemp(prefix="kbdraft-"))
    try:
        kb_editor.write_folder(entries, folder)
        return _brain_of_folder(folder, model_cache(settings) if settings is not None else None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def model_cache(settings) -> Path:
    return settings.state_dir / "hub" / "kb-models"


@contextlib.contextmanager
def checked_folder(entries: list[dict[str, Any]]) -> Iterator[tuple[Path, int]]:
    """The entries written as a KB folder (and their count) that the brain's own KB loader
    accepts, removed afterwards; raises PublishProblem otherwise (fast: no model is trained)."""
    folder = Path(tempfile.mkdtemp(prefix="kbcheck-"))
    try:
        count = kb_editor.write_folder(entries, folder)
        try:
            load_kb(folder)
        except KbError as exc:
            raise PublishProblem(list(exc.problems) or [str(exc)]) from None
        yield folder, count
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_entries(entries: list[dict[str, Any]]) -> None:
    """Raise PublishProblem unless the entries make a KB the brain loads."""
    with checked_folder(entries):
        pass


def _brain_of_folder(folder: Path, cache_dir: Path | None = None):
    key = hashlib.sha256(kb.build_bundle(folder)).hexdigest()
    with _lock:
        if key in _brains:
            _brains.move_to_end(key)
            return _brains[key]
    try:
        brain = load_brain(folder, cache_dir=cache_dir)
    except KbError as exc:
        raise PublishProblem(list(exc.problems) or [str(exc)]) from None
    brain.cache_key = key
    with _lock:
        _brains[key] = brain
        while len(_brains) > 4:
            _brains.popitem(last=False)
    return brain


def published_brain(settings):
    """The brain of the bundle in use, or None when nothing was published."""
    current = kb.read_current(settings)
    path = kb.bundle_path(settings, current.version) if current else None
    if path is None:
        return None
    return brain_of_entries(kb_editor.read_bundle(path.read_bytes()), settings)


def scores_of(brain, settings) -> dict[str, Any] | None:
    """The evaluation set's scores of this brain (cached), None without `[hub] kb_eval_dir`."""
    folder = eval_dir(settings)
    if folder is None or brain is None:
        return None
    key = (getattr(brain, "cache_key", str(id(brain))), str(folder))
    if key not in _scores:
        _scores[key] = score(brain, load_labelled(folder))
    return _scores[key]


def eval_dir(settings) -> Path | None:
    value = getattr(settings.hub, "kb_eval_dir", "")
    return settings.resolve(value) if value else None


# -- changes ---------------------------------------------------------------------------------
def draft_entries(db, changes: Iterable[KbChange] = ()) -> list[dict[str, Any]]:
    """The working copy with these changes applied (in order)."""
    entries = {r.id: r.data for r in kb_editor.working_entries(db)}
    for change in changes:
        if change.after is None:
            entries.pop(change.entry_id, None)
        else:
            entries[change.entry_id] = change.after
    return [entries[k] for k in sorted(entries)]


def propose(db, settings, entry_id: str, kind: str, before, after) -> KbChange:
    """A new draft change (committed, audited; its evaluation scheduled). Raises EntryProblem
    when the draft KB would not load (the loader's message names the field)."""
    change = KbChange(entry_id=entry_id, kind=kind, before=before, after=after, state="draft",
                      author=current_user.username, created_at=utcnow(), evaluation={})
    try:
        check_entries(draft_entries(db, [change]))
    except PublishProblem as exc:
        mine = [p for p in exc.problems if f"{entry_id}.yaml" in p] or exc.problems
        raise kb_editor.EntryProblem(_field_of(mine[0]), mine[0]) from None
    if eval_dir(settings) is not None:
        change.evaluation = _pending()
    db.add(change)
    db.flush()
    kb_editor.audit(db, f"kb_{kind}", f"#{change.id} {entry_id}")
    db.commit()
    if change.evaluation:
        schedule(current_app._get_current_object(), change.id)
    return change


def _field_of(problem: str) -> str:
    parts = [p.strip() for p in problem.split(":")]
    return parts[1] if len(parts) > 2 else "entry"


def evaluate(draft_brain, settings) -> dict[str, Any]:
    """{draft, published, flags} scores, or {} without an evaluation set."""
    try:
        draft = scores_of(draft_brain, settings)
        if draft is None:
            return {}
        published = scores_of(published_brain(settings), settings) or {}
    except (OSError, ValueError, PublishProblem) as exc:
        log.error("evaluation set not run: %s", exc)
        return {"error": str(exc)}
    return {"draft": draft, "published": published, "flags": flags(draft, published)}


def evaluate_entries(entries: list[dict[str, Any]], settings) -> dict[str, Any]:
    """The evaluation of a draft KB made of these entries, with its state ("done" or "error")."""
    try:
        out = evaluate(brain_of_entries(entries, settings), settings)
    except PublishProblem as exc:
        out = {"error": exc.problems[0] if exc.problems else str(exc)}
    out["state"] = "error" if "error" in out else "done"
    return out


# -- evaluations in the background ---------------------------------------------------------
# One at a time per hub process (each trains a model: CPU and memory), in the order proposed.
# Under gunicorn's gevent worker the runner is a greenlet that hands the training and scoring
# to a real thread (offload.run), so the worker keeps serving while a draft is evaluated.
_queued: set[int] = set()
_jobs: queue.Queue[int] = queue.Queue()
_runner: threading.Thread | None = None
_queue_lock = threading.Lock()


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pending() -> dict[str, Any]:
    return {"state": "pending", "since": utcnow().isoformat(), "by": _me()}


def eval_state(evaluation: dict[str, Any] | None) -> str:
    """pending | done | error | none: one reading of a change's stored evaluation, for the
    page, its poll and the approval (evaluations stored before states existed have none)."""
    ev = evaluation or {}
    return ev.get("state") or ("done" if ev.get("draft") else "error" if ev.get("error") else "none")


bp.add_app_template_filter(eval_state, "eval_state")


def pending(change: KbChange) -> bool:
    return eval_state(change.evaluation) == "pending"


def schedule(app: Flask, change_id: int) -> None:
    """Evaluate this change in the background (once, however often it is asked)."""
    global _runner
    with _queue_lock:
        if change_id in _queued:
            return
        _queued.add(change_id)
        _jobs.put(change_id)
        if _runner is None or not _runner.is_alive():
            _runner = threading.Thread(target=_run_jobs, args=(app,), name="kb-evaluation", daemon=True)
            _runner.start()


def _run_jobs(app: Flask) -> None:
    while True:
        change_id = _jobs.get()
        try:
            with app.app_context():
                run_evaluation(change_id)
        except Exception:  # noqa: BLE001 - one bad draft must not stop the evaluations after it
            log.exception("evaluation of change #%s failed", change_id)
        finally:
            with _queue_lock:
                _queued.discard(change_id)


def run_evaluation(change_id: int) -> None:
    """Evaluate a pending change and store its scores (needs an app context)."""
    factories = sessions()
    settings = current_app.config["POSKO_SETTINGS"]
    with factories.reader() as db:
        change = db.get(KbChange, change_id)
        if change is None or change.state != "draft" or not pending(change):
            return
        entries = draft_entries(db, [change])
    result = offload.run(evaluate_entries, entries, settings)
    with factories.writer() as db:
        change = db.get(KbChange, change_id)
        if change is not None and pending(change):
            change.evaluation = result
            db.commit()
    log.info("change #%s evaluated: %s", change_id, result.get("flags") or result.get("error") or "no drop")


def lost(change: KbChange, now: dt.datetime | None = None) -> bool:
    """True when the change's pending evaluation has no process working on it any more."""
    if not pending(change):
        return False
    ev = change.evaluation
    host, _, pid = str(ev.get("by", "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return change.id not in _queued
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False
    try:
        since = dt.datetime.fromisoformat(ev.get("since", ""))
    except (TypeError, ValueError):
        return True
    now = now or utcnow()
    if since.tzinfo is None and now.tzinfo is not None:
        since = since.replace(tzinfo=now.tzinfo)
    return (now - since).total_seconds() > EVAL_STALE_S


def resume(change: KbChange) -> None:
    """Start again an evaluation whose process is gone (it is marked as this process's)."""
    if not lost(change):
        return
    with sessions().writer() as db:
        row = db.get(KbChange, change.id)
        if row is None or not pending(row):
            return
        row.evaluation = _pending()
        db.commit()
    change.evaluation = row.evaluation
    schedule(current_app._get_current_object(), change.id)


def approve(db, change: KbChange, *, confirm_flags: bool = False) -> None:
    """Apply an approved change to the working copy (committed, audited).

    Raises PermissionError for the author, ValueError when it is no draft, when its entry
    changed since, or when it is flagged and not confirmed."""
    if change.state != "draft":
        raise ValueError(f"change #{change.id} is {change.state}, not a draft")
    if pending(change):
        raise ValueError("evaluasi draf ini masih berjalan; setujui setelah skornya tampil")
    if change.author == current_user.username:
        raise PermissionError("the author of a change cannot approve it; a second person must")
    if change.evaluation.get("flags") and not confirm_flags:
        raise ValueError("this change lowers " + ", ".join(change.evaluation["flags"])
                         + "; tick the confirmation to approve it anyway")
    row = db.get(KbEntry, change.entry_id)
    current = row.data if row is not None and not row.retired else None
    if current != change.before:
        raise ValueError(f"entry {change.entry_id} changed since this draft was made; make a new draft")
    if change.after is None:
        row.retired = True
    elif row is None:
        db.add(KbEntry(id=change.entry_id, topic=change.after["topic"], data=change.after,
                       retired=False, updated_at=utcnow(), updated_by=change.author))
    else:
        row.data, row.retired, row.topic = change.after, False, change.after["topic"]
        row.updated_at, row.updated_by = utcnow(), change.author
    change.state, change.reviewer, change.reviewed_at = "approved", current_user.username, utcnow()
    kb_editor.audit(db, "kb_approve", f"#{change.id} {change.entry_id} ({change.kind} by {change.author})")
    db.commit()


def reject(db, change: KbChange, note: str) -> None:
    if change.state != "draft":
        raise ValueError(f"change #{change.id} is {change.state}, not a draft")
    change.state, change.reviewer, change.reviewed_at = "rejected", current_user.username, utcnow()
    change.note = note[:500]
    kb_editor.audit(db, "kb_reject", f"#{change.id} {change.entry_id}: {note[:200]}")
    db.commit()


def publish(db, settings):
    """Bundle the working copy and make it current. Raises PublishProblem."""
    kb_editor.seed(db, settings)  # never an empty bundle from a working copy not made yet
    entries = [r.data for r in kb_editor.working_entries(db)]
    problems = [f"{d['id']}: {p}" for d in entries for p in kb_editor.publish_problems(d)]
    if problems:
        raise PublishProblem(problems)
    with checked_folder(entries) as (folder, count):
        current = kb.store_bundle(settings, kb.build_bundle(folder))
    db.add(KbPublication(version=current.version, sha256=current.sha256, entries=count,
                         by=current_user.username, at=utcnow(), rollback_of=""))
    kb_editor.audit(db, "kb_publish", f"{current.version} ({count} entries)")
    db.commit()
    return current


def republish(db, settings, version: str):
    """Make an earlier bundle current again; the working copy becomes its entries."""
    path = kb.bundle_path(settings, version)
    if path is None:
        raise LookupError(version)
    data = path.read_bytes()
    current = kb.store_bundle(settings, data)
    entries = kb_editor.read_bundle(data)
    kb_editor.replace_all(db, entries, current_user.username)
    db.add(KbPublication(version=current.version, sha256=current.sha256, entries=len(entries),
                         by=current_user.username, at=utcnow(), rollback_of=version))
    kb_editor.audit(db, "kb_rollback", f"{version} published again")
    db.commit()
    return current


def bundles(settings) -> list[tuple[str, dt.datetime]]:
    """Every stored bundle (version, stored at, UTC), newest first."""
    folder = kb.store_dir(settings)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.glob("*.tar.gz"):
        version = path.name.split(".")[0]
        if kb.VERSION.match(version):
            out.append((version, dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)))
    return sorted(out, key=lambda v: v[1], reverse=True)


# -- views -------------------------------------------------------------------------------
def _settings():
    return current_app.config["POSKO_SETTINGS"]


@bp.get("/kb/tinjau")
@requires_role("kb_editor")
def changes():
    db = get_db()
    drafts = list(db.scalars(select(KbChange).where(KbChange.state == "draft").order_by(KbChange.id)))
    done = list(db.scalars(select(KbChange).where(KbChange.state != "draft")
                           .order_by(KbChange.id.desc()).limit(30)))
    return render_template("kb/changes.html", drafts=drafts, done=done, diff=kb_editor.diff)


@bp.get("/kb/tinjau/<int:change_id>")
@requires_role("kb_editor")
def change(change_id: int):
    item = get_db().get(KbChange, change_id)
    if item is None:
        abort(404)
    resume(item)
    return render_template("kb/change.html", c=item, lines=kb_editor.diff(item.before, item.after),
                           problems=kb_editor.publish_problems(item.after) if item.after else [])


@bp.get("/kb/tinjau/<int:change_id>/evaluasi")
@requires_role("kb_editor")
def evaluation_state(change_id: int):
    """{state: pending|done|error|none, flags}: what the change's page polls while pending."""
    item = get_db().get(KbChange, change_id)
    if item is None:
        abort(404)
    resume(item)
    return jsonify(state=eval_state(item.evaluation), flags=(item.evaluation or {}).get("flags", []))


@bp.post("/kb/tinjau/<int:change_id>/setujui")
@requires_role("kb_editor")
def approve_view(change_id: int):
    db = get_db()
    item = db.get(KbChange, change_id)
    if item is None:
        abort(404)
    try:
        approve(db, item, confirm_flags=request.form.get("confirm_flags") == "1")
    except PermissionError as exc:
        db.rollback()
        flash(f"Tidak disetujui: {exc}", "error")
        return render_template("kb/change.html", c=item, lines=kb_editor.diff(item.before, item.after),
                               problems=[]), 403
    except ValueError as exc:
        db.rollback()
        flash(f"Tidak disetujui: {exc}", "error")
        return render_template("kb/change.html", c=item, lines=kb_editor.diff(item.before, item.after),
                               problems=[]), 409
    flash(f"Draf #{item.id} disetujui; terbitkan agar sampai ke kiosk.", "ok")
    return redirect(url_for("kbreview.publications")), 303


@bp.post("/kb/tinjau/<int:change_id>/tolak")
@requires_role("kb_editor")
def reject_view(change_id: int):
    db = get_db()
    item = db.get(KbChange, change_id)
    if item is None:
        abort(404)
    try:
        reject(db, item, request.form.get("note", ""))
    except ValueError as exc:
        db.rollback()
        flash(str(exc), "error")
    return redirect(url_for("kbreview.changes")), 303


@bp.get("/kb/terbit")
@requires_role("kb_editor")
def publications():
    db = get_db()
    settings = _settings()
    current = kb.read_current(settings)
    pubs = list(db.scalars(select(KbPublication).order_by(KbPublication.id.desc()).limit(50)))
    approved = list(db.scalars(select(KbChange).where(KbChange.state == "approved")
                               .where(KbChange.reviewed_at > (pubs[0].at if pubs else dt.datetime.min))))
    return render_template("kb/publish.html", current=current, pubs=pubs, bundles=bundles(settings),
                           approved=approved, problems=None)


@bp.post("/kb/terbit")
@requires_role("kb_editor")
def publish_view():
    db = get_db()
    try:
        current = publish(db, _settings())
    except PublishProblem as exc:
        db.rollback()
        settings = _settings()
        pubs = list(db.scalars(select(KbPublication).order_by(KbPublication.id.desc()).limit(50)))
        return render_template("kb/publish.html", current=kb.read_current(settings), pubs=pubs,
                               bundles=bundles(settings), approved=[], problems=exc.problems), 422
    flash(f"Basis pengetahuan {current.version} diterbitkan; kiosk mengambilnya lewat kb/current.", "ok")
    return redirect(url_for("kbreview.publications")), 303


@bp.post("/kb/terbit/<version>/ulang")
@requires_role("kb_editor")
def republish_view(version: str):
    try:
        current = republish(get_db(), _settings(), version)
    except LookupError:
        abort(404)
    flash(f"Versi {current.version} diterbitkan ulang (rollback).", "ok")
    return redirect(url_for("kbreview.publications")), 303


@bp.get("/kb/coba")
@requires_role("kb_editor")
def try_box():
    """Ask the draft KB (working copy + every open draft) and the published KB one question."""
    db = get_db()
    q = (request.args.get("q") or "").strip()[:500]
    lang = request.args.get("lang") if request.args.get("lang") in ("id", "en") else "id"
    result = None
    error = ""
    kb_editor.seed(db, _settings())
    if q:
        drafts = list(db.scalars(select(KbChange).where(KbChange.state == "draft").order_by(KbChange.id)))
        try:
            entries = draft_entries(db, drafts)
            draft = offload.run(brain_of_entries, entries, _settings()).ask(q, lang)
            pub_brain = offload.run(published_brain, _settings())
            published = pub_brain.ask(q, lang) if pub_brain is not None else None
            result = {"draft": draft, "published": published}
        except PublishProblem as exc:
            error = exc.problems[0]
    return render_template("kb/try.html", q=q, lang=lang, result=result, error=error)
