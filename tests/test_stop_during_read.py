"""A run asked to stop while it reads: the read is given up at its next request, not waited
for to its end (a first HubSpot sync reads forms and activities for minutes before its first
batch, and Ctrl-C or a SIGTERM waited all that time), while writes in flight go on."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.commands.sync import interrupt_stops
from crm_qualify.connector.contract import ContactBatch, KnownVersions
from crm_qualify.connector.model import Contact, EngagementEvent, EventType, Origin
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.concurrency import EndpointClass, Limits, ReadAbandoned, Traffic
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.pipeline import read_ahead
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LONG_READ = 100_000
"""Requests the slow reads below would make before their first batch (1 ms each)."""
WAIT = 5.0


def traffic() -> Traffic:
    return Traffic(Limits(classes={"api": EndpointClass(None)}, in_flight=6))


def test_a_read_given_up_raises_at_its_next_request_and_writes_still_leave():
    lanes = traffic()
    with lanes.abandon_reads():
        with pytest.raises(ReadAbandoned), lanes.request("api"):
            pytest.fail("a read left while it was given up")

        def write() -> str:
            with lanes.request("api"):
                return "sent"

        assert lanes.submit(write).result(timeout=WAIT) == "sent"
    with lanes.request("api"):
        pass  # reads leave again once the given-up read has ended
    lanes.close()


def test_a_stop_while_waiting_for_a_batch_gives_up_the_read_under_way():
    lanes = traffic()
    made: list[int] = []
    ended = threading.Event()

    def slow_read() -> Iterator[str]:
        try:
            for number in range(LONG_READ):
                with lanes.request("api"):
                    made.append(number)
                    time.sleep(0.001)
            yield "the first batch"
        finally:
            ended.set()

    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert list(read_ahead(slow_read(), until=stop, abandon=lanes.abandon_reads)) == []
    assert ended.is_set(), "the reader has ended when the read-ahead returns"
    assert 0 < len(made) < LONG_READ
    with lanes.request("api"):
        pass


class SlowFirstRead(MemoryAdapter):
    """A CRM whose read spends many requests (an index of forms, say) before its batches."""

    def __init__(self, contacts: list[Contact]) -> None:
        super().__init__(contacts, batch_size=2)
        self.traffic = traffic()
        self.requests = 0

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
    ) -> Iterator[ContactBatch]:
        for _ in range(LONG_READ):
            with self.traffic.request("api"):
                self.requests += 1
                time.sleep(0.001)
        yield from super().read_changed(cursor, until=until, known=known)


def contact(number: int) -> Contact:
    return Contact(
        id=str(number),
        email=f"p{number}@acme.example",
        origin=Origin.INBOUND,
        updated_at=NOW - timedelta(days=1),
        events=[EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(hours=3))],
    )


def test_a_run_stopped_during_a_long_read_ends_interrupted_and_the_next_one_syncs(tmp_path):
    adapter = SlowFirstRead([contact(n) for n in range(5)])
    store = StateStore(tmp_path / "state.sqlite")
    engine = SyncEngine(adapter, Settings(), store)
    threading.Timer(0.1, engine.stop.set).start()
    summary = engine.run(RunOptions(now=NOW))
    assert (summary.status, summary.counts["read"]) == ("interrupted", 0)
    assert adapter.requests < LONG_READ and adapter.write_calls() == 0
    engine.stop.clear()
    adapter.read_changed = super(SlowFirstRead, adapter).read_changed  # type: ignore[method-assign]
    again = engine.run(RunOptions(now=NOW))
    assert (again.status, again.counts["read"]) == ("ok", 5)
    assert again.counts["tasks_created"] > 0 and len(adapter.tasks) == again.counts["tasks_created"]
    store.close()


def test_ctrl_c_asks_the_run_to_stop_and_a_second_one_quits_at_once():
    stop = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), interrupt_stops(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(WAIT), "the first Ctrl-C sets the stop"
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(WAIT)  # the second one interrupts this
    assert signal.getsignal(signal.SIGINT) is before


def started(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException | None]]:
    """Run `call` in a thread that records what it ended on: None, or what it raised."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - what the thread ended on
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)
    return thread, outcome


def test_a_read_waiting_out_a_retry_backoff_is_given_up_and_a_writes_is_not():
    lanes = traffic()
    # a 503's backoff, before the read's next attempt
    reader, outcome = started(lambda: lanes.backoff(30.0))
    with lanes.abandon_reads():
        reader.join(WAIT)
        assert not reader.is_alive(), "the backoff ended at its next slice, not after 30 s"
        assert isinstance(outcome[0], ReadAbandoned)
        assert lanes.submit(lanes.backoff, 0.2).result(timeout=WAIT) is None
    lanes.close()


def test_a_read_waiting_out_a_pause_after_a_429_is_given_up():
    lanes = traffic()
    lanes.pause(30.0)  # HubSpot pauses the pool for its 10 s window; a long one here

    def read() -> None:
        with lanes.request("api"):
            pass

    reader, outcome = started(read)
    with lanes.abandon_reads():
        reader.join(WAIT)
        assert not reader.is_alive() and isinstance(outcome[0], ReadAbandoned)
    lanes.close()
