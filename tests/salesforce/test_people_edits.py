"""People's edits are kept in Salesforce too, on the records' creator and last modifier (the
same contract question HubSpot answers from property history), over real TLS: a Rating a
person set before the first sync under `unless_edited`, a stage a person moved back after
our write, with the reason logged."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.ops.report import build_report
from crm_qualify.connector.settings import CrmSettings, FieldPolicy, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.salesforce.conftest import TASK_KEY, make_adapter


@pytest.fixture
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=80, seed=5) as simulator:
        yield simulator


def settings(**policies: str) -> Settings:
    fields = {**Settings().fields, **{k: FieldPolicy(policy=v) for k, v in policies.items()}}
    return Settings(crm=CrmSettings(adapter="salesforce"), fields=fields)


def leads(sim: SalesforceSimulator) -> dict[str, dict]:
    return {i: r for i, r in sim.org.records["Lead"].items() if not r["IsConverted"]}


def test_a_rating_a_person_set_before_the_first_sync_is_kept(sim, store):
    before = {i: r.get("Rating") for i, r in leads(sim).items()}
    rated = {i for i, rating in before.items() if rating}
    assert rated and len(rated) < len(before)
    adapter = make_adapter(sim)
    run = SyncEngine(adapter, settings(temperature="unless_edited"), store).run(RunOptions())
    assert run.status == "ok", run.errors
    asked = [w for w in adapter.usage().requests if "(last modifier)" in w]
    assert asked == [], "the setter came with the people query"
    after = {i: r.get("Rating") for i, r in leads(sim).items()}
    assert {i: after[i] for i in rated} == {i: before[i] for i in rated}
    assert all(after[i] in ("Hot", "Warm", "Cold") for i in before if i not in rated)


def test_a_lead_whose_cold_rating_is_kept_gets_no_hot_call(sim, store):
    """The report's case: a person rated a Lead Cold before the first sync, then it asked for
    a demo and a quote. The Rating is kept (default `unless_edited`), so no "Call hot lead"
    task contradicts it; its twin without a Rating is rated Hot and called, both are handed
    over. The dry run plans the same tasks, and the report lists as hot leads to call the
    records that got a call."""
    now = datetime.now(UTC)
    person = {"LastName": "Rossi", "Company": "Initech", "Title": "CTO",
              "Status": "Open - Not Contacted"}  # fmt: skip
    asked = [c for c in sim.org.live("Campaign") if c["Name"] in DEMO_AND_QUOTE]
    with sim.org.lock:
        rated = sim.org.insert("Lead", {**person, "FirstName": "Farid", "Rating": "Cold",
                                        "Email": "farid@initech.example"}, now)["Id"]  # fmt: skip
        plain = sim.org.insert("Lead", {**person, "FirstName": "Lina",
                                        "Email": "lina@initech.example"}, now)["Id"]  # fmt: skip
        for lead, campaign in itertools.product((rated, plain), asked):
            sim.org.insert("CampaignMember", {"CampaignId": campaign["Id"], "LeadId": lead,
                                              "Status": "Responded", "HasResponded": True,
                                              "FirstRespondedDate": now.date().isoformat()},
                           now)  # fmt: skip
    planned = []
    dry = SyncEngine(make_adapter(sim), settings(), store, on_batch=planned.append)
    assert dry.run(RunOptions(dry_run=True)).status == "ok"

    run = SyncEngine(make_adapter(sim), settings(), store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert (leads(sim)[rated]["Rating"], leads(sim)[plain]["Rating"]) == ("Cold", "Hot")
    keys = [t[TASK_KEY].split(":") for t in sim.org.live("Task") if t.get(TASK_KEY)]
    kinds = {(who, kind) for _, _, who, kind, *_ in keys}
    assert {(who, kind) for who, kind in kinds if who in (rated, plain)} == {
        (rated, "mql_handoff"), (plain, "hot_call"), (plain, "mql_handoff")}  # fmt: skip
    assert {(t.contact_id, t.kind) for r in planned for t in r.tasks} == kinds
    called = {f"{sobject}/{who}" for _, sobject, who, kind, *_ in keys if kind == "hot_call"}
    assert {lead.record for lead in build_report(store, "default").hot} == called


def test_a_stage_a_person_moved_back_is_not_promoted_again(sim, store, caplog):
    config = settings()
    assert SyncEngine(make_adapter(sim), config, store).run(RunOptions()).status == "ok"
    ours = [
        w.contact_id
        for w in store.writes("default", ["stage"])
        if w.new == "mql" and w.object_type == "Lead"
    ]
    moved = sorted(ours)[0]
    assert leads(sim)[moved]["CRMQ_Stage__c"] == "MQL"
    sim.touch(moved, {"CRMQ_Stage__c": "Lead"})

    caplog.set_level(logging.INFO, logger="crm_qualify.connector.sync.engine")
    again = SyncEngine(make_adapter(sim), config, store).run(RunOptions())

    assert again.status == "ok", again.errors
    assert leads(sim)[moved]["CRMQ_Stage__c"] == "Lead"
    logged = [r.getMessage() for r in caplog.records if moved in r.getMessage()]
    assert any(
        "stage kept: a person moved the stage back from mql to lead on" in m for m in logged
    ), logged


def test_the_setter_is_read_from_the_creator_and_last_modifier(sim):
    adapter = make_adapter(sim)
    by_person, last_ours = sorted(leads(sim))[:2]
    now, api_user = datetime.now(UTC), sim.org.integration_user
    sim.org.update("Lead", last_ours, {"Title": "CFO"}, now, api_user)
    ours = sim.org.insert("Lead", {"LastName": "Api", "Company": "X"}, now, api_user)["Id"]
    asked = [(("Lead", i), ["temperature"]) for i in (by_person, last_ours, ours)]
    answers = {key[1]: found["temperature"] for key, found in adapter.field_sources(asked).items()}
    assert answers[by_person].by == "person" and answers[by_person].at is not None
    assert answers[last_ours].by == "person", "the value predates our change: the creator's"
    assert answers[ours].by == "connector", "created and changed only through our API user"
    assert adapter.usage().requests["GET query Lead (last modifier)"] == 1


def test_a_lead_converted_between_runs_is_never_written_and_leaves_the_mirror(sim, store):
    """One person, two leads; a salesperson converts one, then the other shows new
    engagement: the person's new decision is written to the lead left, not to the converted
    one (Salesforce refuses: CANNOT_UPDATE_CONVERTED_LEAD), and the run stays clean."""
    at = datetime.now(UTC)
    person = {"FirstName": "Tara", "LastName": "Quinn", "Email": "tara@initech.example",
              "Company": "Initech", "Status": "Open - Not Contacted"}  # fmt: skip
    with sim.org.lock:
        converted = sim.org.insert("Lead", {**person, "Title": "CTO"}, at)["Id"]
        left = sim.org.insert("Lead", person, at)["Id"]
    config = settings()
    assert SyncEngine(make_adapter(sim), config, store).run(RunOptions()).status == "ok"
    sim.convert_lead(converted)
    meeting = {"WhoId": left, "Subject": "Demo meeting", "Type": "Meeting",
               "ActivityDateTime": at.isoformat().replace("+00:00", "Z")}  # fmt: skip
    with sim.org.lock:
        sim.org.insert("Event", meeting, at)
    sim.touch(left, {})
    scored = leads(sim)[left].get("CRMQ_Score__c")

    again = SyncEngine(make_adapter(sim), config, store).run(RunOptions())

    assert again.status == "ok", again.errors
    assert leads(sim)[left].get("CRMQ_Score__c") != scored, "the new engagement was written"
    mirrored = {
        (c.object_type, c.id) for chunk in store.mirrored_contacts("default") for c in chunk
    }
    assert ("Lead", converted) not in mirrored and ("Lead", left) in mirrored


DEMO_AND_QUOTE = ("Demo request form", "Pricing quote request")


def test_a_follow_up_for_a_record_deleted_since_goes_to_the_persons_other_record(sim, store):
    """One person, two leads; a salesperson deletes the older (the survivor, which follow-ups
    go to), then the other asks for a demo. Salesforce refuses a task on a deleted record
    (ENTITY_IS_DELETED on WhoId): the refusal drops the record, and the next run gives the
    person's follow-ups to the lead left, under the same keys."""
    earlier = datetime.now(UTC) - timedelta(days=30)
    person = {"FirstName": "Theo", "LastName": "Lindqvist", "Email": "theo@globex.example",
              "Company": "Globex", "Title": "CTO", "Status": "Open - Not Contacted"}  # fmt: skip
    with sim.org.lock:
        deleted = sim.org.insert("Lead", person, earlier)["Id"]
        left = sim.org.insert("Lead", person, earlier + timedelta(days=1))["Id"]
    config = settings()
    assert SyncEngine(make_adapter(sim), config, store).run(RunOptions()).status == "ok"
    now = datetime.now(UTC)
    asked = [c for c in sim.org.live("Campaign") if c["Name"] in DEMO_AND_QUOTE]
    with sim.org.lock:
        sim.org.update("Lead", deleted, {"IsDeleted": True}, now)
        for campaign in asked:
            sim.org.insert("CampaignMember", {"CampaignId": campaign["Id"], "LeadId": left,
                                              "Status": "Responded", "HasResponded": True,
                                              "FirstRespondedDate": now.date().isoformat()},
                           now)  # fmt: skip
    sim.touch(left, {})

    def ours(who: str) -> list[str]:
        return [t["CRMQ_Task_Key__c"] for t in sim.org.live("Task")
                if t.get("WhoId") == who and t.get("CRMQ_Task_Key__c")]  # fmt: skip

    refused = SyncEngine(make_adapter(sim), config, store).run(RunOptions())
    assert refused.status == "ok", refused.errors
    assert refused.counts["tasks_planned_again"] > 0 and ours(left) == []
    again = SyncEngine(make_adapter(sim), config, store).run(RunOptions())
    assert again.status == "ok", again.errors
    keys = ours(left)
    assert keys and all(f":Lead:{deleted}:" in f":{key}:" for key in keys), keys
    assert any(key.endswith(":mql_handoff") for key in keys), "the hand-off is not lost"
    last = SyncEngine(make_adapter(sim), config, store).run(RunOptions())
    assert last.counts["tasks_created"] == 0 and sorted(ours(left)) == sorted(keys)


def test_a_follow_up_deleted_with_its_record_is_created_again_on_the_persons_other(sim, store):
    """The person's survivor Lead already has its hot call and hand-off; a person deletes the
    Lead, and Salesforce deletes its tasks with it. After the next full read, the open ones
    are owed to the record left and created there, same keys; then nothing more."""
    earlier = datetime.now(UTC) - timedelta(days=30)
    person = {"FirstName": "Ada", "LastName": "Quist", "Email": "ada@initech.example",
              "Company": "Initech", "Title": "CTO", "Status": "Open - Not Contacted"}  # fmt: skip
    now = datetime.now(UTC)
    asked = [c for c in sim.org.live("Campaign") if c["Name"] in DEMO_AND_QUOTE]
    with sim.org.lock:
        survivor = sim.org.insert("Lead", person, earlier)["Id"]
        left = sim.org.insert("Lead", person, earlier + timedelta(days=1))["Id"]
        for campaign in asked:
            sim.org.insert("CampaignMember", {"CampaignId": campaign["Id"], "LeadId": survivor,
                                              "Status": "Responded", "HasResponded": True,
                                              "FirstRespondedDate": now.date().isoformat()},
                           now - timedelta(hours=1))  # fmt: skip
    config = settings()

    def ours(who: str) -> list[str]:
        return sorted(t["CRMQ_Task_Key__c"] for t in sim.org.live("Task")
                      if t.get("WhoId") == who and t.get("CRMQ_Task_Key__c"))  # fmt: skip

    assert SyncEngine(make_adapter(sim), config, store).run(RunOptions()).status == "ok"
    keys = ours(survivor)
    assert len(keys) == 2 and ours(left) == []
    with sim.org.lock:
        sim.org.delete("Lead", survivor, datetime.now(UTC))
    assert ours(survivor) == [], "gone with the Lead"
    full = SyncEngine(make_adapter(sim), config, store).run(RunOptions(full=True))
    assert full.status == "ok" and full.counts["records_gone"] == 1
    again = SyncEngine(make_adapter(sim), config, store).run(RunOptions())
    assert again.status == "ok", again.errors
    assert ours(left) == keys
    last = SyncEngine(make_adapter(sim), config, store).run(RunOptions())
    assert last.counts["tasks_created"] == 0 and ours(left) == keys
