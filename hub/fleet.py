"""Fleet page: every unit, online or offline, last seen, version, outbox, disk; admins
add units, revoke or rotate their tokens and change their broker passwords here. It also shows what would otherwise be
silent: a second machine using one unit's id, and report bodies the hub refused (kept in
the quarantine, readable here by officers)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from hub import unit_logins, units
from hub.auth import requires_role
from hub.db import get_db
from hub.kb import read_current
from hub.models import Quarantine, Unit, utcnow

bp = Blueprint("fleet", __name__)


def is_online(unit: Unit, now: dt.datetime, factor: float) -> bool:
    """Online: its last heartbeat said so and it is younger than factor × its interval."""
    if unit.status != "online" or unit.last_seen_at is None:
        return False
    return now - unit.last_seen_at <= dt.timedelta(seconds=factor * max(unit.interval_s, 1.0))


def _rows():
    hub = current_app.config["POSKO_SETTINGS"].hub
    now = utcnow()
    return [(u, is_online(u, now, hub.heartbeat_offline_factor)) for u in units.list_units(get_db())]


def _kb_current() -> str:
    """The version of the KB bundle in use (hub/kb.py), "" when none was published."""
    current = read_current(current_app.config["POSKO_SETTINGS"])
    return current.version if current else ""


def _page(template: str, **extra):
    """The fleet page or its table, with every unit's row and what flags it."""
    return render_template(template, rows=_rows(), quarantined=_quarantined(), kb_current=_kb_current(),
                           disk_low_mb=current_app.config["POSKO_SETTINGS"].hub.fleet_disk_low_mb, **extra)


def _quarantined() -> dict[str, int]:
    """Refused report bodies per unit id."""
    rows = get_db().execute(select(Quarantine.unit_id, func.count()).group_by(Quarantine.unit_id))
    return {unit_id: count for unit_id, count in rows}


@bp.get("/armada")
@requires_role("operator")
def fleet():
    return _page("fleet/fleet.html", new_code=None)


@bp.get("/armada/tabel")
@requires_role("operator")
def table():
    return _page("fleet/_table.html")


@bp.get("/armada/karantina")
@requires_role("operator")
def quarantine():
    """Every refused report body, newest first: what the kiosk sent and why it was refused."""
    items = list(get_db().scalars(select(Quarantine).order_by(Quarantine.last_at.desc()).limit(200)))
    return render_template("fleet/quarantine.html", items=items)


@bp.get("/armada/karantina/<int:item_id>")
@requires_role("operator")
def quarantine_item(item_id: int):
    item = get_db().get(Quarantine, item_id)
    if item is None:
        abort(404)
    return render_template("fleet/quarantine.html", items=[item], one=True)


@bp.post("/armada/tambah")
@requires_role("admin")
def add():
    hub = current_app.config["POSKO_SETTINGS"].hub
    unit_id = request.form.get("unit_id", "").strip()
    name = request.form.get("name", "").strip()[:128]
    try:
        code = units.add_unit(get_db(), unit_id, name, hub.enrol_code_valid_h)
    except units.UnitError as exc:
        get_db().rollback()
        flash(f"Unit tidak dapat ditambahkan: {exc}", "error")
        return redirect(url_for("fleet.fleet")), 303
    return _page("fleet/fleet.html", new_code=(unit_id, code, hub.enrol_code_valid_h))


@bp.post("/armada/<unit_id>/rotasi")
@requires_role("admin")
def rotate(unit_id: str):
    hub = current_app.config["POSKO_SETTINGS"].hub
    try:
        code = units.rotate(get_db(), unit_id, hub.enrol_code_valid_h)
    except units.UnitError as exc:
        flash(str(exc), "error")
        return redirect(url_for("fleet.fleet")), 303
    return _page("fleet/fleet.html", new_code=(unit_id, code, hub.enrol_code_valid_h))


@bp.post("/armada/<unit_id>/cabut")
@requires_role("admin")
def revoke(unit_id: str):
    try:
        units.revoke(get_db(), unit_id)
    except units.UnitError as exc:
        flash(str(exc), "error")
        return redirect(url_for("fleet.fleet")), 303
    try:
        unit_logins.resync(get_db(), current_app.config["POSKO_SETTINGS"])
        flash(f"Token unit {unit_id} dicabut; login broker-nya dihapus.", "ok")
    except (OSError, ValueError) as exc:
        current_app.logger.error("revoking %s: broker not updated: %s", unit_id, exc)
        flash(f"Token unit {unit_id} dicabut, tetapi broker belum dimuat ulang ({exc.__class__.__name__}): "
              "login broker-nya masih berlaku sampai broker dimuat ulang.", "error")
    return redirect(url_for("fleet.fleet")), 303


@bp.post("/armada/<unit_id>/sandi-broker")
@requires_role("admin")
def rotate_broker(unit_id: str):
    """A new broker password for the unit: the old one is refused at once (the broker reloads);
    the unit fetches its new one over HTTPS (hub/unit_logins.py)."""
    settings = current_app.config["POSKO_SETTINGS"]
    if not unit_logins.managed(settings):
        flash("Hub tidak mengelola login broker (ptt.broker_password_file kosong).", "error")
        return redirect(url_for("fleet.fleet")), 303
    try:
        unit_logins.drop(get_db(), settings, unit_id)
    except units.UnitError as exc:
        flash(str(exc), "error")
        return redirect(url_for("fleet.fleet")), 303
    except (OSError, ValueError) as exc:
        current_app.logger.error("broker password of %s: broker not updated: %s", unit_id, exc)
        flash(f"Sandi broker {unit_id} dihapus di hub, tetapi broker belum dimuat ulang "
              f"({exc.__class__.__name__}); sandi lama masih berlaku sampai broker dimuat ulang.", "error")
        return redirect(url_for("fleet.fleet")), 303
    flash(f"Sandi broker unit {unit_id} diganti: sandi lama ditolak mulai sekarang; unit mengambil "
          f"sandi barunya sendiri dalam {settings.unit.broker_login_check_s} detik.", "ok")
    return redirect(url_for("fleet.fleet")), 303
