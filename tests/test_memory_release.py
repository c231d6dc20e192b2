"""What a run keeps in memory: a read batch is let go once it is handed on, and a batch whose
writes wait for their answers keeps what it records, not its contacts. (The figures are in
`bench/salesforce_bulk.py`; these tests check the references that make them.)"""

from __future__ import annotations

import gc
import threading
import types
import weakref
from typing import Any

from crm_qualify.connector.model import Contact
from crm_qualify.connector.sync import flight as flight_module
from crm_qualify.connector.sync.pipeline import read_ahead
from crm_qualify.connector.sync.state import StateStore

from tests.test_concurrency import PooledMemory, people
from tests.test_write_protocol import run

WAIT = 5.0


class Batch:
    """A stand-in for a read batch that can be watched with a weak reference."""


def test_read_ahead_keeps_no_batch_once_it_is_handed_on():
    asked_again, finish = threading.Event(), threading.Event()
    watched: list[weakref.ref[Batch]] = []

    def source():
        batch = Batch()
        watched.append(weakref.ref(batch))
        yield batch
        del batch
        asked_again.set()  # the reader has moved on to read the next one
        finish.wait(WAIT)
        yield Batch()

    batches = read_ahead(source())
    first = next(batches)
    del first
    assert asked_again.wait(WAIT)
    gc.collect()
    assert watched[0]() is None, "the reader or the queue's consumer still holds the batch"
    finish.set()
    assert isinstance(next(batches), Batch)
    assert list(batches) == []


def test_batches_waiting_for_answers_hold_no_contacts(tmp_path, monkeypatch):
    """The acknowledgement of a batch in flight needs its keys and what it wrote; holding the
    batch's contacts too would keep every open batch's records in memory."""
    added: list[flight_module.Outgoing] = []
    original = flight_module.Flight.add

    def add(self: flight_module.Flight, batch: flight_module.Outgoing) -> None:
        added.append(batch)
        original(self, batch)

    monkeypatch.setattr(flight_module.Flight, "add", add)
    adapter = PooledMemory(people())
    store = StateStore(tmp_path / "state.sqlite")
    summary = run(adapter, store)
    store.close()
    assert summary.status == "ok", summary.errors
    written = [out for out in added if out.updates]
    assert written, "the run wrote through the flight"
    for out in written:
        assert not _reaches_contact(out), "an open batch holds its contacts until answered"


def _reaches_contact(root: Any) -> bool:
    """Whether a Contact can be reached from `root` through the objects it holds: a function
    through its closure only, the engine (which holds the adapter and its CRM) not at all."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType):
            continue
        seen.add(id(item))
        if isinstance(item, Contact):
            return True
        if type(item).__name__ == "SyncEngine":
            continue
        if isinstance(item, types.FunctionType):
            stack.extend(cell.cell_contents for cell in item.__closure__ or ())
            continue
        if isinstance(item, types.MethodType):
            stack.append(item.__func__)
            continue
        stack.extend(gc.get_referents(item))
    return False
