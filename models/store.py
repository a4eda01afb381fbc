"""Models on disk: download with resume, check digests, install from a file or folder.

Layout under `<state_dir>/models/`:
  <name>/                 the installed model (a Vosk folder, or a Piper .onnx + .onnx.json)
  <name>/.posko-model.json  what was installed: files and their SHA-256, a tree digest
  .partial/<name>/<file>  downloads in progress (kept across a cut, resumed with Range)
An install is built in a temporary folder and renamed into place, so a half-finished
install never replaces a working model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from models.manifest import ModelEntry, ModelError, ModelFile

log = logging.getLogger(__name__)

MARKER = ".posko-model.json"
CHUNK = 1 << 16


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def tree_digest(folder: Path) -> str:
    """SHA-256 over every file's relative path and content digest (marker excluded)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()


@dataclass
class Installed:
    name: str
    path: Path
    kind: str
    tree_sha256: str
    files: dict[str, str]
    source: str
    installed_at: float


class ModelStore:
    def __init__(self, models_dir: Path) -> None:
        self.dir = Path(models_dir)

    def path(self, name: str) -> Path:
        return self.dir / name

    def installed(self, name: str) -> Installed | None:
        marker = self.path(name) / MARKER
        try:
            d = json.loads(marker.read_text())
        except (OSError, ValueError):
            return None
        return Installed(name, self.path(name), d.get("kind", ""), d.get("tree_sha256", ""),
                         d.get("files", {}), d.get("source", ""), d.get("installed_at", 0.0))

    # -- download ------------------------------------------------------------------
    def download(self, entry: ModelEntry, f: ModelFile, *, retries: int = 3,
                 progress: Callable[[int, int], object] | None = None,
                 timeout_s: float = 30.0) -> Path:
        """Download one file into .partial/, resuming what is there; returns its path.

        `progress(done_bytes, total_bytes)` is called as bytes arrive. Raises ModelError
        when the server keeps failing after `retries` resumed attempts (the partial file
        stays for the next run).
        """
        if not f.url:
            raise ModelError(f"{entry.name}: {f.path} has no download URL in the manifest; "
                             f"install it from a file with `posko models install PATH --name {entry.name}`")
        part = self.dir / ".partial" / entry.name / f.path
        part.parent.mkdir(parents=True, exist_ok=True)
        attempt = 0
        while True:
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with requests.get(f.url, headers=headers, stream=True, timeout=timeout_s) as r:
                    if r.status_code == 416 and have:
                        return part  # already complete; the digest decides
                    if r.status_code not in (200, 206):
                        raise ModelError(f"{entry.name}: {f.url} answered HTTP {r.status_code}")
                    if r.status_code == 200 and have:
                        have = 0  # the server ignored Range: start again
                    length = int(r.headers.get("Content-Length", 0) or 0)
                    total = f.size or (have + length if length else 0)
                    mode = "ab" if have else "wb"
                    done = have
                    if progress:
                        progress(done, total)
                    with open(part, mode) as out:
                        for block in r.iter_content(CHUNK):
                            out.write(block)
                            done += len(block)
                            if progress:
                                progress(done, total)
                    if length and done < have + length:
                        raise requests.ConnectionError("connection closed early")
                    return part
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                attempt += 1
                got = part.stat().st_size if part.exists() else 0
                if attempt > retries:
                    raise ModelError(f"{entry.name}: download of {f.path} cut after {got} bytes "
                                     f"({exc.__class__.__name__}); run the same command again to resume") from None
                log.warning("%s: download cut at %d bytes; resuming (attempt %d of %d)",
                            f.path, got, attempt, retries)
                time.sleep(min(2.0, 0.2 * attempt))

    def check_digest(self, entry: ModelEntry, f: ModelFile, path: Path, *, allow_unpinned: bool) -> str:
        """The file's SHA-256; ModelError (and the file removed) when it does not match."""
        digest = sha256_file(path)
        if f.sha256:
            if digest != f.sha256:
                path.unlink(missing_ok=True)
                raise ModelError(f"{entry.name}: {f.path} has SHA-256 {digest}, the manifest says "
                                 f"{f.sha256}; refused (the file was deleted)")
        elif not allow_unpinned:
            raise ModelError(f"{entry.name}: {f.path} is not pinned in the manifest (no sha256); "
                             f"it downloaded with SHA-256 {digest}. Check it, then run again with "
                             f"--allow-unpinned to install and pin it")
        return digest

    def fetch(self, entry: ModelEntry, *, allow_unpinned: bool = False, retries: int = 3,
              progress_factory=None) -> tuple[Installed, dict[str, str]]:
        """Download, verify and install every file of `entry`."""
        if not entry.files:
            raise ModelError(f"{entry.name}: the manifest lists no files")
        paths: list[tuple[ModelFile, Path]] = []
        digests: dict[str, str] = {}
        for f in entry.files:
            if not f.url:
                raise ModelError(f"{entry.name}: {f.path} has no download URL in the manifest; "
                                 f"install it from a file with `posko models install PATH --name {entry.name}`")
            bar = progress_factory(f) if progress_factory else None
            try:
                path = self.download(entry, f, retries=retries,
                                     progress=(bar.update_to if bar else None))
            finally:
                if bar is not None:
                    bar.close()
            digests[f.path] = self.check_digest(entry, f, path, allow_unpinned=allow_unpinned)
            paths.append((f, path))
        installed = self._install_files(entry.name, entry.kind, paths, source="fetch")
        shutil.rmtree(self.dir / ".partial" / entry.name, ignore_errors=True)
        return installed, digests

    # -- install -------------------------------------------------------------------
    def install_path(self, source: Path, entry: ModelEntry | None, name: str, kind: str) -> Installed:
        """Install from a local archive, a file (+ its .json for Piper) or a folder."""
        source = Path(source)
        if not source.exists():
            raise ModelError(f"{source}: no such file or folder")
        if entry is not None:
            wanted = {f.path: f for f in entry.files}
            if source.is_file() and source.name in wanted and wanted[source.name].sha256:
                digest = sha256_file(source)
                if digest != wanted[source.name].sha256:
                    raise ModelError(f"{source}: SHA-256 {digest} does not match the manifest's "
                                     f"{wanted[source.name].sha256} for {entry.name}; refused")
        if source.is_dir():
            return self.install_folders([source], entry, name, kind)
        files: list[tuple[ModelFile, Path]] = [(ModelFile("", source.name, unpack=_is_archive(source)), source)]
        if source.suffix == ".onnx":
            config = Path(f"{source}.json")
            if not config.is_file():
                raise ModelError(f"{source}: a Piper voice needs its config {config.name} beside it")
            files.append((ModelFile("", config.name), config))
        return self._install_files(name, kind, files, source=f"install {source.name}")

    def _install_files(self, name: str, kind: str, files: list[tuple[ModelFile, Path]],
                       source: str) -> Installed:
        self.dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.dir))
        try:
            for f, path in files:
                if f.unpack or _is_archive(path):
                    _unpack(path, staging)
                else:
                    shutil.copy2(path, staging / f.path)
            root = _content_root(staging)
            return self._commit(name, kind, root, staging, source)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def install_folders(self, sources: list[Path], entry: ModelEntry | None, name: str,
                        kind: str) -> Installed:
        """Install the merged content of one or more folders (a model shipped in parts).

        Files split as `X.part1`, `X.part2`, ... are joined into `X` (in part order). Every
        file the manifest entry pins (other than an archive to unpack) must then be there
        with its SHA-256; ModelError names the first one that is missing or different, and
        nothing is installed.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.dir))
        tree = staging / "tree"
        try:
            tree.mkdir()
            for folder in sources:
                if not Path(folder).is_dir():
                    raise ModelError(f"{folder}: not a folder")
                shutil.copytree(folder, tree, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(MARKER, "__pycache__", "*.py", "*.pyc"))
            _join_parts(tree)
            if entry is not None:
                for f in entry.files:
                    if f.unpack or not f.sha256:
                        continue
                    path = tree / f.path
                    if not path.is_file():
                        raise ModelError(f"{entry.name}: {f.path} is missing from "
                                         f"{', '.join(str(s) for s in sources)}; refused")
                    digest = sha256_file(path)
                    if digest != f.sha256:
                        raise ModelError(f"{entry.name}: {f.path} has SHA-256 {digest}, the "
                                         f"manifest says {f.sha256}; refused")
            label = " + ".join(f"{Path(s).name}/" for s in sources)
            return self._commit(name, kind, tree, staging, f"install {label}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _commit(self, name: str, kind: str, root: Path, staging: Path, source: str) -> Installed:
        files = {str(p.relative_to(root)): sha256_file(p)
                 for p in sorted(root.rglob("*")) if p.is_file()}
        if not files:
            raise ModelError(f"{name}: nothing to install (empty archive or folder)")
        marker = {"name": name, "kind": kind, "source": source, "installed_at": time.time(),
                  "tree_sha256": tree_digest(root), "files": files}
        (root / MARKER).write_text(json.dumps(marker, indent=1))
        final = self.path(name)
        old = staging / "old"
        if final.exists():
            os.replace(final, old)
        os.replace(root, final)
        log.info("installed model %s at %s (%d files)", name, final, len(files))
        inst = self.installed(name)
        assert inst is not None
        return inst

    # -- verify --------------------------------------------------------------------
    def verify(self, name: str) -> tuple[bool, str]:
        """(ok, message) after re-reading every installed file."""
        inst = self.installed(name)
        if inst is None:
            return False, "not installed"
        now = tree_digest(inst.path)
        if now != inst.tree_sha256:
            changed = [p for p, d in inst.files.items()
                       if not (inst.path / p).is_file() or sha256_file(inst.path / p) != d]
            return False, f"changed since install: {', '.join(changed[:5]) or 'extra files'}"
        return True, f"ok ({len(inst.files)} files, tree {now[:12]})"


def _join_parts(folder: Path) -> None:
    """Join every `X.part1`, `X.part2`, ... under `folder` into `X` and remove the parts.

    Raises ModelError when a part in the middle is missing (part1 and part3 only).
    """
    groups: dict[Path, dict[int, Path]] = {}
    for path in folder.rglob("*.part*"):
        m = re.fullmatch(r"(.+)\.part(\d+)", path.name)
        if m and path.is_file():
            groups.setdefault(path.with_name(m.group(1)), {})[int(m.group(2))] = path
    for target, parts in groups.items():
        numbers = sorted(parts)
        if numbers != list(range(1, len(numbers) + 1)):
            raise ModelError(f"{target.name}: parts {numbers} found; expected 1..{max(numbers)}")
        with open(target, "wb") as out:
            for n in numbers:
                with open(parts[n], "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
                parts[n].unlink()


def _is_archive(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz"))


def _unpack(archive: Path, dest: Path) -> None:
    """Extract safely: no absolute paths, no '..', no links out of `dest`."""
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    target = (dest / member).resolve()
                    if not str(target).startswith(str(dest.resolve())):
                        raise ModelError(f"{archive.name}: unsafe path {member!r} in archive")
                z.extractall(dest)
        else:
            with tarfile.open(archive) as t:
                t.extractall(dest, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError) as exc:
        raise ModelError(f"{archive.name}: not a readable archive ({exc})") from None


def _content_root(staging: Path) -> Path:
    """An archive holding one top folder installs that folder's content."""
    entries = [p for p in staging.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    tree = staging / ".root"
    tree.mkdir()
    for p in entries:
        os.replace(p, tree / p.name)
    return tree
