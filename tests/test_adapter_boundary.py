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
from crm_qualify.connector.contract import ContactBatch, RawContact
from crm_qualify.connector.model import Contact
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

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
