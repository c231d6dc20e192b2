"""Doctor names what the integration user cannot see on the objects read besides people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.adapters.salesforce.simulator import schema, server
from crm_qualify.connector.model import PlannedTask


def test_every_object_read_is_checked(adapter):
    names = {c.name for c in adapter.check()}
    for sobject in ("Event", "Campaign", "CampaignMember", "Opportunity", "OpportunityContactRole"):
        assert f"{sobject} fields" in names


def test_a_hidden_related_field_is_named(adapter):
    removed = schema.OBJECTS["CampaignMember"].pop("FirstRespondedDate")
    try:
        results = {c.name: c for c in adapter.check()}
    finally:
        schema.OBJECTS["CampaignMember"]["FirstRespondedDate"] = removed
    assert not results["CampaignMember fields"].ok
    assert "FirstRespondedDate (standard field)" in results["CampaignMember fields"].detail
    assert results["Event fields"].ok


def test_the_task_key_must_be_an_external_unique_id(adapter):
    assert {c.name: c for c in adapter.check()}["Task.CRMQ_Task_Key__c key"].ok
    spec = schema.OBJECTS["Task"]["CRMQ_Task_Key__c"]
    saved = dict(spec)
    spec.update(externalId=False, unique=False)
    try:
        results = {c.name: c for c in adapter.check()}
    finally:
        spec.clear()
        spec.update(saved)
    check = results["Task.CRMQ_Task_Key__c key"]
    assert not check.ok and "External ID, Unique" in check.detail


def test_upserts_on_a_key_that_is_no_external_id_need_attention(sim, adapter):
    lead = sorted(r["Id"] for r in sim.org.records["Lead"].values() if not r["IsConverted"])[0]
    task = PlannedTask(
        key="crmq:k", contact_id=lead, object_type="Lead", kind="hot_call", subject="Call",
        due=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip
    spec = schema.OBJECTS["Task"]["CRMQ_Task_Key__c"]
    spec["externalId"] = False
    try:
        (result,) = adapter.create_tasks([task])
    finally:
        spec["externalId"] = True
    assert not result.ok and not result.retryable and not result.uncertain
    assert result.field == "CRMQ_Task_Key__c" and "doctor" in result.error


def test_a_describe_answer_without_fields_is_a_failed_check_naming_it(adapter, monkeypatch):
    """A login host answering `{}` made doctor stop on `error: KeyError: 'fields'`."""
    monkeypatch.setattr(server, "describe", lambda sobject, version: {})
    results = {c.name: c for c in adapter.check()}
    check = results["Lead access"]
    assert not check.ok and "no 'fields' list" in check.detail
    assert "GET describe Lead" in check.detail


def test_a_missing_field_is_called_custom_or_standard_by_its_name():
    from crm_qualify.adapters.salesforce.doctor import _missing

    assert _missing("Budget_Status__c", None) == "Budget_Status__c (custom field)"
    assert _missing("Rating", None) == "Rating (standard field)"
    assert _missing("CRMQ_Grade__c", "grade").startswith("CRMQ_Grade__c (Text(4)) for field grade")
