"""One person, one follow-up, against a portal seeded with labelled duplicates, as a user runs
it: `crm-qualify sync --once`, then `crm-qualify duplicates --json`, over a real socket.

The labels come from the seed (`adapters/seeded_people.py`): the report is scored pairwise on
them (precision: found pairs that are one person; recall: pairs of one person found), and the
figures are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.seeded_people import seeded_people
from crm_qualify.connector.cli import main
from hubspot import HubSpot
from hubspot.crm.contacts import PublicMergeInput

from tests.duplicates_checks import check_report, duplicates_json, merged_ids, person_of
from tests.hubspot.conftest import FAST, make_adapter

SEED = seeded_people("hubspot")


@dataclass
class Synced:
    sim: HubSpotSimulator
    config: str
    report: dict
    tasks: dict[str, list[str]]
    """crm-qualify task keys by contact id after the first sync."""


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> Iterator[Synced]:
    """One portal with the seed, synced once; the report is taken right after that sync."""
    folder = tmp_path_factory.mktemp("hubspot-duplicates")
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
            f"[sync]\nstate_path = '{folder / 'state.sqlite'}'\n"
        )
        assert main(["sync", "--once", "--config", str(config)]) == 0
        yield Synced(sim, str(config), duplicates_json(str(config)), crmq_tasks(sim))


def crmq_tasks(sim: HubSpotSimulator) -> dict[str, list[str]]:
    """crm-qualify's live tasks (their keys) by the contact each is associated with."""
    found: dict[str, list[str]] = {}
    with sim.store.lock:
        for task in sim.store.objects["tasks"].values():
            key = task["properties"].get("crmq_task_key")
            if key and not task["archived"]:
                for contact in sim.store.associations("tasks", task["id"], "contacts"):
                    found.setdefault(contact, []).append(key)
    return found


def test_the_report_finds_the_seeded_groups_and_leaves_the_near_misses_apart(synced):
    check_report("hubspot", SEED, synced.report, synced.sim.seeded_people)


def test_a_person_held_by_three_contacts_gets_one_call(synced):
    trio = [synced.sim.seeded_people[label][1] for label in SEED.expected_groups[SEED.hot_trio]]
    keys = [key for contact in trio for key in synced.tasks.get(contact, [])]
    calls = [key for key in keys if ":hot_call:" in key]
    assert len(calls) == 1, keys
    assert len(keys) == len(set(k.split(":")[3] for k in keys)), "each follow-up once"
    survivor = min(trio, key=lambda c: synced.sim.store.objects["contacts"][c]["properties"]
                   ["createdate"])  # fmt: skip
    assert synced.tasks.get(survivor), "the tasks go to the oldest record of the person"


def test_a_merge_in_hubspot_creates_no_new_task_and_keeps_the_person(synced, capsys):
    """A rep merges the hot pair with the official client: HubSpot makes a new contact that
    lists both ids and carries their tasks; the next sync creates nothing new for it."""
    sim = synced.sim
    first, second = (sim.seeded_people[label][1] for label in SEED.expected_groups[SEED.hot_pair])
    before = crmq_tasks(sim)
    pair_tasks = sorted(before.get(first, []) + before.get(second, []))
    assert pair_tasks, "the hot pair had its follow-up after the first sync"
    api = HubSpot(access_token=sim.token, host=sim.base_url).crm.contacts.basic_api
    merged = api.merge(
        public_merge_input=PublicMergeInput(primary_object_id=second, object_id_to_merge=first)
    )
    assert merged.id not in (first, second), "HubSpot gives the merged contact a new id"
    assert set(merged.properties["hs_merged_object_ids"].split(";")) == {first, second}
    assert api.get_by_id(first).id == merged.id, "an old id reads as the merged contact"
    [batch] = make_adapter(sim).read_contacts([("contacts", first)])
    assert [(e.record, e.message) for e in batch.errors] == [
        (f"contacts/{first}", "not found: deleted or merged")
    ], "read by its old id, a contact merged away is gone, not worth reading again"
    assert sorted(crmq_tasks(sim).get(merged.id, [])) == pair_tasks, "tasks moved to it"

    capsys.readouterr()
    assert main(["sync", "--once", "--dry-run", "--json", "--config", synced.config]) == 0
    planned = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert not {p["record"] for p in planned} & {f"contacts/{first}", f"contacts/{second}"}, (
        "a dry run plans nothing for the records merged away, as the real run writes nothing"
    )
    dry = {
        p["field"]: p["new"]
        for p in planned
        if p["kind"] == "field"
        and p["record"] == f"contacts/{merged.id}"
        and p["field"] != "scored_at"
    }
    assert main(["sync", "--once", "--config", synced.config]) == 0
    state = tomllib.loads(Path(synced.config).read_text())["sync"]["state_path"]
    with closing(sqlite3.connect(state)) as db:
        (run,) = db.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        real = {
            name: json.loads(value)
            for name, value in db.execute(
                "SELECT field, new FROM field_writes WHERE run_id = ? AND contact_id = ?"
                " AND field != 'scored_at'",
                (run, merged.id),
            )
        }
    assert dry == real, "the merged contact is decided alike by the dry run and the real run"

    after = crmq_tasks(sim)
    assert sum(map(len, after.values())) == sum(map(len, before.values())), "no new task"
    assert sorted(after.get(merged.id, [])) == pair_tasks
    person = {key.split(":")[2] for key in pair_tasks}
    assert person <= {first, second}, "the tasks' keys name the person, an id it had"
    assert sorted(merged_ids(synced.config, ("contacts", merged.id)) or []) == sorted(
        [first, second]
    ), "the merge trail, read from hs_merged_object_ids"
    record = sim.store.objects["contacts"][merged.id]["properties"]
    assert record.get("crmq_temperature") == "hot", "the merged contact was decided"
    assert person_of(synced.config, ("contacts", merged.id)) in {
        f"contacts:{first}",
        f"contacts:{second}",
    }, "the merged contact keeps the person of the records it was made from"
