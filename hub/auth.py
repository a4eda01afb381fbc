"""Officer login: argon2 password hashes, roles, backoff after failed logins.

Other blueprints protect views with `@requires_role("operator" | "supervisor" | "admin")`;
a higher role may do everything a lower one may.
"""

from __future__ import annotations

import datetime as dt
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from hub.db import get_db
from hub.models import User, utcnow
from posko.errors import PoskoError

# kb_editor: edits the knowledge base (hub/kb_editor.py); ranks above an operator, so
# supervisors and admins may edit and review too.
ROLES = ("operator", "kb_editor", "supervisor", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Silakan masuk terlebih dahulu."
login_manager.session_protection = "strong"
_hasher = PasswordHasher()


class UserError(PoskoError, ValueError):
    """A user account that cannot be made."""


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    try:
        user = get_db().get(User, int(user_id))
    except ValueError:
        return None
    return user if user is not None and user.active else None


def has_role(user, role: str) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and _RANK.get(user.role, -1) >= _RANK[role]


def requires_role(role: str):
    """Decorator: the view needs a logged-in user of at least `role` (else login or 403)."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not has_role(current_user, role):
                abort(403)
            return view(*args, **kwargs)

        return inner

    return wrap


login_required = requires_role("operator")


def create_user(session: Session, username: str, password: str, role: str,
                display_name: str = "") -> User:
    """Add an officer (committed). Raises UserError for a bad role, name or password."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    username = username.strip()
    if not username or len(username) > 64:
        raise UserError("user name must be 1-64 characters")
    if len(password) < 10:
        raise UserError("password must be at least 10 characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username} exists already")
    user = User(username=username, display_name=display_name or username,
                password_hash=_hasher.hash(password), role=role, active=True,
                failed_logins=0, created_at=utcnow())
    session.add(user)
    session.commit()
    return user


def wait_seconds(user: User, after: int, max_s: int, now: dt.datetime) -> int:
    """How long this user must still wait before the next try (0: may try now)."""
    if user.failed_logins < after or user.last_failed_at is None:
        return 0
    delay = min(2 ** (user.failed_logins - after), max_s)
    left = (user.last_failed_at + dt.timedelta(seconds=delay) - now).total_seconds()
    return max(0, int(left + 0.999))


class LoginForm(FlaskForm):
    username = StringField("Nama pengguna", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Kata sandi", validators=[DataRequired(), Length(max=256)])


@bp.route("/masuk", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        hub = current_app.config["POSKO_SETTINGS"].hub
        db = get_db()
        name = form.username.data.strip().replace("\x00", "")
        user = db.scalar(select(User).where(User.username == name))
        now = utcnow()
        wait = wait_seconds(user, hub.login_backoff_after, hub.login_backoff_max_s, now) if user else 0
        if wait:
            flash(f"Terlalu banyak percobaan gagal. Coba lagi dalam {wait} detik.", "error")
            return render_template("auth/login.html", form=form), 429
        if user is not None and user.active and _verify(user, form.password.data):
            user.failed_logins = 0
            user.last_failed_at = None
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(form.password.data)
            db.commit()
            login_user(user, remember=False)
            target = request.args.get("next", "")
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("dashboard.queue")
            return redirect(target)
        if user is not None:
            user.failed_logins += 1
            user.last_failed_at = now
            db.commit()
        flash("Nama pengguna atau kata sandi salah.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


def _verify(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@bp.post("/keluar")
def logout():
    logout_user()
    flash("Anda sudah keluar.", "info")
    return redirect(url_for("auth.login"))
