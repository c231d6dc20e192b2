"""Linked records (companies, tasks) read at the minimum across a whole run, over a real
socket against the simulator: a company once a run however many batches its contacts span,
and sparse tasks in full requests of 100 (contacts with tasks wait for a later batch instead
of a short request), with every batch complete and its cursor never past a waiting contact.
The facts are those a read by id (each contact with its own batch) gives."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from crm_qualify.adapters.hubspot.reader import Cursor, epoch_ms
from crm_qualify.adapters.hubspot.records import Links, Rows, hold_back
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator

from tests.hubspot.conftest import FAST, contact_properties_only, make_adapter, translate_all

V3 = "/crm/v3/objects"
COMPANY_READ, TASK_READ = f"POST {V3}/companies/batch/read", f"POST {V3}/tasks/batch/read"


@pytest.fixture(scope="module")
def portal() -> Any:
    """2,345 contacts over 293 companies (each company's contacts spread over every batch),
    about one task in 100 contacts; no activities (they would triple the time)."""
    with HubSpotSimulator(
        contacts=2_345, seed=7, custom_properties=True, engagement=0, **FAST
    ) as sim:
        yield sim


def handed(batches: list[Any]) -> list[list[str]]:
    return [[r.key[1] for r in b.raw] + [e.key[1] for e in b.errors if e.key] for b in batches]


def distinct(sim: HubSpotSimulator, ids: list[str], to_type: str) -> int:
    return len({i for c in ids for i in sim.store.associations("contacts", c, to_type)})


def same_facts(adapter: Any, batches: list[Any]) -> None:
    walked, errors = translate_all(batches)
    assert not errors
    ids = [c.id for c in walked]
    again, _ = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
    assert {c.id: c for c in walked} == {c.id: c for c in again}


def test_a_walk_reads_each_company_once_and_tasks_in_full_requests(portal):
    adapter = make_adapter(portal)  # the bundled mapping: [companies] fill_missing
    portal.stats.reset()
    batches = list(adapter.read_changed(None, until=datetime.now(UTC)))
    made = Counter(portal.stats.by_endpoint)
    read = handed(batches)
    ids = [i for b in read for i in b]
    assert sorted(ids) == sorted(portal.store.objects["contacts"]), "each contact once"
    companies = distinct(portal, ids, "companies")
    per_batch = sum(math.ceil(distinct(portal, b, "companies") / 100) for b in read)
    assert made[COMPANY_READ] == math.ceil(companies / 100) < per_batch
    assert made[TASK_READ] == math.ceil(distinct(portal, ids, "tasks") / 100)
    assert any(b.cursor is None for b in batches[:-1]), "contacts waited for a later batch"
    same_facts(adapter, batches)


def test_a_walk_by_search_keeps_its_cursor_before_every_waiting_contact(portal):
    """Deals and tasks only: the walk goes by search, links by v4 reads one batch early (the
    case that read tasks one short request per two batches). A batch's cursor holds the id
    span still to read: every contact outside it has been handed over by then."""
    adapter = make_adapter(portal, contact_properties_only())
    portal.stats.reset()
    batches = list(adapter.read_changed(None, until=datetime.now(UTC)))
    ids = [i for b in handed(batches) for i in b]
    assert Counter(portal.stats.by_endpoint)[TASK_READ] == math.ceil(
        distinct(portal, ids, "tasks") / 100
    )
    so_far: set[str] = set()
    cursors = 0
    for batch, read in zip(batches, handed(batches), strict=True):
        so_far.update(read)
        cursor = Cursor.load(batch.cursor)
        if cursor is None or cursor.span is None:
            continue
        cursors += 1
        low, high = cursor.span
        outside = {i for i in ids if int(i) < low or (high is not None and int(i) >= high)}
        assert outside <= so_far, "the cursor passed a contact not handed over yet"
    assert cursors, "some batch moved the cursor"
    assert Cursor.load(batches[-1].cursor).since is not None, "the walk's end is saved"
    same_facts(adapter, batches)


def test_an_incremental_read_reads_tasks_and_companies_at_the_minimum(portal):
    adapter = make_adapter(portal, lookback_seconds=0)
    ids = sorted(portal.store.objects["contacts"])
    start = epoch_ms(datetime.now(UTC)) - 3_600_000
    with portal.store.lock:
        for n, contact_id in enumerate(ids):
            portal.store.update("contacts", contact_id, {"jobtitle": "Ops"}, start + n)
    portal.stats.reset()
    cursor = Cursor(since=start, activity=start).dump()
    batches = list(adapter.read_changed(cursor, until=datetime.now(UTC)))
    made = Counter(portal.stats.by_endpoint)
    read = [i for b in handed(batches) for i in b]
    assert sorted(read) == ids
    assert made[COMPANY_READ] == math.ceil(distinct(portal, read, "companies") / 100)
    assert made[TASK_READ] == math.ceil(distinct(portal, read, "tasks") / 100)
    same_facts(adapter, batches)


# ----- which contacts wait (records.hold_back) ------------------------------------------------
def links(**linked: list[str]) -> Links:
    return Links(linked=dict(linked))


def test_contacts_with_too_few_tasks_for_a_request_wait_and_the_others_go():
    order = ["a", "b", "c", "d"]
    found = {"tasks": links(b=["t1"], d=["t2", "t3"]), "deals": links(a=["d1"], c=["d2"])}
    held = {"tasks": Rows(), "deals": Rows()}
    ahead = {"tasks": ["t9"], "deals": [f"d{n}" for n in range(10, 200)]}
    assert hold_back(order, found, held, ahead, lambda _: True) == {"b", "d"}


def test_nobody_waits_when_the_records_read_next_fill_the_last_request():
    order = ["a", "b"]
    found = {"tasks": links(a=["t1"], b=["t2"])}
    ahead = {"tasks": [f"t{n}" for n in range(3, 101)]}
    assert hold_back(order, found, {"tasks": Rows()}, ahead, lambda _: True) == set()


def test_records_already_held_are_not_waited_for():
    order = ["a", "b"]
    found = {"companies": links(a=["c1"], b=["c2"])}
    held = Rows(found={"c1": {"id": "c1"}, "c2": {"id": "c2"}})
    assert hold_back(order, found, {"companies": held}, {"companies": []}, lambda _: True) == set()


def test_a_contact_that_waited_long_enough_makes_the_short_request_for_everyone():
    order = ["a", "b"]
    found = {"tasks": links(a=["t1"], b=["t2"])}
    waited_enough = {"a"}
    movable = lambda record: record not in waited_enough  # noqa: E731
    assert hold_back(order, found, {"tasks": Rows()}, {"tasks": []}, movable) == set()
