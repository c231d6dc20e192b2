"""Requests in flight at once under the CRM's rate limits: the core's job, the adapter's data.

An adapter declares its API's shape as data (`Limits`): each class of endpoint with its limit
per window and the weight one request of it costs, how many requests may be in flight at
once, and how many records one write request takes. `Traffic` enforces it for every thread of
one adapter instance: the read-ahead thread, the write workers, fan-out reads and the run's
own thread all take an in-flight slot, then their class's budget, just before sending
(`request`). A 429 pauses every class (`pause`): the portal's budget is shared, so one
throttled worker means all of them should wait.

Threads, not asyncio: both adapters talk through synchronous clients nobody here wrote
(hubspot-api-client over urllib3, simple-salesforce over requests), and an async core would
have to run those very calls in threads anyway, or replace the vendors' clients. A request
spends nearly all its time waiting on a socket, with the GIL released, so a handful of
threads keeps the rate budget busy at 250 ms latency (15 requests / s x 0.3 s = 5 in flight)
for a few stacks; the CPU work (deciding) stays on the run's thread. Two pools: the engine's
writes (`submit`) and the adapters' fan-out reads (`together`), so a queue of writes never
delays the next batch's reads, and fan-out started from a worker runs inline instead of
waiting on its own pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crm_qualify.connector.sync.ratelimit import RateBudget

T = TypeVar("T")

FAN_OUT = 2
"""Workers for the adapters' fan-out reads (a batch's deals and tasks at once)."""


@dataclass(frozen=True)
class EndpointClass:
    """A class of endpoints sharing one limit: at most `limit` weight units per `window`
    seconds (None: the CRM sets no short-window limit), one request costing `weight`."""

    limit: int | None
    window: float = 10.0
    weight: int = 1


@dataclass(frozen=True)
class Limits:
    """An adapter's API, as the core needs to know it to keep several requests in flight.

    `in_flight`: requests at once over all classes; `write_batch` / `task_batch`: records
    one write / task-create request takes (the engine coalesces writes up to these; None
    leaves each batch's writes in one call, for the adapter to split). `bulk_batch` /
    `bulk_from`: an API for large write sets (Salesforce's Bulk ingest jobs) takes up to
    `bulk_batch` records in one call and is worth it from `bulk_from`; the engine then holds
    writes for a few batches to hand the adapter sets that large (it picks its path by size)."""

    classes: Mapping[str, EndpointClass] = field(default_factory=dict)
    in_flight: int = 1
    write_batch: int | None = None
    task_batch: int | None = None
    bulk_batch: int | None = None
    bulk_from: int | None = None

    def __post_init__(self) -> None:
        if self.in_flight < 1:
            raise ValueError("in_flight must be at least 1")


class Traffic:
    """One adapter instance's requests: slots, budgets, the pause after a 429, the pools."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self.budgets = {
            name: RateBudget(spec.limit, spec.window, clock=clock, sleep=sleep)
            for name, spec in limits.classes.items()
            if spec.limit is not None
        }
        self._clock, self._sleep = clock, sleep
        self._slots = threading.BoundedSemaphore(limits.in_flight)
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._writers: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self.peak_in_flight = 0
        self._in_flight = 0

    @property
    def writers(self) -> int:
        """Write requests the engine keeps in flight: the slots left after the fan-out."""
        return max(1, self.limits.in_flight - FAN_OUT)

    @contextmanager
    def request(self, kind: str) -> Iterator[None]:
        """Around one HTTP request of endpoint class `kind`: waits for a slot, the end of
        any pause, and room in the class's budget, in that order (the budget is stamped
        last, just before the request leaves)."""
        spec = self.limits.classes.get(kind)
        if spec is None and self.limits.classes:
            raise ValueError(f"endpoint class {kind!r} is not declared in the adapter's limits")
        with self._slots:
            self._wait_out_pause()
            budget = self.budgets.get(kind)
            if budget is not None and spec is not None:
                budget.acquire(spec.weight)
            with self._lock:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            try:
                yield
            finally:
                with self._lock:
                    self._in_flight -= 1

    def pause(self, seconds: float) -> None:
        """Nobody sends for `seconds`: the CRM throttled one of us."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _wait_out_pause(self) -> None:
        while True:
            with self._lock:
                wait = self._paused_until - self._clock()
            if wait <= 0:
                return
            self._sleep(wait)

    # pools ----------------------------------------------------------------------------------
    def submit(self, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run `call(*args)` on a write worker (at most `writers` at once)."""
        with self._lock:
            if self._writers is None:
                self._writers = self._pool(self.writers, "crmq-write")
            pool = self._writers
        return pool.submit(call, *args)

    def together(self, *calls: Callable[[], T]) -> list[T]:
        """The results of `calls` run at once, in order; the first failure is raised once
        all have ended. Inline when there is one slot, or when called from a worker."""
        if len(calls) < 2 or self.limits.in_flight < 2 or getattr(self._local, "worker", False):
            return [call() for call in calls]
        with self._lock:
            if self._readers is None:
                self._readers = self._pool(FAN_OUT, "crmq-fan-out")
            pool = self._readers
        futures = [pool.submit(call) for call in calls]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    def _pool(self, workers: int, name: str) -> ThreadPoolExecutor:
        def mark() -> None:
            self._local.worker = True

        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name, initializer=mark)

    def close(self) -> None:
        """Let the workers end (a new call starts them again)."""
        with self._lock:
            pools, self._writers, self._readers = (self._writers, self._readers), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)


def traffic_of(adapter: object) -> Traffic:
    """The adapter's `traffic`, or one request at a time for an adapter that declares none."""
    found = getattr(adapter, "traffic", None)
    return found if isinstance(found, Traffic) else Traffic(Limits())
