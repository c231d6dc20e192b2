"""Reading the next batches while the current one is decided and written.

A run spends most of its time waiting for the CRM. With the next batches' reads in flight
while this batch is decided and its writes are, a run takes about the longest of the three
instead of their sum. A walk's pages come one after the other (each page names the next), so
the reader thread never waits on the engine: it reads the next batch while the engine works
on one, and up to `depth` more may wait. Memory stays that of `depth + 2` read batches at most
(the engine's, the one being read, those waiting): the reader starts a batch only when it
may hand it on, and neither thread keeps a batch once it has handed it on, so the engine can
drop a batch's raw records as soon as they are translated. The cursor rule is
untouched: reading ahead moves no cursor (a batch's cursor is saved only after its own writes
are acknowledged). Errors of a read surface where the batch would have been, in order.

A run asked to stop (`until`) stops waiting for the batch being read, and a consumer that
leaves early does not wait for that read to finish: it ends at its next request
(`abandon`, the core's `Traffic.abandon_reads`). Nothing read is lost by it: only batches
decided and written move the cursor.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

T = TypeVar("T")

DEPTH = 0
"""Batches waiting, read ahead, besides the one being read: none, since one batch read while
the engine works on another already keeps both busy (a raw batch of 2,000 Salesforce people
with their engagement is about 12 MB, so each one waiting costs that much of peak memory: one
held the connector 10 MB higher in a 20,000-record Salesforce sync, REST and Bulk alike)."""
_END = object()
_STOPPED = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(
    batches: Iterator[T],
    depth: int = DEPTH,
    *,
    until: threading.Event | None = None,
    abandon: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Iterator[T]:
    """The items of `batches`, read by one worker thread: the next one while the caller
    works on one, and up to `depth` more waiting. No more once `until` is set. Left early,
    the read in progress is given up under `abandon` (it raises at its next request) and
    waited for."""
    if depth < 0:
        raise ValueError("depth must be at least 0")
    ready: queue.Queue[object] = queue.Queue(maxsize=depth + 1)
    room = threading.Semaphore(depth + 1)
    """Items the reader may start: one per item read ahead and not yet taken."""
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            while True:
                while not room.acquire(timeout=0.05):
                    if stop.is_set():
                        return
                item = next(batches, _END)
                if not put(item) or item is _END:
                    return
                del item  # handed on: not kept while the next one is read
        except BaseException as exc:  # surfaces in the run's thread, where the batch was due
            put(_Failed(exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="crmq-read-ahead", daemon=True)
    reader.start()
    held: list[object] = []
    try:
        while True:
            held.append(_next_or_stop(ready, until))  # no name of its own: not kept past yield
            if held[0] is _STOPPED:
                return
            room.release()
            if held[0] is _END:
                return
            if isinstance(held[0], _Failed):
                raise held[0].error
            yield held.pop()  # type: ignore[misc]  # not kept here while the engine has it
    finally:
        stop.set()
        if reader.is_alive():
            with abandon():
                reader.join()


def _next_or_stop(ready: queue.Queue[object], until: threading.Event | None) -> object:
    """The next item read, or `_STOPPED` once `until` is set while waiting for it."""
    if until is None:
        return ready.get()
    while not until.is_set():
        try:
            return ready.get(timeout=0.05)
        except queue.Empty:
            continue
    return _STOPPED
