"""The duplicate flag, group id and review task against an org seeded with labelled duplicates
(Leads and the Contacts they duplicate), as a user turns them on and runs `crm-qualify sync
--once`, over real TLS: every Lead and Contact of a group carries the person's key in
`CRMQ_Duplicate_Group__c`, each group's owner gets one review Task, a rerun and a merge in
Salesforce create nothing new."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.seeded_people import seeded_people
from crm_qualify.connector.cli import main
from crm_qualify.connector.settings import load_settings
from crm_qualify.connector.sync.people import People, Person
from crm_qualify.connector.sync.state import StateStore

SEED = seeded_people("salesforce")
TASK_KEY = "CRMQ_Task_Key__c"
TURNED_ON = (
    "[fields.duplicate]\nowned = true\n[fields.duplicate_group]\nowned = true\n"
    "[identity]\nreview_task = true\n"
)


@dataclass
class Synced:
    sim: SalesforceSimulator
    config: str


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> Iterator[Synced]:
    folder = tmp_path_factory.mktemp("salesforce-duplicate-fields")
    with SalesforceSimulator(records=60, seed=11, duplicates=True) as sim:
        options = "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.adapter_options().items())
        config = folder / "crm-qualify.toml"
        config.write_text(
            f"[crm]\nadapter = 'salesforce'\n[adapters.salesforce]\n{options}"
            f"[sync]\nstate_path = '{folder / 'state.sqlite'}'\n{TURNED_ON}"
        )
        assert main(["sync", "--once", "--config", str(config)]) == 0
        yield Synced(sim, str(config))


def persons(config: str) -> dict[str, Person]:
    """Every mirrored Lead's and Contact's person, by record id, as the index holds it."""
    settings = load_settings(config)
    store = StateStore(settings.sync.state_path)
    try:
        keys = [
            (c.object_type, c.id)
            for batch in store.mirrored_contacts(settings.crm.instance)
            for c in batch
        ]
        found = People(store, settings.identity).stored(settings.crm.instance, keys)
    finally:
        store.close()
    return {record_id: person for (_, record_id), person in found.items()}


def people_records(sim: SalesforceSimulator) -> dict[str, dict]:
    with sim.org.lock:
        return {
            row["Id"]: dict(row) for sobject in ("Lead", "Contact") for row in sim.org.live(sobject)
        }


def review_tasks(sim: SalesforceSimulator) -> dict[str, tuple[str, str]]:
    """Live review Tasks by key: (WhoId, OwnerId)."""
    with sim.org.lock:
        return {
            task[TASK_KEY]: (task["WhoId"], task["OwnerId"])
            for task in sim.org.live("Task")
            if (task.get(TASK_KEY) or "").endswith(":duplicate_review")
        }


def last_run_writes(config: str) -> list:
    settings = load_settings(config)
    store = StateStore(settings.sync.state_path)
    try:
        [run] = store.runs(settings.crm.instance, limit=1)
        return store.writes_for_run(run.id)
    finally:
        store.close()


def test_every_lead_and_contact_of_a_group_carries_the_flag_and_one_group_id(synced):
    records, people = people_records(synced.sim), persons(synced.config)
    grouped = 0
    for record_id, person in people.items():
        mine = records[record_id]
        if len(person.members) > 1:
            grouped += 1
            assert mine["CRMQ_Duplicate__c"] is True, record_id
            assert mine["CRMQ_Duplicate_Group__c"] == person.key, record_id
        else:
            assert mine["CRMQ_Duplicate__c"] is False, "a checkbox: unchecked, never null"
            assert mine["CRMQ_Duplicate_Group__c"] is None, record_id
    placed = synced.sim.seeded_people
    for name, labels in SEED.expected_groups.items():
        ids = [placed[label][1] for label in labels]
        assert {records[i]["CRMQ_Duplicate_Group__c"] for i in ids} == {people[ids[0]].key}, name
    trio = {placed[label][0] for label in SEED.expected_groups[SEED.hot_trio]}
    assert trio == {"Lead", "Contact"}, "one group id across Leads and Contacts"
    for near_miss in SEED.near_misses:
        groups = [records[placed[label][1]]["CRMQ_Duplicate_Group__c"] for label in near_miss]
        assert groups[0] is None or groups[0] != groups[1], near_miss
    assert grouped >= sum(map(len, SEED.expected_groups.values()))


def test_each_group_gets_one_review_task_on_its_survivor_for_its_owner(synced):
    records, people = people_records(synced.sim), persons(synced.config)
    groups = {person.key: person for person in people.values() if len(person.members) > 1}
    found = review_tasks(synced.sim)
    assert set(found) == {f"crmq:{key}:duplicate_review" for key in groups}
    for key, person in groups.items():
        who, owner = found[f"crmq:{key}:duplicate_review"]
        survivor = person.survivor[1]
        assert who == survivor and owner == records[survivor]["OwnerId"], key


def test_a_rerun_creates_no_review_and_writes_no_flag(synced):
    before = review_tasks(synced.sim)
    assert main(["sync", "--once", "--config", synced.config]) == 0
    assert review_tasks(synced.sim) == before
    written = {w.field for w in last_run_writes(synced.config)}
    assert not written & {"duplicate", "duplicate_group"}, written


def test_a_merge_in_salesforce_creates_no_new_review_and_keeps_the_group_flagged(synced):
    """A rep merges the trio's two Leads (the Contact stays): the master and the Contact are
    still one group, flagged with the same id as before (the merged-away Lead's person, not
    its record, is what the master inherits); the review Task on the Contact is not
    repeated, and a later read of the master (its merge trail again) changes nothing."""
    sim = synced.sim
    (_, contact), (_, older), (_, newer) = (sim.seeded_people[label] for label in
                                            SEED.expected_groups[SEED.hot_trio])  # fmt: skip
    group = persons(synced.config)[contact].key
    assert group == f"Contact:{contact}", "the oldest record, the Contact, names the person"
    before = review_tasks(sim)
    sim.merge(older, [newer])

    assert main(["sync", "--once", "--config", synced.config]) == 0
    sim.touch(older, {"Title": "VP Sales"})  # a person edits it: read again
    assert main(["sync", "--once", "--config", synced.config]) == 0

    assert review_tasks(sim) == before, "no new review task"
    records, people = people_records(sim), persons(synced.config)
    assert people[older].key == group and set(people[contact].members) == {
        ("Contact", contact),
        ("Lead", older),
    }
    for record_id in (contact, older):
        assert records[record_id]["CRMQ_Duplicate__c"] is True, record_id
        assert records[record_id]["CRMQ_Duplicate_Group__c"] == group, record_id
