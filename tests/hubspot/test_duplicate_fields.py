"""The duplicate flag, group id and review task against a portal seeded with labelled
duplicates, as a user turns them on (`[fields.duplicate]`, `[fields.duplicate_group]`,
`[identity] review_task`) and runs `crm-qualify sync --once`, over a real socket: every record
of a group carries the person's key, each group's owner gets one review task, a rerun and a
merge in HubSpot create nothing new."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.seeded_people import seeded_people
from crm_qualify.connector.cli import main
from crm_qualify.connector.settings import load_settings
from crm_qualify.connector.sync.people import People, Person
from crm_qualify.connector.sync.state import StateStore

from tests.hubspot.conftest import FAST

SEED = seeded_people("hubspot")
TURNED_ON = (
    "[fields.duplicate]\nowned = true\n[fields.duplicate_group]\nowned = true\n"
    "[identity]\nreview_task = true\n"
)


@dataclass
class Synced:
    sim: HubSpotSimulator
    config: str


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> Iterator[Synced]:
    folder = tmp_path_factory.mktemp("hubspot-duplicate-fields")
    with (
        HubSpotSimulator(
            contacts=60, seed=11, custom_properties=True, duplicates=True, **FAST
        ) as sim,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", sim.token)
        mapping = folder / "hubspot.toml"  # the bundled mapping, reading the merge trail
        bundled = resources.files("crm_qualify.mappings").joinpath("hubspot.toml").read_text()
        mapping.write_text(bundled.replace("# merged_ids =", "merged_ids ="))
        config = folder / "crm-qualify.toml"
        config.write_text(
            f"[crm]\nadapter = 'hubspot'\nmapping_file = '{mapping}'\n"
            f"[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
            f"[sync]\nstate_path = '{folder / 'state.sqlite'}'\n{TURNED_ON}"
        )
        assert main(["sync", "--once", "--config", str(config)]) == 0
        yield Synced(sim, str(config))


def persons(config: str) -> dict[str, Person]:
    """Every mirrored contact's person, by contact id, as the identity index holds it."""
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
    return {contact_id: person for (_, contact_id), person in found.items()}


def contacts(sim: HubSpotSimulator) -> dict[str, dict]:
    with sim.store.lock:
        return {
            cid: dict(row["properties"])
            for cid, row in sim.store.objects["contacts"].items()
            if not row.get("archived")
        }


def review_tasks(sim: HubSpotSimulator) -> dict[str, tuple[list[str], str | None]]:
    """Live review tasks by key: (the contacts each is associated with, its owner)."""
    found = {}
    with sim.store.lock:
        for task in sim.store.objects["tasks"].values():
            key = task["properties"].get("crmq_task_key") or ""
            if key.endswith(":duplicate_review") and not task["archived"]:
                contacts_of = sim.store.associations("tasks", task["id"], "contacts")
                found[key] = (sorted(contacts_of), task["properties"].get("hubspot_owner_id"))
    return found


def last_run_writes(config: str) -> list:
    settings = load_settings(config)
    store = StateStore(settings.sync.state_path)
    try:
        [run] = store.runs(settings.crm.instance, limit=1)
        return store.writes_for_run(run.id)
    finally:
        store.close()


def test_every_record_of_a_group_carries_the_flag_and_one_group_id(synced):
    props, people = contacts(synced.sim), persons(synced.config)
    grouped = 0
    for contact_id, person in people.items():
        mine = props[contact_id]
        if len(person.members) > 1:
            grouped += 1
            assert mine.get("crmq_duplicate") == "true", contact_id
            assert mine.get("crmq_duplicate_group") == person.key, contact_id
        else:
            assert mine.get("crmq_duplicate") in ("false", None), contact_id
            assert not mine.get("crmq_duplicate_group"), contact_id
    placed = synced.sim.seeded_people
    for name, labels in SEED.expected_groups.items():
        ids = [placed[label][1] for label in labels]
        assert {props[i]["crmq_duplicate_group"] for i in ids} == {people[ids[0]].key}, name
    for near_miss in SEED.near_misses:
        groups = [props[placed[label][1]].get("crmq_duplicate_group") for label in near_miss]
        assert not groups[0] or groups[0] != groups[1], near_miss
    assert grouped >= sum(map(len, SEED.expected_groups.values()))


def test_each_group_gets_one_review_task_on_its_survivor_for_its_owner(synced):
    props, people = contacts(synced.sim), persons(synced.config)
    groups = {person.key: person for person in people.values() if len(person.members) > 1}
    found = review_tasks(synced.sim)
    assert set(found) == {f"crmq:{key}:duplicate_review" for key in groups}
    for key, person in groups.items():
        associated, owner = found[f"crmq:{key}:duplicate_review"]
        survivor = person.survivor[1]
        assert associated == [survivor], key
        assert owner == props[survivor]["hubspot_owner_id"], key
    trio = [synced.sim.seeded_people[label][1] for label in SEED.expected_groups[SEED.hot_trio]]
    owners = {props[c]["hubspot_owner_id"] for c in trio}
    assert len(owners) > 1, "the seed gives the trio's records different owners"


def test_a_rerun_creates_no_review_and_writes_no_flag(synced):
    before = review_tasks(synced.sim)
    assert main(["sync", "--once", "--config", synced.config]) == 0
    assert review_tasks(synced.sim) == before
    written = {w.field for w in last_run_writes(synced.config)}
    assert not written & {"duplicate", "duplicate_group"}, written


def test_a_merge_in_hubspot_creates_no_new_review_and_the_group_keeps_its_id(synced):
    """A rep merges two of the trio's three contacts: the merged contact (a new id) carries
    the review task; it and the third keep the trio's group id; nothing is created."""
    sim = synced.sim
    first, second, third = (sim.seeded_people[label][1]
                            for label in SEED.expected_groups[SEED.hot_trio])  # fmt: skip
    group = persons(synced.config)[first].key
    before = review_tasks(sim)
    merged = sim.merge_contacts(second, first)

    assert main(["sync", "--once", "--config", synced.config]) == 0

    after = review_tasks(sim)
    assert set(after) == set(before), "no new review task"
    assert after[f"crmq:{group}:duplicate_review"][0] == [merged], "moved by the merge"
    props = contacts(sim)
    for contact_id in (merged, third):
        assert props[contact_id]["crmq_duplicate"] == "true", contact_id
        assert props[contact_id]["crmq_duplicate_group"] == group, contact_id
