"""Officers' report queue, report page, workflow, notes, assignment, charts and phone blocks."""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from collections import Counter
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from sqlalchemy import and_, case, func, or_, select

from hub import severity, triage
from hub.auth import has_role, requires_role
from hub.db import get_db
from hub.models import AuditEntry, Event, PhoneBlock, Photo, Report, ReportNote, Unit, User, utcnow
from hub.texts import label, texts
from hub.timefmt import zone_label
from hub.triage import OverdueLimits
from hub.units import is_unit_id
from hub.validation import CATEGORIES, is_sha256
from hub.workflow import PRANK_REASON, STATES, BadTransition, check_transition, next_states

bp = Blueprint("dashboard", __name__)


def _settings():
    return current_app.config["POSKO_SETTINGS"]


def audit(report: Report | None, action: str, detail: str = "") -> None:
    """Add an audit entry by the current officer (the caller commits)."""
    get_db().add(AuditEntry(report_id=report.id if report else None, actor=current_user.username,
                            action=action, detail=detail[:2000], at=utcnow()))


@bp.app_context_processor
def _words() -> dict:
    # tz_name: every time on the hub's pages is labelled with the display zone (WIB…)
    return {"texts_age": texts()["age_words"], "tz_name": zone_label(_settings().hub.display_tz)}


# Requests that do not leave a report's view (assets, the live stream, photos, alert acks).
_KEEPS_REVEAL = ("static", "live.stream", "dashboard.photo", "alerts.acknowledge", "dashboard.queue_row")


@bp.before_app_request
def _forget_reveal() -> None:
    """A revealed reporter stays shown only on that report's view: any page that is not
    about the same report hides it again (a new reveal is a new audit entry)."""
    revealed = session.get("revealed")
    if revealed is None or request.endpoint in _KEEPS_REVEAL:
        return
    if (request.view_args or {}).get("report_id") != revealed:
        session.pop("revealed", None)


@bp.get("/")
@requires_role("operator")
def home():
    return redirect(url_for("dashboard.queue"))


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


# Sortable columns of the queue: URL name -> (SQL expression, direction when first clicked).
_SEVERITY_ORDER = case({"high": 3, "medium": 2}, value=Report.severity, else_=1)
_STATE_ORDER = case({s: i for i, s in enumerate(STATES)}, value=Report.state, else_=len(STATES))
SORTS = {
    "tingkat": (_SEVERITY_ORDER, "desc"),
    "tiket": (Report.ticket, "asc"),
    "diterima": (Report.received_at, "desc"),
    "umur": (Report.received_at, "asc"),  # oldest first = the longest waiting
    "kategori": (Report.category, "asc"),
    "uraian": (func.lower(Report.description), "asc"),  # as people read: case aside
    "lokasi": (func.lower(Report.location_text), "asc"),
    "unit": (Report.unit_id, "asc"),
    "status": (_STATE_ORDER, "asc"),
    "petugas": (func.coalesce(func.lower(User.display_name), "~"), "asc"),  # unassigned last
}
DEFAULT_SORT = "tingkat"
FILTER_KEYS = ("q", "state", "category", "severity", "unit", "dari", "sampai", "mine", "overdue")
MAX_SEARCH_WORDS = 8


def overdue_limits() -> OverdueLimits:
    hub = _settings().hub
    return OverdueLimits(hub.overdue_high_min, hub.overdue_medium_min, hub.overdue_normal_min)


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def queue_filters(args) -> dict[str, str]:
    """The queue's filters from request args, only those with a valid value (what links,
    exports and the audit trail carry)."""
    out = {}
    q = " ".join(args.get("q", "").split())[:200]
    if q:
        out["q"] = q
    if args.get("state", "") in STATES:
        out["state"] = args["state"]
    if args.get("category", "") in CATEGORIES:
        out["category"] = args["category"]
    if args.get("severity", "") in severity.LEVELS:
        out["severity"] = args["severity"]
    if args.get("unit", "") and is_unit_id(args["unit"]):
        out["unit"] = args["unit"]
    for key in ("dari", "sampai"):
        if _parse_date(args.get(key, "")):
            out[key] = args[key]
    for key in ("mine", "overdue"):
        if args.get(key, "") == "1":
            out[key] = "1"
    return out


def filtered_query(filters: dict[str, str], user_id: int | None):
    """SELECT of the reports matching `filters` (see queue_filters), unsorted."""
    tz = ZoneInfo(_settings().hub.display_tz)
    query = select(Report)
    for word in filters.get("q", "").split()[:MAX_SEARCH_WORDS]:
        pattern = _like(word)
        ticket = _like(word.replace("-", "").upper())
        query = query.where(or_(Report.description.ilike(pattern, escape="\\"),
                                Report.location_text.ilike(pattern, escape="\\"),
                                Report.public_note.ilike(pattern, escape="\\"),
                                Report.unit_id.ilike(pattern, escape="\\"),
                                Report.ticket.like(ticket, escape="\\")))
    if "state" in filters:
        query = query.where(Report.state == filters["state"])
    if "category" in filters:
        query = query.where(Report.category == filters["category"])
    if "severity" in filters:
        query = query.where(Report.severity == filters["severity"])
    if "unit" in filters:
        query = query.where(Report.unit_id == filters["unit"])
    if since := _parse_date(filters.get("dari", "")):
        start = dt.datetime.combine(since, dt.time(), tz).astimezone(dt.UTC).replace(tzinfo=None)
        query = query.where(Report.received_at >= start)
    if until := _parse_date(filters.get("sampai", "")):
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tz)
        query = query.where(Report.received_at < end.astimezone(dt.UTC).replace(tzinfo=None))
    if filters.get("mine") == "1":
        query = query.where(Report.assigned_to == user_id)
    if filters.get("overdue") == "1":
        limits, now = overdue_limits(), utcnow()
        query = query.where(Report.state.in_(triage.WAITING_STATES), or_(*(
            and_(Report.severity == level,
                 Report.received_at <= now - dt.timedelta(minutes=limits.minutes(level)))
            for level in severity.LEVELS)))
    return query


def sorted_query(query, sort: str, direction: str):
    column, _first = SORTS[sort]
    order = column.desc() if direction == "desc" else column.asc()
    tiebreak = Report.received_at.desc() if sort != "diterima" and sort != "umur" else Report.id
    return (query.outerjoin(User, User.id == Report.assigned_to)
            .order_by(order, tiebreak, Report.id))


def queue_rows(reports: list[Report]) -> list[dict]:
    """What each queue row shows besides the report itself: assignee, age, overdue, duplicates."""
    db = get_db()
    now, limits = utcnow(), overdue_limits()
    ids = {r.assigned_to for r in reports if r.assigned_to}
    people = {u.id: u.label for u in db.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    dups: dict[str, list[str]] = {}
    tickets: dict[str, str] = {}
    if reports:
        start = min(r.occurred_at for r in reports) - triage.DUPLICATE_WINDOW
        end = max(r.occurred_at for r in reports) + triage.DUPLICATE_WINDOW
        near = list(db.execute(select(Report.id, Report.ticket, Report.category, Report.location_text,
                                      Report.occurred_at)
                               .where(Report.category.in_({r.category for r in reports}),
                                      Report.occurred_at >= start, Report.occurred_at <= end)
                               .limit(5000)).all())
        tickets = {row.id: row.ticket for row in near}
        dups = triage.duplicates(
            [triage.Seen(r.id, r.category, r.location_text, r.occurred_at) for r in reports],
            [triage.Seen(row.id, row.category, row.location_text, row.occurred_at) for row in near])
    return [{
        "report": r,
        "assignee": people.get(r.assigned_to, ""),
        "age_s": int(triage.age_s(r.received_at, now)),
        "overdue": triage.is_overdue(r.state, r.severity, r.received_at, now, limits),
        "received_epoch": int(r.received_at.replace(tzinfo=dt.UTC).timestamp()),
        "overdue_epoch": int(triage.overdue_at(r.received_at, r.severity, limits)
                             .replace(tzinfo=dt.UTC).timestamp()),
        "waiting": r.state in triage.WAITING_STATES,
        "duplicates": [tickets.get(i, "") for i in dups.get(r.id, [])],
        "duplicate_ids": dups.get(r.id, []),
    } for r in reports]


@bp.get("/laporan")
@requires_role("operator")
def queue():
    db = get_db()
    hub = _settings().hub
    args = request.args
    filters = queue_filters(args)
    sort = args.get("sort", "") if args.get("sort", "") in SORTS else DEFAULT_SORT
    direction = args.get("dir", "") if args.get("dir", "") in ("asc", "desc") else SORTS[sort][1]
    query = filtered_query(filters, current_user.id)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, math.ceil(total / hub.page_size))
    try:
        page = min(max(1, int(args.get("page", "1"))), pages)
    except ValueError:
        page = 1
    reports = list(db.scalars(sorted_query(query, sort, direction)
                              .offset((page - 1) * hub.page_size).limit(hub.page_size)))
    unit_ids = list(db.scalars(select(Unit.id).order_by(Unit.id)))
    default_order = sort == DEFAULT_SORT and direction == SORTS[sort][1]
    listing = dict(filters)
    if not default_order:
        listing.update(sort=sort, dir=direction)
    return render_template("dashboard/queue.html", rows=queue_rows(reports), total=total, page=page,
                           pages=pages, filters=filters, listing=listing, sort=sort,
                           direction=direction, sorts=SORTS, states=STATES,
                           categories=CATEGORIES, severities=severity.LEVELS, unit_ids=unit_ids,
                           limits=overdue_limits(), now_epoch=int(time.time()),
                           live=(page == 1 and not filters and default_order))


@bp.get("/laporan/<report_id>/baris")
@requires_role("operator")
def queue_row(report_id: str):
    """One queue row (server-rendered, escaped) for a report that just arrived live."""
    report = _report_or_404(report_id)
    return render_template("dashboard/_row.html", row=queue_rows([report])[0])


def _report_or_404(report_id: str) -> Report:
    try:
        report_id = str(uuid.UUID(report_id))
    except ValueError:
        abort(404)
    report = get_db().get(Report, report_id)
    if report is None:
        abort(404)
    return report


def _prank_count(report: Report) -> int:
    """Reports from this report's phone rejected as 'laporan palsu' since its last lifted
    block (the count that blocks the number at [hub] prank_block_count)."""
    db = get_db()
    key = report.phone_key
    if not key:
        return 0
    last_lift = db.scalar(select(func.max(PhoneBlock.lifted_at)).where(PhoneBlock.phone_key == key))
    query = select(func.count()).select_from(Report).where(
        Report.phone_key == key, Report.state == "ditolak", Report.reject_reason == PRANK_REASON)
    if last_lift is not None:
        query = query.where(Report.updated_at > last_lift)
    return db.scalar(query) or 0


def _is_blocked(report: Report) -> bool:
    return report.phone_key is not None and get_db().scalar(
        select(PhoneBlock.id).where(PhoneBlock.phone_key == report.phone_key,
                                    PhoneBlock.lifted_at.is_(None))) is not None


def _render_report(report: Report):
    db = get_db()
    trail = list(db.scalars(select(AuditEntry).where(AuditEntry.report_id == report.id)
                            .order_by(AuditEntry.at, AuditEntry.id)))
    notes = list(db.scalars(select(ReportNote).where(ReportNote.report_id == report.id)
                            .order_by(ReportNote.at, ReportNote.id)))
    have = set(db.scalars(select(Photo.sha256).where(Photo.sha256.in_(list(report.photos or [])))))
    officers = list(db.scalars(select(User).where(User.active.is_(True)).order_by(User.username)))
    assignee = db.get(User, report.assigned_to) if report.assigned_to else None
    may_see = has_role(current_user, "supervisor")
    prank = {"count": _prank_count(report), "limit": _settings().hub.prank_block_count,
             "has_phone": report.phone_key is not None, "blocked": _is_blocked(report)}
    row = queue_rows([report])[0]
    response = Response(render_template(
        "dashboard/report.html", report=report, trail=trail, notes=notes, row=row,
        photos=list(report.photos or []), have_photos=have, officers=officers, assignee=assignee,
        next_states=next_states(report.state), reject_reasons=texts()["reject_reasons"],
        show_reporter=may_see and session.get("revealed") == report.id, may_see_reporter=may_see,
        prank=prank, prank_reason=PRANK_REASON, templates=texts()["public_note_templates"],
        now=utcnow(),
    ))
    response.headers["Cache-Control"] = "no-store"  # may hold the reporter's phone
    return response


@bp.get("/laporan/<report_id>")
@requires_role("operator")
def report_page(report_id: str):
    return _render_report(_report_or_404(report_id))


def _back(report: Report):
    return redirect(url_for("dashboard.report_page", report_id=report.id)), 303


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@bp.post("/laporan/<report_id>/pelapor")
@requires_role("supervisor")
def reveal_reporter(report_id: str):
    """Show the reporter's name and phone on this report's view until the officer leaves
    it (other actions on the report keep it shown); every reveal goes to the audit trail."""
    report = _report_or_404(report_id)
    audit(report, "lihat_pelapor", "nama dan nomor telepon pelapor ditampilkan")
    get_db().commit()
    session["revealed"] = report.id
    return _back(report)


@bp.post("/laporan/<report_id>/status")
@requires_role("operator")
def change_state(report_id: str):
    """Move a report to another state. The public note follows: it becomes the new state's
    first template. Answers JSON to a script asking for it (the queue's `v` key), else
    redirects back to the report."""
    db = get_db()
    report = _report_or_404(report_id)
    target = request.form.get("state", "")
    reason = request.form.get("reason", "").strip()[:200]
    extra = request.form.get("reason_text", "").strip()[:500]

    def refuse(text: str):
        if _wants_json():
            return jsonify({"ok": False, "error": "state", "message": text}), 409
        flash(text, "error")
        return _back(report)

    if target == "ditolak" and reason not in texts()["reject_reasons"]:
        return refuse("Pilih alasan penolakan.")
    try:
        check_transition(report.state, target, reason)
    except BadTransition:
        return refuse(f"Laporan berstatus {label('states', report.state)} tidak dapat diubah menjadi "
                      f"{label('states', target)}.")
    before = report.state
    report.state = target
    report.updated_at = utcnow()
    detail = f"{label('states', before)} → {label('states', target)}"
    if target == "ditolak":
        report.reject_reason = reason
        detail += f" (alasan: {reason}{'; ' + extra if extra else ''})"
    audit(report, "status", detail)
    note = texts()["public_note_templates"].get(target, [""])[0]
    if note != report.public_note:
        report.public_note = note
        audit(report, "catatan_publik", f"{note or '(dihapus)'} (mengikuti status)")
    # Every open dashboard sees the move (queue rows and the report's own page), so two
    # officers on a shift do not work the same report unknowingly.
    db.add(Event(kind="report_state", at=utcnow(), data={
        "id": report.id, "state": target, "state_label": label("states", target),
        "by": current_user.label}))
    blocked = 0
    if target == "ditolak" and reason == PRANK_REASON and report.phone_key:
        db.flush()
        blocked = _maybe_block(report)
    db.commit()
    done = f"Status diubah menjadi {label('states', target)}."
    if _wants_json():
        return jsonify({"ok": True, "state": target, "state_label": label("states", target),
                        "message": done, "blocked": bool(blocked)})
    flash(done, "ok")
    if blocked:
        flash(f"Nomor pelapor kini DIBLOKIR: ini laporan palsu ke-{blocked} dari nomor itu. "
              "Nomor itu tidak dapat melapor lewat kiosk sampai supervisor mencabut blokir "
              "di halaman Blokir.", "warn")
    return _back(report)


def _maybe_block(report: Report) -> int:
    """Block the phone after N reports rejected as 'laporan palsu' since its last lifted
    block; returns that count when this call blocked it, else 0."""
    db = get_db()
    if _is_blocked(report):
        return 0
    count = _prank_count(report)
    if count >= _settings().hub.prank_block_count:
        db.add(PhoneBlock(phone_key=report.phone_key, phone=report.reporter_phone, created_at=utcnow(),
                          reason=f"{count} laporan ditolak sebagai laporan palsu", lifted_by=""))
        audit(report, "blokir", f"nomor pelapor diblokir setelah {count} laporan palsu")
        return count
    return 0


@bp.post("/laporan/<report_id>/catatan")
@requires_role("operator")
def add_note(report_id: str):
    """Add a note to the report's thread (the audit trail records that one was added)."""
    report = _report_or_404(report_id)
    text = request.form.get("text", "").strip()
    if not text:
        flash("Catatan: kosong, tidak disimpan.", "error")
        return _render_report(report), 400
    db = get_db()
    db.add(ReportNote(report_id=report.id, author=current_user.username, text=text[:2000], at=utcnow()))
    audit(report, "catatan", "catatan ditambahkan ke utas")
    report.updated_at = utcnow()
    db.commit()
    flash("Catatan disimpan.", "ok")
    return _back(report)


@bp.post("/laporan/<report_id>/catatan-publik")
@requires_role("operator")
def set_public_note(report_id: str):
    """The note a resident reads at the ticket check: a template of the report's state
    (`template` = its index) or the officer's own words (`text`)."""
    report = _report_or_404(report_id)
    choices = texts()["public_note_templates"].get(report.state, [])
    raw = request.form.get("template", "")
    if raw and raw != "sendiri":
        try:
            text = choices[int(raw)]
        except (ValueError, IndexError):
            flash("Templat catatan untuk pelapor: tidak dikenal.", "error")
            return _render_report(report), 400
    else:
        text = request.form.get("text", "").strip()[:500]
    report.public_note = text
    report.updated_at = utcnow()
    audit(report, "catatan_publik", text or "(dihapus)")
    get_db().commit()
    flash("Catatan untuk pelapor disimpan.", "ok")
    return _back(report)


@bp.post("/laporan/<report_id>/tugas")
@requires_role("operator")
def assign(report_id: str):
    db = get_db()
    report = _report_or_404(report_id)
    raw = request.form.get("user_id", "")
    officer = None
    if raw:
        try:
            officer = db.get(User, int(raw))
        except ValueError:
            officer = None
        if officer is None:
            flash("Petugas tidak ditemukan.", "error")
            return redirect(url_for("dashboard.report_page", report_id=report.id)), 303
    report.assigned_to = officer.id if officer else None
    report.updated_at = utcnow()
    audit(report, "penugasan", f"ditugaskan kepada {officer.label}" if officer else "penugasan dilepas")
    db.commit()
    flash("Penugasan disimpan.", "ok")
    return redirect(url_for("dashboard.report_page", report_id=report.id)), 303


@bp.get("/foto/<sha256>")
@requires_role("operator")
def photo(sha256: str):
    item = get_db().get(Photo, sha256) if is_sha256(sha256) else None
    if item is None:
        abort(404)
    response = Response(item.data, mimetype=item.mime)
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


@bp.get("/grafik")
@requires_role("operator")
def charts():
    return render_template("dashboard/charts.html")


@bp.get("/grafik/data.json")
@requires_role("operator")
def chart_data():
    """Reports per hour over the last 48 h (display time zone) and per category."""
    db = get_db()
    tz = ZoneInfo(_settings().hub.display_tz)
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    start = now - dt.timedelta(hours=47)
    hours = [start + dt.timedelta(hours=i) for i in range(48)]
    counts = Counter(t.replace(minute=0, second=0, microsecond=0)
                     for t in db.scalars(select(Report.received_at).where(Report.received_at >= start)))
    per_category = dict(db.execute(select(Report.category, func.count()).group_by(Report.category)).all())
    return jsonify({
        "hours": {"labels": [h.replace(tzinfo=dt.UTC).astimezone(tz).strftime("%d/%m %H:00") for h in hours],
                  "counts": [counts.get(h, 0) for h in hours]},
        "categories": {"keys": list(CATEGORIES),
                       "labels": [label("categories", c) for c in CATEGORIES],
                       "counts": [per_category.get(c, 0) for c in CATEGORIES]},
    })


@bp.get("/blokir")
@requires_role("supervisor")
def blocks():
    db = get_db()
    rows = list(db.scalars(select(PhoneBlock).order_by(PhoneBlock.lifted_at.is_not(None),
                                                       PhoneBlock.created_at.desc()).limit(500)))
    return render_template("dashboard/blocks.html", blocks=rows)


@bp.post("/blokir/<int:block_id>/cabut")
@requires_role("supervisor")
def lift_block(block_id: int):
    db = get_db()
    block = db.get(PhoneBlock, block_id)
    if block is None:
        abort(404)
    if block.lifted_at is None:
        block.lifted_at = utcnow()
        block.lifted_by = current_user.username
        audit(None, "cabut_blokir", f"blokir nomor {block.phone} dicabut")
        db.commit()
        flash(f"Blokir nomor {block.phone} dicabut.", "ok")
    return redirect(url_for("dashboard.blocks")), 303


@bp.get("/jejak-audit")
@requires_role("supervisor")
def hub_audit():
    """The hub-wide audit trail (entries not about one report: exports, lifted blocks, posko
    positions), newest first."""
    action = request.args.get("action", "")
    query = select(AuditEntry).where(AuditEntry.report_id.is_(None))
    if action in texts()["audit_actions"]:
        query = query.where(AuditEntry.action == action)
    entries = list(get_db().scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(500)))
    return render_template("dashboard/audit.html", entries=entries, action=action,
                           actions=texts()["audit_actions"])
