"""The dispatcher's console in the hub's browser: talk in any group with command priority.

`/konsol` (operators) runs the same browser client as the phone app (hub/static/phone/ptt.js)
logged in to the broker as the command center (`ptt.command_units[0]`, password
`ptt.console_password`): holding a group's "Bicara" button asks for the floor with command
priority, which the arbiter grants over any normal or supervisor talker (who hears the cut
tone); the console monitors every group with its live talker, can mute or solo a group and
replays a group's last spurts heard. `POST /konsol/<group>/umumkan` publishes a short text
announcement on `tg/{group}/announce` (phones show it).
"""

from __future__ import annotations

import json
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from hub.auth import requires_role
from hub.db import get_db
from hub.phone import _csp, broker_url, ws_origin
from hub.talkgroups import TalkGroup, _broker
from posko import topics

bp = Blueprint("console", __name__)

MAX_ANNOUNCEMENT = 280


def _settings():
    return current_app.config["POSKO_SETTINGS"]


def announcement(text: str, sender: str, now: float) -> bytes:
    """The JSON of `tg/{group}/announce`; ValueError (message for the form) when the text is
    empty or longer than MAX_ANNOUNCEMENT characters."""
    text = " ".join(text.split())
    if not text:
        raise ValueError("isi pengumuman")
    if len(text) > MAX_ANNOUNCEMENT:
        raise ValueError(f"paling panjang {MAX_ANNOUNCEMENT} karakter")
    return json.dumps({"text": text, "from": sender, "time": round(now, 3)}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


@bp.get("/konsol")
@requires_role("operator")
def index():
    settings = _settings()
    groups = list(get_db().scalars(select(TalkGroup).order_by(TalkGroup.id)))
    unit = settings.ptt.command_units[0] if settings.ptt.command_units else "command-center"
    url = broker_url(settings.ptt.phone_broker_url, request.host)
    html = render_template("console/index.html", groups=groups, unit=unit, broker=url,
                           password=settings.ptt.console_password, root=settings.mqtt.topic_root)
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"  # the page carries the console's broker login
    return _csp(response, ws_origin(url))


@bp.post("/konsol/<group_id>/umumkan")
@requires_role("operator")
def announce(group_id: str):
    try:
        topics.check_id("group", group_id)
    except ValueError:
        abort(404)
    if get_db().get(TalkGroup, group_id) is None:
        abort(404)
    try:
        payload = announcement(request.form.get("text", ""), current_user.label, time.time())
    except ValueError as exc:
        return Response(f"Pengumuman: {exc}", status=400, mimetype="text/plain; charset=utf-8")
    settings = _settings()
    _broker(settings).link.publish(f"{settings.mqtt.topic_root}/tg/{group_id}/announce", payload, qos=1)
    flash(f"Pengumuman dikirim ke grup {group_id}.", "ok")
    return redirect(url_for("console.index")), 303
