"""The labelled duplicates, near-misses and no-one records (`adapters/seeded_people.py`), as a
Salesforce org holds them.

A lead record is a Lead (open, from the web); a contact record is a Contact under an Account
named after its company (one Account per company, with its website), so its company and
country come from the Account as for every Contact. Signals are campaign responses (one
membership per campaign and person, as Salesforce allows), an Email task "Re: ..." per reply
and an Event per meeting, as `seed_outcomes.py` logs them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from crm_qualify.adapters.seeded_people import SeededRecord, seeded_people
from crm_qualify.connector.model import EventType

from .org import Org, iso
from .seed_outcomes import CAMPAIGN_RESPONSES

E = EventType


def seed(org: Org, today: date) -> dict[str, tuple[str, str]]:
    """Add the seed's records; returns label -> (object, id) for tests and reports."""
    now = datetime.combine(today, datetime.min.time(), UTC)
    campaigns = {c["Name"]: c["Id"] for c in org.live("Campaign")}
    owners = [u["Id"] for u in org.live("User") if u["Id"] != org.integration_user]
    accounts: dict[str, str] = {}
    placed: dict[str, tuple[str, str]] = {}
    for n, person in enumerate(seeded_people("salesforce").records):
        fields = _fields(person, owners[n % len(owners)])
        if person.kind == "contact":
            if person.company not in accounts:
                account = {"Name": person.company, "Website": person.domain,
                           "BillingCountry": person.country}  # fmt: skip
                accounts[person.company] = org.insert("Account", account, person.created(now))["Id"]
            sobject = "Contact"
            fields["AccountId"] = accounts[person.company]
        else:
            sobject = "Lead"
            fields |= {"Company": person.company, "Country": person.country,
                       "Website": person.domain, "Status": "Open - Not Contacted",
                       "IsConverted": False}  # fmt: skip
        record = org.insert(sobject, fields, person.created(now))
        latest = person.created(now)
        for kind, at in person.signal_times(now):
            _signal(org, record, sobject, kind, at, campaigns)
            latest = max(latest, at)
        record["LastModifiedDate"] = record["SystemModstamp"] = iso(latest)
        placed[person.label] = (sobject, record["Id"])
    return placed


def _fields(person: SeededRecord, owner: str) -> dict[str, Any]:
    return {
        "FirstName": person.first_name,
        "LastName": person.last_name,
        "Email": person.email,
        "Phone": person.phone,
        "Title": person.title,
        "OwnerId": owner,
        "LeadSource": "Web",
    }


def _signal(
    org: Org,
    person: dict[str, Any],
    sobject: str,
    kind: EventType,
    at: datetime,
    campaigns: dict[str, str],
) -> None:
    if kind in CAMPAIGN_RESPONSES:
        name, status = CAMPAIGN_RESPONSES[kind]
        member = {"CampaignId": campaigns[name], "Status": status, "HasResponded": True,
                  "FirstRespondedDate": at.date().isoformat(),
                  "LeadId" if sobject == "Lead" else "ContactId": person["Id"]}  # fmt: skip
        org.insert("CampaignMember", member, at)
    elif kind is E.EMAIL_REPLY:
        task = {"WhoId": person["Id"], "OwnerId": person["OwnerId"],
                "Subject": "Re: your proposal", "TaskSubtype": "Email",
                "ActivityDate": at.date().isoformat(), "Status": "Completed",
                "Priority": "Normal"}  # fmt: skip
        org.insert("Task", task, at)
    elif kind is E.MEETING_BOOKED:
        event = {"WhoId": person["Id"], "Subject": "Discovery meeting",
                 "ActivityDateTime": iso(at), "Type": "Meeting"}  # fmt: skip
        org.insert("Event", event, at)
