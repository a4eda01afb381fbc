"""Talk groups in the hub: groups and membership, recordings, and the command center's floor.

* `/grup-bicara` lists the talk groups with their members (supervisors and admins manage
  them) and lets an officer take a group's floor with command priority: the hub publishes
  a floor request under the command center's id (`[ptt] command_units[0]`); the arbiter
  grants it over any unit, whose transmission is cut with a tone.
* `/grup-bicara/rekaman` lists the recorder's Ogg Opus files by group and day and plays
  them in the browser (an HTML audio element; the hub serves the file).
* `/grup-bicara/acl` gives the Mosquitto ACL generated from the membership.
* `/grup-bicara/stream` streams (server-sent events) every group's floor state whenever it
  changes and once at connect, so the page shows who is talking without reloading
  (hub/static/js/talkgroups.js). Each worker's `_Broker` follows the arbiter's retained
  floor states; a stream waits on it and ends after a few minutes like `/live/stream`.

Tables: hub/migrations/versions/0101_talkgroups.py (after the hub's first migration).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import DateTime, ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from gateway.acl import render_acl
from gateway.errors import BadFloorMessage, RecordingError
from gateway.messages import FloorRequest, FloorState
from gateway.recordings import list_recordings, resolve_folder, safe_recording_path
from hub import live
from hub.auth import requires_role, stream_guard
from hub.db import Base, get_db
from hub.models import utcnow
from posko import topics
from posko.mqtt import MqttLink

bp = Blueprint("talkgroups", __name__)

# The floor stream keeps /live/stream's habits (tests shorten them).
RETRY_MS = 1500  # the browser's EventSource reconnects after this
KEEPALIVE_S = live.KEEPALIVE_S  # a comment line after this long without an event
STREAM_MAX_S = live.STREAM_MAX_S  # then the stream ends and the browser reconnects
SESSION_CHECK_S = 2.0  # how soon a stream of a session that ended (logout elsewhere) stops


class TalkGroup(Base):
    """A talk group (its id is the MQTT topic level, e.g. `batang-kota`)."""

    __tablename__ = "talk_groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TalkGroupMember(Base):
    """A unit (its MQTT user name) that may talk in a group."""

    __tablename__ = "talk_group_members"

    group_id: Mapped[str] = mapped_column(String(64), ForeignKey("talk_groups.id", ondelete="CASCADE"),
                                          primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class _Broker:
    """One link per worker and broker: publishes floor requests (QoS 1 waits for
    reconnects) and follows every group's retained floor state for the page.

    `version` grows with every floor state received and every (dis)connect of the link;
    floor streams wait on `changed` for it to move."""

    def __init__(self, settings) -> None:
        self.states: dict[str, FloorState] = {}
        self.seen = threading.Event()
        self.changed = threading.Condition()
        self.version = 0
        self.link = MqttLink(settings.mqtt, client_id=None, on_connect=self._bump,
                             on_disconnect=self._bump)
        self.link.subscribe(f"{settings.mqtt.topic_root}/tg/+/floor/state", self._on_state, qos=1)
        self.link.start()

    def _on_state(self, topic: str, payload: bytes) -> None:
        try:
            state = FloorState.from_json(payload)
        except BadFloorMessage:
            return
        with self.changed:
            self.states[state.group] = state
            self._bump()
        self.seen.set()

    def _bump(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def first_states(self) -> None:
        """On this worker's first use, wait briefly for the retained states (at most 0.8 s)."""
        if not self.seen.is_set() and self.link.wait_connected(0.5):
            self.seen.wait(0.3)

    def snapshot(self) -> tuple[int, dict[str, FloorState]]:
        with self.changed:
            return self.version, dict(self.states)

    def wait_change(self, version: int, timeout_s: float) -> int:
        """The version once it differs from `version`, or after `timeout_s` seconds."""
        with self.changed:
            self.changed.wait_for(lambda: self.version != version, max(timeout_s, 0.0))
            return self.version


_brokers: dict[tuple[str, int, str], _Broker] = {}
_brokers_lock = threading.Lock()


def _broker(settings) -> _Broker:
    key = (settings.mqtt.host, settings.mqtt.port, settings.mqtt.topic_root)
    with _brokers_lock:
        if key not in _brokers:
            _brokers[key] = _Broker(settings)
        return _brokers[key]


def members_map(db) -> dict[str, list[str]]:
    """unit -> its groups, for the ACL."""
    out: dict[str, list[str]] = {}
    for m in db.scalars(select(TalkGroupMember)):
        out.setdefault(m.unit_id, []).append(m.group_id)
    return out


def _settings():
    return current_app.config["POSKO_SETTINGS"]


def _recordings_folder():
    s = _settings()
    return resolve_folder(s.state_dir, s.ptt.recordings_dir)


def _command_unit() -> str:
    units = _settings().ptt.command_units
    return units[0] if units else "command-center"


def _bad(field: str, message: str, code: int = 400):
    """The page again with an error that names the field, and a 4xx status."""
    return _page(error=f"{field}: {message}"), code


@bp.get("/grup-bicara")
@requires_role("operator")
def index():
    return _page()


def _page(error: str = "") -> str:
    db = get_db()
    groups = list(db.scalars(select(TalkGroup).order_by(TalkGroup.id)))
    # Groups heard by the recorder (or holding a floor) but never made on this page are
    # listed too, marked as not registered: the page and the recordings page agree.
    known = {g.id for g in groups}
    recorded = recorded_groups(_recordings_folder())
    broker = _broker(_settings())
    broker.first_states()
    floor = broker.snapshot()[1]
    unregistered = sorted((set(recorded) | set(floor)) - known)
    groups = sorted(groups + [TalkGroup(id=g, name="") for g in unregistered], key=lambda g: g.id)
    members = {g.id: [] for g in groups}
    for m in db.scalars(select(TalkGroupMember).order_by(TalkGroupMember.unit_id)):
        members.setdefault(m.group_id, []).append(m.unit_id)
    return render_template("talkgroups/index.html", groups=groups, members=members,
                           command_unit=_command_unit(), error=error, floor=floor, now=time.time(),
                           unregistered=set(unregistered), recorded=recorded)


def recorded_groups(folder) -> dict[str, int]:
    """Groups that have recordings, with how many (newest listing of the recorder's folder)."""
    counts: dict[str, int] = {}
    for rec in list_recordings(folder):
        counts[rec.group] = counts.get(rec.group, 0) + 1
    return counts


def floor_view(states: dict[str, FloorState], online: bool) -> dict:
    """What the page shows of the floors: per group the holder ("" when free), its
    priority, since when it holds the floor (Unix s) and the last event; `now` is the hub's
    clock, so the browser counts the seconds talking with the hub's clock, not its own."""
    groups = {g: {"holder": s.holder, "priority": s.priority, "since": s.since,
                  "event": s.event, "event_unit": s.event_unit}
              for g, s in sorted(states.items())}
    return {"groups": groups, "online": online, "now": round(time.time(), 3)}


@bp.get("/grup-bicara/stream")
@requires_role("operator")
def floor_stream():
    """Server-sent `floor` events: every group's floor (see floor_view) at connect and
    whenever it changes; a keep-alive comment when quiet; ends after STREAM_MAX_S."""
    broker = _broker(_settings())
    broker.first_states()
    alive = stream_guard("operator")

    def generate():
        yield f"retry: {RETRY_MS}\n\n"
        started = quiet_since = time.monotonic()
        version, last = -1, None
        while (now := time.monotonic()) - started < STREAM_MAX_S:
            if not alive():  # logged out (or ended) elsewhere: nothing more for this browser
                yield "event: logout\ndata: {}\n\n"
                return
            wait = min(KEEPALIVE_S - (now - quiet_since), STREAM_MAX_S - (now - started),
                       SESSION_CHECK_S)
            seen = broker.wait_change(version, wait)
            now = time.monotonic()
            if seen != version:
                version, states = broker.snapshot()
                view = floor_view(states, broker.link.connected.is_set())
                shown = (view["groups"], view["online"])
                if shown != last:  # a reconnect re-delivers the same retained states
                    last, quiet_since = shown, now
                    yield f"event: floor\ndata: {json.dumps(view, ensure_ascii=False, separators=(',', ':'))}\n\n"
                    continue
            if now - quiet_since >= KEEPALIVE_S:
                quiet_since = now
                yield ": keep-alive\n\n"

    response = Response(generate(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@bp.post("/grup-bicara/tambah")
@requires_role("supervisor")
def add_group():
    group_id = request.form.get("group_id", "").strip()
    name = request.form.get("name", "").strip()
    try:
        topics.check_id("group", group_id)
    except ValueError:
        return _bad("ID grup", "1–64 huruf, angka, '-' atau '_', diawali huruf/angka")
    if len(name) > 128:
        return _bad("Nama", "paling panjang 128 karakter")
    db = get_db()
    if db.get(TalkGroup, group_id) is not None:
        return _bad("ID grup", f"grup {group_id} sudah ada", 409)
    db.add(TalkGroup(id=group_id, name=name or group_id))
    db.commit()
    flash(f"Grup {group_id} dibuat.", "ok")
    return redirect(url_for("talkgroups.index")), 303


@bp.post("/grup-bicara/<group_id>/anggota")
@requires_role("supervisor")
def add_member(group_id: str):
    db = get_db()
    if db.get(TalkGroup, group_id) is None:
        abort(404)
    unit_id = request.form.get("unit_id", "").strip()
    try:
        topics.check_id("unit", unit_id)
    except ValueError:
        return _bad("ID unit", "1–64 huruf, angka, '-' atau '_'")
    if db.get(TalkGroupMember, (group_id, unit_id)) is None:
        db.add(TalkGroupMember(group_id=group_id, unit_id=unit_id))
        db.commit()
    flash(f"{unit_id} masuk grup {group_id}.", "ok")
    return redirect(url_for("talkgroups.index")), 303


@bp.post("/grup-bicara/<group_id>/anggota/<unit_id>/hapus")
@requires_role("supervisor")
def remove_member(group_id: str, unit_id: str):
    db = get_db()
    member = db.get(TalkGroupMember, (group_id, unit_id))
    if member is None:
        abort(404)
    db.delete(member)
    db.commit()
    flash(f"{unit_id} keluar dari grup {group_id}.", "ok")
    return redirect(url_for("talkgroups.index")), 303


def _floor(group_id: str, action: str) -> None:
    """Publish the command center's floor request or release; 404 for a malformed group id."""
    try:
        topics.check_id("group", group_id)
    except ValueError:
        abort(404)
    # Every operator speaks as the one command center: "release" lets go of whatever
    # spurt the command center holds in the group (spurt 0), whoever took it.
    spurt = random.SystemRandom().randrange(1, 1 << 32) if action == "request" else 0
    settings = _settings()
    req = FloorRequest(action=action, spurt=spurt, priority="command")
    topic = topics.tg_floor_request(group_id, _command_unit(), settings.mqtt.topic_root)
    _broker(settings).link.publish(topic, req.to_json(), qos=1)


@bp.post("/grup-bicara/<group_id>/ambil-alih")
@requires_role("operator")
def take_floor(group_id: str):
    _floor(group_id, "request")
    flash(f"Pusat komando mengambil alih saluran {group_id}.", "ok")
    return redirect(url_for("talkgroups.index")), 303


@bp.post("/grup-bicara/<group_id>/lepas")
@requires_role("operator")
def release_floor(group_id: str):
    _floor(group_id, "release")
    flash(f"Saluran {group_id} dilepas.", "ok")
    return redirect(url_for("talkgroups.index")), 303


@bp.get("/grup-bicara/rekaman")
@requires_role("operator")
def recordings():
    group = request.args.get("group", "").strip() or None
    day = request.args.get("date", "").strip()
    since = until = None
    if group is not None:
        try:
            topics.check_id("group", group)
        except ValueError:
            return render_template("talkgroups/recordings.html", rows=[], group=group, day=day,
                                   groups=[], error="Grup: ID tidak sah"), 400
    tz = ZoneInfo(_settings().hub.display_tz)
    if day:
        try:
            start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=tz)
        except ValueError:
            return render_template("talkgroups/recordings.html", rows=[], group=group, day=day,
                                   groups=[], error="Tanggal: gunakan format TTTT-BB-HH"), 400
        since, until = start.timestamp(), (start + dt.timedelta(days=1)).timestamp()
    folder = _recordings_folder()
    rows = [(r, dt.datetime.fromtimestamp(r.start, tz).strftime("%d-%m-%Y %H:%M:%S"))
            for r in list_recordings(folder, group=group, since=since, until=until)[:500]]
    registered = set(get_db().scalars(select(TalkGroup.id)))
    groups = sorted({r.group for r in list_recordings(folder)} | registered)
    return render_template("talkgroups/recordings.html", rows=rows, group=group, day=day,
                           groups=groups, error="", tz=tz)


@bp.get("/grup-bicara/rekaman/berkas/<path:rel>")
@requires_role("operator")
def recording_file(rel: str):
    try:
        path = safe_recording_path(_recordings_folder(), rel)
    except RecordingError:
        abort(404)
    return send_file(path, mimetype="audio/ogg", conditional=True, max_age=3600)


@bp.get("/grup-bicara/acl")
@requires_role("admin")
def acl():
    settings = _settings()
    text = render_acl(settings.mqtt.topic_root, arbiter_user=settings.ptt.arbiter_user,
                      command_units=settings.ptt.command_units, members=members_map(get_db()))
    return Response(text, mimetype="text/plain")
