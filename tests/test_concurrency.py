"""The core's concurrency: slots, per-class budgets, the pool-wide pause, fan-out, and the
write flight (coalescing, acknowledgement in batch order, failure mid-flight)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest
from crm_qualify.connector.contract import AdapterError, ConfigError, TaskResult, WriteResult
from crm_qualify.connector.model import FieldUpdate, PlannedTask, RecordUpdate
from crm_qualify.connector.sync.concurrency import EndpointClass, Limits, Traffic
from crm_qualify.connector.sync.flight import Flight, Outgoing, Senders
from crm_qualify.connector.sync.pipeline import read_ahead
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter
from tests.test_engine import cold_contact, hot_contact
from tests.test_ratelimit import FakeClock
from tests.test_write_protocol import clean_state, owned, run, task_keys

WAIT = 5.0
"""Seconds a test waits for a thread before it fails (never slept)."""


def test_requests_in_flight_never_exceed_the_slots():
    traffic = Traffic(Limits({"api": EndpointClass(None)}, in_flight=3))
    inside = threading.Semaphore(0)
    release = threading.Event()

    def call() -> None:
        with traffic.request("api"):
            inside.release()
            release.wait(WAIT)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        assert inside.acquire(timeout=WAIT)
    assert not inside.acquire(timeout=0.05), "a fourth request got in"
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert traffic.peak_in_flight == 3


def test_each_class_keeps_its_own_window_and_weight():
    clock = FakeClock()
    limits = Limits(
        {"api": EndpointClass(4, window=10.0, weight=2), "search": EndpointClass(1, window=1.0)},
        in_flight=2,
    )
    traffic = Traffic(limits, clock=clock, sleep=clock.sleep)
    stamps = []
    for kind in ("api", "search", "search", "api", "api"):
        with traffic.request(kind):
            stamps.append((kind, clock.now))
    assert stamps == [
        ("api", 0.0),
        ("search", 0.0),
        ("search", 1.0),  # its own per-second limit, not the burst's
        ("api", 1.0),  # weight 2 of 4: two api requests per window
        ("api", 10.0),
    ]


def test_a_pause_holds_every_class_even_without_a_rate_limit():
    clock = FakeClock()
    limits = Limits({"api": EndpointClass(100), "bulk": EndpointClass(None)}, in_flight=2)
    traffic = Traffic(limits, clock=clock, sleep=clock.sleep)
    traffic.pause(7.0)
    with traffic.request("bulk"):
        assert clock.now == pytest.approx(7.0)


def test_an_undeclared_class_is_refused():
    traffic = Traffic(Limits({"api": EndpointClass(10)}, in_flight=2))
    with pytest.raises(ValueError, match="'serch' is not declared"), traffic.request("serch"):
        pass


def test_together_runs_calls_at_once_and_raises_after_all_ended():
    traffic = Traffic(Limits(in_flight=4))
    both = threading.Barrier(2, timeout=WAIT)
    assert traffic.together(lambda: both.wait() * 0 + 1, lambda: both.wait() * 0 + 2) == [1, 2]
    ended = []

    def fails() -> None:
        raise AdapterError("deals read failed")

    def slow() -> str:
        ended.append("slow")
        return "tasks"

    with pytest.raises(AdapterError, match="deals read failed"):
        traffic.together(fails, slow)
    assert ended == ["slow"]
    traffic.close()


def test_together_is_inline_with_one_slot():
    traffic = Traffic(Limits(in_flight=1))
    me = threading.get_ident()
    assert traffic.together(threading.get_ident, threading.get_ident) == [me, me]


# ----- the flight ------------------------------------------------------------------------------
class ManualTraffic(Traffic):
    """Requests are handed to the test, which answers them when it wants, in any order."""

    def __init__(self, write_batch: int | None, task_batch: int | None = None, **bulk) -> None:
        super().__init__(
            Limits(in_flight=4, write_batch=write_batch, task_batch=task_batch, **bulk)
        )
        self.sent: list[tuple[list, Future]] = []
        self.auto = False
        """Answer every request as it is sent (ok)."""

    def submit(self, call, *args):  # type: ignore[override]
        future: Future = Future()
        self.sent.append((args[1], future))
        if self.auto:
            self.answer(len(self.sent) - 1)
        return future

    def answer(self, index: int, ok: bool = True) -> None:
        items, future = self.sent[index]
        now = datetime.now(UTC)
        results = [_result(item, ok) for item in items]
        future.set_result((results, now, now))


def _result(item, ok: bool):
    if isinstance(item, PlannedTask):
        return TaskResult(item.key, ok, crm_id="T-" + item.key if ok else None)
    return WriteResult(item.contact_id, ok)


def update(contact_id: str) -> RecordUpdate:
    return RecordUpdate(contact_id=contact_id, changes=[FieldUpdate(field="score", new=50)])


def task(key: str) -> PlannedTask:
    return PlannedTask(
        key=key, contact_id=key, kind="hot_call", subject="Call", due=datetime(2026, 11, 23)
    )


def flight_for(
    traffic: Traffic, landed: list, pending: list, refused: list | None = None
) -> Flight:
    refuse = (lambda t, e: refused.extend(t)) if refused is not None else (lambda t, e: None)
    senders = Senders(lambda u: [], lambda t: [], pending.extend, refuse)
    return Flight(traffic, senders, landed.extend)


def batch(
    name: str,
    updates: Sequence[RecordUpdate],
    tasks: Sequence[PlannedTask],
    acked: list,
    records: int = 0,
):
    return Outgoing(updates, tasks, lambda out: acked.append((name, out)), records=records)


def test_writes_coalesce_across_batches_and_wait_for_the_next_batch_of_their_kind():
    traffic, acked, landed, pending = ManualTraffic(write_batch=3, task_batch=3), [], [], []
    flight = flight_for(traffic, landed, pending)
    flight.add(batch("a", [update("1"), update("2")], [task("k1")], acked))
    assert traffic.sent == [], "a's items wait for the next batch's"
    flight.add(batch("b", [update("3"), update("4")], [task("k2")], acked))
    sent = [[getattr(i, "contact_id", None) or i.key for i in items] for items, _ in traffic.sent]
    assert sent == [["1", "2", "3"], ["k1", "k2"]], "full, or a's task would wait a 2nd batch"
    assert [t.key for t in pending] == ["k1", "k2"], "tasks marked pending as they leave"
    traffic.answer(0)
    traffic.answer(1)
    flight.add(batch("c", [], [], acked))
    assert [len(items) for items, _ in traffic.sent] == [3, 2], "c has no update to fill it up"
    assert [name for name, _ in acked] == ["a"], "b waits for its last update's answer"
    flight.add(batch("d", [update("5")], [], acked))
    assert [len(items) for items, _ in traffic.sent] == [3, 2, 2], "b's last leaves with d's"
    traffic.answer(2)
    flight.drain()
    assert [name for name, _ in acked] == ["a", "b", "c", "d"]
    a = acked[0][1]
    assert [answer.result.ok for answer in a.update_answers] == [True, True]
    assert a.task_answers[0].result.crm_id == "T-k1"


def test_items_waiting_for_their_kind_leave_short_once_their_batch_falls_due():
    """Three batches open at most: the fourth makes the first due, and its update leaves
    alone rather than wait longer (acknowledgements lag three batches at most)."""
    traffic, acked, landed, pending = ManualTraffic(write_batch=3), [], [], []
    traffic.auto = True
    flight = flight_for(traffic, landed, pending)
    flight.add(batch("a", [update("1")], [], acked))
    for name in "bc":
        flight.add(batch(name, [], [], acked))
    assert traffic.sent == []
    flight.add(batch("d", [], [], acked))
    assert [len(items) for items, _ in traffic.sent] == [1]
    assert [name for name, _ in acked][:1] == ["a"]


def test_with_a_bulk_api_writes_gather_into_one_large_call():
    traffic, acked, landed, pending = ManualTraffic(2, 2, bulk_batch=6, bulk_from=4), [], [], []
    traffic.auto = True
    flight = flight_for(traffic, landed, pending)
    flight.add(batch("a", [update("1"), update("2")], [], acked))
    flight.add(batch("b", [update("3"), update("4")], [], acked))
    assert traffic.sent == [], "a whole request's worth is held while a bulk call may gather"
    flight.add(batch("c", [update("5"), update("6"), update("7")], [task("k")], acked))
    assert [len(items) for items, _ in traffic.sent] == [6], "bulk_batch gathered: one call"
    assert [name for name, _ in acked] == ["a", "b"], "answered: c's 7th update waits on"
    flight.drain()
    sent = [[getattr(i, "contact_id", None) or i.key for i in items] for items, _ in traffic.sent]
    assert sent[1:] == [["7"], ["k"]], "what never reached bulk_from leaves in REST requests"
    assert [name for name, _ in acked] == ["a", "b", "c"]


def test_bulk_holding_ends_when_the_open_batches_hold_more_than_a_bulk_call():
    traffic, acked, landed, pending = ManualTraffic(2, 2, bulk_batch=100, bulk_from=3), [], [], []
    traffic.auto = True
    flight = flight_for(traffic, landed, pending)
    for name in "abc":
        flight.add(batch(name, [update(name)], [], acked, records=30))
    assert traffic.sent == [] and acked == [], "90 records open: still gathering"
    flight.add(batch("d", [update("d")], [], acked, records=30))
    assert [len(items) for items, _ in traffic.sent] == [4], "bulk_from reached: one call"
    assert [name for name, _ in acked] == list("abcd")
    flight.add(batch("e", [update("e")], [], acked, records=30))
    flight.drain()
    assert [len(items) for items, _ in traffic.sent] == [4, 1]
    assert [name for name, _ in acked] == list("abcde")


def test_a_call_packed_whole_leaves_as_one_request_past_bulk_batch():
    """The engine's packed call (`bulk_calls`): 8 updates against a bound of 6 leave in one
    request; split at the bound, its last 2 would fall below bulk_from and go in REST
    requests. A whole call below bulk_from leaves in REST requests as any other."""
    traffic, acked, landed, pending = ManualTraffic(2, 2, bulk_batch=6, bulk_from=4), [], [], []
    traffic.auto = True
    flight = flight_for(traffic, landed, pending)
    updates = [update(str(n)) for n in range(8)]
    flight.add(Outgoing(updates, [], lambda out: acked.append(out), whole=True))
    flight.drain()
    assert [len(items) for items, _ in traffic.sent] == [8]
    flight.add(Outgoing(updates[:3], [], lambda out: acked.append(out), whole=True))
    flight.drain()
    assert [len(items) for items, _ in traffic.sent] == [8, 2, 1]
    flight.add(batch("split", updates, [], acked))
    flight.drain()
    assert [len(items) for items, _ in traffic.sent][3:] == [6, 2], "not whole: split at 6"
    assert len(acked) == 3


def test_below_bulk_from_only_the_due_batches_items_leave_the_rest_gathers_on():
    traffic, acked, landed, pending = ManualTraffic(2, 2, bulk_batch=100, bulk_from=50), [], [], []
    traffic.auto = True
    flight = flight_for(traffic, landed, pending)
    flight.add(batch("a", [], [task("a1"), task("a2"), task("a3")], acked, records=40))
    flight.add(batch("b", [], [task("b1"), task("b2"), task("b3")], acked, records=40))
    flight.add(batch("c", [], [task("c1")], acked, records=40))
    sent = [[i.key for i in items] for items, _ in traffic.sent]
    assert sent == [["a1", "a2"], ["a3", "b1"]], "a is due: whole requests that cover it"
    assert [name for name, _ in acked] == ["a"]
    flight.drain()
    sent = [[i.key for i in items] for items, _ in traffic.sent]
    assert sent[2:] == [["b2", "b3"], ["c1"]]
    assert [name for name, _ in acked] == ["a", "b", "c"]


def test_batches_are_acknowledged_in_order_whatever_order_answers_come_in():
    traffic, acked, landed, pending = ManualTraffic(write_batch=1), [], [], []
    flight = flight_for(traffic, landed, pending)
    flight.add(batch("a", [update("1")], [], acked))
    flight.add(batch("b", [update("2")], [], acked))
    traffic.answer(1)
    flight.add(batch("c", [], [], acked))
    assert acked == [], "b is answered, but a is not: neither b nor c may move a cursor"
    traffic.answer(0)
    flight.drain()
    assert [name for name, _ in acked] == ["a", "b", "c"]


def test_a_failed_request_records_what_landed_and_stops_sending():
    traffic, acked, landed, pending = ManualTraffic(write_batch=1, task_batch=1), [], [], []
    flight = flight_for(traffic, landed, pending)
    flight.add(batch("a", [update("1")], [], acked))
    flight.add(batch("b", [update("2")], [task("k2")], acked))
    traffic.sent[1][1].set_exception(AdapterError("HTTP 500 storm"))
    traffic.answer(0)
    traffic.answer(2)
    with pytest.raises(AdapterError, match="500 storm"):
        flight.add(batch("c", [update("3")], [], acked))
    assert [name for name, _ in acked] == ["a"], "a is complete and acknowledged"
    (open_b, open_c) = landed
    assert open_b.update_answers == [None], "b's update failed: it stays an intent"
    assert open_b.task_answers[0].result.crm_id == "T-k2", "b's task landed: recorded"
    assert open_c.update_answers == [None]
    assert len(traffic.sent) == 3, "c's update was never sent"


def test_tasks_of_a_create_refused_for_our_configuration_are_handed_back_as_unsent():
    """A `ConfigError` created none of the request's tasks; any other error may have."""
    traffic, acked, landed, pending, refused = ManualTraffic(None, 2), [], [], [], []
    flight = flight_for(traffic, landed, pending, refused)
    flight.add(batch("a", [], [task("k1"), task("k2")], acked))
    flight.add(batch("b", [], [task("k3")], acked))
    flight.add(batch("c", [], [task("k4")], acked))
    traffic.sent[0][1].set_exception(AdapterError("HTTP 500 storm"))
    traffic.sent[1][1].set_exception(ConfigError("HubSpot has no property crmq_task_key"))
    with pytest.raises(AdapterError):
        flight.drain()
    assert [t.key for t in pending] == ["k1", "k2", "k3", "k4"]
    assert [t.key for t in refused] == ["k3", "k4"], "k1, k2 stay pending: they may have landed"


# ----- the engine, with several requests in flight --------------------------------------------
class PooledMemory(MemoryAdapter):
    """The memory CRM behind the core's pool: reads of 2 contacts, writes of 2 records a
    request, several requests at once. `fail_call`: the n-th update request fails whole."""

    def __init__(self, contacts, fail_call: int | None = None) -> None:
        super().__init__(contacts, batch_size=2)
        self.traffic = Traffic(Limits(in_flight=4, write_batch=2, task_batch=2))
        self.lock = threading.Lock()
        self.sizes: list[tuple[str, int]] = []
        self.fail_call = fail_call

    def write_updates(self, updates):
        with self.lock:
            self.sizes.append(("updates", len(updates)))
            if self.fail_call is not None and len(self.sizes) == self.fail_call:
                raise AdapterError("HTTP 502 after retries")
            return super().write_updates(updates)

    def create_tasks(self, tasks):
        with self.lock:
            self.sizes.append(("tasks", len(tasks)))
            return super().create_tasks(tasks)


def people() -> list:
    return [hot_contact(f"h{n}") for n in range(5)] + [cold_contact(f"c{n}") for n in range(4)]


def test_pooled_writes_coalesce_and_end_where_one_at_a_time_ends(tmp_path):
    clean = clean_state(people(), tmp_path)
    adapter = PooledMemory(people())
    store = StateStore(tmp_path / "state.sqlite")
    summary = run(adapter, store)
    assert summary.status == "ok", summary.errors
    assert owned(adapter) == owned(clean)
    assert task_keys(adapter) == task_keys(clean) and set(task_keys(adapter).values()) == {1}
    updates = [n for kind, n in adapter.sizes if kind == "updates"]
    tasks = [n for kind, n in adapter.sizes if kind == "tasks"]
    assert sum(updates) == summary.counts["records_written"] == 9
    assert updates.count(2) == 4 and len(updates) == 5, "5 read batches, coalesced by 2"
    assert all(n == 2 for n in tasks[:-1])
    assert store.get_cursor("default", "contacts") is not None
    store.close()


def test_a_request_failing_in_flight_ends_the_run_and_the_next_run_converges(tmp_path):
    clean = clean_state(people(), tmp_path)
    adapter = PooledMemory(people(), fail_call=2)
    store = StateStore(tmp_path / "state.sqlite")
    assert run(adapter, store).status == "failed"
    cursor = store.get_cursor("default", "contacts")
    position = tuple(json.loads(cursor)) if cursor else ("", "")
    passed = {c.id for c in people() if (c.updated_at.isoformat(), c.id) <= position}
    left_open = {contact_id for _, contact_id in store.open_intents("default")}
    assert left_open, "the failed request's updates stay intents"
    # a full read's cursor passes what it mirrored; what is not acknowledged stays due
    due = {
        cid
        for (cid,) in store._query("SELECT contact_id FROM mirror_review WHERE recheck_at IS NULL")
    }
    assert left_open & passed <= due, "the cursor never passes a write not acknowledged"
    adapter.fail_call = None
    summary = run(adapter, store)
    assert summary.status == "ok", summary.errors
    assert owned(adapter) == owned(clean)
    assert set(task_keys(adapter).values()) == {1}, "no task twice after the failure"
    assert task_keys(adapter) == task_keys(clean)
    store.close()


# ----- reading ahead ---------------------------------------------------------------------------
def test_read_ahead_stays_within_its_depth_and_fails_in_order():
    made = [threading.Event() for _ in range(6)]

    def source():
        for number in range(6):
            made[number].set()
            yield number

    batches = read_ahead(source(), depth=2)
    assert next(batches) == 0
    assert made[3].wait(WAIT), "batches 1 and 2 wait in the queue, 3 is in the reader's hand"
    assert not made[4].wait(0.05), "the reader ran more than two batches ahead"
    assert list(batches) == [1, 2, 3, 4, 5]

    def failing():
        yield "a"
        raise AdapterError("page 2: HTTP 502")

    got = []
    with pytest.raises(AdapterError, match="page 2"):
        for item in read_ahead(failing()):
            got.append(item)
    assert got == ["a"]
