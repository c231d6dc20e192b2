"""People whose won and lost opportunities follow the hidden true model
(`adapters/true_outcomes.py`), as a Salesforce org holds them.

Each person is a Contact: campaign responses for demo requests, downloads, webinars and email
clicks (one membership per campaign, as Salesforce allows), an Email task "Re: ..." per reply,
an Event per meeting, and an Opportunity with a contact role, created when the person's deal
was opened. The sales cycle after it (calls, meetings) is logged too, as reps log it: a
calibration that looked past the deal's creation would learn the sale from them. Each
company is an Account with its industry, which a Contact's fit reads through `Account.*`;
Salesforce has no email-open field on a Contact here, so that effect stays hidden.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crm_qualify.adapters.true_outcomes import SeededPerson, draw_people
from crm_qualify.connector.model import EventType

from .org import Org, iso

E = EventType
CAMPAIGN_RESPONSES = {
    E.DEMO_REQUEST: ("Demo request form", "Responded"),
    E.CONTENT_DOWNLOAD: ("Whitepaper: Security Guide", "Downloaded"),
    E.WEBINAR_ATTENDED: ("Webinar: RevOps 2026", "Attended"),
    E.WEBINAR_REGISTERED: ("Webinar: Zero trust", "Registered"),
    E.EMAIL_CLICK: ("Newsletter", "Responded"),
}
"""Signal -> (seeded campaign, member status) the mapping reads back as that signal."""


def seed(org: Org, seed_value: int, today: date, count: int) -> None:
    """Add `count` Contacts with outcome histories (their own RNG: the rest stays as seeded)."""
    rng = random.Random(seed_value * 104_729 + 17)
    now = datetime.combine(today, datetime.min.time(), UTC)
    campaigns = {c["Name"]: c["Id"] for c in org.live("Campaign")}
    owners = [u["Id"] for u in org.live("User") if u["Id"] != org.integration_user]
    accounts: dict[str, str] = {}
    for person in draw_people(rng, count, now):
        if person.company not in accounts:
            account = {"Name": person.company, "Website": f"https://www.{person.domain}",
                       "Industry": person.industry}  # fmt: skip
            accounts[person.company] = org.insert("Account", account, now - timedelta(days=900))[
                "Id"
            ]
        fields = _fields(person, accounts[person.company], rng.choice(owners))
        contact = org.insert("Contact", fields, person.created)
        latest = person.created
        for kind, at, _ in person.signals:
            _signal(org, contact, kind, at, campaigns)
            latest = max(latest, at)
        for kind, at in person.after_deal:
            _signal(org, contact, kind, at, campaigns)
        if person.deal_created is not None:
            _opportunity(org, rng, contact, person)
        contact["LastModifiedDate"] = contact["SystemModstamp"] = iso(latest)


def _fields(person: SeededPerson, account_id: str, owner: str) -> dict[str, Any]:
    return {
        "FirstName": person.first_name,
        "LastName": person.last_name,
        "Email": person.email,
        "Title": person.title,
        "OwnerId": owner,
        "LeadSource": "Web",
        "AccountId": account_id,
    }


def _signal(
    org: Org, contact: dict[str, Any], kind: EventType, at: datetime, campaigns: dict[str, str]
) -> None:
    if kind in CAMPAIGN_RESPONSES:
        name, status = CAMPAIGN_RESPONSES[kind]
        member = {
            "CampaignId": campaigns[name],
            "Status": status,
            "HasResponded": True,
            "FirstRespondedDate": at.date().isoformat(),
            "ContactId": contact["Id"],
        }
        org.insert("CampaignMember", member, at)
    elif kind in (E.EMAIL_REPLY, E.CALL):
        reply = kind is E.EMAIL_REPLY
        task = {"WhoId": contact["Id"], "OwnerId": contact["OwnerId"],
                "Subject": "Re: your proposal" if reply else "Call",
                "TaskSubtype": "Email" if reply else "Call",
                "ActivityDate": at.date().isoformat(), "Status": "Completed",
                "Priority": "Normal"}  # fmt: skip
        org.insert("Task", task, at)
    elif kind is E.MEETING_BOOKED:
        event = {"WhoId": contact["Id"], "Subject": "Discovery meeting",
                 "ActivityDateTime": iso(at), "Type": "Meeting"}  # fmt: skip
        org.insert("Event", event, at)


def _opportunity(
    org: Org, rng: random.Random, contact: dict[str, Any], person: SeededPerson
) -> None:
    opened = person.deal_created
    assert opened is not None
    closed = person.outcome in ("won", "lost")
    close = person.deal_closed or opened + timedelta(days=90)
    stage = {"won": "Closed Won", "lost": "Closed Lost"}.get(person.outcome, "Proposal")
    opportunity = org.insert("Opportunity", {
        "Name": f"{person.last_name} platform", "AccountId": contact["AccountId"],
        "StageName": stage, "IsClosed": closed, "IsWon": person.outcome == "won",
        "CloseDate": close.date().isoformat(), "Amount": rng.choice([5000, 24000, 90000]),
        "Type": "New Business",
    }, opened)  # fmt: skip
    org.insert("OpportunityContactRole", {"OpportunityId": opportunity["Id"],
               "ContactId": contact["Id"], "Role": "Decision Maker"}, opened)  # fmt: skip
