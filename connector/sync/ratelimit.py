"""Client-side rate budgets, so a run stays under the CRM's limits instead of bouncing off them.

`RateBudget` is a rolling window shared by all worker threads of one adapter (HubSpot's burst
limit per 10 s, its search limit per second), counted in weight units: a request that the CRM
counts as several costs its weight. A 429 or a `Retry-After` pauses every worker, and
rate-limit headers can tighten the window when other apps share the portal's budget.
Budgets are built and shared by `concurrency.Traffic` from an adapter's endpoint table.

The CRM counts a request when it arrives, which the client never sees: only that it arrives
after it was sent and before its answer comes back. Between the two lie the network, both
sides' thread scheduling and, on a loaded machine, pauses of half a second (measured against
the simulator: searches sent 0.25 s apart reached it 0.5 ms apart). A budget stamped when a
request is sent lets the CRM see more than its limit in one of its windows whenever an earlier
request is delayed more than a later one. So the CRM's limit (`ceiling`) holds each request
from when it is sent until `window` after its answer: every request the CRM can count in one
of its windows then counts in ours at that window's end, whatever the delays, and no cheaper
rule that knows only the send and answer times guarantees it. That costs a round trip per
request on the window (a 1 s search window held 1.25 s at 250 ms answers), so where the CRM's
limit is above our share (`limit`, stamped when sent, which keeps the pace and leaves the rest
to the portal's other apps), the round trip comes out of the difference, not out of our pace.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from crm_qualify.connector.contract import BudgetExhausted

Grant = tuple[float, int]
"""(when it was granted, weight) of one request."""


class RateBudget:
    """At most `limit` weight units sent in any `window` seconds, and at most `ceiling`
    (default `limit`) in any window as the CRM counts them, on arrival: for that rule a
    request holds its units from `acquire` until `window` after its `release` (its answer,
    or its failure). `acquire` blocks until the units fit both."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        ceiling: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate budget needs limit >= 1 and window > 0")
        if ceiling is not None and ceiling < limit:
            raise ValueError("a rate budget's ceiling (the CRM's limit) is below its share")
        self.limit = limit
        self.window = window
        self.ceiling = limit if ceiling is None else ceiling
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[Grant] = deque()
        """Grants of the last `window`, oldest first (for `limit`)."""
        self._used = 0
        self._in_flight = 0
        self._answered: deque[tuple[float, int]] = deque()
        """(until when it counts, weight) per answered request, in that order (`ceiling`)."""
        self._counted = 0
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)

    def acquire(self, weight: int = 1) -> Grant:
        """Wait until `weight` more units fit, then hold them; pass the grant to `release`."""
        if not 1 <= weight <= self.limit:
            raise ValueError(f"a request of weight {weight} never fits a budget of {self.limit}")
        while True:
            with self._lock:
                now = self._clock()
                self._trim(now)
                wait = self._paused_until - now
                if wait <= 0:
                    over_share = self._used + weight > self.limit
                    held = self._in_flight + self._counted + weight
                    if not over_share and held <= self.ceiling:
                        grant = (now, weight)
                        self._sent.append(grant)
                        self._used += weight
                        self._in_flight += weight
                        return grant
                    ends = [self._share_free_at(weight)] if over_share else []
                    if held > self.ceiling:
                        counted_until = self._counted_free_at(weight)
                        if counted_until is None:  # only an answer still due frees enough
                            self._released.wait()
                            continue
                        ends.append(counted_until)
                    wait = max(ends) - now
            self._sleep(max(wait, 0.001))

    def release(self, grant: Grant) -> None:
        """The request's answer (or failure) is in: the CRM counted it by now, so it counts
        for one more window against the ceiling."""
        with self._lock:
            self._in_flight -= grant[1]
            self._answered.append((self._clock() + self.window, grant[1]))
            self._counted += grant[1]
            self._released.notify_all()

    @contextmanager
    def spend(self, weight: int = 1) -> Iterator[Callable[[], None]]:
        """Around one request: `acquire` before sending, `release` once it has ended, or as
        soon as the caller calls what this yields (the answer's first bytes are in: the
        request has arrived, and reading and parsing the body need not hold the window)."""
        grant = self.acquire(weight)
        released = False

        def answered() -> None:
            nonlocal released
            if not released:
                released = True
                self.release(grant)

        try:
            yield answered
        finally:
            answered()

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self.window:
            self._used -= self._sent.popleft()[1]
        while self._answered and self._answered[0][0] <= now:
            self._counted -= self._answered.popleft()[1]

    def _share_free_at(self, weight: int) -> float:
        """When enough grants leave the window for `weight` more units (the lock is held)."""
        freed = self.limit - self._used
        for stamp, units in self._sent:
            freed += units
            if freed >= weight:
                return stamp + self.window
        return self._clock()

    def _counted_free_at(self, weight: int) -> float | None:
        """When enough answered requests leave the CRM's window for `weight` more units;
        None when those answered so far are not enough (the lock is held)."""
        freed = self.ceiling - self._in_flight - self._counted
        for until, units in self._answered:
            freed += units
            if freed >= weight:
                return until
        return None

    def pause(self, seconds: float) -> None:
        """Nobody sends for `seconds` (a 429 said so)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe_remaining(self, remaining: int | None, interval_seconds: float | None) -> None:
        """The server says `remaining` are left in its window: never plan on more than that."""
        if remaining is None or remaining > 0:
            return
        self.pause(interval_seconds or self.window)


class DailyBudget:
    """A daily allocation with a reserve left for people's own integrations."""

    def __init__(self, limit: int | None, reserve_fraction: float = 0.2) -> None:
        self.limit = limit
        self.reserve_fraction = reserve_fraction
        self.used: int | None = None

    @property
    def allowed(self) -> int | None:
        if self.limit is None:
            return None
        return int(self.limit * (1 - self.reserve_fraction))

    def observe(self, used: int | None, limit: int | None = None) -> None:
        """Record the server's count (`Sforce-Limit-Info`, `X-HubSpot-RateLimit-Daily*`)."""
        if limit is not None:
            self.limit = limit
        if used is not None:
            self.used = used

    def check(self) -> None:
        """Raise `BudgetExhausted` once the share we may use is spent."""
        allowed = self.allowed
        if allowed is not None and self.used is not None and self.used >= allowed:
            raise BudgetExhausted(
                f"daily API budget reached: {self.used} of {self.limit} used, "
                f"{self.reserve_fraction:.0%} kept in reserve; the next run resumes"
            )
