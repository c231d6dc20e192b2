"""Two glibc malloc settings, and a trim after each run, that keep a sync's freed memory from
staying resident.

Fewer arenas, so memory freed by one thread is reused by the others. glibc gives each thread
that allocates its own arena, up to 8 per core, and an arena keeps what was freed in it. A
sync allocates its large, short-lived objects (a page of people with their engagement, a Bulk
result set) on the read-ahead thread and the write workers as well as the run's thread, so
each of them ends up holding a high-water mark of its own: at 10,000 Salesforce records, 16 MB
of the connector's RSS (`bench/salesforce_bulk.py`). Two arenas keep allocation uncontended
enough for a handful of threads.

A fixed mmap threshold, so a large block (a response body, its decoded text, a Bulk CSV) is
mapped on its own and returned when freed. glibc raises the threshold to the size of each
mapped block freed (up to 32 MB), so after the first page of a read such blocks come from
the heap, where they fragment it and stay resident: at 30,000 Salesforce records the
connector's peak RSS in the runs after a full sync was 9 to 16 MB lower with the threshold
held at 256 KiB (`bench/salesforce_sync.py`, same build, one run each way).

`MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` in the environment, when set, win; elsewhere
than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os

ARENAS = 2
M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (glibc's malloc.h)."""
MMAP_THRESHOLD = 256 * 1024
M_MMAP_THRESHOLD = -3
"""mallopt's parameter number for the mmap threshold (glibc's malloc.h)."""

log = logging.getLogger(__name__)


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas for the threads created from now on; whether it took effect."""
    return _mallopt_unless_set(M_ARENA_MAX, arenas, "MALLOC_ARENA_MAX")


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Map blocks from `size` bytes on their own, whatever was freed before; whether it took
    effect."""
    return _mallopt_unless_set(M_MMAP_THRESHOLD, size, "MALLOC_MMAP_THRESHOLD_")


def tune_malloc() -> None:
    """Both settings, before any thread starts (the CLI's first step)."""
    limit_malloc_arenas()
    fix_mmap_threshold()


def give_back_free_memory() -> bool:
    """glibc's `malloc_trim(0)`: every free page inside the heap goes back to the system, not
    only a free top. A run frees most of what it made, but what survives it (a cache entry, a
    connection's buffer) sits between pages that are now free, and glibc keeps them: at
    100,000 Salesforce records the process ended its runs 10 to 17 MB lower with this after
    each, and the next runs peaked up to 13 MB lower (`bench/salesforce_sync.py`, side by
    side). A few milliseconds; whether anything was given back. Elsewhere than glibc:
    nothing."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(trim(0))


def _mallopt_unless_set(parameter: int, value: int, variable: str) -> bool:
    """glibc's `mallopt(parameter, value)`, unless `variable` in the environment sets it
    already (it wins); whether it took effect. Elsewhere than glibc (macOS, Windows) there is
    no `mallopt` and nothing to tune."""
    if os.environ.get(variable):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter already uses
    except (OSError, AttributeError):
        return False
    done = bool(mallopt(parameter, value))
    log.debug("mallopt(%d, %d) for %s: %s", parameter, value, variable, done)
    return done
