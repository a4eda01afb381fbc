"""Memory of a long-running voice process on a 4 GB unit: glibc's malloc, through ctypes.

* `limit_arenas(n)`: glibc gives each new thread that allocates its own arena (up to 8 per
  core) and keeps what each arena ever held; `mallopt(M_ARENA_MAX)` caps that for threads
  made afterwards (the same as MALLOC_ARENA_MAX in the environment, which systemd sets for
  the unit; this covers `posko unit` started by hand).
* `release()`: `malloc_trim(0)` hands freed heap pages back to the system after a decode or
  an answer (the audio, features and activations of one question are freed by then but
  glibc would keep the pages for the next allocation).

Both are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc malloc.h

_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else False
        except OSError:
            _libc = False
    return _libc or None


def limit_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at `count` for threads made from now on; True if done."""
    lib = _glibc()
    if lib is None or count <= 0:
        return False
    done = bool(lib.mallopt(M_ARENA_MAX, int(count)))
    log.debug("malloc arenas capped at %d: %s", count, done)
    return done


def release() -> bool:
    """Give freed heap memory back to the system; True if some was released."""
    lib = _glibc()
    return bool(lib.malloc_trim(0)) if lib is not None else False
