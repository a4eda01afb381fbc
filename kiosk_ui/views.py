"""The kiosk's screens (Beranda, Tanya, Lapor, Cek Laporan, Darurat) and their JSON calls."""

from __future__ import annotations

import datetime as dt
import io
import json
import queue
import re
import time
import uuid
from typing import Any
from urllib.parse import urlparse

import qrcode
import qrcode.image.svg
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
)

from kiosk_ui import clock, ticketing
from kiosk_ui.alertbox import AlertBoxError, describe
from kiosk_ui.i18n import LANGS, Texts
from kiosk_ui.outbox import NotFound, OutboxError, OutboxFull
from kiosk_ui.photos import BadPhoto, prepare_photo
from kiosk_ui.reportform import CATEGORIES, build_report
from kiosk_ui.sync import CLOCK_OFFSET_KEY
from posko.hubclient import HubUnreachable
from posko.messages import Alert

bp = Blueprint("kiosk", __name__)

LANG_COOKIE = "kiosk_lang"
WHEN_CHOICES = (("when_now", 0), ("when_1h", 60), ("when_3h", 180), ("when_6h", 360), ("when_1d", 1440))
HUB_STATES = ("baru", "diverifikasi", "ditindaklanjuti", "selesai", "ditolak")


def kiosk():
    return current_app.extensions["kiosk"]


# Everything the kiosk pages load comes from the kiosk itself; no inline script or style
# attribute runs, so text injected into a page (an MQTT event, say) cannot execute.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def allowed_hosts(settings) -> frozenset[str]:
    """Host names the kiosk app answers to: loopback, its bind address and the setting's extras."""
    names = {"127.0.0.1", "localhost", "::1", settings.kiosk.bind.strip().lower()}
    names |= {h.strip().lower() for h in settings.kiosk.allowed_hosts.split(",") if h.strip()}
    return frozenset(names - {"", "0.0.0.0", "::"})


def host_name(host: str) -> str:
    """The name part of a Host header value ("[::1]:8080" -> "::1", "a:1" -> "a")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@bp.before_app_request
def _setup() -> None:
    # DNS rebinding: a page from evil.example whose name now points at this kiosk sends
    # Host (and Origin) evil.example; answer only the kiosk's own names.
    if host_name(request.host) not in allowed_hosts(kiosk().settings):
        abort(421)
    default = kiosk().settings.posko.language
    lang = request.cookies.get(LANG_COOKIE, default)
    g.lang = lang if lang in LANGS else default
    g.t = Texts(g.lang)
    # The kiosk serves only itself: a POST from any other origin is refused.
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin and urlparse(origin).netloc != request.host:
            abort(403)


@bp.after_app_request
def _no_store(resp: Response) -> Response:
    # Nothing a resident typed may come back from the browser cache for the next person.
    if not request.path.startswith("/static/"):
        resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    k = kiosk()
    return {"t": g.t, "lang": g.lang, "other_lang": "en" if g.lang == "id" else "id",
            "posko_name": k.settings.posko.posko_name,
            "idle_reset_s": k.settings.kiosk.idle_reset_s,
            "idle_warn_s": k.settings.kiosk.idle_warn_s,
            "display_tz": k.settings.kiosk.display_tz,
            "tz_label": clock.zone_label(k.settings.kiosk.display_tz),
            "default_lang": k.settings.posko.language}


def _page(template: str, **ctx: Any) -> str:
    kiosk().presence.seen(ctx.get("screen", ""))  # a resident opened this screen
    return render_template(template, **ctx)


# -- pages -----------------------------------------------------------------------------
@bp.get("/")
def home() -> str:
    return _page("home.html", screen="home")


@bp.get("/tanya")
def tanya() -> str:
    handle = kiosk().brain
    return _page("tanya.html", screen="tanya", featured=handle.featured(g.lang),
                 brain_status=handle.status)


@bp.get("/lapor")
def lapor() -> str:
    return _page("lapor.html", screen="lapor", categories=CATEGORIES, when_choices=WHEN_CHOICES)


@bp.get("/cek")
def cek() -> str:
    return _page("cek.html", screen="cek")


@bp.get("/darurat")
def darurat() -> str:
    """Darurat: confirm first; `?alert=<id>` shows an alert already raised (the panic button)."""
    k = kiosk()
    follow = None
    wanted = request.args.get("alert", "")
    if wanted and len(wanted) <= 64:
        rec = k.alerts.get(wanted)
        follow = describe(rec) if rec else None
    return _page("darurat.html", screen="darurat", follow=follow)


@bp.get("/bahasa/<lang>")
def switch_lang(lang: str) -> Response:
    target = request.args.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    resp = make_response(redirect(target))
    if lang in LANGS:
        resp.set_cookie(LANG_COOKIE, lang, samesite="Strict", httponly=True)
    return resp


@bp.get("/reset")
def reset() -> Response:
    """Idle reset: back to Beranda in the default language; the pages hold the rest."""
    resp = make_response(redirect("/"))
    resp.delete_cookie(LANG_COOKIE)
    return resp


# -- JSON calls ------------------------------------------------------------------------
@bp.get("/api/status")
def status() -> Response:
    k = kiosk()
    link = k.link
    if k.worker is None and (link.online is None or time.time() - link.last_ok > 15):
        # No sync worker in this process: probe the hub ourselves (tests, `--no-sync`).
        link.set(k.client.ping(timeout_s=2.0), "probe failed")
    return jsonify(online=bool(link.online), enrolled=link.enrolled,
                   mqtt=bool(k.bus and k.bus.connected), brain=k.brain.status,
                   time=dt.datetime.now(clock.zone(k.settings.kiosk.display_tz)).isoformat(timespec="seconds"),
                   tz=k.settings.kiosk.display_tz, tz_label=clock.zone_label(k.settings.kiosk.display_tz))


@bp.get("/api/outbox")
def outbox_status() -> Response:
    """The outbox figures for the unit's heartbeat and `posko doctor` (posko.kiosk_status), and
    whether a resident is at the screen (`busy`, `screen`, `reason`: the updater waits)."""
    try:
        return jsonify({**kiosk().outbox.stats(), **kiosk().presence.state()})
    except Exception as exc:  # a broken outbox is a finding for the maintainer, not a crash
        return jsonify(error=str(exc)), 500


@bp.post("/api/presence")
def api_presence() -> tuple[Response, int] | Response:
    """The page says which screen it shows (kiosk.js): the unit's updater waits while a
    resident uses any screen but Beranda. 422 names the field when it is not a screen."""
    data = request.get_json(silent=True)
    screen = data.get("screen") if isinstance(data, dict) else None
    if not isinstance(screen, str) or not kiosk().presence.seen(screen):
        return jsonify(ok=False, error="screen", message="screen: one of home, tanya, lapor, cek, darurat"), 422
    return jsonify(ok=True, **kiosk().presence.state())


@bp.post("/api/tanya")
def api_tanya() -> Response:
    data = request.get_json(silent=True) or {}
    question = data.get("q") if isinstance(data.get("q"), str) else ""
    question = question.strip()[:500]
    lang = data.get("lang") if data.get("lang") in LANGS else g.lang
    texts = Texts(lang)
    if not question:
        return jsonify(available=True, error="empty", message=texts("tanya.empty")), 422
    handle = kiosk().brain
    if handle.status == "loading":
        handle.wait(3.0)
    if handle.status != "ready":
        key = "tanya.loading" if handle.status == "loading" else "tanya.unavailable"
        return jsonify(available=False, message=texts(key)), 503
    try:
        reply = handle.ask(question, lang)
    except Exception:
        current_app.logger.exception("assistant failed on a question")
        return jsonify(available=True, error="failed", message=texts("tanya.error")), 500
    alert: dict[str, Any] | None = None
    if reply and reply.get("action") == "escalate":
        # The brain says officers are being alerted: raise the alert, and let the screen
        # show only what is true about it (not sent / sent / acknowledged).
        alert = _raise_alert("assistant", question)
    return jsonify(available=True, question=question, reply=reply, alert=alert,
                   alert_id=(alert or {}).get("alert_id", ""))


def _raise_alert(source: str, text: str = "") -> dict[str, Any] | None:
    """Store an alert durably, try once to deliver it, and describe its state.

    None when it could not even be stored on the kiosk (the screen then says: call 110)."""
    k = kiosk()
    alert = Alert(id=str(uuid.uuid4()), unit=k.settings.posko.unit_id, posko=k.settings.posko.posko_name,
                  source=source, text=text[:2000])
    try:
        k.alerts.add(alert)
    except AlertBoxError:
        current_app.logger.exception("an alert could not be stored on the kiosk")
        return None
    rec = k.sender.send_now(alert.id)
    current_app.logger.warning("%s: alert %s stored, %s", source, alert.id,
                               f"sent via {rec.sent_via}" if rec and rec.sent_via else "not sent yet")
    return describe(rec) if rec else None


@bp.get("/api/alerts/<alert_id>")
def alert_status(alert_id: str) -> Response:
    """The state of one alert of this kiosk (the screens also get it live as events)."""
    rec = kiosk().alerts.get(alert_id) if len(alert_id) <= 64 else None
    if rec is None:
        return jsonify(error="not_found"), 404
    return jsonify(describe(rec))


@bp.post("/api/listen")
def api_listen() -> Response:
    k = kiosk()
    data = request.get_json(silent=True) or {}
    lang = data.get("lang") if data.get("lang") in LANGS else g.lang
    session = data.get("session")
    if not isinstance(session, str) or not _SESSION_RE.match(session):
        return jsonify(ok=False, error="session", message=Texts(lang)("tanya.error")), 422
    if k.bus is None or not k.bus.connected:
        return jsonify(ok=False, message=Texts(lang)("tanya.voice_unavailable")), 503
    if data.get("stop"):
        k.bus.stop_listening(session, lang)
    else:
        k.bus.listen(lang, session)
    return jsonify(ok=True, session=session)


# The page makes the session id, so events of its question are known as its own at once.
_SESSION_RE = re.compile(r"^[0-9a-f]{16,64}\Z")


@bp.get("/events")
def events() -> Response:
    """Server-sent events: assistant events and alert acks for this unit."""
    fanout = kiosk().fanout
    q = fanout.subscribe()

    @stream_with_context
    def stream():
        try:
            yield "retry: 2000\n: hello\n\n"
            while True:
                try:
                    kind, data = q.get(timeout=15)
                except queue.Empty:
                    yield ": ping\n\n"
                    continue
                yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        finally:
            fanout.unsubscribe(q)

    return Response(stream(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.post("/api/lapor")
def api_lapor() -> Response:
    k = kiosk()
    t = g.t
    result = build_report(request.form, k.settings.posko.posko_name, _hub_now())
    upload = request.files.get("photo")
    photo_bytes = upload.read() if upload else b""
    # A chosen file with no bytes is a broken photo, not a report without one.
    empty_photo = upload is not None and bool(upload.filename) and not photo_bytes
    if result.errors or empty_photo:
        return _field_error(result.errors + (["photo"] if empty_photo else []))
    # No block-list check here: only the hub decides about a blocked number, and it keeps
    # the report (marked) so the ticket shown below stays true (posko.reports, hub.intake).
    photos = []
    if photo_bytes:
        try:
            photos.append(prepare_photo(photo_bytes, k.settings.kiosk.photo_max_px,
                                        k.settings.kiosk.photo_quality,
                                        k.settings.kiosk.photo_max_pixels))
        except BadPhoto:
            return _field_error(["photo"])
    try:
        receipt = k.outbox.submit(result.report, photos)
    except OutboxFull:
        current_app.logger.error("outbox full: a report could not be saved")
        return jsonify(ok=False, error="disk_full", message=t("lapor.disk_full")), 507
    except OutboxError:
        current_app.logger.exception("outbox failed: a report could not be saved")
        return jsonify(ok=False, error="save_failed", message=t("lapor.save_failed")), 500
    if k.worker:
        k.worker.wake()
    shown = ticketing.format_ticket(receipt.ticket)
    return jsonify(ok=True, id=receipt.id, ticket=shown, pin=receipt.pin,
                   qr_svg=qr_svg(t("lapor.qr_text", ticket=shown, pin=receipt.pin)),
                   online=bool(k.link.online))


_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@bp.get("/api/laporan/<report_id>")
def report_status(report_id: str) -> Response:
    """Whether the hub has a report made here: the ticket screen says "diterima" only then.

    By the report's id (a UUID only the screen that made it knows), never by ticket."""

    if not _UUID_RE.fullmatch(report_id):
        return jsonify(error="id"), 404
    try:
        item = kiosk().outbox.get(report_id)
    except NotFound:
        return jsonify(error="not_found"), 404
    received = item.state == "synced" or item.posted
    state = "received" if received else ("parked" if item.state == "parked" else "waiting")
    when = item.synced_at if item.synced_at else None
    return jsonify(state=state, received_at=when,
                   received_text=g.t("lapor.saved_received",
                                     time=clock.show(when or time.time(), kiosk().settings.kiosk.display_tz,
                                                     "%H:%M")) if received else "")


def _hub_now() -> dt.datetime:
    """Now on the hub's clock as far as the kiosk knows it (a Pi has no real-time clock):
    the local time plus the offset the sync worker learned from the hub's ping."""
    now = dt.datetime.now().astimezone()
    try:
        offset = float(kiosk().outbox.get_meta(CLOCK_OFFSET_KEY) or 0.0)
    except (ValueError, OutboxError):
        offset = 0.0
    return now + dt.timedelta(seconds=offset) if abs(offset) > 1.0 else now


def _field_error(fields: list[str]) -> Response:
    t = g.t
    names = ", ".join(t(f"lapor.field_names.{f}") for f in fields)
    return jsonify(ok=False, error="fields", fields=fields,
                   message=t("lapor.fix_fields", fields=names)), 422


def qr_svg(text: str) -> str:
    """An inline SVG QR code of `text` (made on the kiosk, no network)."""
    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    out = io.BytesIO()
    img.save(out)
    svg = out.getvalue().decode("utf-8")
    return svg[svg.index("<svg"):]


@bp.post("/api/cek")
def api_cek() -> Response:
    k = kiosk()
    t = g.t
    data = request.get_json(silent=True) or {}
    try:
        ticket = ticketing.parse_ticket(data.get("ticket") if isinstance(data.get("ticket"), str) else "")
    except ValueError:
        return jsonify(ok=False, error="ticket", message=t("cek.bad_ticket")), 422
    try:
        pin = ticketing.parse_pin(data.get("pin") if isinstance(data.get("pin"), str) else "")
    except ValueError:
        return jsonify(ok=False, error="pin", message=t("cek.bad_pin")), 422
    local = k.outbox.find_ticket(ticket, pin)
    try:
        answer = k.client.ticket(ticket, pin, timeout_s=min(4.0, k.settings.kiosk.http_timeout_s))
    except HubUnreachable:
        k.link.set(False, "ticket check failed")
        return _offline_answer(ticket, pin, local)
    if not answer.from_hub:  # a captive portal's page is not the hub's word on a ticket
        k.link.set(False, answer.describe())
        return _offline_answer(ticket, pin, local)
    k.link.set(True)
    if answer.status == 200 and isinstance(answer.data, dict):
        k.outbox.remember_ticket(ticket, pin, answer.data)
        return jsonify(ok=True, offline=False, **_present(answer.data))
    if answer.status == 404:
        if local is not None:
            return jsonify(ok=True, offline=False, **_present_local(local))
        return jsonify(ok=False, error="not_found", message=t("cek.not_found")), 404
    if answer.status == 429:
        return jsonify(ok=False, error="busy", message=t("cek.busy")), 429
    return _offline_answer(ticket, pin, local)


def _offline_answer(ticket: str, pin: str, local) -> Response:
    t = g.t
    cached = kiosk().outbox.recall_ticket(ticket, pin)
    body: dict[str, Any] = {"ok": True, "offline": True, "offline_message": t("cek.offline")}
    if cached is not None:
        data, checked_at = cached
        when = clock.show(checked_at, kiosk().settings.kiosk.display_tz)
        body.update(_present(data), last_known=t("cek.last_known", when=when))
    elif local is not None:
        body.update(_present_local(local))
    else:
        body.update(ok=False, error="offline", message=t("cek.unknown_offline"))
    return jsonify(body)


def _present(data: dict[str, Any]) -> dict[str, Any]:
    t = g.t
    state = data.get("state") if data.get("state") in HUB_STATES else ""
    note = data.get("public_note") or data.get("note") or ""
    # A note written for an earlier state (the hub may say which) is not shown as current:
    # at "selesai" a resident must not read "mohon tunggu kabar berikutnya".
    note_state = data.get("note_state")
    if isinstance(note_state, str) and note_state and note_state != data.get("state"):
        note = ""
    updated = data.get("updated_at") or data.get("last_update") or data.get("updated") or ""
    return {"state": state, "state_label": t(f"cek.states.{state}") if state else str(data.get("state", "")),
            "state_note": t(f"cek.state_notes.{state}") if state else "",
            "note": note if isinstance(note, str) else "",
            "updated": _human_time(updated) if isinstance(updated, str) else ""}


def _present_local(item) -> dict[str, Any]:
    t = g.t
    if item.state == "parked":
        return {"state": "menunggu", "state_label": t("cek.states.menunggu"), "state_note": t("cek.parked_here"),
                "note": "", "updated": ""}
    if item.state == "synced":
        return {"state": item.hub_state or "baru",
                "state_label": t(f"cek.states.{item.hub_state}") if item.hub_state in HUB_STATES else t("cek.states.baru"),
                "state_note": t(f"cek.state_notes.{item.hub_state}") if item.hub_state in HUB_STATES
                else t("cek.state_notes.baru"), "note": "", "updated": ""}
    return {"state": "menunggu", "state_label": t("cek.states.menunggu"), "state_note": t("cek.waiting_here"),
            "note": "", "updated": ""}


def _human_time(value: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value[:40]
    return clock.show(moment, kiosk().settings.kiosk.display_tz)


@bp.post("/api/darurat")
def api_darurat() -> Response:
    alert = _raise_alert("kiosk_darurat")
    if alert is None:
        return jsonify(ok=False, message=g.t("darurat.failed")), 503
    return jsonify(ok=True, alert=alert, alert_id=alert["alert_id"])
