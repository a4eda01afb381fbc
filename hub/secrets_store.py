"""Per-hub secrets and one-way hashes of tokens, codes and PINs.

Unit tokens and enrolment codes are long random strings, so a plain SHA-256 is enough to
store them. A PIN has only 10 000 values: it is stored as HMAC-SHA256 keyed with a per-hub
key (and the ticket), which stops a copied table from being read at a glance but not an
attacker who also has the key table — the real protection is the look-up rate limit.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.models import KeyValue
from posko.files import private_dir
from posko.tickets import ALPHABET

PHONE_KEY = "phone_hash_key"
PIN_KEY = "pin_hash_key"

_cache: dict[tuple[str, str], str] = {}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ensure_secrets(engine: Engine) -> None:
    """Make the per-hub secrets once (at start-up, in their own transaction)."""
    # A writer connection (SQLite: BEGIN IMMEDIATE), so two workers starting together
    # queue on the lock instead of one failing with "database is locked".
    writer = engine.execution_options(posko_writer=True)
    for name in (PHONE_KEY, PIN_KEY):
        with writer.connect() as conn:
            if conn.execute(select(KeyValue.value).where(KeyValue.name == name)).first():
                conn.rollback()
                continue
            try:
                conn.execute(KeyValue.__table__.insert().values(name=name, value=secrets.token_hex(32)))
                conn.commit()
            except IntegrityError:  # another worker made it first
                conn.rollback()


def hub_secret(session: Session, name: str) -> str:
    """A per-hub secret made by ensure_secrets(); the same in every worker."""
    url = str(session.get_bind().url)
    cached = _cache.get((url, name))
    if cached:
        return cached
    value = session.scalar(select(KeyValue.value).where(KeyValue.name == name))
    if value is None:
        raise RuntimeError(f"hub secret {name} missing: the app did not run ensure_secrets()")
    _cache[(url, name)] = value
    return value


def pin_hash(session: Session, ticket: str, pin: str) -> str:
    key = hub_secret(session, PIN_KEY).encode()
    return hmac.new(key, f"{ticket}:{pin}".encode(), hashlib.sha256).hexdigest()


def new_token() -> str:
    """A unit's bearer token (256 random bits)."""
    return secrets.token_urlsafe(32)


def new_enrol_code() -> str:
    """A one-time enrolment code a person can type: 12 characters in three groups."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").upper()


def secret_key_file(path: Path) -> str:
    """Read the session key kept at path, making it (mode 0600) on first use."""
    if not path.exists():
        private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic: the first worker wins, the others read its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()
