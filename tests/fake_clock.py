"""A fake monotonic clock, and the autouse fixture that sends the connector's waits to it:
tenacity's backoff, the pause every request takes after a 429 (a second on Salesforce), and
the rate budgets' pacing of clients built without a clock of their own (the CLI run in this
process). Retries and budgets then cost no real time, so the folders stay fast. Imported by
tests/hubspot/conftest.py and tests/salesforce/conftest.py."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, tzinfo
from types import SimpleNamespace

import pytest
import tenacity.nap
from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.connector.sync import state
from crm_qualify.connector.sync.concurrency import Traffic


class FakeClock:
    """Monotonic time that moves only when something sleeps on it (from any thread)."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept = 0.0
        self.naps: list[float] = []
        """Each sleep asked for, in order (a backoff's steps)."""
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(seconds, 0.0)
            self.slept += max(seconds, 0.0)
            self.naps.append(seconds)


@pytest.fixture(autouse=True)
def backoff_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """tenacity's waits between retries go to a fake clock (`tenacity.nap` is its test hook),
    and so do the 429 pauses and budget waits of every `Traffic` and `HubSpotClient` built
    without an explicit clock (their keyword defaults; a test passing its own clock keeps it)."""
    clock = FakeClock()
    monkeypatch.setattr(tenacity.nap, "time", SimpleNamespace(sleep=clock.sleep))
    for built in (Traffic.__init__, HubSpotClient.__init__):
        monkeypatch.setitem(built.__kwdefaults__, "clock", clock)
        monkeypatch.setitem(built.__kwdefaults__, "sleep", clock.sleep)
    return clock


def set_state_clock(monkeypatch: pytest.MonkeyPatch, off_by: timedelta) -> None:
    """The state store's wall clock `off_by` from the real one (a host clock set wrong, then
    corrected with `timedelta(0)`): what it stamps runs with, and their ids."""

    class Skewed(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return datetime.now(tz) + off_by

    monkeypatch.setattr(state, "datetime", Skewed)
