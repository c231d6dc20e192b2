"""The adapter reads people with their engagement in the same rows (relationship subqueries,
one request per page), reads again by IN list only the child sets Salesforce cut short, and
hands the core batches that never let the cursor pass a record not handed on."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.salesforce import adapter as adapter_module
from crm_qualify.adapters.salesforce.reader import child_sets
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.salesforce.simulator.org import ACTIVITY_LINKS
from crm_qualify.adapters.salesforce.soql import engagement
from crm_qualify.connector.model import Contact

from tests.salesforce.conftest import make_adapter

AGO = datetime.now(UTC) - timedelta(days=3)


@pytest.fixture
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=300, seed=9) as simulator:
        yield simulator


def people(sim: SalesforceSimulator) -> dict[str, list[str]]:
    return {
        sobject: [r["Id"] for r in sim.org.live(sobject) if not r.get("IsConverted")]
        for sobject in ACTIVITY_LINKS
    }


def rows(sim: SalesforceSimulator, sobject: str) -> int:
    """The person rows and child rows a full read of the object pages through."""
    ids = set(people(sim)[sobject])
    children = sum(
        1
        for child, link in ACTIVITY_LINKS[sobject]
        for r in sim.org.live(child)
        if r.get(link) in ids
    )
    return len(ids) + children


def read(adapter, cursor=None) -> list[Contact]:  # noqa: ANN001
    until = datetime.now(UTC) + timedelta(seconds=1)
    return [
        raw.translate() for batch in adapter.read_changed(cursor, until=until) for raw in batch.raw
    ]


def queries(adapter) -> Counter[str]:  # noqa: ANN001
    """Query requests the adapter made, by object queried (pages of one query together)."""
    found: Counter[str] = Counter()
    for what, count in adapter.usage().requests.items():
        if what.startswith("GET query"):
            found[what.removeprefix("GET query ").removesuffix(" (more)")] += count
    return found


def test_a_full_read_is_one_request_per_page_and_no_in_list(org):
    adapter = make_adapter(org)
    contacts = read(adapter)
    assert len(contacts) == sum(len(ids) for ids in people(org).values())
    # rows < 2,000 per object; the second Lead query: the leads converted into the contacts
    # read (asked for contacts whose stage field is still empty, adapter._converted_leads);
    # Account: the Accounts the batch's Leads match (lead-to-account matching, accounts.py)
    assert queries(adapter) == {"Lead": 2, "Contact": 1, "Account": 1}
    assert org.stats.by_endpoint["GET query"] == 4 and org.stats.by_endpoint["GET query/more"] == 0
    assert any(c.events for c in contacts) and any(c.deals for c in contacts)


def test_pages_count_the_child_rows(org):
    org.page_size = 50
    adapter = make_adapter(org)
    read(adapter)
    for sobject in ("Lead", "Contact"):
        needed = rows(org, sobject)
        # A page ends on a person: at most the largest person's rows (here < 8) go unused.
        assert math.ceil(needed / 50) <= queries(adapter)[sobject] <= math.ceil(needed / 43)
    assert set(queries(adapter)) == {"Lead", "Contact", "Account"}, "no IN-list query"


def test_a_cut_child_set_is_read_again_for_that_person_only(org):
    lead = sorted(people(org)["Lead"])[0]
    for n in range(600):
        task = {"WhoId": lead, "Subject": "Call", "CRMQ_Task_Key__c": f"crmq:Lead:{lead}:k{n}"}
        org.org.insert("Task", task, AGO)
    adapter = make_adapter(org)
    sent: list[str] = []
    original = adapter._query

    def spy(what, soql, deleted=False):  # noqa: ANN001
        sent.append(soql)
        return original(what, soql, deleted)

    adapter._query = spy
    contacts = {c.id: c for c in read(adapter)}
    assert len(contacts[lead].tasks) == 600
    # Lead: + converted leads; Account: the Leads' matching Accounts
    assert queries(adapter) == {"Lead": 2, "Contact": 1, "Task": 1, "Account": 1}
    (again,) = [s for s in sent if "FROM Task" in s and "(SELECT" not in s]
    assert again.endswith(f"WhoId IN ('{lead}')")


def test_cut_sets_read_by_in_list_give_the_same_people(org):
    whole = {c.id: c for c in read(make_adapter(org))}
    org.page_size = 2  # a child set then carries one row: every larger one is cut
    adapter = make_adapter(org)
    cut = {c.id: c for c in read(adapter)}
    assert cut == whole
    assert {"Task", "CampaignMember"} <= set(queries(adapter))


def test_outcomes_come_with_their_contact_roles(org):
    deal = next(o for o in org.org.live("Opportunity") if o["IsClosed"])
    extra = sorted(people(org)["Contact"])[:2]
    for contact in extra:
        org.org.insert(
            "OpportunityContactRole", {"OpportunityId": deal["Id"], "ContactId": contact}, AGO
        )
    expected = {
        o["Id"]: sorted(r["ContactId"] for r in org.org.live("OpportunityContactRole")
                        if r["OpportunityId"] == o["Id"])
        for o in org.org.live("Opportunity") if o["IsClosed"]
    }  # fmt: skip
    for page_size in (2000, 2):  # 2: the deal's three roles are cut, read by IN list
        org.page_size = page_size
        adapter = make_adapter(org)
        found = adapter.fetch_outcomes(AGO - timedelta(days=3650))
        assert {o.deal_id: sorted(o.contact_ids) for o in found} == expected
        # Cut: the deal's three roles by IN list, two pages of two rows.
        assert queries(adapter)["OpportunityContactRole"] == (2 if page_size == 2 else 0)


def test_batches_hold_whole_collections_and_the_cursor_never_passes_what_they_hold(
    org, monkeypatch
):
    """Batches of `BATCH` people (the last one smaller), cut across pages and objects; an
    interruption after any batch resumes with exactly the people not handed on yet (the
    activity sweep, which a resumed run adds, is left out here)."""
    monkeypatch.setattr(adapter_module, "BATCH", 40)
    monkeypatch.setattr(adapter_module, "people_touched", lambda *args, **kwargs: {})
    org.page_size = 30
    everyone = {(s, i) for s, ids in people(org).items() for i in ids}
    until = datetime.now(UTC) + timedelta(seconds=1)
    adapter = make_adapter(org, lookback_seconds=0)
    batches = [b for b in adapter.read_changed(None, until=until) if b.raw]
    assert [len(b.raw) for b in batches[:-1]] == [40] * (len(batches) - 1)
    assert 0 < len(batches[-1].raw) <= 40
    assert {r.key for b in batches for r in b.raw} == everyone
    mixed = [b for b in batches if {r.key[0] for r in b.raw} == {"Lead", "Contact"}]
    assert len(mixed) == 1, "leads left over share a batch with the first contacts"
    for stop in (0, len(batches) // 2, len(batches) - 2):
        handed = {r.key for b in batches[: stop + 1] for r in b.raw}
        resumed = make_adapter(org, lookback_seconds=0).read_changed(
            batches[stop].cursor, until=until
        )
        rest = [r.key for b in resumed for r in b.raw]
        assert not handed & set(rest) and handed | set(rest) == everyone


def test_child_sets_that_cannot_be_read_are_read_again():
    kinds = engagement("Lead", "Key__c", "59.0")
    task = {"Id": "00T000000000001AAA", "Subject": "Call"}  # as `_query` hands rows on
    people = [
        {"Id": "p1", "Tasks": None, "Events": None, "CampaignMembers": None},
        {"Id": "p2", "Tasks": {"totalSize": 1, "done": True, "records": [task]}},
        {"Id": "p3", "Tasks": {"totalSize": 900, "done": False, "records": [task]}},
        {"Id": "p4", "Tasks": "garbage", "Events": {"done": True}, "CampaignMembers": []},
    ]
    found, again = child_sets(people, kinds)
    assert found["Tasks"] == {"p2": [{"Id": "00T000000000001AAA", "Subject": "Call"}]}
    assert again == {
        "Tasks": ["p3", "p4"], "Events": ["p2", "p3", "p4"], "CampaignMembers": ["p2", "p3", "p4"]
    }  # fmt: skip
    assert all(set(p) == {"Id"} for p in people), "child sets are taken out of the rows"


def test_a_parent_returned_again_on_a_later_page_is_handed_on_once(org):
    """Real orgs may page a parent whose child set was cut a second time, with the next rows;
    the adapter reads the set again by IN list and hands the person on once."""
    adapter = make_adapter(org)
    original = adapter._query

    def again(what, soql, deleted=False):  # noqa: ANN001
        pages = list(original(what, soql, deleted))
        if what == "GET query Lead":
            pages.append([dict(row) for row in pages[0][:3]])
        yield from pages

    adapter._query = again
    until = datetime.now(UTC) + timedelta(seconds=1)
    keys = [r.key for batch in adapter.read_changed(None, until=until) for r in batch.raw]
    assert len(keys) == len(set(keys)) == sum(len(ids) for ids in people(org).values())


def test_converted_leads_are_read_once_for_a_read_of_many_contacts(org, monkeypatch):
    """A read whose Contact query selects `CONVERTED_SCAN` people or more reads every
    converted lead once, for batches holding fewer contacts too (the one shared with the last
    Leads, the last one): at 100,000 people such batches cost 3 IN lists of converted leads
    beside that one reading. The contacts translate as IN lists alone make them."""
    monkeypatch.setattr(adapter_module, "BATCH", 40)
    monkeypatch.setattr(adapter_module, "people_touched", lambda *args, **kwargs: {})
    until = datetime.now(UTC) + timedelta(seconds=1)

    def read(scan_from: int) -> tuple[dict[tuple[str, str], Contact], list[str]]:
        monkeypatch.setattr(adapter_module, "CONVERTED_SCAN", scan_from)
        adapter = make_adapter(org)
        original, asked = adapter._query, []

        def recorded(what, soql, deleted=False):  # noqa: ANN001, ANN202
            asked.append(soql)
            return original(what, soql, deleted)

        adapter._query = recorded
        batches = list(adapter.read_changed(None, until=until))
        found = {r.key: r.translate() for b in batches for r in b.raw if r.key[0] == "Contact"}
        return found, [soql for soql in asked if "IsConverted = true" in soql]

    assert any(lead["IsConverted"] for lead in org.org.live("Lead"))
    by_lists, lists = read(10**6)
    assert len(by_lists) > 41 and len(lists) > 1
    scanned, scans = read(41)
    assert len(scans) == 1 and "ConvertedContactId != null" in scans[0]
    assert scanned == by_lists
