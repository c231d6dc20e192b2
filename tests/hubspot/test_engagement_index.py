"""The form submission and marketing event index lives in the state store
(`engagement_read.py`, `connector/sync/adapter_state.py`), over a real socket against the
simulator: a new process on the same state file reads only what is new and still knows a
contact's older submissions; a read that fails half-way leaves the index consistent; a full
read rebuilds it; a dry run reads what is new without changing what the next run reads.

One simulator serves the module; each test starts its own state file with a walk. Pages are
made small (5 rows) so that a form's history spans several of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter, engagement_read
from crm_qualify.adapters.hubspot.engagement_read import (
    EVENT_MARKS,
    FORM_MARKS,
    PARTICIPATIONS,
    SUBMISSIONS,
)
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.contract import AdapterError
from crm_qualify.connector.model import Contact
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.adapter_state import AdapterState, Changes, Row
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.hubspot.conftest import FAST, make_adapter, translate_all

SUBMISSION_PAGES = "GET /form-integrations/v1/submissions/forms/{formGuid}"
BREAKDOWN_PAGES = "GET /marketing/v3/marketing-events/participations/{marketingEventId}/breakdown"
INSTANCE = "test"


@pytest.fixture(scope="module")
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=60, seed=7, custom_properties=True, **FAST) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engagement_read, "SUBMISSIONS_PAGE", 5)
    monkeypatch.setattr(engagement_read, "BREAKDOWN_PAGE", 5)


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state.sqlite")
    yield state
    state.close()


def process(sim: HubSpotSimulator, store: StateStore, **options: Any) -> HubSpotAdapter:
    """A new process's adapter on the state file, handed its rows as the engine does."""
    adapter = make_adapter(sim, lookback_seconds=0, **options)
    adapter.use_state(AdapterState(store, INSTANCE, adapter.name))
    return adapter


def walk(adapter: HubSpotAdapter) -> str:
    """A first read; the cursor it ends with."""
    cursor = None
    for batch in adapter.read_changed(None, until=datetime.now(UTC)):
        cursor = batch.cursor or cursor
    assert cursor is not None
    return cursor


def incremental(adapter: HubSpotAdapter, cursor: str) -> dict[str, Contact]:
    until = datetime.now(UTC) + timedelta(milliseconds=5)
    contacts, errors = translate_all(adapter.read_changed(cursor, until=until))
    assert not errors
    return {c.id: c for c in contacts}


def truth(sim: HubSpotSimulator) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Every submission (email, conversionId, form, time) and participation (contact, event,
    state, time) the portal holds: what the index must hold."""
    marketing = sim.store.marketing
    submissions = {
        (value["value"].lower(), row["conversionId"], form.id, row["submittedAt"])
        for form in marketing.forms.values()
        for row in form.submissions
        for value in row["values"]
        if value["name"] == "email"
    }
    participations = {
        (contact, event.object_id, row["state"], row["occurredAt"])
        for event in marketing.events.values()
        for contact, row in event.participations.items()
    }
    return submissions, participations


def index(store: StateStore) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    state = AdapterState(store, INSTANCE, "hubspot")
    return tuple(  # type: ignore[return-value]
        {(r.key, r.item, *r.value) for r in state.all_rows(space)}
        for space in (SUBMISSIONS, PARTICIPATIONS)
    )


def marks(store: StateStore, space: str, instance: str = INSTANCE) -> dict[str, Any]:
    return {r.key: r.value for r in AdapterState(store, instance, "hubspot").all_rows(space)}


def events_of(contact: Contact) -> list[tuple[str, datetime, str | None]]:
    return sorted((e.type.value, e.at, e.detail) for e in contact.events)


def contact_with_submissions(sim: HubSpotSimulator, leave_out: set[str]) -> str:
    by_email = {r["properties"].get("email"): i for i, r in sim.store.objects["contacts"].items()}
    submitted = [by_email.get(email) for email, *_ in sorted(truth(sim)[0])]
    return next(i for i in submitted if i and i not in leave_out)


def other_contact(sim: HubSpotSimulator, leave_out: set[str]) -> str:
    return next(i for i in sorted(sim.store.objects["contacts"]) if i not in leave_out)


def form_id(sim: HubSpotSimulator, name: str) -> str:
    return next(f.id for f in sim.store.marketing.forms.values() if f.name == name)


def test_a_new_process_reads_only_new_submission_pages_and_still_knows_older_ones(sim, store):
    sim.stats.reset()
    cursor = walk(process(sim, store))
    history_pages = sim.stats.by_endpoint[SUBMISSION_PAGES]
    assert index(store) == truth(sim)
    older = contact_with_submissions(sim, set())
    newer = other_contact(sim, {older})
    sim.submit_form("Demo request", newer)
    sim.log_activity("meetings", older, {"hs_meeting_outcome": "SCHEDULED"})

    sim.stats.reset()
    read = incremental(process(sim, store), cursor)
    forms = len(sim.store.marketing.forms)
    assert sim.stats.by_endpoint[SUBMISSION_PAGES] == forms, "one page a form: the new rows"
    assert history_pages > 2 * forms
    assert sim.stats.by_endpoint[BREAKDOWN_PAGES] == 0, "no event changed"
    (from_scratch,), _ = translate_all(make_adapter(sim).read_contacts([("contacts", older)]))
    forms_named = {f.name for f in sim.store.marketing.forms.values()}
    assert forms_named & {e.detail for e in from_scratch.events}, "it has submissions"
    assert events_of(read[older]) == events_of(from_scratch), "older submissions kept"
    assert "Demo request" in {e.detail for e in read[newer].events}
    assert index(store) == truth(sim)


def failing_page(monkeypatch: pytest.MonkeyPatch, endpoint: str, record: str) -> dict[str, int]:
    """The second page of one form's submissions or one event's participations fails (the
    connection drops) until the test ends; returns the count of failures."""
    real_get = engagement_read.get
    failed = {"times": 0}

    def get(client: Any, name: str, path: str, query: dict[str, Any], **params: str) -> Any:
        if name == endpoint and query.get("after") and record in params.values():
            failed["times"] += 1
            raise AdapterError("connection reset by peer")
        return real_get(client, name, path, query, **params)

    monkeypatch.setattr(engagement_read, "get", get)
    return failed


def test_a_read_that_fails_half_way_leaves_the_index_consistent(sim, store, monkeypatch):
    cursor = walk(process(sim, store))
    newsletter = form_id(sim, "Newsletter signup")
    roadmap = next(e for e in sim.store.marketing.events.values() if e.name == "Q3 Roadmap")
    forms_before, events_before = marks(store, FORM_MARKS), marks(store, EVENT_MARKS)
    submissions_before, participations_before = index(store)
    submitters: list[str] = []
    for _ in range(7):
        submitters.append(other_contact(sim, set(submitters)))
        sim.submit_form("Newsletter signup", submitters[-1])
    attendee = other_contact(sim, set(roadmap.participations) | set(submitters))
    sim.record_participation("Q3 Roadmap", attendee, "ATTENDED")
    monkeypatch.setattr(engagement_read, "FLUSH_ROWS", 1)

    with monkeypatch.context() as patch:
        failed = failing_page(patch, "GET form submissions", newsletter)
        with pytest.raises(AdapterError):
            incremental(process(sim, store), cursor)
    assert failed["times"] == 1
    assert marks(store, FORM_MARKS)[newsletter] == forms_before[newsletter], "mark not moved"
    stored = index(store)[0]
    assert stored <= truth(sim)[0], "nothing stored that the portal does not hold"
    assert len(stored - submissions_before) == 5, "the first page landed before the failure"

    with monkeypatch.context() as patch:
        failed = failing_page(patch, "GET marketing event participations", roadmap.object_id)
        with pytest.raises(AdapterError):
            incremental(process(sim, store), cursor)
    assert failed["times"] == 1
    assert index(store)[0] == truth(sim)[0], "the forms were read to their end"
    assert marks(store, EVENT_MARKS)[roadmap.object_id] == events_before[roadmap.object_id]
    assert index(store)[1] == participations_before, "the event's old rows stand"

    sim.faults.add("500", request="contacts.search")
    with pytest.raises(AdapterError):  # after the index is topped up, before any contact
        incremental(process(sim, store, max_attempts=1), cursor)
    assert index(store) == truth(sim)

    sim.stats.reset()
    read = incremental(process(sim, store), cursor)
    assert sim.stats.by_endpoint[BREAKDOWN_PAGES] == 0, "the event is held already"
    assert attendee in read, "its participation is found in the index, by its date"
    assert set(submitters) <= set(read)
    assert "Q3 Roadmap" in {e.detail for e in read[attendee].events}
    assert index(store) == truth(sim)


def test_a_full_read_rebuilds_the_index_from_scratch(sim, store):
    cursor = walk(process(sim, store))
    demo = form_id(sim, "Demo request")
    someone = other_contact(sim, set())
    stale = Changes()
    stale.put(SUBMISSIONS, [Row("left@example.com", "gone", [demo, 1])])
    stale.put(FORM_MARKS, [Row(demo, "", {"name": "Demo request", "newest": 2**53})])
    AdapterState(store, INSTANCE, "hubspot").apply(stale)
    sim.submit_form("Demo request", someone)

    incremental(process(sim, store), cursor)
    held = index(store)[0]
    assert ("left@example.com", "gone", demo, 1) in held, "an incremental read trusts it"
    assert not truth(sim)[0] <= held, "and reads no row below a form's mark"

    walk(process(sim, store))
    assert index(store) == truth(sim)
    assert (
        marks(store, FORM_MARKS)[demo]["newest"]
        == sim.store.marketing.forms[demo].submissions[0]["submittedAt"]
    )


def test_a_dry_run_reads_what_is_new_and_leaves_the_index_to_the_next_run(sim, store):
    seen: list[Contact] = []
    adapter = make_adapter(sim, lookback_seconds=0)
    engine = SyncEngine(
        adapter, Settings(crm=CrmSettings(adapter="hubspot")), store, on_read=seen.extend
    )
    assert engine.run(RunOptions()).status == "ok"
    assert marks(store, FORM_MARKS, "default"), "the engine handed the adapter its rows"
    someone = other_contact(sim, set())
    sim.submit_form("Whitepaper: Security Guide", someone)
    stored = {
        space: AdapterState(store, "default", "hubspot").all_rows(space)
        for space in (FORM_MARKS, SUBMISSIONS, EVENT_MARKS, PARTICIPATIONS)
    }

    seen.clear()
    later = datetime.now(UTC) + timedelta(milliseconds=5)
    assert engine.run(RunOptions(dry_run=True, now=later)).status == "ok"
    dry = next(c for c in seen if c.id == someone)
    assert "Whitepaper: Security Guide" in {e.detail for e in dry.events}
    for space, rows in stored.items():
        assert AdapterState(store, "default", "hubspot").all_rows(space) == rows, space

    sim.stats.reset()
    seen.clear()
    assert engine.run(RunOptions(now=later)).status == "ok"
    real = next(c for c in seen if c.id == someone)
    assert "Whitepaper: Security Guide" in {e.detail for e in real.events}
    assert sim.stats.by_endpoint[SUBMISSION_PAGES] == len(sim.store.marketing.forms)
    whitepaper = sim.store.marketing.forms[form_id(sim, "Whitepaper: Security Guide")]
    held = marks(store, FORM_MARKS, "default")[whitepaper.id]
    assert held["newest"] == whitepaper.submissions[0]["submittedAt"]
