"""Client-side rate budgets, so a run stays under the CRM's limits instead of bouncing off them.

`RateBudget` is a sliding window shared by all worker threads of one adapter (HubSpot's burst
limit per 10 s, its search limit per second), counted in weight units: a request that the CRM
counts as several costs its weight. A 429 or a `Retry-After` pauses every worker, and
rate-limit headers can tighten the window when other apps share the portal's budget.
Budgets are built and shared by `concurrency.Traffic` from an adapter's endpoint table.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from crm_qualify.connector.contract import BudgetExhausted


class RateBudget:
    """At most `limit` weight units in any `window` seconds; `acquire` blocks until they fit.

    Each request is stamped when it is granted, just before it is sent: the CRM counts it on
    arrival, a latency later, so the CRM's windows see the same spacing."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate budget needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[tuple[float, int]] = deque()
        self._used = 0
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0
        self.granted = 0

    def acquire(self, weight: int = 1) -> None:
        if not 1 <= weight <= self.limit:
            raise ValueError(f"a request of weight {weight} never fits a budget of {self.limit}")
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0][0] <= now - self.window:
                    self._used -= self._sent.popleft()[1]
                wait = self._paused_until - now
                if wait <= 0 and self._used + weight <= self.limit:
                    self._sent.append((now, weight))
                    self._used += weight
                    self.granted += weight
                    return
                if wait <= 0:
                    wait = self._free_at(weight) - now
            self.waited += wait
            self._sleep(max(wait, 0.001))

    def _free_at(self, weight: int) -> float:
        """When enough of the window has slid out for `weight` more units."""
        freed = self.limit - self._used
        for stamp, units in self._sent:
            freed += units
            if freed >= weight:
                return stamp + self.window
        return self._clock()

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
