"""Fewer malloc arenas, so memory freed by one thread is reused by the others.

glibc gives each thread that allocates its own arena, up to 8 per core, and an arena keeps
what was freed in it. A sync allocates its large, short-lived objects (a page of people with
their engagement, a Bulk result set) on the read-ahead thread and the write workers as well
as the run's thread, so each of them ends up holding a high-water mark of its own: at
10,000 Salesforce records, 16 MB of the connector's RSS (`bench/salesforce_bulk.py`). Two
arenas keep allocation uncontended enough for a handful of threads. `MALLOC_ARENA_MAX` in the
environment, when set, wins; elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os

ARENAS = 2
M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (glibc's malloc.h)."""

log = logging.getLogger(__name__)


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas for the threads created from now on; whether it took effect."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter already uses
    except (OSError, AttributeError):  # no mallopt (macOS, Windows): nothing to tune
        return False
    done = bool(mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, done)
    return done
