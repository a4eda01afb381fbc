"""Posko releases served by the hub: a wheel plus a manifest with its SHA-256.

`posko hub release-publish FILE` stores the wheel under <state_dir>/hub/releases/<version>/
with `manifest.json`, makes it current and announces it retained on `release/current`; the
ingest process announces the current one again whenever its MQTT link comes up. Units fetch
`GET /api/v1/releases/<version>/<wheel>` with their token (firmware/updater.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from pathlib import Path

from flask import Blueprint, send_file

from hub.api import _need_unit, _settings, error
from posko import topics
from posko.config import Settings
from posko.errors import PoskoError
from posko.files import read_stored, write_atomic
from posko.messages import ReleaseCurrent

log = logging.getLogger(__name__)
bp = Blueprint("releases", __name__)
# PEP 427 wheel names: posko-<version>-<python>-<abi>-<platform>.whl
WHEEL = re.compile(r"\Aposko-(?P<version>[0-9][0-9A-Za-z.+_!]{0,63})-[^-/]+-[^-/]+-[^-/]+\.whl\Z")


class ReleaseError(PoskoError, ValueError):
    """The file is not a Posko wheel (the message says why)."""


def store_dir(settings: Settings) -> Path:
    return settings.state_dir / "hub" / "releases"


def _version_of(wheel: Path) -> str:
    """The release's version from the wheel's name and its METADATA (both must agree)."""
    match = WHEEL.match(wheel.name)
    if not match:
        raise ReleaseError(f"{wheel.name}: not a Posko wheel (posko-<version>-...whl)")
    version = match["version"]
    try:
        with zipfile.ZipFile(wheel) as zf:
            meta = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
            if meta is None:
                raise ReleaseError(f"{wheel.name}: no METADATA in the wheel")
            text = zf.read(meta).decode("utf-8", "replace")
    except zipfile.BadZipFile:
        raise ReleaseError(f"{wheel.name}: not a zip file") from None
    declared = re.search(r"^Version: (\S+)$", text, re.M)
    if not declared or declared[1].replace("-", "_") != version.replace("-", "_"):
        raise ReleaseError(f"{wheel.name}: METADATA says version "
                           f"{declared[1] if declared else '?'}, the file name {version}")
    return version


def publish(settings: Settings, wheel: Path) -> ReleaseCurrent:
    """Keep the wheel and its manifest and make it current; ReleaseError on a bad file."""
    version = _version_of(wheel)
    data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    folder = store_dir(settings) / version
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / wheel.name, data)
    current = ReleaseCurrent(version=version, sha256=digest, size=len(data),
                             path=f"/api/v1/releases/{version}/{wheel.name}")
    write_atomic(folder / "manifest.json", json.dumps(
        {"version": version, "wheel": wheel.name, "sha256": digest, "size": len(data)}).encode())
    write_atomic(store_dir(settings) / "current.json", current.to_json())
    return current


def read_current(settings: Settings) -> ReleaseCurrent | None:
    """The current release's announcement, None before the first publish."""
    return read_stored(store_dir(settings) / "current.json", ReleaseCurrent.from_json, "release/current")


def announce(link, settings: Settings, current: ReleaseCurrent):
    """Publish `current` retained on `release/current` (QoS 1); returns paho's message info."""
    return link.publish(topics.release_current(settings.mqtt.topic_root), current.to_json(),
                        qos=1, retain=True)


@bp.get("/api/v1/releases/current")
def get_current():
    """The current release's manifest (what `release/current` announces), for units."""
    _unit, failure = _need_unit()
    if failure:
        return failure
    current = read_current(_settings())
    if current is None:
        return error(404, "not_found", "no release was published on this hub")
    return json.loads(current.to_json())


@bp.get("/api/v1/releases/<version>/<filename>")
def get_wheel(version: str, filename: str):
    """A release's wheel, for enrolled units; a version names fixed bytes."""
    _unit, failure = _need_unit()
    if failure:
        return failure
    match = WHEEL.match(filename)
    if not match or match["version"] != version:
        return error(404, "not_found", f"no release file {filename[:80]!r}")
    path = store_dir(_settings()) / version / filename
    if not path.is_file():
        return error(404, "not_found", f"no release file {filename[:80]!r}")
    return send_file(path, mimetype="application/octet-stream", as_attachment=True,
                     download_name=filename, max_age=31536000, conditional=True)

