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
writes (`submit`) and the adapters' fan-out reads (`together`, `interleave`), so a queue of
writes never delays the next batch's reads, and fan-out started from a worker runs inline
instead of waiting on its own pool.

`interleave` runs independent chains of reads (each step depends on the one before, as
keyset pages do) side by side: a chain is advanced one step per task, never by a worker that
waits on the consumer, so a batch's own reads (`together`) always find a worker free.

A run that stops (a signal, Ctrl-C) gives up the read it is waiting for (`abandon_reads`):
until that read's thread has ended, every request but a write worker's raises
`ReadAbandoned` before it leaves, and every wait of it (a retry's backoff, a pause, a budget)
ends at once or within `BACKOFF_SLICE`, so the read ends instead of going on to its last
request (a first HubSpot sync reads forms and activities for minutes before its first
batch). The writes in flight go on, wait as before, and are acknowledged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity.nap
from crm_qualify.connector.sync.ratelimit import RateBudget

T = TypeVar("T")


class ReadAbandoned(BaseException):  # noqa: N818 - not an error: a read given up on purpose
    """Raised by `Traffic.request` in a read the run gave up (`abandon_reads`). Not an
    `Exception`: no adapter handles it as a CRM failure, and no retry policy retries it."""


FAN_OUT = 4
"""Workers for the adapters' fan-out reads: a batch's linked types at once, and the chains
of pages `interleave` keeps going meanwhile."""
BACKOFF_SLICE = 0.1
"""Seconds a read's retry backoff sleeps between looks at whether the run gave the read up."""
AHEAD = 4
"""Steps of one chain `interleave` may have done before the consumer takes them."""
_DONE = object()


@dataclass(frozen=True)
class EndpointClass:
    """A class of endpoints sharing one limit: at most `limit` weight units per `window`
    seconds (our share; None: the CRM sets no short-window limit), one request costing
    `weight`. `ceiling`: the CRM's own limit for the class where it is known and above our
    share; the CRM never counts more of ours than that in one of its windows, nor more than
    `limit` when no ceiling is declared (`ratelimit.RateBudget`: it counts a request on
    arrival, which may come late)."""

    limit: int | None
    window: float = 10.0
    weight: int = 1
    ceiling: int | None = None


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
            name: RateBudget(
                spec.limit, spec.window, ceiling=spec.ceiling, clock=clock, sleep=self._nap
            )
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
        self._abandoned = threading.Event()
        """Set while a stopped run waits for the read it gave up to end (`abandon_reads`)."""
        self.peak_in_flight = 0
        self._in_flight = 0

    @property
    def writers(self) -> int:
        """Write requests the engine keeps in flight: the slots left after the fan-out."""
        return max(1, self.limits.in_flight - FAN_OUT)

    @contextmanager
    def request(self, kind: str) -> Iterator[Callable[[], None]]:
        """Around one HTTP request of endpoint class `kind`: waits for a slot, the end of
        any pause, and room in the class's budget, in that order (the budget is taken last,
        just before the request leaves, and given back once it has ended, or once the caller
        calls what this yields as the answer comes in: `RateBudget.spend`)."""
        spec = self.limits.classes.get(kind)
        if spec is None and self.limits.classes:
            raise ValueError(f"endpoint class {kind!r} is not declared in the adapter's limits")
        budget = self.budgets.get(kind)
        self._check_abandoned()
        with self._slots:
            self._check_abandoned()  # the wait for a slot may have been long
            self._wait_out_pause()
            spent = budget.spend(spec.weight) if budget and spec else nullcontext(_unbudgeted)
            with spent as answered:
                with self._lock:
                    self._in_flight += 1
                    self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
                try:
                    yield answered
                finally:
                    with self._lock:
                        self._in_flight -= 1

    @contextmanager
    def abandon_reads(self) -> Iterator[None]:
        """While the caller waits for a read it gave up to end: no request leaves but a
        write worker's (`ReadAbandoned`)."""
        self._abandoned.set()
        try:
            yield
        finally:
            self._abandoned.clear()

    def backoff(self, seconds: float) -> None:
        """A retry's wait in the calling thread (`call_with_retries(sleep=...)`): a write
        worker's in one go; any other's in slices, so a read given up meanwhile ends within
        `BACKOFF_SLICE` (`ReadAbandoned`) instead of after up to 30 s of backoff."""
        if getattr(self._local, "writes", False):
            tenacity.nap.sleep(seconds)
            return
        left = seconds
        while left > 0:
            self._check_abandoned()
            step = min(left, BACKOFF_SLICE)
            tenacity.nap.sleep(step)
            left -= step
        self._check_abandoned()

    def _check_abandoned(self) -> None:
        if self._abandoned.is_set() and not getattr(self._local, "writes", False):
            raise ReadAbandoned("the run stopped: its read is given up")

    def pause(self, seconds: float) -> None:
        """Nobody sends for `seconds`: the CRM throttled one of us. The budgets pause too, so
        a request already waiting for room in one does not leave during the pause."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
        for budget in self.budgets.values():
            budget.pause(seconds)

    def _wait_out_pause(self) -> None:
        while True:
            with self._lock:
                wait = self._paused_until - self._clock()
            if wait <= 0:
                return
            self._nap(wait)

    def _nap(self, seconds: float) -> None:
        """How this traffic's waits sleep (the pause after a 429, room in a budget). A write
        worker's as asked; any other's, when real, on the flag a given-up read raises, so it
        ends at once (a HubSpot pause lasts 10 s). An injected sleep (a test's clock) is
        called as asked."""
        if getattr(self._local, "writes", False):
            self._sleep(seconds)
            return
        self._check_abandoned()
        if self._sleep is time.sleep:
            self._abandoned.wait(seconds)
        else:
            self._sleep(seconds)
        self._check_abandoned()

    # pools ----------------------------------------------------------------------------------
    def submit(self, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run `call(*args)` on a write worker (at most `writers` at once)."""
        with self._lock:
            if self._writers is None:
                self._writers = self._pool(self.writers, "crmq-write", writes=True)
            pool = self._writers
        return pool.submit(call, *args)

    def together(self, *calls: Callable[[], T]) -> list[T]:
        """The results of `calls` run at once, in order; the first failure is raised once
        all have ended. Inline when there is one slot, or when called from a worker."""
        if len(calls) < 2 or self.limits.in_flight < 2 or getattr(self._local, "worker", False):
            return [call() for call in calls]
        pool = self._fan_out()
        futures = [pool.submit(call) for call in calls]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    def interleave(self, *chains: Iterator[T], ahead: int = AHEAD) -> Iterator[T]:
        """The items of independent `chains`, in the order they come. Each chain is advanced
        one step at a time on a fan-out worker and runs up to `ahead` items before the
        consumer takes them (so its requests go on while the consumer works); the first
        failure is raised once the steps in flight have ended. One chain after the other
        when there is one slot, or when called from a worker."""
        if len(chains) < 2 or self.limits.in_flight < 2 or getattr(self._local, "worker", False):
            for chain in chains:
                yield from chain
            return
        pump = _Pump(self._fan_out(), chains, ahead)
        try:
            while (item := pump.take()) is not _DONE:
                yield item  # type: ignore[misc]
        finally:
            pump.stop()

    def _fan_out(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._readers is None:
                self._readers = self._pool(FAN_OUT, "crmq-fan-out")
            return self._readers

    def _pool(self, workers: int, name: str, *, writes: bool = False) -> ThreadPoolExecutor:
        def mark() -> None:
            self._local.worker = True
            self._local.writes = writes

        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name, initializer=mark)

    def close(self) -> None:
        """Let the workers end (a new call starts them again)."""
        with self._lock:
            pools, self._writers, self._readers = (self._writers, self._readers), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)


class _Pump:
    """`Traffic.interleave`'s state: per chain, whether a step is in flight and how many of
    its items wait; the items in the order they came; the first error."""

    def __init__(self, pool: ThreadPoolExecutor, chains: tuple[Iterator[Any], ...], ahead: int):
        self.pool, self.chains, self.ahead = pool, chains, max(1, ahead)
        self.ready: deque[tuple[int, Any]] = deque()
        self.waiting = [0] * len(chains)
        self.flying: dict[int, Future[Any]] = {}
        self.ended: set[int] = set()
        self.error: BaseException | None = None
        self.stopped = False
        self.changed = threading.Condition()
        with self.changed:
            for index in range(len(chains)):
                self._advance(index)

    def _advance(self, index: int) -> None:
        """Start the chain's next step if it may run (the lock is held)."""
        if (
            self.stopped
            or self.error is not None
            or index in self.flying
            or index in self.ended
            or self.waiting[index] >= self.ahead
        ):
            return
        future = self.pool.submit(next, self.chains[index], _DONE)
        self.flying[index] = future
        future.add_done_callback(lambda done: self._landed(index, done))

    def _landed(self, index: int, future: Future[Any]) -> None:
        with self.changed:
            del self.flying[index]
            error = future.exception()
            if error is not None:
                self.error = self.error or error
            elif (item := future.result()) is _DONE:
                self.ended.add(index)
            else:
                self.ready.append((index, item))
                self.waiting[index] += 1
                self._advance(index)
            self.changed.notify_all()

    def take(self) -> Any:
        """The next item, or `_DONE` once every chain has ended; raises the first error."""
        with self.changed:
            while True:
                if self.error is not None:
                    while self.flying:
                        self.changed.wait()
                    raise self.error
                if self.ready:
                    index, item = self.ready.popleft()
                    self.waiting[index] -= 1
                    self._advance(index)
                    return item
                if len(self.ended) == len(self.chains):
                    return _DONE
                self.changed.wait()

    def stop(self) -> None:
        """No new step; wait for those in flight, then close the chains (generators)."""
        with self.changed:
            self.stopped = True
            flying = list(self.flying.values())
        wait(flying)
        for chain in self.chains:
            close = getattr(chain, "close", None)
            if close is not None:
                close()


def _unbudgeted() -> None:
    """`Traffic.request`'s answer signal for a class without a budget."""


def traffic_of(adapter: object) -> Traffic:
    """The adapter's `traffic`, or one request at a time for an adapter that declares none."""
    found = getattr(adapter, "traffic", None)
    return found if isinstance(found, Traffic) else Traffic(Limits())
