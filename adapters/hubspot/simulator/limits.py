"""HubSpot's per-portal rate limits: a rolling 10-second burst, a daily cap, and search's own
per-second limit (search is exempt from the burst limit). 429 bodies and the
`X-HubSpot-RateLimit-*` headers match what HubSpot sends, without `Retry-After`.

Calls are counted when they arrive (after the simulated latency, as HubSpot counts them at its
edge), in rolling windows. `refused` says which policy answered each 429, so a bench can tell
a burst overrun from a search one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime

from .errors import rate_limit_body

BURST_WINDOW_S = 10.0


class RateLimited(Exception):
    """A 429 to send; `body` is HubSpot's RATE_LIMIT body, `headers` the limit headers."""

    def __init__(self, body: dict[str, object], headers: dict[str, str]) -> None:
        super().__init__(body["message"])
        self.body = body
        self.headers = headers


class Limits:
    """Counters shared by every token of the portal, as in HubSpot."""

    def __init__(
        self,
        burst: int,
        search_rate: int,
        daily: int,
        hub_id: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.search_rate, self.daily, self.hub_id = burst, search_rate, daily, hub_id
        self._clock = clock
        self.refused: Counter[str] = Counter()
        """429s answered, by policy (`DAILY`, `SECONDLY`, `TEN_SECONDLY_ROLLING`)."""
        self._lock = threading.Lock()
        self._burst: deque[float] = deque()
        self._search: deque[float] = deque()
        self._day = self._today()
        self._daily_used = 0

    @staticmethod
    def _today() -> str:
        return datetime.now(UTC).date().isoformat()

    def admit(self, search: bool, oauth: bool) -> dict[str, str]:
        """Count one API call or raise RateLimited; returns the headers for the response."""
        now = self._clock()
        with self._lock:
            if self._today() != self._day:
                self._day, self._daily_used = self._today(), 0
            _trim(self._burst, now - BURST_WINDOW_S)
            _trim(self._search, now - 1.0)
            if self._daily_used >= self.daily:
                self.refused["DAILY"] += 1
                raise RateLimited(
                    rate_limit_body("DAILY", "You have reached your daily limit.", self.hub_id),
                    self._headers(now, search, oauth),
                )
            if search:
                if len(self._search) >= self.search_rate:
                    self.refused["SECONDLY"] += 1
                    raise RateLimited(
                        rate_limit_body(
                            "SECONDLY", "You have reached your secondly limit.", self.hub_id
                        ),
                        {},
                    )
                self._search.append(now)
            else:
                if len(self._burst) >= self.burst:
                    self.refused["TEN_SECONDLY_ROLLING"] += 1
                    raise RateLimited(
                        rate_limit_body(
                            "TEN_SECONDLY_ROLLING",
                            "You have reached your ten_secondly_rolling limit.",
                            self.hub_id,
                        ),
                        self._headers(now, search, oauth),
                    )
                self._burst.append(now)
            self._daily_used += 1
            return self._headers(now, search, oauth)

    def _headers(self, now: float, search: bool, oauth: bool) -> dict[str, str]:
        """Search answers carry no burst headers (it is exempt); OAuth calls omit daily ones."""
        if search:
            return {}
        per_second = math.ceil(self.burst / BURST_WINDOW_S)
        last_second = sum(1 for t in self._burst if t > now - 1.0)
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(BURST_WINDOW_S * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.burst),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.burst - len(self._burst))),
            "X-HubSpot-RateLimit-Secondly": str(per_second),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, per_second - last_second)),
        }
        if not oauth:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, self.daily - self._daily_used)
            )
        return headers


def _trim(window: deque[float], older_than: float) -> None:
    while window and window[0] <= older_than:
        window.popleft()
