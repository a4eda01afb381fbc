"""The kiosk's report outbox: SQLite (WAL, synchronous=FULL) plus photo files.

A report is durable before the resident sees a ticket: photo files are written, fsynced
and their folder fsynced first, then the report row and its outbox row are committed in
one transaction. A crash between the two leaves only an unreferenced photo file, which the
next start removes (`Outbox.open` sweeps orphans and temporary files).

States of a report in the outbox: `pending` (waiting for the hub), `synced` (the hub
acknowledged it, naming its id and the digest of what it stored, and has every photo),
`parked` (the hub refused it for good; the reason is kept for maintainers and the report is
never deleted silently).

The schema is versioned with `PRAGMA user_version`: `SCHEMA` is version 0 (what every kiosk
before versioning made with CREATE TABLE IF NOT EXISTS), and `MIGRATIONS[i]` takes version
i to i+1 in one transaction. Units are upgraded in the field with unsynced reports on them,
so a migration only ever adds or drops what no waiting report needs.

Every method opens its own short connection, so the web threads, the sync worker and the
`posko outbox` command can use the same outbox at once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk_ui import ticketing
from posko.errors import PoskoError
from posko.files import private_dir, private_file
from posko.reports import digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY,
    ticket TEXT NOT NULL UNIQUE,
    pin TEXT NOT NULL,
    body TEXT NOT NULL,            -- the exact JSON sent to the hub (same bytes on every retry)
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS photos (
    report_id TEXT NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (report_id, sha256)
);
CREATE TABLE IF NOT EXISTS outbox (
    report_id TEXT PRIMARY KEY REFERENCES reports(id) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN ('pending', 'synced', 'parked')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    parked_reason TEXT NOT NULL DEFAULT '',
    hub_state TEXT NOT NULL DEFAULT '',
    posted INTEGER NOT NULL DEFAULT 0,  -- the hub has answered 200/201 to the report itself
    synced_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, next_attempt_at);
CREATE TABLE IF NOT EXISTS ticket_cache (
    ticket TEXT PRIMARY KEY,
    pin_mac TEXT NOT NULL,
    answer TEXT NOT NULL,          -- the hub's last JSON answer for this ticket
    checked_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS blocked_phones (key TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# MIGRATIONS[i]: the statements that take schema version i to i+1 (run in one transaction).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the hub's receipt (the digest it names) and the last reconciliation are kept; the
    # kiosk no longer holds a phone block list (only the hub decides, issue "one key").
    ("ALTER TABLE outbox ADD COLUMN hub_digest TEXT NOT NULL DEFAULT ''",
     "ALTER TABLE outbox ADD COLUMN reconciled_at REAL",
     "DROP TABLE IF EXISTS blocked_phones",
     "DELETE FROM meta WHERE key IN ('blocklist_secret', 'blocklist_fetched_at')"),
)
SCHEMA_VERSION = len(MIGRATIONS)
# Below this much free space (or 5 % of a smaller disk) the outbox reports itself full (the
# heartbeat and doctor say so).
LOW_SPACE_BYTES = 1 << 20

STATES = ("pending", "synced", "parked")


class OutboxError(PoskoError, RuntimeError):
    """The outbox could not store or read a report."""


class OutboxFull(OutboxError, OSError):
    """The disk is full: nothing was stored."""


class NotFound(OutboxError, LookupError):
    """No report with that id (or ticket) in the outbox."""


class TooNew(OutboxError):
    """The outbox was made by a newer Posko (its schema version is unknown here)."""


@dataclass(frozen=True)
class Photo:
    """A photo ready to store: JPEG bytes (already scaled and stripped) and their hash."""

    data: bytes
    sha256: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())


@dataclass(frozen=True)
class Receipt:
    """What the resident is shown once the report is committed."""

    id: str
    ticket: str
    pin: str


@dataclass(frozen=True)
class Item:
    """One report as the sync worker and the maintainer see it."""

    id: str
    ticket: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str
    parked_reason: str
    hub_state: str
    posted: bool
    created_at: float
    synced_at: float | None
    body: dict[str, Any]
    photos: list[dict[str, Any]]
    hub_digest: str = ""


def outbox_dir(settings) -> Path:
    """The outbox folder a Settings object points at."""
    if settings.kiosk.outbox_path:
        return settings.resolve(settings.kiosk.outbox_path)
    return settings.state_dir / "kiosk" / "outbox"


def outbox_stats(settings) -> dict[str, Any]:
    """{"pending": int, "oldest_pending_s": float, "parked": int} for the unit's heartbeat.

    Reads only; an outbox that does not exist yet is empty.
    """
    folder = outbox_dir(settings)
    if not (folder / "outbox.db").exists():
        return {"pending": 0, "oldest_pending_s": 0.0, "parked": 0}
    return Outbox(folder, create=False).stats()


def migrate(db: sqlite3.Connection) -> int:
    """Bring an open database to SCHEMA_VERSION; returns the version it had.

    Raises TooNew for a database from a newer Posko (it is left untouched).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise TooNew(f"outbox schema version {version} is newer than this Posko's "
                         f"({SCHEMA_VERSION}); upgrade Posko, do not delete the outbox")
        if version == 0:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
        if version != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return version


class Outbox:
    """The outbox in one folder: `outbox.db` and `photos/<sha256>.jpg`."""

    def __init__(self, folder: Path, *, create: bool = True) -> None:
        self.folder = Path(folder)
        self.db_path = self.folder / "outbox.db"
        self.photo_dir = self.folder / "photos"
        # The last storage failure of this process (the disk was full): kept in memory,
        # because a full disk cannot record it. Cleared by the next write that succeeds.
        self.storage_error = ""
        if create:
            # Names, phone numbers and PINs: the folder 0700 and the database 0600 before
            # SQLite opens it (its -wal and -shm files take the database file's mode).
            private_dir(self.folder)
            private_dir(self.photo_dir)
            private_file(self.db_path, narrow_dir=False)
            with self._connect() as db:
                migrate(db)
            # Held open for the life of this object: while one connection is open SQLite keeps
            # the -wal and -shm files, so the outbox stays readable (and the sync worker can
            # drain it) even when the disk is full and no new file could be created.
            self._keeper = sqlite3.connect(self.db_path, check_same_thread=False)
            self._keeper.execute("SELECT COUNT(*) FROM outbox").fetchone()

    @classmethod
    def open(cls, folder: Path, sweep_min_age_s: float = 30.0) -> Outbox:
        """Open (creating if needed) and remove what an interrupted save left behind.

        Files younger than `sweep_min_age_s` are spared: a process that is still shutting
        down may be between writing a photo and committing its report.
        """
        box = cls(folder)
        box.sweep_orphans(min_age_s=sweep_min_age_s)
        return box

    # -- connections -------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise _translate(exc) from None
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on the disk when it returns, WAL or not.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        except sqlite3.OperationalError as exc:
            raise _translate(exc) from None
        finally:
            db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        except OutboxFull as exc:
            self.storage_error = str(exc)
            raise
        self.storage_error = ""

    # -- submit ------------------------------------------------------------------------
    def submit(self, report: dict[str, Any], photos: list[Photo] = ()) -> Receipt:
        """Store a report durably; returns its ticket and PIN only after the commit.

        `report` holds the hub's fields except id, ticket, pin and photos (category,
        description, occurred_at, location, optional reporter). Raises OutboxFull when the
        disk is full (nothing is left behind) and OutboxError for other storage failures.
        """
        report_id = str(uuid.uuid4())
        written: list[Path] = []
        try:
            for photo in photos:
                path = self.photo_path(photo.sha256)
                if not path.exists():
                    _write_durably(path, photo.data)
                    written.append(path)
            for _ in range(20):  # a clash of two 8-character tickets is rare; pick again
                ticket, pin = ticketing.new_ticket(), ticketing.new_pin()
                body = dict(report, id=report_id, ticket=ticket, pin=pin,
                            photos=[p.sha256 for p in photos])
                try:
                    self._insert(report_id, ticket, pin, body, photos)
                except sqlite3.IntegrityError:
                    continue
                return Receipt(report_id, ticket, pin)
            raise OutboxError("could not find a free ticket code")
        except BaseException as exc:
            if isinstance(exc, OutboxFull):
                self.storage_error = str(exc)
            for path in written:
                if not self._photo_referenced(path.stem):
                    with contextlib.suppress(OSError):
                        path.unlink()
            raise

    def _insert(self, report_id: str, ticket: str, pin: str, body: dict[str, Any],
                photos: list[Photo]) -> None:
        now = time.time()
        text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        with self._tx() as db:
            db.execute("INSERT INTO reports(id, ticket, pin, body, created_at) VALUES (?,?,?,?,?)",
                       (report_id, ticket, pin, text, now))
            for photo in photos:
                db.execute("INSERT OR IGNORE INTO photos(report_id, sha256, size) VALUES (?,?,?)",
                           (report_id, photo.sha256, len(photo.data)))
            db.execute("INSERT INTO outbox(report_id, state, next_attempt_at, updated_at) "
                       "VALUES (?, 'pending', 0, ?)", (report_id, now))

    def photo_path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("photo hash must be 64 lower-case hex digits")
        return self.photo_dir / f"{sha256}.jpg"

    def read_photo(self, sha256: str) -> bytes:
        return self.photo_path(sha256).read_bytes()

    def _photo_referenced(self, sha256: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM photos WHERE sha256=? LIMIT 1", (sha256,)).fetchone() is not None

    def sweep_orphans(self, min_age_s: float = 0.0) -> int:
        """Delete temporary files and photos no report refers to; returns how many.

        `min_age_s` spares files younger than that, which another process may be saving
        right now (its report commit follows the photo write).
        """
        removed = 0
        with self._connect() as db:
            known = {row[0] for row in db.execute("SELECT DISTINCT sha256 FROM photos")}
        cutoff = time.time() - min_age_s
        for path in self.photo_dir.iterdir():
            try:
                if min_age_s and path.stat().st_mtime > cutoff:
                    continue
            except OSError:
                continue
            if path.suffix == ".tmp" or (path.suffix == ".jpg" and path.stem not in known):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
        if removed:
            _fsync_dir(self.photo_dir)
        return removed

    # -- reading -----------------------------------------------------------------------
    def get(self, report_id: str) -> Item:
        with self._connect() as db:
            row = db.execute(_ITEM_SQL + " WHERE r.id = ? OR r.ticket = ?",
                             (report_id, report_id.replace("-", "").upper())).fetchone()
            if row is None:
                raise NotFound(f"no report {report_id!r} in the outbox")
            return self._item(db, row)

    def list(self, state: str | None = None, limit: int = 1000) -> list[Item]:
        with self._connect() as db:
            if state:
                rows = db.execute(_ITEM_SQL + " WHERE o.state = ? ORDER BY r.created_at LIMIT ?",
                                  (state, limit)).fetchall()
            else:
                rows = db.execute(_ITEM_SQL + " ORDER BY r.created_at LIMIT ?", (limit,)).fetchall()
            return [self._item(db, row) for row in rows]

    def due(self, now: float, limit: int = 20, max_wait_s: float = float("inf")) -> list[Item]:
        """Pending reports whose next attempt time has come, oldest first.

        A next attempt more than `max_wait_s` (the backoff cap) after `now` cannot have been
        set by this clock: the clock was stepped back, and the report is due now, not an
        hour later.
        """
        with self._connect() as db:
            rows = db.execute(_ITEM_SQL + " WHERE o.state = 'pending' AND (o.next_attempt_at <= ? "
                              "OR o.next_attempt_at > ?) ORDER BY r.created_at LIMIT ?",
                              (now, now + max_wait_s, limit)).fetchall()
            return [self._item(db, row) for row in rows]

    def next_due_at(self, now: float | None = None, max_wait_s: float = float("inf")) -> float | None:
        """The earliest next attempt of a pending report (0 for one due after a clock step)."""
        with self._connect() as db:
            row = db.execute("SELECT MIN(next_attempt_at), MAX(next_attempt_at) FROM outbox "
                             "WHERE state='pending'").fetchone()
        if row[0] is None:
            return None
        if now is not None and row[1] > now + max_wait_s:
            return 0.0
        return row[0]

    def find_ticket(self, ticket: str, pin: str) -> Item | None:
        """A report made on this kiosk, if ticket and PIN both match."""
        with self._connect() as db:
            row = db.execute(_ITEM_SQL + " WHERE r.ticket = ?", (ticket,)).fetchone()
            if row is None or not hmac.compare_digest(row["pin"], pin):
                return None
            return self._item(db, row)

    @staticmethod
    def _item(db: sqlite3.Connection, row: sqlite3.Row) -> Item:
        photos = [dict(p) for p in db.execute(
            "SELECT sha256, size, uploaded FROM photos WHERE report_id=? ORDER BY rowid", (row["id"],))]
        return Item(id=row["id"], ticket=row["ticket"], state=row["state"], attempts=row["attempts"],
                    next_attempt_at=row["next_attempt_at"], last_error=row["last_error"],
                    parked_reason=row["parked_reason"], hub_state=row["hub_state"],
                    posted=bool(row["posted"]), created_at=row["created_at"],
                    synced_at=row["synced_at"], body=json.loads(row["body"]), photos=photos,
                    hub_digest=row["hub_digest"])

    def body_bytes(self, report_id: str) -> bytes:
        with self._connect() as db:
            row = db.execute("SELECT body FROM reports WHERE id=?", (report_id,)).fetchone()
        if row is None:
            raise NotFound(f"no report {report_id!r} in the outbox")
        return row[0].encode("utf-8")

    def stats(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        with self._connect() as db:
            pending, oldest = db.execute(
                "SELECT COUNT(*), MIN(r.created_at) FROM outbox o JOIN reports r ON r.id=o.report_id "
                "WHERE o.state='pending'").fetchone()
            parked = db.execute("SELECT COUNT(*) FROM outbox WHERE state='parked'").fetchone()[0]
            refused = db.execute("SELECT COUNT(*) FROM outbox WHERE state='parked' "
                                 "AND parked_reason LIKE '422%'").fetchone()[0]
        try:
            usage = shutil.disk_usage(self.folder)
            free, low = usage.free, min(LOW_SPACE_BYTES, usage.total // 20)
        except OSError:
            free, low = 0, 1
        full = bool(self.storage_error) or free < low
        return {"pending": int(pending), "oldest_pending_s": max(0.0, now - oldest) if oldest else 0.0,
                "parked": int(parked), "refused": int(refused), "storage_full": full,
                "storage_error": self.storage_error, "free_bytes": int(free)}

    # -- the sync worker's writes ------------------------------------------------------
    def mark_posted(self, report_id: str, hub_state: str, missing: list[str], hub_digest: str = "") -> None:
        """The hub acknowledged the report (naming `hub_digest`); photos not in `missing`
        need no upload."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET posted=1, hub_state=?, hub_digest=?, updated_at=? "
                       "WHERE report_id=?", (hub_state, hub_digest, time.time(), report_id))
            lacking = set(missing)
            for (sha,) in db.execute("SELECT sha256 FROM photos WHERE report_id=?", (report_id,)).fetchall():
                if sha not in lacking:
                    db.execute("UPDATE photos SET uploaded=1 WHERE report_id=? AND sha256=?", (report_id, sha))

    def mark_photo_uploaded(self, report_id: str, sha256: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE photos SET uploaded=1 WHERE report_id=? AND sha256=?", (report_id, sha256))

    def mark_synced(self, report_id: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._tx() as db:
            db.execute("UPDATE outbox SET state='synced', synced_at=?, last_error='', updated_at=? "
                       "WHERE report_id=?", (now, now, report_id))

    def mark_retry(self, report_id: str, error: str, next_attempt_at: float) -> int:
        """Record a failed attempt; returns the new attempt count."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=?, "
                       "updated_at=? WHERE report_id=? AND state='pending'",
                       (error, next_attempt_at, time.time(), report_id))
            row = db.execute("SELECT attempts FROM outbox WHERE report_id=?", (report_id,)).fetchone()
        return int(row[0]) if row else 0

    def park(self, report_id: str, reason: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET state='parked', parked_reason=?, last_error=?, "
                       "attempts=attempts+1, updated_at=? WHERE report_id=?",
                       (reason, reason, time.time(), report_id))

    def retry(self, report_id: str) -> Item:
        """Put a parked (or waiting) report back in the queue for an immediate attempt."""
        item = self.get(report_id)
        with self._tx() as db:
            db.execute("UPDATE outbox SET state='pending', parked_reason='', next_attempt_at=0, "
                       "updated_at=? WHERE report_id=? AND state != 'synced'", (time.time(), item.id))
        return self.get(item.id)

    def retry_parked(self, reason_prefix: str) -> int:
        """Put back every parked report whose reason starts with `reason_prefix`; how many."""
        with self._tx() as db:
            return db.execute("UPDATE outbox SET state='pending', parked_reason='', next_attempt_at=0, "
                              "updated_at=? WHERE state='parked' AND parked_reason LIKE ?",
                              (time.time(), reason_prefix.replace("%", "") + "%")).rowcount

    def synced_since(self, since: float) -> list[tuple[str, str]]:
        """(id, digest the kiosk expects) of every synced report made at or after `since`."""
        with self._connect() as db:
            rows = db.execute("SELECT r.id, r.body FROM reports r JOIN outbox o ON o.report_id=r.id "
                              "WHERE o.state='synced' AND r.created_at >= ? ORDER BY r.created_at",
                              (since,)).fetchall()
        return [(row[0], digest(json.loads(row[1]))) for row in rows]

    def requeue(self, report_id: str, reason: str) -> None:
        """A synced report the hub turned out not to hold: send it (and its photos) again."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET state='pending', posted=0, hub_digest='', synced_at=NULL, "
                       "next_attempt_at=0, last_error=?, updated_at=? WHERE report_id=?",
                       (reason, time.time(), report_id))
            db.execute("UPDATE photos SET uploaded=0 WHERE report_id=?", (report_id,))

    def mark_reconciled(self, ids: list[str], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._tx() as db:
            db.executemany("UPDATE outbox SET reconciled_at=? WHERE report_id=?", [(now, i) for i in ids])

    def wake_all(self) -> int:
        """Make every pending report due now (connectivity came back)."""
        with self._tx() as db:
            return db.execute("UPDATE outbox SET next_attempt_at=0 WHERE state='pending' "
                              "AND next_attempt_at > 0").rowcount

    def purge_synced(self, older_than_s: float, now: float | None = None) -> int:
        """Delete synced reports (and photos no other report needs) older than the cut-off.

        Pending and parked reports are never deleted here.
        """
        now = time.time() if now is None else now
        with self._tx() as db:
            ids = [r[0] for r in db.execute(
                "SELECT report_id FROM outbox WHERE state='synced' AND synced_at <= ?",
                (now - older_than_s,))]
            hashes: set[str] = set()
            for report_id in ids:
                hashes |= {r[0] for r in db.execute("SELECT sha256 FROM photos WHERE report_id=?",
                                                    (report_id,))}
                db.execute("DELETE FROM reports WHERE id=?", (report_id,))
        for sha in hashes:
            if not self._photo_referenced(sha):
                with contextlib.suppress(OSError):
                    self.photo_path(sha).unlink()
        if hashes:
            _fsync_dir(self.photo_dir)
        return len(ids)

    # -- cached hub knowledge ----------------------------------------------------------
    def _secret(self) -> bytes:
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='secret'").fetchone()
            if row is None:
                value = os.urandom(32).hex()
                db.execute("INSERT INTO meta(key, value) VALUES ('secret', ?)", (value,))
                return bytes.fromhex(value)
            return bytes.fromhex(row[0])

    def _pin_mac(self, ticket: str, pin: str) -> str:
        # A keyed hash, so a stolen kiosk disk does not hand out PINs to cached tickets.
        return hmac.new(self._secret(), f"{ticket}:{pin}".encode(), hashlib.sha256).hexdigest()

    def remember_ticket(self, ticket: str, pin: str, answer: dict[str, Any]) -> None:
        mac = self._pin_mac(ticket, pin)  # before our transaction: it may write the secret
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO ticket_cache(ticket, pin_mac, answer, checked_at) "
                       "VALUES (?,?,?,?)", (ticket, mac,
                                            json.dumps(answer, ensure_ascii=False), time.time()))

    def recall_ticket(self, ticket: str, pin: str) -> tuple[dict[str, Any], float] | None:
        mac = self._pin_mac(ticket, pin)
        with self._connect() as db:
            row = db.execute("SELECT pin_mac, answer, checked_at FROM ticket_cache WHERE ticket=?",
                             (ticket,)).fetchone()
        if row is None or not hmac.compare_digest(row["pin_mac"], mac):
            return None
        return json.loads(row["answer"]), row["checked_at"]

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str, default: str = "") -> str:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default


_ITEM_SQL = ("SELECT r.id, r.ticket, r.pin, r.body, r.created_at, o.state, o.attempts, "
             "o.next_attempt_at, o.last_error, o.parked_reason, o.hub_state, o.posted, o.synced_at, "
             "o.hub_digest "
             "FROM reports r JOIN outbox o ON o.report_id = r.id")


def _translate(exc: sqlite3.OperationalError) -> OutboxError:
    text = str(exc)
    if "full" in text or "disk I/O" in text:
        return OutboxFull(errno.ENOSPC, f"outbox storage is full: {text}")
    return OutboxError(f"outbox database error: {text}")


def _write_durably(path: Path, data: bytes) -> None:
    """Write a file so that it is complete on disk or absent: temp file, fsync, rename, fsync dir.

    Raises OutboxFull on ENOSPC/EDQUOT; the temporary file is removed on every failure.
    """
    tmp = path.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutboxFull(errno.ENOSPC, f"no space left to store the photo ({path.parent})") from None
        raise OutboxError(f"cannot store the photo: {exc.strerror}") from None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
