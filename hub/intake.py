"""Report and photo intake: what the API does with a validated request, over one Session.

Every function commits its own transaction or writes nothing, and answers with a
(status, JSON body) pair the API sends as it is. Reports are idempotent by their
client-made id: the same id with the same body is answered 200 again, any other body 409.

The answer to a report is its receipt: it names the report's id and the digest of the
body stored (`posko.reports.digest`), which the kiosk compares before it marks the report
synced. A report from a blocked number is kept and marked (its ticket was shown to the
resident; the officer decides), and one with an implausible time is kept and marked too.
A body refused as invalid is kept in the quarantine for an officer to read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import secrets_store
from hub.models import AuditEntry, Event, PhoneBlock, Photo, Quarantine, Report, Unit, utcnow
from hub.texts import label
from hub.timefmt import local
from hub.validation import CleanReport, body_hash, check_report
from posko.tickets import format_ticket, phone_key

Answer = tuple[int, dict[str, Any]]

PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def iso(value: dt.datetime | None) -> str | None:
    """Naive UTC -> ISO 8601 with 'Z'."""
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def missing_photos(session: Session, photos: list[str]) -> list[str]:
    if not photos:
        return []
    have = set(session.scalars(select(Photo.sha256).where(Photo.sha256.in_(photos))))
    return [p for p in photos if p not in have]


def _conflict(report_id: str) -> Answer:
    return 409, {"error": "conflict", "fields": {"id": "a different report was already received with this id"},
                 "message": f"report {report_id} exists with a different body"}


def phone_is_blocked(session: Session, phone: str) -> bool:
    key = phone_key(phone, secrets_store.hub_secret(session, secrets_store.PHONE_KEY))
    return session.scalar(select(PhoneBlock.id).where(PhoneBlock.phone_key == key,
                                                      PhoneBlock.lifted_at.is_(None))) is not None


_REPORT_COLUMNS = (Report.id, Report.unit_id, Report.ticket, Report.state, Report.body_hash,
                   Report.photos)


def _find(session: Session, report_id: str):
    """The few columns an idempotent repeat needs (cheaper than loading the whole row)."""
    return session.execute(select(*_REPORT_COLUMNS).where(Report.id == report_id)).first()


def prepare(body: Any) -> tuple[CleanReport, str]:
    """Validate a report body (raises validation.Invalid) and hash it; no I/O."""
    return check_report(body), body_hash(body)


def write_report(session: Session, unit: Unit, clean: CleanReport, digest: str) -> Answer:
    """Write one prepared report inside the caller's transaction (the caller commits).

    A savepoint wraps the insert, so a taken ticket or a racing duplicate id leaves the
    rest of a batch intact. `unit` needs only `.id` and `.name`.
    """
    existing = _find(session, clean.id)
    if existing is not None:
        return _repeat(session, existing, unit, digest)
    blocked = bool(clean.reporter_phone) and phone_is_blocked(session, clean.reporter_phone)
    try:
        with session.begin_nested():
            _insert_report(session, unit, clean, digest, blocked)
    except IntegrityError:  # the ticket is taken, or the same id arrived at the same instant
        existing = _find(session, clean.id)
        if existing is None:
            return 409, {"error": "ticket_taken",
                         "fields": {"ticket": "another report already has this ticket; make a new one"},
                         "message": "ticket already used"}
        return _repeat(session, existing, unit, digest)
    return 201, {"id": clean.id, "ticket": clean.ticket, "state": "baru", "digest": digest,
                 "missing_photos": missing_photos(session, clean.photos)}


def submit_report(session: Session, unit: Unit, body: Any) -> Answer:
    """POST /api/v1/reports for one report in its own transaction (committed).

    Raises validation.Invalid for bad fields (the API answers 422).
    """
    clean, digest = prepare(body)
    answer = write_report(session, unit, clean, digest)
    session.commit()
    return answer


def _repeat(session: Session, existing, unit: Unit, digest: str) -> Answer:
    if existing.unit_id != unit.id or existing.body_hash != digest:
        return _conflict(existing.id)
    return 200, {"id": existing.id, "ticket": existing.ticket, "state": existing.state,
                 "digest": existing.body_hash,
                 "missing_photos": missing_photos(session, list(existing.photos or []))}


def receipts(session: Session, unit_id: str, ids: list[str]) -> dict[str, str]:
    """{report id: digest} for those of `ids` this unit sent and the hub holds."""
    if not ids:
        return {}
    rows = session.execute(select(Report.id, Report.body_hash).where(
        Report.id.in_(ids), Report.unit_id == unit_id))
    return {row.id: row.body_hash for row in rows}


def quarantine(session: Session, unit_id: str, raw: bytes, errors: dict[str, str]) -> None:
    """Keep a refused body (one row per unit and digest; a repeat bumps the count). Commits."""
    text = raw.decode("utf-8", errors="replace")
    digest = hashlib.sha256(raw).hexdigest()
    report_id = ""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        if isinstance(parsed.get("id"), str):
            report_id = parsed["id"][:64]
        if "pin" in parsed:  # officers read this copy; the resident's PIN is not theirs to see
            parsed["pin"] = "****"
            text = json.dumps(parsed, ensure_ascii=False)
    text = text.replace("\x00", "\ufffd")  # PostgreSQL text holds no NUL; the digest keeps the bytes
    now = utcnow()
    row = session.scalar(select(Quarantine).where(Quarantine.unit_id == unit_id,
                                                  Quarantine.digest == digest))
    if row is None:
        session.add(Quarantine(unit_id=unit_id, report_id=report_id, digest=digest, body=text,
                               errors=dict(errors), first_at=now, last_at=now, count=1))
    else:
        row.last_at = now
        row.count = (row.count or 0) + 1
    try:
        session.commit()
    except IntegrityError:  # the same body arrived at the same instant from another worker
        session.rollback()


def _insert_report(session: Session, unit: Unit, clean: CleanReport, digest: str,
                   blocked: bool = False) -> None:
    key = None
    if clean.reporter_phone:
        key = phone_key(clean.reporter_phone, secrets_store.hub_secret(session, secrets_store.PHONE_KEY))
    now = utcnow()
    session.execute(insert(Report.__table__).values(
        id=clean.id, unit_id=unit.id, ticket=clean.ticket,
        pin_hash=secrets_store.pin_hash(session, clean.ticket, clean.pin), body_hash=digest,
        category=clean.category, description=clean.description, occurred_at=clean.occurred_at,
        location_text=clean.location_text, lat=clean.lat, lon=clean.lon,
        reporter_name=clean.reporter_name, reporter_phone=clean.reporter_phone, phone_key=key,
        photos=clean.photos, state="baru", reject_reason="", public_note="", assigned_to=None,
        received_at=now, updated_at=now, time_suspect=clean.time_suspect, phone_blocked=blocked,
    ))
    session.execute(insert(AuditEntry.__table__).values(
        report_id=clean.id, actor=f"unit:{unit.id}", action="diterima", detail=unit.name or unit.id,
        at=now))
    if blocked:
        session.execute(insert(AuditEntry.__table__).values(
            report_id=clean.id, actor=f"unit:{unit.id}", action="nomor_diblokir",
            detail="nomor pelapor sedang diblokir; laporan tetap diterima untuk diputuskan petugas",
            at=now))
    if clean.time_suspect:
        session.execute(insert(AuditEntry.__table__).values(
            report_id=clean.id, actor=f"unit:{unit.id}", action="waktu_janggal",
            detail="waktu kejadian dari kiosk tidak masuk akal (jam kiosk salah?); urutan memakai waktu diterima",
            at=now))
    session.execute(insert(Event.__table__).values(kind="report", at=now, data={
        "id": clean.id, "ticket": format_ticket(clean.ticket), "category": clean.category,
        "category_label": label("categories", clean.category), "unit": unit.id,
        "state": "baru", "state_label": label("states", "baru"),
        "received_at": iso(now), "received_local": local(now, _tz(session)),
        "blocked_number": blocked, "time_suspect": clean.time_suspect,
        "description": clean.description[:160], "location": clean.location_text[:80],
    }))


def _tz(session: Session) -> str:
    """The display time zone, set on the session's info by the app (WIB by default)."""
    return session.info.get("display_tz", "Asia/Jakarta")


class PhotoRejected(ValueError):
    """The uploaded bytes are not an acceptable image."""


def clean_image(data: bytes, max_pixels: int) -> tuple[bytes, str, int, int]:
    """Decode JPEG/PNG/WebP and re-encode it with no metadata (EXIF, GPS, XMP, text chunks).

    Returns (bytes, mime, width, height). Raises PhotoRejected for anything else.
    """
    # The size is checked below from the header, before decoding; Pillow's global
    # MAX_IMAGE_PIXELS is left alone so other code in the process keeps its own limits.
    try:
        with Image.open(io.BytesIO(data), formats=list(PHOTO_FORMATS)) as img:
            fmt = img.format
            if img.width * img.height > max_pixels:
                raise PhotoRejected(f"image is larger than {max_pixels} pixels")
            img.load()
            upright = ImageOps.exif_transpose(img)
    except PhotoRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PhotoRejected(f"not a readable JPEG, PNG or WebP image ({type(exc).__name__})") from None
    if fmt == "JPEG":
        mode = "L" if upright.mode in ("L", "1") else "RGB"
    else:
        mode = "RGBA" if upright.mode in ("RGBA", "LA", "P", "PA") else ("L" if upright.mode == "L" else "RGB")
    converted = upright.convert(mode)
    # A fresh image from raw pixels carries no info dict: nothing of the original metadata.
    bare = Image.frombytes(converted.mode, converted.size, converted.tobytes())
    out = io.BytesIO()
    if fmt == "JPEG":
        bare.save(out, "JPEG", quality=90, optimize=False)
    elif fmt == "PNG":
        bare.save(out, "PNG", optimize=False)
    else:
        bare.save(out, "WEBP", quality=90)
    return out.getvalue(), PHOTO_FORMATS[fmt], bare.width, bare.height


def store_photo(sessions, unit: Unit, sha256: str, data: bytes, max_pixels: int) -> Answer:
    """PUT /api/v1/photos/<sha256>: check, clean and keep a photo; a repeat is a no-op (200).

    `sessions` is a hub.db.Sessions: the check and the slow decoding run without the write
    lock, which is taken only for the insert.
    """
    if hashlib.sha256(data).hexdigest() != sha256:
        return 422, {"error": "invalid", "fields": {"sha256": "does not match the SHA-256 of the uploaded bytes"},
                     "message": "hash mismatch"}
    with sessions.reader() as db:
        existing = db.get(Photo, sha256)
        if existing is not None:
            return 200, _photo_answer(existing)
    try:
        cleaned, mime, width, height = clean_image(data, max_pixels)
    except PhotoRejected as exc:
        return 415, {"error": "unsupported_image", "fields": {"body": str(exc)},
                     "message": "only JPEG, PNG and WebP images are accepted"}
    photo = Photo(sha256=sha256, mime=mime, width=width, height=height, size=len(cleaned),
                  data=cleaned, unit_id=unit.id, received_at=utcnow())
    with sessions.writer() as db:
        db.add(photo)
        try:
            db.commit()
        except IntegrityError:  # the same photo arrived at the same instant elsewhere
            db.rollback()
            return 200, _photo_answer(db.get(Photo, sha256))
    return 201, _photo_answer(photo)


def _photo_answer(photo: Photo) -> dict[str, Any]:
    return {"sha256": photo.sha256, "mime": photo.mime, "width": photo.width,
            "height": photo.height, "size": photo.size}
