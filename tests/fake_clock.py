"""A fake monotonic clock, and the autouse fixture that sends tenacity's backoff waits to it:
retries cost no real time (a 429's Retry-After of a second included), so the CRM folders stay
fast. Imported by tests/hubspot/conftest.py and tests/salesforce/conftest.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import tenacity.nap


class FakeClock:
    """Monotonic time that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        self.slept += max(seconds, 0.0)


@pytest.fixture(autouse=True)
def backoff_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """tenacity's waits between retries go to a fake clock (`tenacity.nap` is its test hook)."""
    clock = FakeClock()
    monkeypatch.setattr(tenacity.nap, "time", SimpleNamespace(sleep=clock.sleep))
    return clock
