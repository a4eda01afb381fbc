"""Ngobrol Kamtibmas on a phone: the PWA, enrolment by QR code, and revocation.

* `/hp/` is the phone app (hub/templates/phone/app.html, hub/static/phone/): push-to-talk in
  the member's talk groups over MQTT over WebSockets, Opus through WebCodecs. It is public:
  what it may do is decided by the broker login it got at enrolment, kept in the phone.
* `/hp/anggota` (supervisors): create a member (name, groups, expiry); the hub shows a QR
  code of `<hub>/hp/#daftar=<token>`. The token travels in the URL fragment, so it never
  reaches a server log; the phone posts it once to `/hp/api/daftar` and gets its own broker
  login (user = the member's id, a fresh random password), which the ACL limits to the
  member's groups, publishing only under its own id (gateway.acl).
* Revoking a member rewrites the password file and the ACL without them and reloads Mosquitto
  (SIGHUP to `ptt.broker_pid_file`, or in a deployment a systemd path unit that runs
  `systemctl reload mosquitto` when the file changes): on reload Mosquitto drops the clients whose login is gone, so the revoked phone
  is cut off at once and cannot log in again. A member whose validity runs out is cut off
  the same way by the hub's ingest process (`expire_members`, every
  `ptt.member_expiry_check_s`), without an officer doing anything.

The broker files are managed only when `ptt.broker_password_file` is set (else the page
says so and enrolment is refused with 503, never a false "terdaftar"). The same files carry
the units' logins (hub/unit_logins.py): `sync_broker` writes everyone's.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import signal
import tempfile
from collections.abc import Iterable
from pathlib import Path

import qrcode
import qrcode.image.svg
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import DateTime, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from gateway.acl import render_acl
from hub.auth import requires_role
from hub.db import Base, get_db
from hub.models import Unit, utcnow
from hub.secrets_store import sha256_hex
from hub.talkgroups import TalkGroup, members_map
from posko import topics
from posko.broker import make_password_file

bp = Blueprint("phone", __name__)

MAX_NAME = 128
MAX_GROUPS = 8


class PhoneMember(Base):
    """A person with the phone app: their broker user is `id`."""

    __tablename__ = "phone_members"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    groups: Mapped[str] = mapped_column(String(1024))  # comma-separated group ids
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    enrol_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    enrol_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    enrolled_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    password_line: Mapped[str | None] = mapped_column(Text, nullable=True)  # user:$7$... (hashed)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def group_list(self) -> list[str]:
        return [g for g in self.groups.split(",") if g]

    def active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now

    def status(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "enrolled" if self.enrolled_at else "waiting"


# --- pure helpers -----------------------------------------------------------------------

def broker_url(template: str, host: str) -> str:
    """The WebSocket URL a browser uses: `{host}` in the setting becomes the hub's host as the
    browser reached it. Followed by a port (`ws://{host}:8080`, the broker's own listener) it
    is the host name alone; without one (`wss://{host}/mqtt`, the broker behind the hub's
    nginx) it keeps the hub's port too, so the URL is the page's own origin. IPv6 literals
    keep their brackets."""
    name = host[: host.index("]") + 1] if host.startswith("[") and "]" in host else host.split(":", 1)[0]
    return template.replace("{host}", name if "{host}:" in template else host)


def parse_groups(values: Iterable[str], known: set[str]) -> list[str]:
    """The chosen groups, checked; ValueError with the message for the form."""
    groups = sorted({v.strip() for v in values if v.strip()})
    if not groups:
        raise ValueError("pilih paling sedikit satu grup")
    if len(groups) > MAX_GROUPS:
        raise ValueError(f"paling banyak {MAX_GROUPS} grup")
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise ValueError(f"grup tidak dikenal: {', '.join(unknown)}")
    return groups


def password_lines(base: str, members: Iterable[PhoneMember], now: dt.datetime,
                   units: Iterable[str] = ()) -> str:
    """The password file: the deployment's own hashed entries, then the units' (`units`:
    their `user:hash` lines), then each active enrolled member's. A name already taken wins:
    a unit cannot take the hub's name, a member cannot take a unit's."""
    lines = [ln for ln in base.splitlines() if ln.strip() and not ln.startswith("#")]
    taken = {ln.split(":", 1)[0] for ln in lines}
    for line in units:
        user = line.split(":", 1)[0]
        if user not in taken:
            lines.append(line.strip())
            taken.add(user)
    for m in members:
        if m.active(now) and m.password_line and m.id not in taken:
            lines.append(m.password_line.strip())
    return "\n".join(lines) + "\n"


def phone_members_map(members: Iterable[PhoneMember], now: dt.datetime) -> dict[str, list[str]]:
    return {m.id: m.group_list for m in members if m.active(now) and m.password_line}


# --- broker files -----------------------------------------------------------------------

class BrokerNotManaged(RuntimeError):
    """`ptt.broker_password_file` is not set: the hub cannot give out broker logins."""


def _atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def hash_password(user: str, password: str) -> str:
    """One `user:hash` line made by Debian's mosquitto_passwd."""
    with tempfile.TemporaryDirectory() as tmp:
        path = make_password_file(Path(tmp) / "one", {user: password})
        return path.read_text().strip()


def broker_files(db, settings, now: dt.datetime) -> dict[Path, tuple[str, int]]:
    """What the password file and the ACL must say now: path -> (text, mode)."""
    ptt = settings.ptt
    members = list(db.scalars(select(PhoneMember)))
    base = Path(ptt.broker_password_base).read_text() if ptt.broker_password_base else ""
    units = db.scalars(select(Unit.broker_password_line).where(
        Unit.revoked_at.is_(None), Unit.broker_password_line.is_not(None)).order_by(Unit.id))
    # 0640: in a deployment the folder's group is Mosquitto's (setup.sh), which must read it.
    files = {Path(ptt.broker_password_file): (password_lines(base, members, now, units), 0o640)}
    if ptt.broker_acl_file:
        units = members_map(db)
        for member, groups in phone_members_map(members, now).items():
            units.setdefault(member, []).extend(groups)
        console = ptt.command_units[:1] if ptt.command_units else []
        text = render_acl(settings.mqtt.topic_root, arbiter_user=ptt.arbiter_user,
                          command_units=ptt.command_units, members=units, talk_everywhere=console)
        files[Path(ptt.broker_acl_file)] = (text, 0o644)
    return files


def _current(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def sync_broker(db, settings, *, if_changed: bool = False) -> bool:
    """Write the password file and ACL from the hub's data and reload Mosquitto.

    True when Mosquitto was signalled; False when no pid file is set (the files are written;
    the deployment reloads the broker itself: systemd/posko-broker-reload.path), or with `if_changed` when both files already
    say what they must (nothing written; the expiry timer's case). BrokerNotManaged without
    a password file; OSError when a file cannot be written or the broker cannot be
    signalled."""
    ptt = settings.ptt
    if not ptt.broker_password_file:
        raise BrokerNotManaged("ptt.broker_password_file is not set")
    files = broker_files(db, settings, utcnow())
    if if_changed and all(_current(path) == text for path, (text, _mode) in files.items()):
        return False
    for path, (text, mode) in files.items():
        _atomic_write(path, text, mode)
    if not ptt.broker_pid_file:
        return False
    pid = int(Path(ptt.broker_pid_file).read_text().split()[0])
    os.kill(pid, signal.SIGHUP)
    return True


# --- views --------------------------------------------------------------------------------

def _settings():
    return current_app.config["POSKO_SETTINGS"]


def _csp(response: Response, ws: str) -> Response:
    """The hub's policy, plus the broker's WebSocket origin for the MQTT connection, and
    blob: workers (mqtt.js keeps its keep-alive timer in one, so a background tab keeps time)."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"connect-src 'self' {ws}; worker-src 'self' blob:; manifest-src 'self'; frame-ancestors 'none'")
    return response


def ws_origin(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


@bp.get("/hp/")
def app_page():
    url = broker_url(_settings().ptt.phone_broker_url, request.host)
    html = render_template("phone/app.html", broker=url, root=_settings().mqtt.topic_root)
    return _csp(Response(html, mimetype="text/html"), ws_origin(url))


@bp.get("/hp")
def app_redirect():
    return redirect(url_for("phone.app_page"), 308)


@bp.get("/hp/manifest.webmanifest")
def manifest():
    body = render_template("phone/manifest.webmanifest", start=url_for("phone.app_page"),
                           icon=url_for("static", filename="favicon.svg"))
    return Response(body, mimetype="application/manifest+json")


@bp.get("/hp/sw.js")
def service_worker():
    """Served under /hp/ so its scope is the app; caches the shell for offline starts."""
    path = Path(current_app.static_folder) / "phone" / "sw.js"
    response = Response(path.read_text(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/hp/api/daftar")
def redeem():
    """The phone trades its one-time token for its broker login (JSON)."""
    body = request.get_json(silent=True)
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not 16 <= len(token) <= 128:
        return jsonify(error="token: kode pendaftaran tidak sah"), 400
    db = get_db()
    member = db.scalars(select(PhoneMember).where(PhoneMember.enrol_token_hash == sha256_hex(token))).first()
    now = utcnow()
    if member is None or member.enrolled_at is not None:
        return jsonify(error="token: kode sudah dipakai atau tidak dikenal; minta kode baru ke petugas"), 404
    if member.revoked_at is not None or member.expires_at <= now or (member.enrol_until and member.enrol_until <= now):
        return jsonify(error="token: kode sudah kedaluwarsa; minta kode baru ke petugas"), 410
    password = secrets.token_urlsafe(18)
    member.password_line = hash_password(member.id, password)
    member.enrolled_at = now
    member.enrol_token_hash = None
    db.commit()
    try:
        sync_broker(db, _settings())
    except (BrokerNotManaged, OSError, ValueError) as exc:
        member.password_line, member.enrolled_at = None, None
        member.enrol_token_hash = sha256_hex(token)
        db.commit()
        current_app.logger.error("phone enrolment of %s: broker not updated: %s", member.id, exc)
        return jsonify(error="broker: login belum bisa dibuat; coba lagi nanti"), 503
    settings = _settings()
    return jsonify(unit=member.id, name=member.name, password=password, groups=member.group_list,
                   broker=broker_url(settings.ptt.phone_broker_url, request.host),
                   root=settings.mqtt.topic_root,
                   expires=member.expires_at.replace(tzinfo=dt.UTC).isoformat())


def _qr_svg(text: str) -> str:
    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=12, border=4)
    out = io.BytesIO()
    img.save(out)
    return out.getvalue().decode("utf-8")


def _members_page(error: str = "", created: PhoneMember | None = None, token: str = "",
                  code: int = 200):
    db = get_db()
    settings = _settings()
    groups = list(db.scalars(select(TalkGroup).order_by(TalkGroup.id)))
    members = list(db.scalars(select(PhoneMember).order_by(PhoneMember.created_at.desc())))
    qr = link = ""
    if created is not None:
        link = url_for("phone.app_page", _external=True) + f"#daftar={token}"
        qr = _qr_svg(link)
    return render_template("phone/members.html", groups=groups, members=members, error=error,
                           created=created, qr=qr, link=link, now=utcnow(),
                           managed=bool(settings.ptt.broker_password_file),
                           default_days=settings.ptt.phone_member_days), code


@bp.get("/hp/anggota")
@requires_role("supervisor")
def members():
    return _members_page()


@bp.post("/hp/anggota")
@requires_role("supervisor")
def create_member():
    db = get_db()
    name = request.form.get("name", "").strip()
    if not name or len(name) > MAX_NAME:
        return _members_page(error=f"Nama: isi 1–{MAX_NAME} karakter", code=400)
    known = {g.id for g in db.scalars(select(TalkGroup))}
    try:
        groups = parse_groups(request.form.getlist("groups"), known)
    except ValueError as exc:
        return _members_page(error=f"Grup: {exc}", code=400)
    raw_days = request.form.get("days", "").strip() or str(_settings().ptt.phone_member_days)
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= 3650:
        return _members_page(error="Berlaku (hari): angka 1–3650", code=400)
    if not _settings().ptt.broker_password_file:
        return _members_page(error="Broker: hub tidak mengelola login broker (ptt.broker_password_file kosong)",
                             code=503)
    now = utcnow()
    token = secrets.token_urlsafe(24)
    member = PhoneMember(id=f"hp-{secrets.token_hex(4)}", name=name, groups=",".join(groups),
                         expires_at=now + dt.timedelta(days=int(raw_days)), created_at=now,
                         created_by=getattr(current_user, "label", "") or "",
                         enrol_token_hash=sha256_hex(token),
                         enrol_until=now + dt.timedelta(hours=_settings().ptt.phone_enrol_hours))
    topics.check_id("unit", member.id)
    db.add(member)
    db.commit()
    return _members_page(created=member, token=token, code=201)


@bp.post("/hp/anggota/<member_id>/cabut")
@requires_role("supervisor")
def revoke_member(member_id: str):
    db = get_db()
    member = db.get(PhoneMember, member_id)
    if member is None:
        abort(404)
    if member.revoked_at is None:
        member.revoked_at = utcnow()
        member.enrol_token_hash = None
        db.commit()
    try:
        sync_broker(db, _settings())
    except (BrokerNotManaged, OSError, ValueError) as exc:
        current_app.logger.error("revoking %s: broker not updated: %s", member_id, exc)
        return _members_page(error=f"Broker: {member_id} dicabut di hub, tetapi broker belum dimuat ulang "
                                   f"({exc.__class__.__name__}); login masih berlaku sampai broker dimuat ulang",
                             code=503)
    return redirect(url_for("phone.members", cabut=member_id), 303)


def expire_members(db, settings) -> bool:
    """Rewrite and reload the broker files when they no longer match the hub's members (a
    validity that ran out since the last rewrite); True when Mosquitto was reloaded. Does
    nothing when the hub does not manage broker logins."""
    if not settings.ptt.broker_password_file:
        return False
    return sync_broker(db, settings, if_changed=True)
