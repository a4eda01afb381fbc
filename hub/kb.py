"""Knowledge-base bundles: the hub packs a KB folder, keeps it, and announces it on `kb/current`.

A bundle is a deterministic tar.gz of the folder's `*.yaml` files (sorted names, fixed
mtimes, owners and modes), so the same KB always gives the same bytes; its version is the
first 12 hex digits of its SHA-256. Bundles live under `<state_dir>/hub/kb/`:

    <version>.tar.gz     every bundle published so far (units fetch them by version)
    current.json         the `KbCurrent` message of the bundle in use (replaced atomically)

`posko hub kb-publish` makes and announces one; the ingest process announces `current.json`
(retained) whenever it connects and whenever the file changes, and makes it from the
configured KB on its first start. Units fetch `GET /api/v1/kb/<version>` with their token.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import re
import tarfile
from pathlib import Path

from assistant.kb import SHIPPED_KB, expired_entries, load_kb
from posko import topics
from posko.config import Settings
from posko.files import read_stored, write_atomic
from posko.messages import KbCurrent

log = logging.getLogger(__name__)

VERSION = re.compile(r"^[0-9a-f]{12}\Z")
_FIXED_MTIME = 0


def kb_dir_of(settings: Settings, given: str | Path | None = None) -> Path:
    """The KB folder to publish: `given`, else `[assistant] kb_dir`, else the shipped KB."""
    if given:
        return Path(given)
    if settings.assistant.kb_dir:
        return settings.resolve(settings.assistant.kb_dir)

    return SHIPPED_KB


def build_bundle(kb_dir: str | Path) -> bytes:
    """The deterministic tar.gz of every `*.yaml`/`*.yml` file under kb_dir (not validated)."""
    root = Path(kb_dir)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and p.suffix in (".yaml", ".yml")
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders: set[str] = set()
        for rel in files:
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):  # each folder once, before its files
                folder = "/".join(parts[:i])
                if folder not in folders:
                    folders.add(folder)
                    tar.addfile(_info(folder, tarfile.DIRTYPE, 0, 0o755))
            data = (root / rel).read_bytes()
            tar.addfile(_info(rel, tarfile.REGTYPE, len(data), 0o644), io.BytesIO(data))
    out = io.BytesIO()
    # mtime=0 and no file name in the gzip header: the same tar gives the same bytes.
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=_FIXED_MTIME) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _info(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = kind, size, mode, _FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def store_dir(settings: Settings) -> Path:
    return settings.state_dir / "hub" / "kb"


def bundle_path(settings: Settings, version: str) -> Path | None:
    """The stored bundle of `version`, or None (unknown or malformed version)."""
    if not VERSION.match(version or ""):
        return None
    path = store_dir(settings) / f"{version}.tar.gz"
    return path if path.is_file() else None


def store_bundle(settings: Settings, data: bytes) -> KbCurrent:
    """Keep the bundle and make it the current one; returns its `kb/current` message."""
    digest = hashlib.sha256(data).hexdigest()
    version = digest[:12]
    folder = store_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{version}.tar.gz", data)
    current = KbCurrent(version=version, sha256=digest, path=f"/api/v1/kb/{version}")
    write_atomic(folder / "current.json", current.to_json())
    return current


def read_current(settings: Settings) -> KbCurrent | None:
    """The stored current bundle's message, None when none was published yet."""
    return read_stored(store_dir(settings) / "current.json", KbCurrent.from_json, "kb/current")


def publish_dir(settings: Settings, kb_dir: str | Path | None = None) -> KbCurrent:
    """Validate a KB folder with the brain's own loader, bundle it and store it as current.

    Raises KbError (from `load_kb`) when the folder is not a valid knowledge base.
    """
    folder = kb_dir_of(settings, kb_dir)
    load_kb(folder)
    return store_bundle(settings, build_bundle(folder))


def expired_in(kb_dir: str | Path) -> list[str]:
    """"<file>: valid_until <date>" of every entry whose period is over (answered as past)."""
    return [f"{e.path}: valid_until {e.valid_until}" for e in expired_entries(load_kb(kb_dir))]


def ensure_current(settings: Settings) -> KbCurrent | None:
    """The current bundle; on a hub that never published one, the configured KB is published.

    None (logged) when that KB is not valid.
    """
    current = read_current(settings)
    if current is not None and bundle_path(settings, current.version) is not None:
        return current
    try:
        current = publish_dir(settings)
    except Exception as exc:  # a broken configured KB must not stop the hub
        log.error("knowledge base not published: %s", str(exc).splitlines()[0])
        return None
    log.info("knowledge base %s published from %s", current.version, kb_dir_of(settings))
    return current


def announce(link, settings: Settings, current: KbCurrent):
    """Publish `current` retained on `kb/current` (QoS 1); returns paho's message info."""
    return link.publish(topics.kb_current(settings.mqtt.topic_root), current.to_json(),
                        qos=1, retain=True)

