"""Requests a read or a write makes, counted per endpoint by the simulator over a real socket,
against the minimum docs/performance.md ("HubSpot") documents: a walk takes contacts and their
links from its list pages, a search from its own pages, and nothing is read twice."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm_qualify.adapters.hubspot.adapter import FIRST_BATCH, READ_BATCH
from crm_qualify.adapters.hubspot.reader import ChangeReader, Cursor, epoch_ms
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.contract import Hit
from crm_qualify.connector.model import FieldUpdate, PlannedTask, RecordUpdate

from tests.hubspot.conftest import FAST, make_adapter, translate_all

V3 = "/crm/v3/objects"
LIST, SEARCH = f"GET {V3}/contacts", f"POST {V3}/contacts/search"
CONTACT_READ, DEAL_READ, TASK_READ = (
    f"POST {V3}/{t}/batch/read" for t in ("contacts", "deals", "tasks")
)
DEAL_LINKS = "POST /crm/v4/associations/contacts/deals/batch/read"
TASK_LINKS = "POST /crm/v4/associations/contacts/tasks/batch/read"
UPDATE, CREATE = f"POST {V3}/contacts/batch/update", f"POST {V3}/tasks/batch/create"
ENGAGEMENT = re.compile(
    r"/(calls|meetings|emails|notes|communications|companies)/batch/read$"
    r"|/properties/companies$|/forms|/marketing"
)


@pytest.fixture
def big() -> Any:
    with HubSpotSimulator(contacts=2_345, seed=7, custom_properties=True, **FAST) as sim:
        yield sim


@pytest.fixture
def big_without_activities() -> Any:
    """`big` without seeded activities: for walks that count deals only (reading the
    activities of 2,345 contacts would double their time)."""
    with HubSpotSimulator(
        contacts=2_345, seed=7, custom_properties=True, engagement=0, **FAST
    ) as sim:
        yield sim


def requests_made(sim: HubSpotSimulator) -> Counter[str]:
    return Counter(sim.stats.by_endpoint)


def linked_sets(sim: HubSpotSimulator, batches: list[list[str]], to_type: str) -> list[set[str]]:
    """Per read batch, the distinct records of `to_type` linked to its contacts."""
    return [
        {i for c in ids for i in sim.store.associations("contacts", c, to_type)} for ids in batches
    ]


def linked(sim: HubSpotSimulator, batches: list[list[str]], to_type: str) -> int:
    return sum(len(found) for found in linked_sets(sim, batches, to_type))


def per_batch(sim: HubSpotSimulator, batches: list[list[str]], to_type: str) -> int:
    """Batch reads when each read batch reads its own linked records, 100 a request."""
    return sum(math.ceil(len(found) / 100) for found in linked_sets(sim, batches, to_type))


def batch_ids(batches: list[Any]) -> list[list[str]]:
    return [[r.key[1] for r in b.raw] + [e.key[1] for e in b.errors if e.key] for b in batches]


def stamp_groups(sim: HubSpotSimulator, ids: list[str], size: int, start: int) -> None:
    """Give `ids` one `lastmodifieddate` per `size` of them (as one batch update does)."""
    with sim.store.lock:
        for n, contact_id in enumerate(ids):
            sim.store.update("contacts", contact_id, {"jobtitle": "Ops"}, start + n // size)


def by_id(contacts: list[Any]) -> dict[str, Any]:
    return {c.id: c for c in contacts}


# ----- the first run: a walk ----------------------------------------------------------------
def test_a_walk_takes_contacts_and_links_from_its_list_pages_only(big):
    adapter = make_adapter(big)
    batches = list(adapter.read_changed(None, until=datetime.now(UTC)))
    made = requests_made(big)
    live = sorted(big.store.objects["contacts"])
    read = batch_ids(batches)
    assert (READ_BATCH, FIRST_BATCH) == (1000, 200)
    assert len(read[0]) <= FIRST_BATCH, "a short first batch"
    assert sorted(i for ids in read for i in ids) == live, "every contact once"
    assert sum(map(len, read)) == len(live)
    assert made[LIST] == math.ceil(len(live) / 100)
    assert made[CONTACT_READ] == made[DEAL_LINKS] == made[TASK_LINKS] == 0
    # each batch's deals and tasks once, the last request of a batch filled up with those of
    # the contacts read next (or its contacts with tasks waiting for a later batch): 100 a
    # request across batches
    assert (
        made[DEAL_READ]
        == math.ceil(linked(big, read, "deals") / 100)
        < per_batch(big, read, "deals")
    )
    assert made[TASK_READ] == math.ceil(linked(big, read, "tasks") / 100)
    # engagement (activities, companies, forms, marketing events): bench/hubspot_engagement.py
    engagement = sum(n for key, n in made.items() if ENGAGEMENT.search(key))
    assert not any("/crm/v4/" in key for key in made), "every link came inline"
    # contacts with no company, by email domain (company_match.py): one search a batch at most
    by_domain = made["POST /crm/v3/objects/companies/search"]
    assert 1 <= by_domain <= len(read)
    total = made[LIST] + made[DEAL_READ] + made[TASK_READ] + 1 + by_domain  # + pipelines
    assert sum(made.values()) - engagement == total

    walked, errors = translate_all(batches)
    again, _ = translate_all(adapter.read_contacts([("contacts", i) for i in live]))
    assert not errors
    assert by_id(walked) == by_id(again), "inline rows and links read as batch reads do"


def test_a_record_read_ahead_that_failed_is_read_again_with_its_own_batch(big_without_activities):
    """The first batch's last deal request carries deals of the next batch's contacts; one
    failing there (a 207 row) is read again with the next batch, not held as failed."""
    big = big_without_activities
    ids = sorted(big.store.objects["contacts"])
    first = {d for c in ids[:1000] for d in big.store.associations("contacts", c, "deals")}
    later = next(
        d
        for c in ids[1000:]
        for d in sorted(big.store.associations("contacts", c, "deals"))
        if d not in first
    )
    big.faults.add("207", ids=[later], request="deals.batch_read")
    adapter = make_adapter(big)
    contacts, errors = translate_all(adapter.read_changed(None, until=datetime.now(UTC)))
    assert big.faults.pending() == 0, "the failing row was in the first batch's requests"
    assert not errors
    owner = next(c for c in contacts if later in {d.id for d in c.deals})
    assert owner.id in ids[1000:]


def test_links_past_the_100_a_list_page_shows_are_read_for_those_contacts_only(sim):
    """HubSpot pages a record's inline links past 100; those records (only) go to the v4
    batch read, which pages past 500 itself and is followed to the end."""
    adapter = make_adapter(sim)
    many, most = sorted(sim.store.objects["contacts"])[10:12]
    stage = sim.store.pipelines[0]["stages"][0]["id"]
    with sim.store.lock:
        for contact_id, count in ((many, 150), (most, 620)):
            for _ in range(count):
                deal = sim.store.create(
                    "deals", {"dealname": "Bulk", "pipeline": "default", "dealstage": stage}, 1
                )
                sim.store.associate("contacts", contact_id, "deals", deal["id"], [4])
    asked: list[list[dict[str, str]]] = []
    original = adapter.client.associations.get_page

    def spy(from_type: str, to_type: str, body: dict[str, Any], **kwargs: Any) -> Any:
        asked.append(body["inputs"])
        return original(from_type, to_type, body, **kwargs)

    adapter.client.associations.get_page = spy
    contacts, errors = translate_all(adapter.read_changed(None, until=datetime.now(UTC)))
    assert not errors
    deals = {c.id: {d.id for d in c.deals} for c in contacts}
    assert deals[many] == set(sim.store.associations("contacts", many, "deals"))
    assert len(deals[most]) == 620
    assert [[i["id"] for i in inputs] for inputs in asked] == [[many, most], [most]]
    assert asked[1][0]["after"], "the second page of the 620 links, from HubSpot's cursor"
    made = requests_made(sim)
    assert made[DEAL_LINKS] == 2 and made[TASK_LINKS] == 0 and made[CONTACT_READ] == 0


# ----- later runs: search -----------------------------------------------------------------
@pytest.mark.parametrize("group", [1, 100, 150, 250])
def test_search_pages_from_the_last_stamp_never_overlap_nor_miss(sim, group):
    """Contacts stamped in groups (our 100-record updates stamp 100 at once): each page is a
    fresh query from the last stamp, leaving out the ids it already gave there."""
    adapter = make_adapter(sim, lookback_seconds=0)
    ids = sorted(sim.store.objects["contacts"])
    start = epoch_ms(datetime.now(UTC)) - 3_600_000
    stamp_groups(sim, ids, group, start)
    sim.stats.reset()
    seen: list[str] = []
    for hits, _ in adapter.reader.changed(Cursor(since=start), datetime.now(UTC)):
        seen += hits
        assert set(hits.rows) == set(hits), "search pages carry the rows"
    assert sorted(seen) == ids, "each contact once"
    searches = requests_made(sim)[SEARCH]
    if group <= 100:
        assert searches == math.ceil(len(ids) / 200), "no page overlaps the one before"
    else:  # ids past the 100 a query may leave out come back (and are dropped)
        assert searches <= math.ceil(len(ids) / 100) + 2
    assert requests_made(sim)[CONTACT_READ] == 0


def test_contacts_sharing_stamps_cost_no_more_pages_than_any_others():
    """Groups of 100, 100, 300 and 100 contacts at one stamp each (a whole page and more at
    one instant): pages go by id, so each contact is read once in ceil(600/200) pages."""
    with HubSpotSimulator(contacts=600, seed=9, custom_properties=True, **FAST) as sim:
        adapter = make_adapter(sim, lookback_seconds=0)
        ids = sorted(sim.store.objects["contacts"])
        start = epoch_ms(datetime.now(UTC)) - 3_600_000
        with sim.store.lock:
            for n, contact_id in enumerate(ids):
                group = 0 if n < 100 else 1 if n < 200 else 2 if n < 500 else 3
                sim.store.update("contacts", contact_id, {"jobtitle": "Ops"}, start + group)
        sim.stats.reset()
        seen: list[str] = []
        for hits, _ in adapter.reader.changed(Cursor(since=start), datetime.now(UTC)):
            seen += hits
        assert sorted(seen) == ids
        assert requests_made(sim)[SEARCH] == 3


def test_a_search_body_that_would_pass_3000_characters_drops_what_does_not_fit(sim):
    """Properties that do not fit are not asked (the hits are read by batch instead), and
    the ids left out are only as many as fit: the simulator refuses a longer body (400). A
    walk asks for them on its list pages only while the URL stays short (no HTTP 414)."""
    adapter = make_adapter(sim, lookback_seconds=0)
    ids = sorted(sim.store.objects["contacts"])
    start = epoch_ms(datetime.now(UTC)) - 3_600_000
    stamp_groups(sim, ids, 100, start)
    for names, full in ((150, False), (60, True)):
        properties = [f"custom_property_{n:012d}" for n in range(names)]
        reader = ChangeReader(adapter.client, "contacts", 0, properties=properties)
        seen: list[str] = []
        for hits, _ in reader.changed(Cursor(since=start), datetime.now(UTC)):
            seen += hits
            assert bool(hits.rows) is (full and bool(hits))
        assert sorted(seen) == ids
        walked = list(reader.changed(None, datetime.now(UTC)))
        assert [i for hits, _ in walked for i in hits] == ids
        assert all(bool(hits.rows) is (full and bool(hits)) for hits, _ in walked), (
            "a list page asks for the properties only while its URL stays short"
        )


def test_an_incremental_read_takes_contacts_from_the_search_and_links_1000_at_a_time():
    with HubSpotSimulator(contacts=1_234, seed=9, custom_properties=True, **FAST) as wide:
        adapter = make_adapter(wide, lookback_seconds=0)
        ids = sorted(wide.store.objects["contacts"])
        start = epoch_ms(datetime.now(UTC)) - 3_600_000
        stamp_groups(wide, ids, 1, start)
        wide.stats.reset()
        cursor = Cursor(since=start, activity=start).dump()
        batches = list(adapter.read_changed(cursor, until=datetime.now(UTC)))
        made = requests_made(wide)
        read = batch_ids(batches)
        assert len(read[0]) <= 200 and sorted(i for b in read for i in b) == ids
        assert made[SEARCH] == math.ceil(len(ids) / 200)
        assert made[CONTACT_READ] == 0, "search hits carry their properties"
        assert made[DEAL_LINKS] == made[TASK_LINKS] == 2, "one v4 read per type per 1,000"
        # the next batch's links are read with this one's, so its deals and tasks fill this
        # batch's last requests: 100 a request across batches
        assert made[DEAL_READ] == math.ceil(linked(wide, read, "deals") / 100)
        assert made[DEAL_READ] < per_batch(wide, read, "deals")
        assert math.ceil(linked(wide, read, "tasks") / 100) <= made[TASK_READ]
        assert made[TASK_READ] <= per_batch(wide, read, "tasks")
        searched, errors = translate_all(batches)
        again, _ = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
        assert not errors and by_id(searched) == by_id(again)


def test_batches_hold_1000_contacts_and_a_split_page_is_read_again_after_a_restart():
    """Known hits leave pages of uneven size: a page that does not fit a batch whole is split,
    and the batch's cursor stays before it, so a restart from there skips nothing."""
    # No seeded activities: contact hits and cursors are counted here, not what is read
    # with them (the test above compares that), and they would double the time.
    with HubSpotSimulator(
        contacts=1_600, seed=9, custom_properties=True, engagement=0, **FAST
    ) as wide:
        adapter = make_adapter(wide, lookback_seconds=0)
        ids = sorted(wide.store.objects["contacts"])
        start = epoch_ms(datetime.now(UTC)) - 3_600_000
        stamp_groups(wide, ids, 1, start)
        known = set(ids[::5])

        def holds(hits: list[Hit]) -> set[tuple[str, str]]:
            return {hit[0] for hit in hits if hit[0][1] in known}

        cursor = Cursor(since=start, activity=start).dump()
        batches = list(adapter.read_changed(cursor, until=datetime.now(UTC), known=holds))
        read = batch_ids(batches)
        assert len(read[0]) <= 200 and sum(map(len, read)) == 1280
        assert Cursor.load(batches[-1].cursor) is not None
        assert requests_made(wide)[DEAL_LINKS] == 2
        # contacts waiting for a later batch (`records.hold_back`) keep the cursor before them
        moved = next(n for n, b in enumerate(batches) if b.cursor is not None)
        after_first = Cursor.load(batches[moved].cursor)
        assert after_first is not None and after_first.since is not None
        resumed = adapter.read_changed(batches[moved].cursor, until=datetime.now(UTC), known=holds)
        again = {i for ids_ in batch_ids(list(resumed)) for i in ids_}
        later = {i for ids_ in read[moved + 1 :] for i in ids_}
        assert later <= again, "nothing skipped"


# ----- writes -----------------------------------------------------------------------------
def test_one_call_with_more_than_100_writes_is_sent_100_at_a_time(sim):
    adapter = make_adapter(sim)
    ids = sorted(sim.store.objects["contacts"])[:250]
    results = adapter.write_updates(
        [RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=9)]) for i in ids]
    )
    assert all(r.ok for r in results)
    due = datetime.now(UTC) + timedelta(days=1)
    tasks = [
        PlannedTask(key=f"crmq:{i}:count", contact_id=i, kind="hot_call", subject="Call", due=due)
        for i in ids
    ]
    created = adapter.create_tasks(tasks)
    assert all(r.ok for r in created)
    made = requests_made(sim)
    assert (made[UPDATE], made[CREATE]) == (3, 3)
    assert not [e for e in made if "associations" in e], "links go inline with each create"
    assert all(
        sim.store.associations("tasks", r.crm_id, "contacts") == [t.contact_id]
        for t, r in zip(tasks, created, strict=True)
    )
