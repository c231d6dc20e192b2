"""The Salesforce adapter end to end against the simulator, over real TLS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.contract import AdapterError, AuthError
from crm_qualify.connector.model import FieldUpdate, PlannedTask, RecordUpdate
from crm_qualify.connector.sync.engine import CONTACTS_STREAM, RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.salesforce.conftest import make_adapter


def people(sim):
    leads = [r for r in sim.org.records["Lead"].values() if not r["IsConverted"]]
    return leads + list(sim.org.records["Contact"].values())


def test_full_then_incremental_sync_and_a_quiet_rerun(sim, adapter, store, settings):
    engine = SyncEngine(adapter, settings, store)
    first = engine.run(RunOptions())
    assert first.status == "ok", first.errors
    assert first.counts["read"] == len(people(sim))
    assert all(p["CRMQ_Score__c"] is not None for p in people(sim))
    assert {p["Rating"] for p in sim.org.records["Lead"].values() if not p["IsConverted"]} <= {
        "Hot", "Warm", "Cold"
    }  # fmt: skip
    converted = [r for r in sim.org.records["Lead"].values() if r["IsConverted"]]
    assert converted and all(r["CRMQ_Score__c"] is None for r in converted), "converted skipped"
    ours = [t for t in sim.org.records["Task"].values() if t["CRMQ_Task_Key__c"]]
    assert len(ours) == first.counts["tasks_created"] > 0

    touched = sim.simulate_engagement(20)
    second = engine.run(RunOptions())
    assert second.status == "ok", second.errors
    assert 0 < second.counts["records_written"] <= len(touched)
    writes = sim.stats.writes
    third = engine.run(RunOptions())
    assert third.counts["fields_written"] == 0 and third.counts["tasks_created"] == 0
    assert sim.stats.writes == writes


def test_dry_run_writes_nothing(sim, adapter, store, settings):
    summary = SyncEngine(adapter, settings, store).run(RunOptions(dry_run=True))
    assert summary.counts["fields_planned"] > 0
    assert sim.stats.writes == 0
    assert not [k for k in sim.stats.by_endpoint if k.startswith(("PATCH", "POST composite"))]


def test_per_record_errors_are_reported_and_the_rest_written(sim, adapter):
    leads = sorted(r["Id"] for r in people(sim) if r["Id"].startswith("00Q"))[:4]
    sim.faults.add("UNABLE_TO_LOCK_ROW", path_contains="composite/sobjects")
    updates = [
        RecordUpdate(contact_id=i, object_type="Lead", changes=[FieldUpdate(field="score", new=50)])
        for i in leads
    ]
    updates[2] = RecordUpdate(
        contact_id=leads[2],
        object_type="Lead",
        changes=[FieldUpdate(field="temperature", new="tepid")],
    )
    results = adapter.write_updates(updates)
    assert [r.ok for r in results] == [False, True, False, True]
    assert results[0].retryable and "UNABLE_TO_LOCK_ROW" in results[0].error
    assert not results[2].retryable and "Rating" in results[2].error
    assert sim.org.records["Lead"][leads[1]]["CRMQ_Score__c"] == 50


def test_session_expiry_mid_run_logs_in_again_once(sim, adapter, store, settings):
    sim.faults.add("INVALID_SESSION_ID", path_contains="/query")
    summary = SyncEngine(adapter, settings, store).run(RunOptions())
    assert summary.status == "ok", summary.errors
    assert adapter.usage().requests["POST oauth2/token"] == 2


def test_wrong_credentials_are_a_clear_auth_error_without_the_secret(sim):
    adapter = make_adapter(sim, max_attempts=1)
    adapter.client.settings = adapter.client.settings.model_copy(
        update={"password": type(adapter.settings.password)("canary-pw-42")}
    )
    with pytest.raises(AuthError) as caught:
        list(adapter.read_changed(None, until=datetime.now(UTC)))
    assert "canary-pw-42" not in str(caught.value)
    assert "canary-pw-42" not in repr(adapter.client.settings)


def test_daily_limit_stops_cleanly_and_the_next_run_resumes(sim, store, settings):
    adapter = make_adapter(sim, daily_reserve=0.0)
    sim.daily_limit = sim.used + 4  # a full run of this org takes about 6 requests
    engine = SyncEngine(adapter, settings, store)
    stopped = engine.run(RunOptions())
    assert stopped.status == "stopped", stopped.errors
    assert "daily API" in stopped.errors[0]
    cursor = store.get_cursor("default", CONTACTS_STREAM)

    sim.daily_limit = 100_000
    resumed = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())
    assert resumed.status == "ok", resumed.errors
    assert all(p["CRMQ_Score__c"] is not None for p in people(sim))
    assert cursor is None or store.get_cursor("default", CONTACTS_STREAM) != cursor


def test_crash_between_task_insert_and_record_creates_no_duplicate(sim, adapter, store, settings):
    settings.sync.lookup_delay_seconds = 0  # the lost create is looked up on the next run
    engine = SyncEngine(adapter, settings, store)
    original = adapter.create_tasks

    def created_then_lost(tasks):
        original(tasks)
        raise AdapterError("connection dropped after the insert")

    adapter.create_tasks = created_then_lost
    assert engine.run(RunOptions()).status == "failed"
    made = len([t for t in sim.org.records["Task"].values() if t["CRMQ_Task_Key__c"]])
    assert made > 0
    adapter.create_tasks = original
    second = engine.run(RunOptions())
    assert second.status == "ok", second.errors
    keys = [
        t["CRMQ_Task_Key__c"] for t in sim.org.records["Task"].values() if t["CRMQ_Task_Key__c"]
    ]
    assert len(keys) == len(set(keys)), "no task twice"
    assert second.counts["tasks_recovered"] > 0


def test_task_key_with_quotes_is_escaped_and_found(sim, adapter):
    lead = sorted(r["Id"] for r in people(sim) if r["Id"].startswith("00Q"))[0]
    task = PlannedTask(
        key="crmq:Lead:x':hot_call\\2026", contact_id=lead, object_type="Lead", kind="hot_call",
        subject="Call", due=datetime.now(UTC) + timedelta(hours=24), priority="high",
        task_type="call",
    )  # fmt: skip
    (created,) = adapter.create_tasks([task])
    assert created.ok
    record = sim.org.records["Task"][created.crm_id]
    assert record["WhoId"] == lead and record["Priority"] == "High"
    assert adapter.find_tasks([task.key]) == {task.key: created.crm_id}
    (closed,) = adapter.close_tasks([created.crm_id])
    assert closed.ok and sim.org.records["Task"][created.crm_id]["IsDeleted"]


def test_doctor_checks_fields_picklists_and_limits(adapter):
    results = {c.name: c for c in adapter.check()}
    assert results["login"].ok
    assert results["Lead fields"].ok and results["Task fields"].ok
    assert results["Lead owned fields fit"].ok and results["Contact owned fields fit"].ok
    assert "left" in results["daily API"].detail


def test_doctor_names_a_missing_custom_field_with_its_type(sim, adapter):
    from crm_qualify.adapters.salesforce.simulator import schema

    removed = schema.OBJECTS["Contact"].pop("CRMQ_Grade__c")
    try:
        results = {c.name: c for c in adapter.check()}
    finally:
        schema.OBJECTS["Contact"]["CRMQ_Grade__c"] = removed
    assert not results["Contact fields"].ok
    assert "CRMQ_Grade__c (Text(4))" in results["Contact fields"].detail


def test_same_facts_same_decision_as_hubspot():
    """One rule set across CRMs: only the mapping differs."""
    from crm_qualify.adapters.hubspot.translate import ContactMapping
    from crm_qualify.adapters.hubspot.translate import to_contact as hubspot_contact
    from crm_qualify.adapters.salesforce.translate import ObjectMapping, PeopleMapping, Related
    from crm_qualify.adapters.salesforce.translate import to_contact as salesforce_contact
    from crm_qualify.connector.decision.decide import decide
    from crm_qualify.connector.decision.rules import Rules
    from crm_qualify.connector.mapping import load_mapping

    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    hubspot = hubspot_contact(
        ContactMapping.from_document(load_mapping("hubspot"), "contacts"),
        {"id": "1", "properties": {
            "email": "a@acme.example", "hs_analytics_source": "ORGANIC_SEARCH",
            "recent_conversion_event_name": "Demo request",
            "recent_conversion_date": "2026-11-20T10:00:00Z",
            "qualification_need": "met", "qualification_timing": "met",
            "qualification_budget": "in_progress",
            "hs_buying_role": "DECISION_MAKER",
        }},
        [], [],
    )  # fmt: skip
    sf_mapping = load_mapping("salesforce")
    salesforce = salesforce_contact(
        ObjectMapping.from_document(sf_mapping, "Lead"),
        PeopleMapping.from_document(sf_mapping),
        {"Id": "00Q1", "Email": "a@acme.example", "LeadSource": "Web",
         "Qualification_Need__c": "Met", "Qualification_Timing__c": "Met",
         "Qualification_Authority__c": "Met", "Qualification_Budget__c": "In progress"},
        Related(tasks={}, events={},
                members={"00Q1": [{"CampaignId": "701", "Status": "Responded",
                                    "FirstRespondedDate": "2026-11-20T10:00:00Z"}]},
                campaigns={"701": {"Name": "Demo request form", "Type": "Content"}}, deals={}),
    )  # fmt: skip
    a, b = decide(hubspot, Rules(), now), decide(salesforce, Rules(), now)
    assert (a.stage, a.temperature, a.score.total) == (b.stage, b.temperature, b.score.total)
    assert a.stage.value == "sql" and a.temperature.value == "hot"


def test_a_refused_value_needs_attention_naming_the_field(sim, adapter, store, settings):
    """A value removed from the org's restricted picklist: not retried as transient, kept for
    attention with the field Salesforce blamed, the rest written."""
    sim.refuse("Lead", "Rating", "Cold")
    sim.refuse("Lead", "Rating", "Warm")
    summary = SyncEngine(adapter, settings, store).run(RunOptions())
    assert summary.status == "partial"
    attention = store.attention("default")
    assert attention and {a.field for a in attention} == {"Rating"}
    assert all("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in a.reason for a in attention)
    refused = {a.contact_id for a in attention}
    written = [p for p in people(sim) if p["Id"] not in refused]
    assert written and all(p["CRMQ_Score__c"] is not None for p in written)


def test_write_results_say_what_is_worth_retrying(sim, adapter):
    lead = sorted(r["Id"] for r in people(sim) if r["Id"].startswith("00Q"))[0]
    sim.refuse("Lead", "CRMQ_Grade__c", "A1", "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    (refused,) = adapter.write_updates(
        [RecordUpdate(contact_id=lead, object_type="Lead",
                      changes=[FieldUpdate(field="grade", new="A1")])]
    )  # fmt: skip
    assert (refused.ok, refused.retryable, refused.field) == (
        False, False, "CRMQ_Grade__c",
    )  # fmt: skip
    (unmapped,) = adapter.write_updates(
        [RecordUpdate(contact_id=lead, object_type="Lead",
                      changes=[FieldUpdate(field="stage", new="evangelist")])]
    )  # fmt: skip
    assert (unmapped.ok, unmapped.retryable, unmapped.field) == (False, False, "CRMQ_Stage__c")


def test_a_new_state_store_learns_the_tasks_already_in_salesforce(sim, adapter, settings, tmp_path):
    first = StateStore(tmp_path / "first.sqlite")
    assert SyncEngine(adapter, settings, first).run(RunOptions()).counts["tasks_created"] > 0
    first.close()
    keys = [t["CRMQ_Task_Key__c"] for t in sim.org.live("Task") if t["CRMQ_Task_Key__c"]]
    second = StateStore(tmp_path / "second.sqlite")
    summary = SyncEngine(make_adapter(sim), settings, second).run(RunOptions())
    second.close()
    assert summary.counts["tasks_found_in_crm"] == len(keys)
    assert summary.counts["tasks_created"] == 0
    after = [t["CRMQ_Task_Key__c"] for t in sim.org.live("Task") if t["CRMQ_Task_Key__c"]]
    assert sorted(after) == sorted(keys)


def test_tasks_are_upserted_by_key_without_a_status(sim, adapter):
    lead = sorted(r["Id"] for r in people(sim) if r["Id"].startswith("00Q"))[0]
    task = PlannedTask(
        key=f"crmq:Lead:{lead}:hot_call", contact_id=lead, object_type="Lead", kind="hot_call",
        subject="Call", due=datetime.now(UTC) + timedelta(hours=24), priority="high",
        task_type="call",
    )  # fmt: skip
    (made,) = adapter.create_tasks([task, task])[:1]
    sim.org.records["Task"][made.crm_id]["Status"] = "Completed"
    (again,) = adapter.create_tasks([task])
    assert again.ok and again.crm_id == made.crm_id
    assert sim.org.records["Task"][made.crm_id]["Status"] == "Completed", "not reopened"
    assert sim.stats.by_endpoint["PATCH composite/sobjects/Task/CRMQ_Task_Key__c"] == 2
    assert sim.stats.by_endpoint["POST composite/sobjects"] == 0
