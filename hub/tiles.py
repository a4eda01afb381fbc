"""The offline map's tiles: one MBTiles file (SQLite, raster PNG/JPEG tiles) the hub serves.

Installed like the speech models: `posko hub tiles install FILE|URL --sha256 HEX` copies or
downloads the file next to its final place, checks its SHA-256 and that it is a readable
MBTiles with tiles in it, and only then renames it into place (a failed install never
replaces a working map). The hub reads it read-only, one short connection per request.

MBTiles 1.3: table `tiles(zoom_level, tile_column, tile_row, tile_data)` with rows counted
from the south (TMS), table `metadata(name, value)` (format, bounds, minzoom, maxzoom...).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import click
import requests

from posko.config import load_settings
from posko.errors import PoskoError

TILE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
MAX_ZOOM = 22


class TilesError(PoskoError, ValueError):
    """A tile file that cannot be installed or read."""


@dataclass(frozen=True)
class TileSet:
    """What the map page needs to know of an installed tile file."""

    name: str
    format: str  # png | jpg | webp
    minzoom: int
    maxzoom: int
    bounds: tuple[float, float, float, float] | None  # west, south, east, north
    attribution: str


def tiles_path(settings) -> Path:
    """Where the tile file is: [hub] map_tiles, or <state_dir>/hub/tiles.mbtiles."""
    configured = settings.hub.map_tiles
    return Path(configured) if configured else settings.state_dir / "hub" / "tiles.mbtiles"


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=2)


def read_tileset(path: Path) -> TileSet:
    """The tile file's metadata. Raises TilesError when it is missing or not an MBTiles."""
    if not path.is_file():
        raise TilesError(f"no tile file at {path}")
    try:
        with _connect(path) as conn:
            meta = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
            zooms = conn.execute("SELECT min(zoom_level), max(zoom_level), count(*) FROM tiles").fetchone()
    except sqlite3.Error as exc:
        raise TilesError(f"{path.name} is not an MBTiles file ({exc})") from None
    if not zooms or not zooms[2]:
        raise TilesError(f"{path.name} holds no tiles")
    fmt = str(meta.get("format", "png")).lower()
    if fmt not in TILE_TYPES:
        raise TilesError(f"{path.name}: tile format {fmt!r} is not a raster format the map shows")
    bounds = None
    try:
        west, south, east, north = (float(v) for v in str(meta.get("bounds", "")).split(","))
        bounds = (west, south, east, north)
    except ValueError:
        bounds = None
    return TileSet(name=str(meta.get("name", path.stem)), format=fmt, minzoom=int(zooms[0]),
                   maxzoom=int(zooms[1]), bounds=bounds, attribution=str(meta.get("attribution", "")))


def read_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    """The tile at zoom z, column x, row y counted from the north (as Leaflet asks), or None."""
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z) or not path.is_file():
        return None
    try:
        with _connect(path) as conn:
            row = conn.execute("SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? "
                               "AND tile_row = ?", (z, x, (2 ** z - 1) - y)).fetchone()
    except sqlite3.Error:
        return None
    return bytes(row[0]) if row else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, out: Path, timeout_s: float) -> None:
    try:
        with requests.get(url, stream=True, timeout=timeout_s) as response:
            if response.status_code != 200:
                raise TilesError(f"{url} answered HTTP {response.status_code}")
            with open(out, "wb") as fh:
                for block in response.iter_content(1 << 16):
                    fh.write(block)
    except requests.RequestException as exc:
        raise TilesError(f"download of {url} failed ({exc.__class__.__name__})") from None


def install(source: str, sha256: str, dest: Path, *, timeout_s: float = 30.0,
            log: Callable[[str], object] = lambda _m: None) -> TileSet:
    """Install the MBTiles file at `source` (a path, or an http(s) URL) as `dest`.

    `sha256` is the expected SHA-256 (hex) of the file. Raises TilesError when the file
    cannot be had, its digest differs, or it is not an MBTiles with tiles; `dest` is then
    left as it was.
    """
    expected = sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise TilesError("--sha256 must be 64 hexadecimal digits")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tiles-", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if urlparse(source).scheme in ("http", "https"):
            log(f"downloading {source}")
            _download(source, tmp, timeout_s)
        else:
            src = Path(source)
            if not src.is_file():
                raise TilesError(f"no file at {source}")
            shutil.copyfile(src, tmp)
        actual = _sha256(tmp)
        if actual != expected:
            raise TilesError(f"SHA-256 of {source} is {actual}, expected {expected}; not installed")
        tileset = read_tileset(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        return tileset
    finally:
        tmp.unlink(missing_ok=True)


def _cli():
    """`posko hub tiles …` (click is imported only when the command line is built)."""
    @click.group("tiles")
    def tiles() -> None:
        """The offline map's MBTiles file."""

    @tiles.command("install")
    @click.argument("source")
    @click.option("--sha256", "digest", required=True, help="SHA-256 (hex) the file must have.")
    def install_cmd(source: str, digest: str) -> None:
        """Install an MBTiles file from a path or an http(s) URL, checked by its SHA-256."""
        dest = tiles_path(load_settings())
        try:
            tileset = install(source, digest, dest, log=click.echo)
        except TilesError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"installed {tileset.name} ({tileset.format}, zoom {tileset.minzoom}-"
                   f"{tileset.maxzoom}) at {dest}")

    @tiles.command("status")
    def status_cmd() -> None:
        """Say which tile file the map uses, or that it shows points on a plain background."""
        dest = tiles_path(load_settings())
        try:
            tileset = read_tileset(dest)
        except TilesError as exc:
            click.echo(f"no usable tile file ({exc}): the map shows points on a plain background")
            return
        click.echo(f"{dest}: {tileset.name} ({tileset.format}, zoom {tileset.minzoom}-{tileset.maxzoom})")

    return tiles
