"""A contact whose value the mapping cannot translate, over a real socket: it needs attention
once, at the version it failed at. The next runs' lookback meets that same version again and
says nothing new; someone's change to it is read and, still bad, reported once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, RunSummary, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.hubspot.conftest import FAST, contact_properties_only, make_adapter

SETTINGS = Settings(crm=CrmSettings(adapter="hubspot"))


NEED_TEXT = {
    "name": "need_text",
    "label": "Need (free text)",
    "type": "string",
    "fieldType": "text",
    "groupName": "contactinformation",
}
"""A text property the portal's admin made for the need answer: any value can be typed."""


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=20, seed=3, custom_properties=True, **FAST) as simulator:
        client = make_adapter(simulator).client
        client.call("POST property", client.properties.create, "contacts", NEED_TEXT)
        yield simulator


def sync(
    sim: HubSpotSimulator, store: StateStore, read: list[str] | None = None, **options
) -> RunSummary:
    """One run with `need` mapped to `need_text`; `read`: gets the ids of the contacts the
    run's changed-record read hands over."""
    mapping = contact_properties_only()
    mapping["objects"]["contacts"]["qualification"]["need"] = "need_text"
    adapter = make_adapter(sim, mapping)
    read_changed = adapter.read_changed

    def reading(*args, **kwargs):
        for batch in read_changed(*args, **kwargs):
            if read is not None:
                read.extend(item.key[1] for item in batch.raw if item.key)
            yield batch

    adapter.read_changed = reading  # type: ignore[method-assign]
    return SyncEngine(adapter, SETTINGS, store).run(RunOptions(**options))


def failing(sim: HubSpotSimulator, store: StateStore) -> str:
    """A synced portal, then a contact given a need the mapping does not know, and the run
    that reports it: the contact's id."""
    assert sync(sim, store).status == "ok"
    contact = sorted(sim.store.objects["contacts"], key=int)[0]
    sim.touch(contact, {"need_text": "Maybe"})
    failed = sync(sim, store)
    assert failed.status == "partial"
    assert failed.counts["read_errors"] == 1
    assert failed.errors == [
        f"contacts/{contact}: need_text: value not in qualification_values: 'Maybe'"
    ]
    return contact


def test_a_bad_value_met_again_in_the_lookback_is_not_a_new_error(sim, store):
    contact = failing(sim, store)
    for _ in range(2):  # the lookback window still holds the version that failed
        read: list[str] = []
        again = sync(sim, store, read)
        assert contact not in read, "a version known to fail is not read again"
        assert (again.status, again.errors) == ("ok", [])
        assert again.counts["read"] == again.counts["read_errors"] == 0
        assert again.counts["records_needing_attention"] == 0
    full = sync(sim, store, full=True)  # reads it, at the same version
    assert (full.status, full.errors, full.counts["read_errors"]) == ("ok", [], 0)
    [waiting] = store.attention("default")
    assert (waiting.contact_id, waiting.attempts) == (contact, 1)


def test_a_new_version_or_a_due_retry_of_a_bad_value_is_reported_once(sim, store):
    contact = failing(sim, store)
    sim.touch(contact, {"jobtitle": "Head of Buying"})  # a new version, still bad
    changed = sync(sim, store)
    assert (changed.status, changed.counts["read_errors"]) == ("partial", 1)
    assert sync(sim, store).errors == []
    [waiting] = store.attention("default")
    assert waiting.attempts == 1, "met before its retry is due: no attempt"

    due = sync(sim, store, now=datetime.now(UTC) + timedelta(hours=2))  # the retry: reported
    assert (due.status, due.counts["read_errors"]) == ("partial", 1)
    assert store.attention("default")[0].attempts == 2
