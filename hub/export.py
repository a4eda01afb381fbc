"""Export of the filtered queue: CSV of every matching report, GeoJSON of those with a position.

The filters are the queue's (hub.dashboard.queue_filters). Every export is written to the
audit trail with who made it, in which format, how many reports and under which filter.
Reporters' names and phone numbers are in the file only for roles that may see them
(supervisor and up); for an operator those columns are left out entirely.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask_login import current_user
from sqlalchemy import select

from hub.auth import has_role, requires_role
from hub.dashboard import audit, filtered_query, queue_filters, sorted_query
from hub.db import get_db
from hub.models import Report, User
from hub.texts import label
from hub.timefmt import local_iso
from posko.tickets import format_ticket

bp = Blueprint("export", __name__)

BASE_COLUMNS = ("tiket", "diterima", "kejadian", "kategori", "tingkat", "status", "uraian",
                "lokasi", "lat", "lon", "unit", "petugas", "catatan_pelapor")
REPORTER_COLUMNS = ("nama_pelapor", "telepon_pelapor")


def report_record(report: Report, assignee: str, tz: str, with_reporter: bool) -> dict[str, Any]:
    """One report as an export row (times in the display zone `tz`, ISO 8601 with offset)."""
    record: dict[str, Any] = {
        "tiket": format_ticket(report.ticket), "diterima": local_iso(report.received_at, tz),
        "kejadian": local_iso(report.occurred_at, tz), "kategori": label("categories", report.category),
        "tingkat": label("severities", report.severity), "status": label("states", report.state),
        "uraian": report.description, "lokasi": report.location_text,
        "lat": report.lat, "lon": report.lon, "unit": report.unit_id, "petugas": assignee,
        "catatan_pelapor": report.public_note,
    }
    if with_reporter:
        record["nama_pelapor"] = report.reporter_name
        record["telepon_pelapor"] = report.reporter_phone
    return record


def _csv_cell(value: Any) -> Any:
    # A cell starting with = + - @ (or tab/CR) runs as a formula in spreadsheet programs;
    # residents type these fields, so such text is prefixed with a quote (OWASP advice).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(records: list[dict[str, Any]], with_reporter: bool) -> str:
    columns = BASE_COLUMNS + (REPORTER_COLUMNS if with_reporter else ())
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        # The phone is the hub's own normalised "+62…", never free text: left as it is.
        writer.writerow({k: record.get(k) if k == "telepon_pelapor" else _csv_cell(record.get(k))
                         for k in columns})
    return "\ufeff" + out.getvalue()  # BOM: spreadsheet programs then read UTF-8 correctly


def to_geojson(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A FeatureCollection of the records with coordinates (RFC 7946: [lon, lat])."""
    features = [{
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
        "properties": {k: v for k, v in r.items() if k not in ("lat", "lon")},
    } for r in records if r.get("lat") is not None and r.get("lon") is not None]
    return {"type": "FeatureCollection", "features": features}


def describe(filters: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in filters.items()) or "tanpa saringan"


def _records(filters: dict[str, str], with_reporter: bool) -> list[dict[str, Any]]:
    settings = current_app.config["POSKO_SETTINGS"].hub
    query = sorted_query(filtered_query(filters, current_user.id), "diterima", "desc")
    reports = list(get_db().scalars(query.limit(settings.export_max_rows)))
    ids = {r.assigned_to for r in reports if r.assigned_to}
    people = {u.id: u.label for u in get_db().scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [report_record(r, people.get(r.assigned_to, ""), settings.display_tz, with_reporter)
            for r in reports]


def _export(kind: str):
    filters = queue_filters(request.args)
    with_reporter = has_role(current_user, "supervisor")
    records = _records(filters, with_reporter)
    if kind == "csv":
        body, mime, count = to_csv(records, with_reporter), "text/csv; charset=utf-8", len(records)
    else:
        collection = to_geojson(records)
        body = json.dumps(collection, ensure_ascii=False, indent=1)
        mime, count = "application/geo+json", len(collection["features"])
    audit(None, "ekspor", f"{kind.upper()}: {count} laporan; saringan: {describe(filters)}; "
                          f"{'dengan' if with_reporter else 'tanpa'} data pelapor")
    get_db().commit()
    response = Response(body, content_type=mime)
    response.headers["Content-Disposition"] = f'attachment; filename="laporan.{kind}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/laporan/ekspor.csv")
@requires_role("operator")
def export_csv():
    return _export("csv")


@bp.get("/laporan/ekspor.geojson")
@requires_role("operator")
def export_geojson():
    return _export("geojson")
