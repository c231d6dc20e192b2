"""People's edits are kept from the first sight, through HubSpot's property history, over a
real socket: values a person set before the first sync under `unless_edited`, a stage a rep
moved back (before or after our first write), with the reason logged; history read only for
the records whose plan hinges on it, 50 per batch read as HubSpot allows."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import Stage
from crm_qualify.connector.settings import CrmSettings, FieldPolicy, Settings
from crm_qualify.connector.sync.engine import BatchReport, RunOptions, SyncEngine
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInput

from tests.hubspot.conftest import FAST, make_adapter

HISTORY = "POST contacts/batch/read (history)"
MQL = "marketingqualifiedlead"
VALUES = load_mapping("hubspot")["objects"]["contacts"]["stages"]
PROMOTED = {"mql", "sql", "opportunity", "customer"}


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=80, seed=3, custom_properties=True, **FAST) as simulator:
        yield simulator


def settings(**policies: str) -> Settings:
    fields = {**Settings().fields, **{k: FieldPolicy(policy=v) for k, v in policies.items()}}
    return Settings(crm=CrmSettings(adapter="hubspot"), fields=fields)


def stage_of(sim: HubSpotSimulator, contact: str) -> str | None:
    return sim.store.objects["contacts"][contact]["properties"].get("lifecyclestage")


def planned(sim: HubSpotSimulator, store, config: Settings) -> dict[str, dict]:
    """What a first sync would write, by contact (a dry run: nothing is sent)."""
    found: dict[str, dict] = {}

    def keep(report: BatchReport) -> None:
        found.update((u.contact_id, u.values()) for u in report.updates)

    engine = SyncEngine(make_adapter(sim), config, store, on_batch=keep)
    assert engine.run(RunOptions(dry_run=True)).status == "ok"
    return found


def test_values_a_person_set_before_the_first_sync_are_kept(sim, store):
    config = settings(stage="unless_edited", temperature="unless_edited")
    plans = planned(sim, store, settings())
    promoted = sorted(c for c, values in plans.items() if values.get("stage") in PROMOTED)
    person, workflow = promoted[0], promoted[1]
    hot = sorted(c for c, values in plans.items() if values.get("temperature") == "hot")[0]
    sim.touch(person, {"lifecyclestage": "opportunity"})  # a rep's edit
    sim.touch(person, {"lifecyclestage": "lead"})  # and the rep's final word
    sim.touch(hot, {"crmq_temperature": "cold"})
    api = HubSpot(access_token=sim.token, host=sim.base_url).crm.contacts.basic_api
    api.update(workflow, SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))

    adapter = make_adapter(sim)
    run = SyncEngine(adapter, config, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert stage_of(sim, person) == "lead", "a person's stage is kept under unless_edited"
    temperature = sim.store.objects["contacts"][hot]["properties"]["crmq_temperature"]
    assert temperature == "cold", "a person's temperature is kept under unless_edited"
    assert stage_of(sim, workflow) == VALUES[plans[workflow]["stage"]], "an app's: overwritten"
    others = promoted[2:]
    assert others and all(stage_of(sim, c) == VALUES[plans[c]["stage"]] for c in others), (
        "stages nobody edited by hand move as before"
    )
    assert 1 <= adapter.usage().requests[HISTORY] <= -(-len(plans) // 50)


def test_a_stage_a_rep_moved_back_is_not_promoted_again(sim, store, caplog):
    config = settings()
    engine = SyncEngine(make_adapter(sim), config, store)
    assert engine.run(RunOptions()).status == "ok"
    written = [w.contact_id for w in store.writes("default", ["stage"]) if w.new == "mql"]
    rep_moved = sorted(written)[0]
    assert stage_of(sim, rep_moved) == MQL
    sim.touch(rep_moved, {"lifecyclestage": "lead"})

    adapter = make_adapter(sim)
    caplog.set_level(logging.INFO, logger="crm_qualify.connector.sync.engine")
    again = SyncEngine(adapter, config, store).run(RunOptions())

    assert again.status == "ok", again.errors
    assert again.counts["read"] >= 1
    assert stage_of(sim, rep_moved) == "lead"
    assert adapter.usage().requests[HISTORY] == 1, "history of that one contact only"
    logged = [r.getMessage() for r in caplog.records if rep_moved in r.getMessage()]
    assert any(
        "stage kept: a person moved the stage back from mql to lead on" in m for m in logged
    ), logged
    third = SyncEngine(make_adapter(sim), config, store)
    assert third.run(RunOptions(contact_ids=[("contacts", rep_moved)])).status == "ok"
    assert stage_of(sim, rep_moved) == "lead", "still where the rep put it"


def test_a_move_back_before_the_first_sync_is_seen_in_the_history(sim, store):
    plans = planned(sim, store, settings())
    moved = sorted(c for c, values in plans.items() if values.get("stage") == Stage.MQL)[0]
    sim.touch(moved, {"lifecyclestage": MQL})
    sim.touch(moved, {"lifecyclestage": "lead"})  # the rep took it back
    default = SyncEngine(make_adapter(sim), settings(), store)
    assert default.run(RunOptions(dry_run=True)).status == "ok"
    assert default.adapter.usage().requests.get(HISTORY, 0) == 0, "no history under the defaults"
    kept = []
    engine = SyncEngine(
        make_adapter(sim),
        settings(stage="unless_edited"),
        store,
        on_batch=lambda r: kept.extend(r.skips),
    )
    run = engine.run(RunOptions())
    assert run.status == "ok", run.errors
    assert stage_of(sim, moved) == "lead"
    reasons = {label: skip.reason for label, skip in kept if skip.field == "stage"}
    assert "a person moved the stage back from mql to lead on" in reasons[f"contacts/{moved}"]


def test_history_is_read_fifty_contacts_a_request(sim):
    adapter = make_adapter(sim)
    ids = sorted(sim.store.objects["contacts"])
    sim.touch(ids[7], {"crmq_temperature": "warm"})
    answers = adapter.field_sources([(("contacts", i), ["stage", "temperature"]) for i in ids])
    assert adapter.usage().requests[HISTORY] == 2
    assert answers[("contacts", ids[7])]["temperature"].by == "person"
    assert answers[("contacts", ids[7])]["temperature"].value == "warm"
    seeded = [a["stage"] for a in answers.values() if "stage" in a]
    assert seeded and all(s.by == "automation" for s in seeded), "seeded by an import"

    body = {
        "inputs": [{"id": i} for i in ids[:51]],
        "properties": [],
        "propertiesWithHistory": ["lifecyclestage"],
    }
    refused = requests.post(
        f"{sim.base_url}/crm/v3/objects/contacts/batch/read",
        json=body,
        headers={"Authorization": f"Bearer {sim.token}"},
        timeout=10,
    )
    assert refused.status_code == 400 and "property histories is 50" in refused.json()["message"]
