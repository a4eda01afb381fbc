"""Officer login: argon2 password hashes, roles, revocable sessions, login throttling.

Other blueprints protect views with `@requires_role("operator" | "supervisor" | "admin")`;
a higher role may do everything a lower one may.

Sessions live on the hub (`user_sessions`): the signed cookie holds only a random session
id, and every request looks it up. Logging out deletes that row, so a copied cookie dies
with it; a password change or a disabled account deletes all of the user's rows.

Login answers the same, in the same time, for a name that exists and one that does not
(an unknown name is checked against a dummy argon2 hash), and failures are throttled by
client (per client, and per client and name) but never by name alone, so nobody can lock
an officer out from somewhere else.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import DateTime, ForeignKey, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from hub import offload, throttle
from hub.db import Base, get_db, sessions
from hub.models import AuditEntry, User, utcnow
from posko.errors import PoskoError

# kb_editor: edits the knowledge base (hub/kb_editor.py); ranks above an operator, so
# supervisors and admins may edit and review too.
ROLES = ("operator", "kb_editor", "supervisor", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}
SID_KEY = "sid"  # the Flask session's key for the hub-side session id
MIN_PASSWORD = 10
# An open page warns this long before its session ends, so an officer on a 12-hour shift can
# carry on with the password instead of being sent to the login in the middle of a call.
SESSION_WARN_S = 15 * 60

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Silakan masuk terlebih dahulu."
login_manager.session_protection = "strong"
_hasher = PasswordHasher()


class UserError(PoskoError, ValueError):
    """A user account that cannot be made or changed."""


class UserSession(Base):
    """One logged-in browser: the SHA-256 of its session id, whose, until when."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def start_session(db: Session, user_id: int, hours: int) -> str:
    """Record a new session for user_id (the caller commits); returns its secret id."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(UserSession(id=_sid_hash(sid), user_id=user_id, created_at=now,
                       expires_at=now + dt.timedelta(hours=hours)))
    db.execute(delete(UserSession).where(UserSession.expires_at < now))  # tidy as we go
    return sid


def end_session(db: Session, sid: str) -> None:
    """Forget one session (the caller commits)."""
    db.execute(delete(UserSession).where(UserSession.id == _sid_hash(sid)))


def end_user_sessions(db: Session, user_id: int) -> int:
    """Forget every session of a user, e.g. after a password reset (the caller commits).

    Returns how many ended.
    """
    return db.execute(delete(UserSession).where(UserSession.user_id == user_id)).rowcount or 0


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    sid = session.get(SID_KEY)
    if not isinstance(sid, str) or not sid:
        return None
    try:
        uid = int(user_id)
    except ValueError:
        return None
    row = get_db().execute(
        select(User, UserSession.expires_at).join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.id == _sid_hash(sid), User.id == uid)).first()
    if row is None:
        return None
    user, expires_at = row
    return user if user.active and expires_at > utcnow() else None


def stream_guard(role: str, every_s: float = 2.0) -> Callable[[], bool]:
    """For a long-lived response (a live stream): a callable that says whether the session
    that opened it still holds (not logged out, not ended by a password reset or a disabled
    account, not expired, the role still enough). Checked at most every `every_s`, each time
    with a fresh read of the database; call it from the stream's generator."""
    sid = session.get(SID_KEY)
    uid = getattr(current_user, "id", None)
    factory = sessions().reader
    state = {"at": time.monotonic(), "alive": isinstance(sid, str) and bool(sid) and uid is not None}

    def alive() -> bool:
        if not state["alive"]:
            return False
        now = time.monotonic()
        if now - state["at"] < every_s:
            return True
        state["at"] = now
        with factory() as db:
            row = db.execute(
                select(User, UserSession.expires_at).join(UserSession, UserSession.user_id == User.id)
                .where(UserSession.id == _sid_hash(sid), User.id == uid)).first()
            state["alive"] = (row is not None and row[0].active and row[1] > utcnow()
                              and has_role(row[0], role))
        return state["alive"]

    return alive


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


def check_password(password: str) -> None:
    """Raises UserError when a new password is too weak."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > 256:
        raise UserError("password must be at most 256 characters")


def hash_password(password: str) -> str:
    """argon2 hash of a new password (checked first; raises UserError)."""
    check_password(password)
    return offload.run(_hasher.hash, password)


def create_user(session: Session, username: str, password: str, role: str,
                display_name: str = "") -> User:
    """Add an officer (committed). Raises UserError for a bad role, name or password."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    username = username.strip()
    if not username or len(username) > 64 or any(ord(c) < 32 for c in username):
        raise UserError("user name must be 1-64 printable characters")
    if len(display_name) > 128:
        raise UserError("display name must be at most 128 characters")
    password_hash = hash_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username} exists already")
    user = User(username=username, display_name=display_name or username,
                password_hash=password_hash, role=role, active=True,
                failed_logins=0, created_at=utcnow())
    session.add(user)
    session.commit()
    return user


def set_password(session: Session, user: User, password: str) -> int:
    """New password for user; ends all of the user's sessions (the caller commits).

    Returns how many sessions ended. Raises UserError for a weak password.
    """
    user.password_hash = hash_password(password)
    return end_user_sessions(session, user.id)


def wait_seconds(user: User, after: int, max_s: int, now: dt.datetime) -> int:
    """How long this user must still wait before the next try (0: may try now)."""
    return throttle.backoff_wait(user.failed_logins or 0, user.last_failed_at, after, max_s, now)


@functools.cache
def _dummy_hash() -> str:
    """An argon2 hash nobody knows the password of, with the hasher's current parameters."""
    return _hasher.hash(secrets.token_hex(16))


def warm() -> None:
    """Make the dummy hash now, so the first unknown name is not slower than the rest."""
    _dummy_hash()


def _verify_hash(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    `/\\t/evil.example` and `/\\\\evil.example` lead off-site as `//evil.example` does:
    anything with control characters, spaces or backslashes is refused outright.
    """
    if not target or len(target) > 2000:
        return None
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in target) or "\\" in target:
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    # The path once more after percent-decoding: a proxy or framework that decodes it
    # must not find `//host` or a tab there either (the query may hold anything encoded).
    path = unquote(parts.path)
    if path.startswith("//") or "\\" in path or any(ord(c) < 0x21 or ord(c) == 0x7F for c in path):
        return None
    return target


class LoginForm(FlaskForm):
    username = StringField("Nama pengguna", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Kata sandi", validators=[DataRequired(), Length(max=256)])


def _client() -> str:
    return request.remote_addr or "unknown"


def login_limits(client: str, name: str) -> list[throttle.Limit]:
    """The login throttles of one try: per client, and per client and user name."""
    hub = current_app.config["POSKO_SETTINGS"].hub
    return [
        throttle.Limit(f"login-client:{client}", hub.login_client_fail_limit,
                       hub.login_client_window_s),
        throttle.Limit(f"login-pair:{client}:{name.casefold()}", 10 ** 9,
                       max(hub.login_backoff_max_s * 4, 3600),
                       backoff_after=hub.login_backoff_after, backoff_max_s=hub.login_backoff_max_s),
    ]


@bp.route("/masuk", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "POST" and not form.validate_on_submit():
        return render_template("auth/login.html", form=form, problem="invalid"), 400
    if request.method != "POST":
        return render_template("auth/login.html", form=form, problem=None), 200
    hub = current_app.config["POSKO_SETTINGS"].hub
    name = form.username.data.strip().replace("\x00", "")
    factories = sessions()
    limits = login_limits(_client(), name)
    # Counted before the password is checked, in one step: parallel tries cannot slip past.
    verdict = throttle.take(factories.writer, limits)
    if not verdict.allowed:
        response = current_app.make_response(
            (render_template("auth/login.html", form=form, problem="throttled",
                             wait=verdict.retry_after_s), 429))
        response.headers["Retry-After"] = str(verdict.retry_after_s)
        return response
    with factories.reader() as reader:
        found = reader.execute(select(User.id, User.password_hash, User.active)
                               .where(User.username == name)).first()
    # The same argon2 work for an unknown name as for a real one (same time, same answer).
    ok = offload.run(_verify_hash, found.password_hash if found else _dummy_hash(),
                     form.password.data)
    if found is None or not found.active or not ok:
        throttle.touch(factories.writer, [limits[1].key])
        return render_template("auth/login.html", form=form, problem="wrong"), 401
    throttle.clear(factories.writer, [limits[1].key])
    throttle.forgive(factories.writer, [limits[0].key])
    db = get_db()
    user = db.get(User, found.id)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = offload.run(_hasher.hash, form.password.data)
    sid = start_session(db, user.id, hub.session_hours)
    db.commit()
    session.clear()
    session[SID_KEY] = sid
    login_user(user, remember=False)
    return redirect(safe_next(request.args.get("next")) or url_for("dashboard.queue"))


@bp.post("/keluar")
def logout():
    sid = session.get(SID_KEY)
    if isinstance(sid, str) and sid:
        db = get_db()
        end_session(db, sid)
        db.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.login", out=1))


# --- the session's end, seen from an open page --------------------------------------------

def session_left_s() -> int | None:
    """Seconds until this browser's session ends; None when it has none."""
    sid = session.get(SID_KEY)
    if not isinstance(sid, str) or not sid:
        return None
    expires_at = get_db().scalar(select(UserSession.expires_at).where(UserSession.id == _sid_hash(sid)))
    if expires_at is None:
        return None
    return max(0, int((expires_at - utcnow()).total_seconds()))


@bp.app_context_processor
def _session_context() -> dict:
    return {"session_left_s": session_left_s, "session_warn_s": SESSION_WARN_S}


@bp.get("/sesi")
@login_required
def session_state():
    """How long this session has left (the page's countdown re-reads it: another tab may
    have extended it). Counted on the hub's clock, so a wrong clock in the browser does
    not matter."""
    return jsonify(left_s=session_left_s(), warn_s=SESSION_WARN_S)


@bp.post("/sesi/perpanjang")
def session_extend():
    """Carry on for another `session_hours` from now, with the officer's password (never
    without it: an unattended console must not stay open for ever). Throttled like the
    login; audited.

    Not behind `login_required`: its user loader would open the request's writer (which
    holds SQLite's write lock to the end of the request) before the throttle's own writer.
    The session is read here with a reader instead, and each write is its own short one."""
    sid, uid = session.get(SID_KEY), session.get("_user_id")
    factories = sessions()
    row = None
    if isinstance(sid, str) and sid and isinstance(uid, str) and uid.isdigit():
        with factories.reader() as reader:
            row = reader.execute(
                select(User.id, User.username, User.password_hash, User.active, UserSession.expires_at)
                .join(UserSession, UserSession.user_id == User.id)
                .where(UserSession.id == _sid_hash(sid), User.id == int(uid))).first()
    if row is None or not row.active or row.expires_at <= utcnow():
        return jsonify(error="session", message="Sesi sudah berakhir. Masuk lagi."), 401
    password = request.form.get("password", "")
    if not password or len(password) > 256:
        return jsonify(error="password", message="Isi kata sandi Anda."), 400
    hub = current_app.config["POSKO_SETTINGS"].hub
    limits = login_limits(_client(), row.username)
    verdict = throttle.take(factories.writer, limits)
    if not verdict.allowed:
        response = jsonify(error="throttled", retry_after_s=verdict.retry_after_s,
                           message=f"Terlalu banyak percobaan. Coba lagi dalam {verdict.retry_after_s} detik.")
        response.status_code = 429
        response.headers["Retry-After"] = str(verdict.retry_after_s)
        return response
    if not offload.run(_verify_hash, row.password_hash, password):
        throttle.touch(factories.writer, [limits[1].key])
        return jsonify(error="password", message="Kata sandi salah."), 401
    throttle.clear(factories.writer, [limits[1].key])
    throttle.forgive(factories.writer, [limits[0].key])
    until = utcnow() + dt.timedelta(hours=hub.session_hours)
    with factories.writer() as writer:
        writer.execute(update(UserSession).where(UserSession.id == _sid_hash(sid)).values(expires_at=until))
        writer.add(AuditEntry(report_id=None, actor=row.username, action="sesi_perpanjang",
                              detail=f"sesi diperpanjang {hub.session_hours} jam"))
        writer.commit()
    # Sign the browser's cookie afresh: Flask refuses a session cookie signed longer ago
    # than `session_hours`, whatever the hub's own record says.
    session.modified = True
    return jsonify(left_s=hub.session_hours * 3600, warn_s=SESSION_WARN_S)
