"""Private files and folders: state that holds personal data is readable by its owner only.

Systemd units set `UMask=0077`, but `posko up` and a hand-started process do not go through
systemd, so the code that makes state folders and databases sets the modes itself:
folders 0700, files 0600. SQLite gives its -wal and -shm files the mode of the database
file, so a database file made here 0600 keeps its WAL private as well.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def private_dir(path: str | os.PathLike[str], narrow: bool = True) -> Path:
    """Make `path` (and missing parents) a folder only its owner may enter; returns it.

    narrow: also set an existing folder to 0700 (False for a folder the operator chose,
    such as the one of a configured database file, which may be shared, like /tmp).
    Raises OSError if it cannot be made.
    """
    folder = Path(path)
    missing = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for new in reversed(missing):  # mkdir(mode=) alone is cut by the umask
        with contextlib.suppress(FileExistsError):
            new.mkdir(mode=DIR_MODE)
        new.chmod(DIR_MODE)
    if narrow and folder.stat().st_mode & 0o777 != DIR_MODE:
        folder.chmod(DIR_MODE)
    return folder


def private_file(path: str | os.PathLike[str], narrow_dir: bool = True) -> Path:
    """Make `path` exist as a 0600 file (created empty if missing, narrowed if wider).

    Its folder is made private as well (an existing one only if narrow_dir).
    Raises OSError if it cannot be made.
    """
    file = Path(path)
    private_dir(file.parent, narrow=narrow_dir)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return file


def private_umask() -> int:
    """Set the process umask to 0077 (files the process makes later are 0600 / 0700).

    Returns the previous umask.
    """
    return os.umask(UMASK)


@contextlib.contextmanager
def umask(mask: int = UMASK) -> Iterator[None]:
    """Run a block with `mask` as the umask (restored after)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace path with data in one step: a reader (or a power cut) sees the old file or
    the new one, never half of it. The data reach the disk before the rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_stored(path: str | os.PathLike[str], parse: Callable[[bytes], T], what: str) -> T | None:
    """parse(the file's bytes); None when the file is absent or parse raises ValueError
    (logged: a stored message that cannot be read is a finding, not a crash)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return parse(data)
    except ValueError as exc:
        log.error("stored %s is unreadable: %s", what, exc)
        return None
