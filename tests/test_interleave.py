"""`Traffic.interleave`: independent chains of reads run side by side on the core's fan-out
workers, bounded, each in its own order, with failures surfacing once nothing is in flight."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

import pytest
from crm_qualify.connector.sync.concurrency import EndpointClass, Limits, Traffic


def pages(name: str, count: int, log: list[str] | None = None) -> Iterator[str]:
    for n in range(count):
        if log is not None:
            log.append(f"{name}{n}")
        yield f"{name}{n}"


def test_every_item_once_each_chain_in_its_own_order():
    traffic = Traffic(Limits(in_flight=4))
    got = list(traffic.interleave(pages("a", 7), pages("b", 3), pages("c", 0)))
    assert sorted(got) == sorted([f"a{n}" for n in range(7)] + [f"b{n}" for n in range(3)])
    assert [i for i in got if i[0] == "a"] == [f"a{n}" for n in range(7)]
    assert [i for i in got if i[0] == "b"] == ["b0", "b1", "b2"]
    traffic.close()


def test_chains_run_at_once():
    """Each chain's first step waits for the other's: only concurrent steps can finish."""
    both = threading.Barrier(2, timeout=5)

    def chain(name: str) -> Iterator[str]:
        both.wait()
        yield name

    traffic = Traffic(Limits(in_flight=4))
    assert sorted(traffic.interleave(chain("a"), chain("b"))) == ["a", "b"]
    traffic.close()


def test_a_chain_runs_at_most_ahead_items_before_the_consumer_takes_them():
    traffic = Traffic(Limits(in_flight=4))
    produced: list[str] = []
    merged = traffic.interleave(pages("a", 50, produced), pages("b", 50, produced), ahead=3)
    first = next(merged)
    for _ in range(100):  # give the workers every chance to run further
        threading.Event().wait(0.001)
    assert first in produced
    # the item taken, 3 waiting and (at most) one step in flight, per chain
    assert len([p for p in produced if p[0] == "a"]) <= 5
    assert len([p for p in produced if p[0] == "b"]) <= 5
    merged.close()
    traffic.close()


def test_the_first_failure_is_raised_after_the_steps_in_flight_end_and_chains_close():
    ended = threading.Event()
    closed: list[str] = []

    def failing() -> Iterator[str]:
        yield "x0"
        raise RuntimeError("HTTP 500")

    def slow() -> Iterator[str]:
        try:
            for n in range(3):
                ended.wait(0.05)
                yield f"s{n}"
            ended.set()
        finally:
            closed.append("slow")

    traffic = Traffic(Limits(in_flight=4))
    with pytest.raises(RuntimeError, match="HTTP 500"):
        list(traffic.interleave(failing(), slow()))
    assert closed == ["slow"], "the other chain is closed, not left suspended"
    traffic.close()


def test_requests_of_interleaved_chains_stay_within_the_slots_and_the_budget():
    """Chains that each send requests through `Traffic.request`: never more in flight than the
    declared slots, never more of a class in its window than its limit (a fake clock)."""
    now = [0.0]
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            now[0] += max(seconds, 0.0)

    traffic = Traffic(
        Limits(classes={"search": EndpointClass(4, window=1.0)}, in_flight=2),
        clock=lambda: now[0],
        sleep=sleep,
    )
    sent: list[float] = []

    class Granted(deque):  # the budget's own stamps, taken under its lock
        def append(self, grant: tuple[float, int]) -> None:
            sent.append(grant[0])
            super().append(grant)

    traffic.budgets["search"]._sent = Granted()
    inside = [0]
    most = [0]

    def chain(count: int) -> Iterator[int]:
        for n in range(count):
            with traffic.request("search"):
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                threading.Event().wait(0.002)
                with lock:
                    inside[0] -= 1
            yield n

    assert len(list(traffic.interleave(chain(9), chain(9), chain(9)))) == 27
    assert len(sent) == 27
    assert most[0] <= 2 and traffic.peak_in_flight <= 2
    for stamp in sent:
        assert sum(1 for t in sent if stamp <= t < stamp + 1.0) <= 4
    traffic.close()


def test_one_slot_reads_the_chains_one_after_the_other_on_the_callers_thread():
    traffic = Traffic(Limits(in_flight=1))
    me = threading.get_ident()

    def chain(name: str) -> Iterator[tuple[str, int]]:
        yield name, threading.get_ident()

    assert list(traffic.interleave(chain("a"), chain("b"))) == [("a", me), ("b", me)]
