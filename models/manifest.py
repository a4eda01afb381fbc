"""The model manifest: which speech models exist, where to get them, how to check them."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from posko.errors import PoskoError

SHIPPED = Path(__file__).with_name("manifest.toml")
LOCAL_NAME = "manifest.local.toml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
_SHA = re.compile(r"^[0-9a-f]{64}\Z")


class ModelError(PoskoError, RuntimeError):
    """A model cannot be fetched, installed or verified."""


class ManifestError(ModelError, ValueError):
    """The manifest file is malformed; the message names the file and field."""


@dataclass(frozen=True)
class ModelFile:
    url: str
    path: str  # file name inside the model folder (or of the archive)
    size: int = 0
    sha256: str = ""
    unpack: bool = False  # an archive (.zip, .tar.gz) whose content is the model


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # asr | tts
    language: str
    licence: str
    note: str = ""
    source: str = ""
    files: tuple[ModelFile, ...] = field(default_factory=tuple)


def _entry(where: str, raw: dict) -> ModelEntry:
    def need(key: str, typ: type = str):
        if key not in raw or not isinstance(raw[key], typ):
            raise ManifestError(f"{where}: field '{key}' is missing or not a {typ.__name__}")
        return raw[key]

    name = need("name")
    if not _NAME.match(name):
        raise ManifestError(f"{where}: field 'name' {name!r} has characters other than A-Z a-z 0-9 _ . -")
    kind = need("kind")
    if kind not in ("asr", "tts"):
        raise ManifestError(f"{where}: field 'kind' must be 'asr' or 'tts', found {kind!r}")
    files = []
    for i, f in enumerate(raw.get("files", [])):
        fw = f"{where} files[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("path"), str) or "/" in f["path"] or f["path"] in ("", ".", ".."):
            raise ManifestError(f"{fw}: field 'path' must be a plain file name")
        sha = str(f.get("sha256", "")).lower()
        if sha and not _SHA.match(sha):
            raise ManifestError(f"{fw}: field 'sha256' must be 64 hex digits or empty")
        size = f.get("size", 0)
        if not isinstance(size, int) or size < 0:
            raise ManifestError(f"{fw}: field 'size' must be a byte count ≥ 0")
        files.append(ModelFile(url=str(f.get("url", "")), path=f["path"], size=size, sha256=sha,
                               unpack=bool(f.get("unpack", False))))
    return ModelEntry(name=name, kind=kind, language=need("language"), licence=need("licence"),
                      note=str(raw.get("note", "")).strip(), source=str(raw.get("source", "")),
                      files=tuple(files))


def read_manifest(path: Path) -> dict[str, ModelEntry]:
    """Entries of one manifest file by name; ManifestError on a bad file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    entries: dict[str, ModelEntry] = {}
    for i, raw in enumerate(data.get("model", [])):
        entry = _entry(f"{path.name}: model[{i}]", raw)
        entries[entry.name] = entry
    return entries


def load_manifest(models_dir: Path, shipped: Path | None = None) -> dict[str, ModelEntry]:
    """The shipped manifest with the operator's local overrides applied."""
    entries = read_manifest(shipped or SHIPPED)
    local = models_dir / LOCAL_NAME
    if local.is_file():
        entries.update(read_manifest(local))
    return entries


def pin_locally(models_dir: Path, entry: ModelEntry, digests: dict[str, str]) -> Path:
    """Write (or rewrite) `entry` in the local manifest with the given file digests."""
    local = models_dir / LOCAL_NAME
    current = read_manifest(local) if local.is_file() else {}
    files = tuple(ModelFile(f.url, f.path, f.size, digests.get(f.path, f.sha256), f.unpack)
                  for f in entry.files)
    current[entry.name] = ModelEntry(entry.name, entry.kind, entry.language, entry.licence,
                                     entry.note, entry.source, files)

    def q(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["# Local model pins written by `posko models`; entries here override the shipped manifest.", ""]
    for e in current.values():
        lines += ["[[model]]", f"name = {q(e.name)}", f"kind = {q(e.kind)}",
                  f"language = {q(e.language)}", f"licence = {q(e.licence)}",
                  f"note = {q(e.note)}", f"source = {q(e.source)}", ""]
        for f in e.files:
            lines += ["[[model.files]]", f"url = {q(f.url)}", f"path = {q(f.path)}",
                      f"size = {f.size}", f"sha256 = {q(f.sha256)}",
                      f"unpack = {'true' if f.unpack else 'false'}", ""]
    models_dir.mkdir(parents=True, exist_ok=True)
    local.write_text("\n".join(lines), encoding="utf-8")
    return local
