"""A Contact's firmographics come from its Account through relationship fields in the same
query, so one person scores the same as a Lead and as a Contact; a converted lead is followed
to its Contact (one history: its stage, answers, origin and opportunity) and never written,
as Salesforce refuses with CANNOT_UPDATE_CONVERTED_LEAD."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.rules import FitRules, Rules, SizeBand
from crm_qualify.connector.model import FieldUpdate, RecordUpdate, Stage
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from .conftest import make_adapter

RULES = Rules(
    fit=FitRules(
        industries={"Technology": 20},
        countries={"France": 10},
        company_size=[SizeBand(min=100, max=1000, points=15)],
    )
)
NOW = datetime.now(UTC)
PERSON = {"FirstName": "Ines", "LastName": "Moreau", "Email": "ines@acme.example",
          "Title": "IT Director", "LeadSource": "Web"}  # fmt: skip


@pytest.fixture(scope="module")
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=40, seed=4) as simulator:
        yield simulator


def client(sim: SalesforceSimulator) -> Salesforce:
    session = make_session(sim.ca_bundle_path)
    return Salesforce(instance_url=sim.instance_url, session_id=sim.session_id, session=session)


def contacts(adapter, keys):  # noqa: ANN001
    batches = list(adapter.read_contacts(keys))
    return [raw.translate() for b in batches for raw in b.raw], [
        e for b in batches for e in b.errors
    ]


def test_the_same_person_scores_the_same_as_a_lead_and_as_a_contact_with_an_account(sim):
    at = datetime.now(UTC)
    with sim.org.lock:
        lead = sim.org.insert("Lead", {**PERSON, "Company": "Acme", "Industry": "Technology",
                                       "NumberOfEmployees": 600, "Country": "France",
                                       "Status": "Open - Not Contacted"}, at)  # fmt: skip
        account = sim.org.insert("Account", {"Name": "Acme", "Industry": "Technology",
                                             "NumberOfEmployees": 600, "BillingCountry": "France",
                                             "Website": "acme.example"}, at)  # fmt: skip
        contact = sim.org.insert("Contact", {**PERSON, "AccountId": account["Id"]}, at)
    found, errors = contacts(make_adapter(sim), [("Lead", lead["Id"]), ("Contact", contact["Id"])])
    assert not errors
    as_lead, as_contact = sorted(found, key=lambda c: c.object_type != "Lead")
    assert (as_contact.company, as_contact.industry, as_contact.employees, as_contact.country) == (
        "Acme", "Technology", 600, "France",
    )  # fmt: skip
    a, b = decide(as_lead, RULES, NOW), decide(as_contact, RULES, NOW)
    assert a.score.fit == b.score.fit == 45
    assert (a.score.total, a.score.grade, a.stage, a.temperature) == (
        b.score.total, b.score.grade, b.stage, b.temperature,
    )  # fmt: skip


def test_a_contact_without_an_account_has_no_firmographics(sim):
    with sim.org.lock:
        alone = sim.org.insert("Contact", dict(PERSON), datetime.now(UTC))
    (found,), _ = contacts(make_adapter(sim), [("Contact", alone["Id"])])
    assert (found.company, found.industry, found.employees) == (None, None, None)


def test_salesforce_refuses_to_update_a_converted_lead(sim):
    converted = next(r for r in sim.org.live("Lead") if r["IsConverted"])
    answer = client(sim).restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Lead"}, "id": converted["Id"], "Title": "CFO"}]})  # fmt: skip
    assert answer[0]["errors"][0]["statusCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    with pytest.raises(SalesforceMalformedRequest) as refused:
        client(sim).Lead.update(converted["Id"], {"Title": "CFO"})
    assert refused.value.content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert sim.org.records["Lead"][converted["Id"]]["Title"] != "CFO"


def test_conversion_moves_activities_and_keeps_campaign_history(sim):
    at = datetime.now(UTC)
    with sim.org.lock:
        lead = sim.org.insert("Lead", {**PERSON, "Company": "Globex"}, at)
        task = sim.org.insert("Task", {"WhoId": lead["Id"], "Subject": "Call",
                                       "Status": "Completed"}, at)  # fmt: skip
        campaign = next(iter(sim.org.live("Campaign")))
        member = sim.org.insert("CampaignMember", {"CampaignId": campaign["Id"],
                                                   "LeadId": lead["Id"], "Status": "Responded"},
                                at)  # fmt: skip
    converted = sim.convert_lead(lead["Id"], opportunity=True)
    contact = converted["ConvertedContactId"]
    assert sim.org.records["Task"][task["Id"]]["WhoId"] == contact
    assert (member["LeadId"], member["ContactId"]) == (lead["Id"], contact)
    roles = [r for r in sim.org.live("OpportunityContactRole") if r["ContactId"] == contact]
    assert [r["OpportunityId"] for r in roles] == [converted["ConvertedOpportunityId"]]
    row = client(sim).query(
        f"SELECT Id, (SELECT Id FROM Tasks), (SELECT Id FROM CampaignMembers) FROM Contact"
        f" WHERE Id = '{contact}'"
    )["records"][0]
    assert row["Tasks"]["totalSize"] == 1 and row["CampaignMembers"]["totalSize"] == 1


def test_a_converted_lead_fetched_by_id_is_followed_to_its_contact_and_never_written(sim):
    at = datetime.now(UTC)
    with sim.org.lock:
        lead = sim.org.insert("Lead", {**PERSON, "Email": "tara@initech.example",
                                       "Company": "Initech", "CRMQ_Stage__c": "SQL",
                                       "Qualification_Need__c": "Met"}, at)  # fmt: skip
        deal = sim.org.insert("Opportunity", {"Name": "Initech", "StageName": "Proposal",
                                              "IsClosed": False, "IsWon": False,
                                              "CloseDate": at.date().isoformat()}, at)  # fmt: skip
    converted = sim.convert_lead(lead["Id"], opportunity=deal["Id"])
    contact_id = converted["ConvertedContactId"]
    adapter = make_adapter(sim)
    found, errors = contacts(adapter, [("Lead", lead["Id"])])
    assert [e.record for e in errors] == [f"Lead/{lead['Id']}"]
    assert errors[0].field == "IsConverted" and contact_id in errors[0].message
    assert errors[0].gone and errors[0].key == ("Lead", lead["Id"]), "it leaves the mirror"
    (person,) = found
    assert (person.object_type, person.id) == ("Contact", contact_id)
    assert person.stage is Stage.SQL  # the lead's stage: never moved back behind it
    assert person.qualification["need"].value == "met"
    assert [d.id for d in person.deals] == [deal["Id"]]  # converted into, without a role
    _, told = contacts(adapter, [("Contact", contact_id)])
    assert [(e.key, e.gone) for e in told] == [(("Lead", lead["Id"]), True)], "its contact says"
    writes = sim.stats.writes
    results = adapter.write_updates([_update(lead["Id"])])
    assert not results[0].ok and not results[0].retryable
    assert "CANNOT_UPDATE_CONVERTED_LEAD" in (results[0].error or "")
    assert results[0].gone, "converted since it was read: the core forgets it, as a merge"
    assert sim.stats.writes == writes


def _update(lead_id: str):  # noqa: ANN202
    from crm_qualify.connector.model import FieldUpdate, RecordUpdate

    change = FieldUpdate(field="score", old=None, new=50)
    return RecordUpdate(contact_id=lead_id, object_type="Lead", changes=[change])


def test_a_converted_contact_keeps_its_leads_creation_once_its_stage_is_written(sim):
    """The Contact's own CreatedDate is the conversion's: read before and after our first
    write of its stage, it is the person that began as the lead, so its oldest record (and
    with it the person's email and fit) does not change under it."""
    created = datetime(2025, 5, 18, 9, tzinfo=UTC)
    with sim.org.lock:
        lead = sim.org.insert("Lead", {**PERSON, "Email": "noor@umbrella.example",
                                       "Company": "Umbrella"}, created)  # fmt: skip
    contact_id = sim.convert_lead(lead["Id"])["ConvertedContactId"]
    adapter = make_adapter(sim)
    (before,), _ = contacts(adapter, [("Contact", contact_id)])
    stage = FieldUpdate(field="stage", old=None, new="mql")
    update = RecordUpdate(contact_id=contact_id, object_type="Contact", changes=[stage])
    assert adapter.write_updates([update])[0].ok
    (after,), _ = contacts(adapter, [("Contact", contact_id)])
    assert after.stage is Stage.MQL and before.created_at == after.created_at == created
