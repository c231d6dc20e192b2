"""Reading the next batches while the current one is decided and written.

A run spends most of its time waiting for the CRM. With the next batches' reads in flight
while this batch is decided and its writes are, a run takes about the longest of the three
instead of their sum. A walk's pages come one after the other (each page names the next), so
the reader thread never waits on the engine: it runs up to `depth` batches ahead. Memory
stays that of `depth + 2` read batches at most (the queue's, the one the reader holds until
there is room, the engine's): neither thread keeps a batch once it has handed it on, so the
engine can drop a batch's raw records as soon as they are translated. The cursor rule is
untouched: reading ahead moves no cursor (a batch's cursor is saved only after its own writes
are acknowledged). Errors of a read surface where the batch would have been, in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

DEPTH = 1
"""Batches waiting, read ahead: with one more being read meanwhile, the walk's page chain keeps
going while the engine works on one (a raw batch of 2,000 Salesforce people with their
engagement is about 12 MB, so each one more waiting costs that much of peak memory)."""
_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(batches: Iterator[T], depth: int = DEPTH) -> Iterator[T]:
    """The items of `batches`, read by one worker thread up to `depth` items ahead."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
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
            for item in batches:
                if not put(item):
                    break
                del item  # handed on: not kept while the next one is read
            else:
                put(_END)
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
            held.append(ready.get())
            if held[0] is _END:
                return
            if isinstance(held[0], _Failed):
                raise held[0].error
            yield held.pop()  # type: ignore[misc]  # not kept here while the engine has it
    finally:
        stop.set()
        reader.join()
