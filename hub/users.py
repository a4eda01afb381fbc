"""Dashboard accounts in the browser: an admin adds officers, sets roles, resets passwords
and disables accounts at /pengguna. Each change is written to the audit trail (no report),
and a password reset or a disabled account ends every session of that user at once.

The account functions (add_user, set_role, reset_password, set_active) commit and are
used by `posko hub users` too.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.auth import ROLES, UserError, create_user, end_user_sessions, requires_role, set_password
from hub.db import get_db
from hub.models import AuditEntry, User, utcnow

bp = Blueprint("users", __name__, url_prefix="/pengguna")

ACTIONS = ("pengguna_tambah", "pengguna_peran", "pengguna_sandi", "pengguna_nonaktif",
           "pengguna_aktif")


def _audit(db: Session, actor: str, action: str, detail: str) -> None:
    db.add(AuditEntry(report_id=None, actor=actor[:64], action=action, detail=detail, at=utcnow()))


def _active_admins(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(User)
                     .where(User.role == "admin", User.active.is_(True))) or 0


def add_user(db: Session, username: str, password: str, role: str, display_name: str,
             actor: str) -> User:
    """A new officer (committed, audited). Raises UserError for a bad name, role or password."""
    user = create_user(db, username, password, role, display_name)
    _audit(db, actor, "pengguna_tambah", f"{user.username} ({role})")
    db.commit()
    return user


def set_role(db: Session, user: User, role: str, actor: str) -> None:
    """Change a role (committed, audited). Raises UserError for an unknown role or when
    the last active admin would lose the role."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if user.role == role:
        return
    if user.role == "admin" and user.active and _active_admins(db) <= 1:
        raise UserError("the last active admin keeps the admin role")
    old, user.role = user.role, role
    _audit(db, actor, "pengguna_peran", f"{user.username}: {old} -> {role}")
    db.commit()


def reset_password(db: Session, user: User, password: str, actor: str) -> int:
    """New password (committed, audited); ends the user's sessions, returns how many.
    Raises UserError for a weak password."""
    ended = set_password(db, user, password)
    _audit(db, actor, "pengguna_sandi", f"{user.username}: {ended} sesi diakhiri")
    db.commit()
    return ended


def set_active(db: Session, user: User, active: bool, actor: str) -> None:
    """Enable or disable an account (committed, audited); disabling ends its sessions.
    Raises UserError when the last active admin would be disabled."""
    if user.active == active:
        return
    if not active and user.role == "admin" and _active_admins(db) <= 1:
        raise UserError("the last active admin cannot be disabled")
    user.active = active
    ended = 0 if active else end_user_sessions(db, user.id)
    _audit(db, actor, "pengguna_aktif" if active else "pengguna_nonaktif",
           user.username if active else f"{user.username}: {ended} sesi diakhiri")
    db.commit()


def _actor() -> str:
    return current_user.username


def _page(status: int = 200, problem: str | None = None, field: str | None = None,
          form: dict | None = None):
    db = get_db()
    users = list(db.scalars(select(User).order_by(User.active.desc(), User.username)))
    log = list(db.scalars(select(AuditEntry).where(AuditEntry.action.in_(ACTIONS))
                          .order_by(AuditEntry.id.desc()).limit(50)))
    return render_template("users/list.html", users=users, log=log, roles=ROLES,
                           problem=problem, field=field, form=form or {}), status


# UserError texts are English (CLI); the page names the field in Indonesian.
_PROBLEMS = {
    "user name": ("username", "Nama pengguna harus 1–64 karakter dan belum dipakai."),
    "exists": ("username", "Nama pengguna ini sudah dipakai."),
    "password": ("password", "Kata sandi minimal 10 karakter."),
    "role": ("role", "Peran tidak dikenal."),
    "display name": ("display_name", "Nama tampilan paling banyak 128 karakter."),
    "last active admin": ("role", "Admin aktif terakhir tidak boleh dinonaktifkan atau diturunkan."),
}


def _problem(exc: UserError) -> tuple[str, str]:
    text = str(exc)
    for needle, (field, words) in _PROBLEMS.items():
        if needle in text:
            return field, words
    return "", text


@bp.get("")
@requires_role("admin")
def index():
    return _page()


@bp.post("/tambah")
@requires_role("admin")
def add():
    form = {k: request.form.get(k, "") for k in ("username", "display_name", "role")}
    try:
        user = add_user(get_db(), form["username"], request.form.get("password", ""),
                        form["role"], form["display_name"].strip(), _actor())
    except UserError as exc:
        get_db().rollback()
        field, words = _problem(exc)
        return _page(400, words, field, form=form)
    flash(f"Pengguna {user.username} ditambahkan.", "info")
    return redirect(url_for("users.index"))


def _target(user_id: int) -> User:
    user = get_db().get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/<int:user_id>/peran")
@requires_role("admin")
def change_role(user_id: int):
    user = _target(user_id)
    try:
        set_role(get_db(), user, request.form.get("role", ""), _actor())
    except UserError as exc:
        get_db().rollback()
        field, words = _problem(exc)
        return _page(400, words, field)
    flash(f"Peran {user.username} sekarang {user.role}.", "info")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/sandi")
@requires_role("admin")
def reset(user_id: int):
    user = _target(user_id)
    if request.form.get("password", "") != request.form.get("password2", ""):
        return _page(400, "Kedua kata sandi tidak sama.", "password")
    try:
        ended = reset_password(get_db(), user, request.form.get("password", ""), _actor())
    except UserError as exc:
        get_db().rollback()
        field, words = _problem(exc)
        return _page(400, words, field)
    if user.id == current_user.id:  # the admin's own session ended with the others
        return redirect(url_for("auth.login"))
    flash(f"Kata sandi {user.username} diganti; {ended} sesi diakhiri.", "info")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/aktif")
@requires_role("admin")
def toggle_active(user_id: int):
    user = _target(user_id)
    active = request.form.get("active") == "1"
    if not active and user.id == current_user.id:
        return _page(400, "Anda tidak dapat menonaktifkan akun Anda sendiri.", "active")
    try:
        set_active(get_db(), user, active, _actor())
    except UserError as exc:
        get_db().rollback()
        field, words = _problem(exc)
        return _page(400, words, field)
    state = "diaktifkan" if active else "dinonaktifkan; semua sesinya diakhiri"
    flash(f"Akun {user.username} {state}.", "info")
    return redirect(url_for("users.index"))
