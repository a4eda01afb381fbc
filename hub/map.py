"""The map of reports and poskos, with no internet: vendored Leaflet (hub/static/vendor/leaflet)
and tiles from the hub's own MBTiles file (hub.tiles). Without a tile file the page still
shows every point on a plain background, poskos with their names.

* `/peta` the page (the queue's filters apply to the reports shown); `?peringatan=ID`
  centres it on a phone's emergency
* `/peta/data.json` reports with a position, every posko with one, and the open phone
  emergencies with a location (shown whatever the filters): the newest position and the
  trail the phone sent since
* `/peta/ubin/<z>/<x>/<y>` one tile (404 when absent)
* `/peta/posko` (admin) sets where a posko (unit) stands
"""

from __future__ import annotations

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
from sqlalchemy import select

from hub import tiles
from hub.alerts import alert_trail, location_text
from hub.auth import requires_role
from hub.dashboard import audit, filtered_query, queue_filters, sorted_query
from hub.db import get_db
from hub.models import Alert, Report, Unit, utcnow
from hub.texts import label
from hub.timefmt import local
from hub.units import is_unit_id
from posko.tickets import format_ticket

bp = Blueprint("map", __name__)

MAX_POINTS = 2000


def _settings():
    return current_app.config["POSKO_SETTINGS"]


def _tileset() -> tiles.TileSet | None:
    try:
        return tiles.read_tileset(tiles.tiles_path(_settings()))
    except tiles.TilesError:
        return None


def _center() -> tuple[float, float]:
    try:
        lat, lon = (float(v) for v in _settings().hub.map_center.split(","))
        return lat, lon
    except ValueError:
        return -6.9075, 109.73


@bp.get("/peta")
@requires_role("operator")
def page():
    return _render()


def _render(error: str = ""):
    tileset = _tileset()
    filters = queue_filters(request.args)
    config = {
        "data": url_for("map.data", **filters), "center": _center(),
        "tiles": url_for("map.tile", z=0, x=0, y=0).replace("/0/0/0", "/{z}/{x}/{y}") if tileset else None,
        "minzoom": tileset.minzoom if tileset else 0, "maxzoom": tileset.maxzoom if tileset else 18,
        "bounds": tileset.bounds if tileset else None,
        "attribution": tileset.attribution if tileset else "",
        "focus": request.args.get("peringatan", "")[:64],
    }
    units = list(get_db().scalars(select(Unit).order_by(Unit.id)))
    return render_template("dashboard/map.html", config=config, tileset=tileset, filters=filters,
                           units=units, error=error)


@bp.get("/peta/data.json")
@requires_role("operator")
def data():
    db = get_db()
    tz = _settings().hub.display_tz
    query = filtered_query(queue_filters(request.args), None).where(
        Report.lat.is_not(None), Report.lon.is_not(None))
    reports = list(db.scalars(sorted_query(query, "diterima", "desc").limit(MAX_POINTS)))
    poskos = list(db.scalars(select(Unit).where(Unit.lat.is_not(None), Unit.lon.is_not(None))
                             .order_by(Unit.id)))
    return jsonify({
        "reports": [{
            "id": r.id, "ticket": format_ticket(r.ticket), "lat": r.lat, "lon": r.lon,
            "severity": r.severity, "severity_label": label("severities", r.severity),
            "category_label": label("categories", r.category), "state": r.state,
            "state_label": label("states", r.state), "location": r.location_text[:120],
            "received_local": local(r.received_at, tz, "%d-%m %H:%M"),
            "url": url_for("dashboard.report_page", report_id=r.id),
        } for r in reports],
        "poskos": [{"id": u.id, "name": u.name or u.id, "lat": u.lat, "lon": u.lon} for u in poskos],
        "alerts": [{
            "id": a.id, "unit": a.unit_id, "name": a.posko or a.unit_id, "group": a.talk_group,
            "lat": a.lat, "lon": a.lon, "accuracy_m": a.accuracy_m,
            "location": location_text(a, tz), "received_local": local(a.received_at, tz, "%H:%M:%S"),
            # Where the phone went while the emergency is open, oldest first (its newest
            # position is lat/lon); [] until it moved.
            "track": alert_trail(db, a),
        } for a in located_alerts(db)],
    })


def located_alerts(db) -> list[Alert]:
    """Open phone emergencies that came with a location, newest first."""
    return list(db.scalars(select(Alert).where(Alert.acked_at.is_(None), Alert.lat.is_not(None),
                                               Alert.lon.is_not(None))
                           .order_by(Alert.received_at.desc()).limit(100)))


@bp.get("/peta/ubin/<int:z>/<int:x>/<int:y>")
@requires_role("operator")
def tile(z: int, x: int, y: int):
    tileset = _tileset()
    body = tiles.read_tile(tiles.tiles_path(_settings()), z, x, y) if tileset else None
    if body is None:
        abort(404)
    response = Response(body, mimetype=tiles.TILE_TYPES[tileset.format])
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


@bp.post("/peta/posko")
@requires_role("admin")
def set_posko():
    """Set (or clear, with both fields empty) where a posko stands; names the bad field."""
    db = get_db()
    unit_id = request.form.get("unit_id", "")
    unit = db.get(Unit, unit_id) if is_unit_id(unit_id) else None
    if unit is None:
        return _render("Unit: tidak ditemukan."), 404
    raw_lat, raw_lon = request.form.get("lat", "").strip(), request.form.get("lon", "").strip()
    if not raw_lat and not raw_lon:
        unit.lat = unit.lon = None
    else:
        try:
            lat, lon = float(raw_lat.replace(",", ".")), float(raw_lon.replace(",", "."))
        except ValueError:
            return _render("Lintang/bujur: tulis angka desimal, mis. -6.9075 dan 109.7300."), 400
        if not (-90 <= lat <= 90):
            return _render("Lintang: harus antara -90 dan 90."), 400
        if not (-180 <= lon <= 180):
            return _render("Bujur: harus antara -180 dan 180."), 400
        unit.lat, unit.lon = lat, lon
    audit(None, "posisi_posko", f"{unit.id}: {unit.lat}, {unit.lon} ({utcnow():%Y-%m-%d %H:%M} UTC)")
    db.commit()
    flash(f"Letak {unit.name or unit.id} disimpan.", "ok")
    return redirect(url_for("map.page")), 303
