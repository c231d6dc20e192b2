"""The core's boundary with an adapter it did not write: whatever a plugin hands back is
checked where it comes in. A translation that yields no `Contact` is that record's error; a
value the canonical model refuses is bad data naming the canonical field; a result for another
record than the one at its position, or of the wrong type, fails the call naming the adapter's
method, so nothing is recorded against the wrong record and no cursor moves past it."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from crm_qualify.connector.contract import (
    AdapterError,
    ContactBatch,
    RawContact,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import Contact, PlannedTask, RecordUpdate
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.engine import CONTACTS_STREAM, RunOptions, SyncEngine
from crm_qualify.connector.sync.rollback import rollback
from crm_qualify.connector.sync.state import StateStore
from crm_qualify.connector.sync.task_lookups import look_up

from tests.memory_adapter import MemoryAdapter
from tests.test_engine import NOW, cold_contact, hot_contact


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state.sqlite")
    yield state
    state.close()


def run(adapter: MemoryAdapter, store: StateStore):
    settings = Settings(sync={"lookup_delay_seconds": 0})
    return SyncEngine(adapter, settings, store).run(RunOptions(now=NOW))


class Translating(MemoryAdapter):
    """Hands the core raw records; `odd` gives a record's translation in place of its own."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.odd: dict[str, object] = {}

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: object = None
    ) -> Iterator[ContactBatch]:
        for batch in super().read_changed(cursor, until=until):
            raw = [self._raw(c) for c in batch.contacts]
            yield ContactBatch(raw=raw, cursor=batch.cursor)

    def _raw(self, contact: Contact) -> RawContact:
        translate = self.odd.get(contact.id, functools.partial(contact.model_copy, deep=True))
        return RawContact(f"contact/{contact.id}", translate, ("contact", contact.id))


def _negative_employees() -> Contact:
    return Contact(id="neg", employees=-5)


def test_a_translation_that_returns_no_contact_is_that_records_error(store, caplog):
    """`translate` returning None ("skip this one") failed every run from then on."""
    adapter = Translating([hot_contact("h1"), cold_contact("c1"), cold_contact("c2")])
    adapter.odd = {"c1": lambda: None, "c2": lambda: {"id": "c2"}}
    with caplog.at_level(logging.ERROR, logger="crm_qualify.connector.sync.records"):
        summary = run(adapter, store)
    assert summary.status == "partial", summary.errors
    assert "contact/c1: record: translate returned NoneType, not a Contact" in summary.errors
    assert "contact/c2: record: translate returned dict, not a Contact" in summary.errors
    assert adapter.records["h1"].owned["stage"] == "mql", "the other records go on"
    attention = {(a.contact_id, a.field) for a in store.attention("default")}
    assert attention == {("c1", None), ("c2", None)}
    assert any("a bug in the adapter" in r.getMessage() for r in caplog.records)
    assert run(adapter, store).status in ("ok", "partial"), "and the next run too"


def test_a_value_the_canonical_model_refuses_is_bad_data_naming_its_field(store, caplog):
    """A `ValidationError` from building the `Contact` was reported as a bug in the adapter
    (`record: ValidationError: 1 validation error for Contact`)."""
    adapter = Translating([hot_contact("h1"), cold_contact("neg")])
    adapter.odd = {"neg": _negative_employees}
    with caplog.at_level(logging.DEBUG, logger="crm_qualify.connector.sync.records"):
        summary = run(adapter, store)
    assert "contact/neg: employees: Input should be greater than or equal to 0" in summary.errors
    (record,) = store.attention("default")
    assert (record.contact_id, record.field) == ("neg", "employees")
    assert not caplog.records, "bad data, not a bug: no traceback"


# ----- write answers paired by record and key, not by position alone --------------------------
class Shuffled(MemoryAdapter):
    """Answers in an order of its own (a CRM answering rows in id order): `reverse` names the
    calls whose results come back reversed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reverse: set[str] = set()

    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results = super().write_updates(updates)
        return results[::-1] if "updates" in self.reverse else results

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        results = super().create_tasks(tasks)
        return results[::-1] if "tasks" in self.reverse else results

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        results = super().close_tasks(crm_ids)
        return results[::-1] if "close" in self.reverse else results


def acked(store: StateStore) -> list[tuple]:
    return store._query("SELECT seq FROM field_writes WHERE status = 'acked' ORDER BY seq")


def test_write_results_in_another_order_are_refused_not_recorded_crosswise(store):
    """A refused write was recorded as acknowledged and a written one as failed."""
    adapter = Shuffled([hot_contact("h1"), hot_contact("h2")])
    assert run(adapter, store).status == "ok"
    cursor, written = store.get_cursor("default", CONTACTS_STREAM), acked(store)
    for record in ("h1", "h2"):
        adapter.human_edit(record, score=3)
    adapter.refuse_write_ids.add("h1")
    adapter.reverse = {"updates"}
    summary = run(adapter, store)
    assert summary.status == "failed"
    assert summary.errors == [
        "AdapterError: adapter memory: write_updates result 0 is for record 'h2', not 'h1';"
        " expected one result per update, in order"
    ]
    assert acked(store) == written, "nothing recorded against the wrong record"
    assert store.get_cursor("default", CONTACTS_STREAM) == cursor
    assert {cid for _, cid in store.open_intents("default")} == {"h1", "h2"}

    adapter.reverse.clear()
    again = run(adapter, store)
    assert again.errors == ["contact/h1: score: INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: bad value"]
    assert [a.contact_id for a in store.attention("default")] == ["h1"]
    assert adapter.records["h2"].owned["score"] != 3 and adapter.records["h1"].owned["score"] == 3
    landed = store.run(summary.run_id).counts
    assert landed["fields_written"] > 0 and landed["records_written"] > 0, (
        "runs shows what the failed run's writes landed once the next run settled them"
    )


def test_task_results_in_another_order_store_no_id_under_another_key(store):
    """Task ids were stored against the wrong keys, so a rollback removed nothing."""
    adapter = Shuffled([hot_contact("h1"), hot_contact("h2")])
    adapter.reverse = {"tasks"}
    summary = run(adapter, store)
    assert summary.status == "failed"
    (error,) = summary.errors
    assert error.startswith("AdapterError: adapter memory: create_tasks result 0 is for key ")
    assert all(t.crm_id is None for t in store.all_tasks("default")), "left pending"

    adapter.reverse.clear()
    assert run(adapter, store).status == "ok"
    ids = {t.key: t.crm_id for t in store.all_tasks("default")}
    assert ids == {t.key: crm_id for crm_id, t in adapter.tasks.items()}, "each under its key"
    assert len(adapter.tasks) == len(ids), "looked up, not created twice"


def test_removal_results_in_another_order_close_nothing_against_another_task(store):
    """A rollback paired `close_tasks` results with its tasks by position only."""
    adapter = Shuffled([hot_contact("h1"), hot_contact("h2")])
    first = run(adapter, store)
    assert first.status == "ok" and len(adapter.tasks) > 1
    adapter.reverse = {"close"}
    report = rollback(adapter, store, "default", first.run_id)
    assert report.status == "failed" and not report.tasks_closed
    (error,) = report.errors
    assert error.startswith("AdapterError: adapter memory: close_tasks result 0 is for CRM id")
    assert not any(t.status == "closed" for t in store.all_tasks("default"))


# ----- answers of the wrong shape ----------------------------------------------------------------
class Misshapen(Translating):
    """One of the shapes a consultant's adapter got wrong, in place of the contract's."""

    def __init__(self, contacts: Sequence[Contact], mistake: str) -> None:
        super().__init__(contacts)
        self.mistake = mistake

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: object = None
    ) -> Iterator[ContactBatch]:
        for batch in super().read_changed(cursor, until=until):
            if self.mistake == "yield_list":
                yield list(batch.raw)  # type: ignore[misc]
            elif self.mistake == "contacts_raw":
                yield ContactBatch(contacts=batch.raw, cursor=batch.cursor)  # type: ignore[arg-type]
            elif self.mistake == "raw_contacts":
                raw = [item.translate() for item in batch.raw]
                yield ContactBatch(raw=raw, cursor=batch.cursor)  # type: ignore[arg-type]
            else:
                yield batch

    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results = super().write_updates(updates)
        if self.mistake == "str_results":
            return [r.contact_id for r in results]  # type: ignore[misc]
        if self.mistake == "dict_results":
            return {r.contact_id: r for r in results}  # type: ignore[return-value]
        return results

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        results = super().create_tasks(tasks)
        return None if self.mistake == "tasks_none" else results  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ("str_results", "write_updates returned str items; expected WriteResult"),
        ("dict_results", "write_updates returned dict; expected a list of WriteResult"),
        ("tasks_none", "create_tasks returned NoneType; expected a list of TaskResult"),
        ("yield_list", "read_changed yielded list; expected ContactBatch"),
        (
            "contacts_raw",
            "read_changed yielded a ContactBatch whose contacts holds RawContact; expected Contact",
        ),
        (
            "raw_contacts",
            "read_changed yielded a ContactBatch whose raw holds Contact; expected RawContact",
        ),
    ],
)
def test_an_answer_of_the_wrong_shape_names_the_method_and_the_type_expected(
    store, mistake, message
):
    adapter = Misshapen([hot_contact("h1"), cold_contact("c1")], mistake)
    summary = run(adapter, store)
    assert summary.status == "failed"
    assert summary.errors == [f"AdapterError: adapter memory: {message}"]


class LooksUpWrong(MemoryAdapter):
    """Task look-ups of the wrong shape: `existing` pairs as lists, `found` a key not asked."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.wrong: set[str] = set()

    def existing_task_keys(self) -> Iterator[tuple[str, str]]:
        for key, crm_id in super().existing_task_keys():
            yield [key, crm_id] if "existing" in self.wrong else (key, crm_id)  # type: ignore[misc]

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        found = super().find_tasks(keys)
        return {**found, "crmq:not-asked": "T999"} if "found" in self.wrong else found


def test_task_look_ups_of_the_wrong_shape_name_the_method(tmp_path):
    """The ledger rebuilt from `existing_task_keys` and the keys `find_tasks` answered were
    taken as they came: a list for a pair, or a key no one asked about, went to the ledger."""
    adapter = LooksUpWrong([hot_contact("h1")])
    first = StateStore(tmp_path / "first.sqlite")
    assert run(adapter, first).status == "ok" and adapter.tasks
    adapter.wrong = {"existing"}
    fresh = StateStore(tmp_path / "fresh.sqlite")
    summary = run(adapter, fresh)
    assert summary.status == "failed"
    assert summary.errors == [
        "AdapterError: adapter memory: existing_task_keys yielded list; expected a (key, CRM id)"
        " tuple of two str"
    ]
    adapter.wrong = {"found"}
    keys = [task.key for task in adapter.tasks.values()]
    with pytest.raises(AdapterError, match="find_tasks answered key 'crmq:not-asked', not asked"):
        look_up(adapter, keys)
    first.close()
    fresh.close()
