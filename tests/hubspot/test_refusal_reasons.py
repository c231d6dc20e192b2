"""HubSpot's refusals as one readable line each: the property (the result's `field`, which
`errors` shows beside the reason) and HubSpot's code and message for it, from a 400's
`errors[]` or the JSON list a 207 row's message embeds, never that JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot.records import error_text
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.contract import ConfigError
from crm_qualify.connector.model import FieldUpdate, PlannedTask, RecordUpdate
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

RAW = ("[{", "isValid", "localizedErrorMessage", "portalId")


def contact_ids(sim: HubSpotSimulator) -> list[str]:
    return sorted(sim.store.objects["contacts"])


def definition(sim: HubSpotSimulator, name: str) -> dict:
    return sim.store.definitions["contacts"][name]


def test_a_refused_value_reads_as_the_property_and_hubspots_message(sim, adapter):
    first, second = contact_ids(sim)[:2]
    definition(sim, "crmq_grade")["modificationMetadata"]["readOnlyValue"] = True
    refused, read_only = adapter.write_updates(
        [
            RecordUpdate(
                contact_id=first, changes=[FieldUpdate(field="customer_type", new="weekly")]
            ),
            RecordUpdate(
                contact_id=second,
                changes=[
                    FieldUpdate(field="grade", new="A"),
                    FieldUpdate(field="highest_stage", new="won"),
                ],
            ),
        ]
    )
    assert refused.field == "crmq_customer_type"
    assert refused.error == (
        "INVALID_OPTION: weekly was not one of the allowed options: [one_time, recurring, mixed]"
    )
    assert read_only.field == "crmq_grade"
    assert read_only.error == (
        'READ_ONLY_VALUE: "crmq_grade" is a read only property; its value cannot'
        " be set.; crmq_highest_stage: INVALID_OPTION: won was not one of the allowed options:"
        " [target, subscriber, lead, mql, sql, opportunity, customer]"
    )


def test_a_property_hubspot_lacks_is_named_from_a_400_and_from_a_207_row(sim, adapter):
    """No record is at fault: the write stops, naming the property (`test_missing_properties`)."""
    del sim.store.definitions["contacts"]["crmq_grade"]
    update = RecordUpdate(
        contact_id=contact_ids(sim)[0], changes=[FieldUpdate(field="grade", new="A")]
    )
    with pytest.raises(ConfigError, match=r"no property crmq_grade \(field grade\)"):
        adapter.fields.write([update])

    del sim.store.definitions["tasks"]["crmq_task_key"]
    task = PlannedTask(
        key="crmq:contacts:1:hot_call:2026-W49",
        contact_id=contact_ids(sim)[0],
        kind="hot_call",
        subject="Call",
        due=datetime.now(UTC) + timedelta(days=1),
    )
    with pytest.raises(ConfigError, match="no property crmq_task_key;"):
        adapter.tasks.create([task])  # a 207 row: its message is the only account


def test_errors_lists_each_refusal_as_one_readable_line(sim, adapter, store, settings, monkeypatch):
    """The option goes once the run has checked the properties (`field_fit`): as a person
    may delete it while a run writes."""
    hot, describe = definition(sim, "crmq_temperature"), adapter.describe_fields

    def described_then_deleted(object_type: str) -> dict:
        fields = describe(object_type)
        hot["options"] = [o for o in hot["options"] if o["value"] != "hot"]
        return fields

    monkeypatch.setattr(adapter, "describe_fields", described_then_deleted)
    run = SyncEngine(adapter, settings, store).run(RunOptions())
    assert run.status == "partial" and run.errors
    for line in run.errors:
        assert not any(raw in line for raw in RAW), line
        record, reason = line.split(": ", 1)
        assert record.startswith("contacts/")
        assert reason == (
            "crmq_temperature: INVALID_OPTION: hot was not one of the allowed options: [cold, warm]"
        ), line
    assert {r.reason for r in store.attention(settings.crm.instance)} == {
        "INVALID_OPTION: hot was not one of the allowed options: [cold, warm]"
    }


def test_an_unreadable_or_long_message_is_cut_at_a_word_never_mid_json():
    listed = 'Property values were not valid: [{"isValid":false,"message":"Property \\"x'
    assert error_text({"category": "VALIDATION_ERROR", "message": listed}) == (
        "VALIDATION_ERROR: Property values were not valid"
    )
    long = "word " * 100
    text = error_text({"category": "X", "message": long})
    assert len(text) <= 303 and text.endswith("word …")
    many = "; ".join(f"name{i}" for i in range(60))
    options = f"Cold was not one of the allowed options: [{many}]"
    body = {"errors": [{"message": options, "code": "INVALID_OPTION", "context": {}}]}
    body["errors"][0]["context"]["propertyName"] = ["crmq_temperature"]
    text = error_text(body)
    assert text.startswith("crmq_temperature: INVALID_OPTION: Cold was not one of the allowed")
    assert len(text) <= 303 and text.endswith(" …")
