"""Officers' report queue, report page, workflow, notes, assignment, charts and phone blocks."""

from __future__ import annotations

import datetime as dt
import math
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
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select

from hub.auth import has_role, requires_role
from hub.db import get_db
from hub.models import AuditEntry, PhoneBlock, Photo, Report, Unit, User, utcnow
from hub.texts import label, texts
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


@bp.get("/")
@requires_role("operator")
def home():
    return redirect(url_for("dashboard.queue"))


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@bp.get("/laporan")
@requires_role("operator")
def queue():
    db = get_db()
    hub = _settings().hub
    tz = ZoneInfo(hub.display_tz)
    args = request.args
    state, category, unit = args.get("state", ""), args.get("category", ""), args.get("unit", "")
    since, until = _parse_date(args.get("dari", "")), _parse_date(args.get("sampai", ""))
    query = select(Report)
    if state in STATES:
        query = query.where(Report.state == state)
    if category in CATEGORIES:
        query = query.where(Report.category == category)
    if unit and is_unit_id(unit):
        query = query.where(Report.unit_id == unit)
    if since:
        start = dt.datetime.combine(since, dt.time(), tz).astimezone(dt.UTC).replace(tzinfo=None)
        query = query.where(Report.received_at >= start)
    if until:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tz)
        query = query.where(Report.received_at < end.astimezone(dt.UTC).replace(tzinfo=None))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, math.ceil(total / hub.page_size))
    try:
        page = min(max(1, int(args.get("page", "1"))), pages)
    except ValueError:
        page = 1
    rows = list(db.scalars(query.order_by(Report.received_at.desc(), Report.id)
                           .offset((page - 1) * hub.page_size).limit(hub.page_size)))
    unit_ids = list(db.scalars(select(Unit.id).order_by(Unit.id)))
    filters = {k: v for k, v in {"state": state, "category": category, "unit": unit,
                                 "dari": args.get("dari", ""), "sampai": args.get("sampai", "")}.items() if v}
    return render_template("dashboard/queue.html", reports=rows, total=total, page=page,
                           pages=pages, filters=filters, states=STATES, categories=CATEGORIES,
                           unit_ids=unit_ids, live=(page == 1 and not filters))


def _report_or_404(report_id: str) -> Report:
    try:
        report_id = str(uuid.UUID(report_id))
    except ValueError:
        abort(404)
    report = get_db().get(Report, report_id)
    if report is None:
        abort(404)
    return report


def _render_report(report: Report, show_reporter: bool = False):
    db = get_db()
    trail = list(db.scalars(select(AuditEntry).where(AuditEntry.report_id == report.id)
                            .order_by(AuditEntry.at, AuditEntry.id)))
    have = set(db.scalars(select(Photo.sha256).where(Photo.sha256.in_(list(report.photos or [])))))
    officers = list(db.scalars(select(User).where(User.active.is_(True)).order_by(User.username)))
    assignee = db.get(User, report.assigned_to) if report.assigned_to else None
    return render_template(
        "dashboard/report.html", report=report, trail=trail, photos=list(report.photos or []),
        have_photos=have, officers=officers, assignee=assignee, next_states=next_states(report.state),
        reject_reasons=texts()["reject_reasons"], show_reporter=show_reporter,
        may_see_reporter=has_role(current_user, "supervisor"),
    )


@bp.get("/laporan/<report_id>")
@requires_role("operator")
def report_page(report_id: str):
    return _render_report(_report_or_404(report_id))


@bp.post("/laporan/<report_id>/pelapor")
@requires_role("supervisor")
def reveal_reporter(report_id: str):
    """Show the reporter's name and phone; every view goes to the audit trail."""
    report = _report_or_404(report_id)
    audit(report, "lihat_pelapor", "nama dan nomor telepon pelapor ditampilkan")
    get_db().commit()
    response = Response(_render_report(report, show_reporter=True))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/laporan/<report_id>/status")
@requires_role("operator")
def change_state(report_id: str):
    db = get_db()
    report = _report_or_404(report_id)
    target = request.form.get("state", "")
    reason = request.form.get("reason", "").strip()[:200]
    extra = request.form.get("reason_text", "").strip()[:500]
    if target == "ditolak" and reason not in texts()["reject_reasons"]:
        flash("Pilih alasan penolakan.", "error")
        return redirect(url_for("dashboard.report_page", report_id=report.id)), 303
    try:
        check_transition(report.state, target, reason)
    except BadTransition:
        flash("Perubahan status itu tidak diperbolehkan.", "error")
        return redirect(url_for("dashboard.report_page", report_id=report.id)), 303
    before = report.state
    report.state = target
    report.updated_at = utcnow()
    detail = f"{label('states', before)} → {label('states', target)}"
    if target == "ditolak":
        report.reject_reason = reason
        detail += f" (alasan: {reason}{'; ' + extra if extra else ''})"
    audit(report, "status", detail)
    if target == "ditolak" and reason == PRANK_REASON and report.phone_key:
        db.flush()
        _maybe_block(report)
    db.commit()
    flash(f"Status diubah menjadi {label('states', target)}.", "ok")
    return redirect(url_for("dashboard.report_page", report_id=report.id)), 303


def _maybe_block(report: Report) -> None:
    """Block the phone after N reports rejected as 'laporan palsu' since its last lifted block."""
    db = get_db()
    key = report.phone_key
    if db.scalar(select(PhoneBlock.id).where(PhoneBlock.phone_key == key, PhoneBlock.lifted_at.is_(None))):
        return
    last_lift = db.scalar(select(func.max(PhoneBlock.lifted_at)).where(PhoneBlock.phone_key == key))
    query = select(func.count()).select_from(Report).where(
        Report.phone_key == key, Report.state == "ditolak", Report.reject_reason == PRANK_REASON)
    if last_lift is not None:
        query = query.where(Report.updated_at > last_lift)
    count = db.scalar(query) or 0
    limit = _settings().hub.prank_block_count
    if count >= limit:
        db.add(PhoneBlock(phone_key=key, phone=report.reporter_phone, created_at=utcnow(),
                          reason=f"{count} laporan ditolak sebagai laporan palsu", lifted_by=""))
        audit(report, "blokir", f"nomor pelapor diblokir setelah {count} laporan palsu")


@bp.post("/laporan/<report_id>/catatan")
@requires_role("operator")
def add_note(report_id: str):
    report = _report_or_404(report_id)
    text = request.form.get("text", "").strip()
    if not text:
        flash("Catatan kosong tidak disimpan.", "error")
    else:
        audit(report, "catatan", text[:2000])
        report.updated_at = utcnow()
        get_db().commit()
        flash("Catatan disimpan.", "ok")
    return redirect(url_for("dashboard.report_page", report_id=report.id)), 303


@bp.post("/laporan/<report_id>/catatan-publik")
@requires_role("operator")
def set_public_note(report_id: str):
    report = _report_or_404(report_id)
    text = request.form.get("text", "").strip()[:500]
    report.public_note = text
    report.updated_at = utcnow()
    audit(report, "catatan_publik", text or "(dihapus)")
    get_db().commit()
    flash("Catatan untuk pelapor disimpan.", "ok")
    return redirect(url_for("dashboard.report_page", report_id=report.id)), 303


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
