"""The voice process gives freed heap memory back (glibc malloc_trim) and caps its arenas."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

import pytest

from firmware.procinfo import rss_mb
from firmware.voice import memory

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

pytestmark = pytest.mark.skipif(not hasattr(libc, "malloc_trim"), reason="not glibc")


def test_release_gives_freed_heap_pages_back() -> None:
    """80 MB in 1 KB blocks freed while the block on top stays: glibc keeps the pages (its
    heap can only shrink from the top) until malloc_trim returns them."""
    def churn() -> tuple[float, float, float]:
        blocks = [libc.malloc(1024) for _ in range(80_000)]
        for b in blocks:
            libc.memset(b, 1, 1024)
        pin = libc.malloc(1024)
        full = rss_mb()
        for b in blocks:
            libc.free(b)
        kept = rss_mb()
        memory.release()
        after = rss_mb()
        libc.free(pin)
        return full, kept, after

    out: list = []
    worker = threading.Thread(target=lambda: out.append(churn()))  # its own arena, as a decode
    worker.start()
    worker.join()
    full, kept, after = out[0]
    assert kept > full - 20  # freeing alone gave (almost) nothing back
    assert after < kept - 50  # released: most of the 80 MB is back with the system


def test_limit_arenas_is_accepted_by_glibc() -> None:
    assert memory.limit_arenas(2) is True
    assert memory.limit_arenas(0) is False
