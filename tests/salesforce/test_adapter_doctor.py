"""Doctor names what the integration user cannot see on the objects read besides people."""

from __future__ import annotations

from crm_qualify.adapters.salesforce.simulator import schema


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
