"""Fewer cyclic garbage collections while a run reads, decides and re-decides.

Deciding allocates millions of short-lived, acyclic objects (pages, contacts, events,
decisions, updates), freed by reference counting; the cycle collector finds nothing in them.
But a batch's contacts live across many young collections, so they are promoted, and every
few batches a full collection walks the whole heap (every module, every compiled rule): about
a quarter of the re-decide loop's CPU time (`bench/rescore.py`), and 1 to 2 s of a 10,000
contact full sync's (`bench/hubspot_sync.py`). Inside `fewer_collections` what already
exists is frozen (`gc.freeze`: never scanned again until the end) and a young collection runs
every `YOUNG` allocations instead of 700. Cycles are still collected, just less often.

The last to leave collects once, before unfreezing, so only what was made inside is scanned:
the cycles the paused collections left (a run's generators, frames and tracebacks, with what
they point to) are freed at the run's end, not somewhere in the next run, by which time that
run's own objects have been placed around them and the memory they held can no longer be
given back. A collection after each run of `bench/salesforce_sync.py` at 30,000 records (one
run each way) took the idle rerun, a day later and 30 days later from 151, 151 and 152 MB of
peak RSS to 144 each (collecting after unfreezing; at 100,000 records the two orders gave the
same figures within the run-to-run spread of 2 to 5 MB). Collecting after unfreezing scanned
the whole process each time: 17% more time for the Salesforce, mirror and daemon tests.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG = 200_000
"""Allocations between young collections: more than a chunk's objects, so few survive one.
200,000 against 50,000 (`bench/rescore.py`, 100,000 contacts, alternately): a rules change
took 20.0-21.0 s of CPU against 22.5, a day later 5.5-5.7 against 6.1-6.2, peak RSS the same;
a Salesforce full sync of 100,000 177 s against 184, RSS 161 / 164 MB against 158 / 165."""

_lock = threading.Lock()
_entered = 0
_saved: tuple[int, int, int] = (0, 0, 0)
_froze = False
"""Whether we froze: a process that froze its objects itself (before forking workers) keeps
them frozen after."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Process-wide while any caller is inside (runs of several instances may overlap); the
    first to enter sets it, the last to leave restores the thresholds and unfreezes."""
    global _entered, _saved, _froze
    with _lock:
        if _entered == 0:
            _saved = gc.get_threshold()
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
            gc.set_threshold(max(YOUNG, _saved[0]), _saved[1], _saved[2])
        _entered += 1
    try:
        yield
    finally:
        with _lock:
            _entered -= 1
            if _entered == 0:
                gc.set_threshold(*_saved)
                gc.collect()  # before unfreezing: only what was made inside is scanned
                if _froze:
                    gc.unfreeze()
