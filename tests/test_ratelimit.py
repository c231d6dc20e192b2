"""Rate budgets and the retry table, with a fake clock."""

from __future__ import annotations

import pytest
from crm_qualify.connector.contract import BudgetExhausted, OutcomeUnknown
from crm_qualify.connector.sync.ratelimit import DailyBudget, RateBudget
from crm_qualify.connector.sync.retrying import Failure, call_with_retries, status_failure


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_budget_never_exceeds_its_window():
    clock = FakeClock()
    budget = RateBudget(5, 10.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(12):
        budget.release(budget.acquire())  # answered at once
        stamps.append(clock.now)
    for i, stamp in enumerate(stamps):
        in_window = [s for s in stamps if stamp - 10.0 < s <= stamp]
        assert len(in_window) <= 5, (i, stamps)
    assert stamps[5] == pytest.approx(10.0)


def test_weights_count_toward_the_window():
    clock = FakeClock()
    budget = RateBudget(5, 10.0, clock=clock, sleep=clock.sleep)
    budget.release(budget.acquire(3))
    clock.now = 2.0
    budget.release(budget.acquire(2))
    clock.now = 4.0
    budget.release(budget.acquire(1))  # waits for the weight-3 request to leave the window
    assert clock.now == pytest.approx(10.0)
    budget.acquire(3)  # 2 + 1 in the window: waits for the 2 answered at t=2 to leave
    assert clock.now == pytest.approx(12.0)
    with pytest.raises(ValueError, match="never fits"):
        budget.acquire(6)


def test_pause_holds_every_sender():
    clock = FakeClock()
    budget = RateBudget(100, 10.0, clock=clock, sleep=clock.sleep)
    budget.pause(3.0)
    budget.acquire()
    assert clock.now >= 3.0


def test_daily_budget_keeps_a_reserve():
    budget = DailyBudget(limit=1000, reserve_fraction=0.2)
    budget.observe(used=799)
    budget.check()
    budget.observe(used=800)
    with pytest.raises(BudgetExhausted, match="800 of 1000"):
        budget.check()


def test_status_table():
    assert status_failure(429, 2.0) == Failure(True, 2.0, "throttled", unprocessed=True)
    assert status_failure(503).transient
    assert status_failure(None).transient
    for status in (400, 401, 403, 404):
        assert not status_failure(status).transient


class Boom(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def test_retries_transient_failures_only():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise Boom(503)
        return "done"

    def classify(exc: BaseException) -> Failure:
        return status_failure(getattr(exc, "status", None), retry_after=0.0)

    assert call_with_retries(flaky, classify) == "done"
    assert len(calls) == 3

    calls.clear()

    def invalid():
        calls.append(1)
        raise Boom(400)

    with pytest.raises(Boom):
        call_with_retries(invalid, classify)
    assert len(calls) == 1


def test_a_create_is_retried_only_when_it_certainly_did_not_land():
    def classify(exc: BaseException) -> Failure:
        return status_failure(getattr(exc, "status", None), retry_after=0.0)

    calls = []

    def throttled_then_ok():
        calls.append(1)
        if len(calls) < 3:
            raise Boom(429)
        return "created"

    assert call_with_retries(throttled_then_ok, classify, idempotent=False) == "created"
    assert len(calls) == 3

    for status in (500, 502, 503, None):
        calls.clear()

        def ambiguous(status=status):
            calls.append(1)
            raise Boom(status) if status else ConnectionResetError("reset after sending")

        with pytest.raises(OutcomeUnknown):
            call_with_retries(ambiguous, classify, idempotent=False)
        assert len(calls) == 1, f"a create answered {status} is never sent twice"

    calls.clear()

    def refused():
        calls.append(1)
        raise Boom(400)

    with pytest.raises(Boom):
        call_with_retries(refused, classify, idempotent=False)
    assert len(calls) == 1
