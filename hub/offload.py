"""CPU-heavy steps off the connection loop: under gunicorn's gevent worker, a photo decode
or an argon2 check would stop every other connection of that worker while it runs.

`run(fn, *args)` runs fn in one of the worker's real OS threads when the process is
gevent-patched (Pillow and argon2 release the GIL while they work), and directly otherwise
(tests, the CLI, the ingest process).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_threads = 4


def configure(threads: int) -> None:
    """Size of the real thread pool (setting hub.threads); call before the first run()."""
    global _threads
    _threads = max(1, int(threads))


def patched() -> bool:
    """True in a gevent-patched process (a hub worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def run(fn: Callable[..., T], *args) -> T:
    """fn(*args), in a real thread when under gevent; exceptions propagate as raised."""
    if not patched():
        return fn(*args)
    import gevent  # lazy: only under gunicorn's gevent worker (the hub extra), which loaded it

    pool = gevent.get_hub().threadpool
    if pool.maxsize != _threads:
        pool.maxsize = _threads
    return pool.apply(fn, args)
