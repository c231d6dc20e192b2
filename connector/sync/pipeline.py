"""Reading the next batch while the current one is decided and written.

A run spends most of its time waiting for the CRM. With the next batch's reads in flight
while this batch's writes are, a run takes about the longer of the two instead of their sum.
One batch ahead at most: memory stays that of two batches, and the cursor rule is untouched
(a batch's cursor is saved only after its own writes are acknowledged). Errors of a read
surface where the batch would have been, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(batches: Iterator[T]) -> Iterator[T]:
    """The items of `batches`, the next one always being read in a worker thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmq-read-ahead") as pool:
        pending = pool.submit(next, batches, _END)
        try:
            while True:
                item = pending.result()
                if item is _END:
                    return
                pending = pool.submit(next, batches, _END)
                yield item  # type: ignore[misc]
        finally:
            pending.cancel()
            if not pending.cancelled():
                pending.exception()  # let a read in flight finish before closing its source
            close = getattr(batches, "close", None)
            if close is not None:
                close()
