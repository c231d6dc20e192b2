"""The simulated org's data: records by object, Salesforce-shaped ids, and a seeded history.

Every write stamps `LastModifiedDate` and `SystemModstamp`. Seeding is deterministic for a
seed and an anchor day; orgs of 5,000+ records include an import that stamps 2,500 leads with
one identical `SystemModstamp`, the case that makes naive incremental readers loop.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any

from .conversion import convert
from .ids import full_id
from .schema import OBJECTS, PREFIX

FIRST = [
    "Ana",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kenji",
    "Lea",
    "Marco",
    "Nora",
    "Omar",
    "Paula",
    "Quentin",
    "Rosa",
    "Sven",
    "Tara",
]
LAST = [
    "Martin",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Novak",
    "Silva",
    "Jensen",
    "Kowalski",
    "Haddad",
    "Ito",
    "Moreau",
    "Garcia",
    "Olsen",
    "Weber",
    "King",
    "Chen",
]
TITLES = [
    "CTO",
    "IT Director",
    "Head of Sales",
    "VP Marketing",
    "Marketing Manager",
    "Sales Operations Analyst",
    "CFO",
    "Procurement Lead",
    "Student",
    "Consultant",
]
INDUSTRIES = ["Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Education"]
COUNTRIES = ["France", "Germany", "US", "UK", "Spain", "Italy", "Denmark"]
CAMPAIGNS = [
    ("Webinar: RevOps 2026", "Webinar"),
    ("Webinar: Zero trust", "Webinar"),
    ("Whitepaper: Security Guide", "Content"),
    ("Demo request form", "Content"),
    ("Pricing quote request", "Content"),
    ("Newsletter", "Email"),
]
ENGAGEMENT = ("Task", "Event", "CampaignMember")
"""What a person's engagement is made of: moved to the contact when a lead is converted."""
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com"]  # fmt: skip


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


ACTIVITY_LINKS: dict[str, tuple[tuple[str, str], ...]] = {
    "Lead": (("Task", "WhoId"), ("Event", "WhoId"), ("CampaignMember", "LeadId")),
    "Contact": (
        ("Task", "WhoId"),
        ("Event", "WhoId"),
        ("CampaignMember", "ContactId"),
        ("OpportunityContactRole", "ContactId"),
    ),
}
"""A person's rows in other objects, by the field that names them: what a merge moves to the
master and a delete takes with it."""


class Org:
    """Records by object type and id; `lock` guards every read and write."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECTS}
        self.lock = threading.RLock()
        self._counter = 0
        self.writes = 0
        self.integration_user = ""
        """The API user every REST write is stamped with (`CreatedById`, `LastModifiedById`)."""
        self.ui_user = ""
        """The person whose edits in the UI (`touch`, engagement, the seeded history) stamp."""

    def new_id(self, sobject: str) -> str:
        self._counter += 1
        return full_id(f"{PREFIX[sobject]}5g{self._counter:010d}")

    def insert(
        self, sobject: str, fields: dict[str, Any], at: datetime, by: str = ""
    ) -> dict[str, Any]:
        """A new record stamped `at` by user `by` (default: the UI user; the first user, who
        exists before anyone could create it, is its own creator). A checkbox is never null:
        false unless its default says otherwise."""
        record = {
            name: spec.get("default", False if spec.get("type") == "boolean" else None)
            for name, spec in OBJECTS[sobject].items()
        }
        stamp = iso(at)
        record_id = self.new_id(sobject)
        actor = by or self.ui_user or self.integration_user or record_id
        record.update(
            Id=record_id, CreatedDate=stamp, LastModifiedDate=stamp,
            SystemModstamp=stamp, IsDeleted=False, CreatedById=actor, LastModifiedById=actor,
        )  # fmt: skip
        record.update(fields)
        if sobject == "Task":
            _close(record, stamp)
        self.records[sobject][record["Id"]] = record
        return record

    def update(
        self, sobject: str, record_id: str, fields: dict[str, Any], at: datetime, by: str = ""
    ) -> None:
        hit = self.find(record_id)
        if hit is None or hit[0] != sobject:
            raise KeyError(record_id)
        record = hit[1]
        record.update(fields)
        if sobject == "Task":
            _close(record, iso(at))
        record["LastModifiedDate"] = record["SystemModstamp"] = iso(at)
        record["LastModifiedById"] = by or self.ui_user or record["LastModifiedById"]
        self.writes += 1

    def delete(self, sobject: str, record_id: str, at: datetime, by: str = "") -> None:
        """To the recycle bin, with what Salesforce deletes with a person: their tasks and
        events (`WhoId`), campaign memberships and contact roles."""
        self.update(sobject, record_id, {"IsDeleted": True}, at, by)
        for child, link in ACTIVITY_LINKS.get(sobject, ()):
            for row in list(self.live(child)):
                if row.get(link) == record_id:
                    self.update(child, row["Id"], {"IsDeleted": True}, at, by)

    def find(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        """The record with this id: 18 characters, or the case-sensitive 15-character form."""
        for sobject, prefix in PREFIX.items():
            if not record_id.startswith(prefix):
                continue
            if record_id in self.records[sobject]:
                return sobject, self.records[sobject][record_id]
            if len(record_id) == 15:
                full = next((i for i in self.records[sobject] if i[:15] == record_id), None)
                if full:
                    return sobject, self.records[sobject][full]
        return None

    def live(self, sobject: str) -> Iterable[dict[str, Any]]:
        return (r for r in self.records[sobject].values() if not r["IsDeleted"])

    def queryable(self, sobject: str, every_row: bool = False) -> Iterable[dict[str, Any]]:
        """The rows a query selects from: `query` neither deleted records nor archived Tasks
        and Events, queryAll (`every_row`) every record the org still holds (SOAP API
        `queryAll()`; REST QueryAll; Bulk API 2.0's `queryAll` operation)."""
        if every_row:
            return self.records[sobject].values()
        return (r for r in self.live(sobject) if not r.get("IsArchived"))

    def archive(self, record_id: str) -> None:
        """Salesforce's archiving of an old Task or Event (closed tasks and past events over
        a year old, by a background process): `query` leaves it out from then on, queryAll
        returns it with `IsArchived = true`. No user changes it, so nothing is stamped."""
        hit = self.find(record_id)
        if hit is None or hit[0] not in ("Task", "Event"):
            raise KeyError(record_id)
        hit[1]["IsArchived"] = True


def _close(task: dict[str, Any], stamp: str) -> None:
    """A task is closed while its status is Completed (the org's only closed status), and
    `CompletedDateTime` is when it was last saved closed: set on closing, kept while it
    stays closed, cleared when it is reopened (as Salesforce does)."""
    task["IsClosed"] = task.get("Status") == "Completed"
    if not task["IsClosed"]:
        task["CompletedDateTime"] = None
    elif not task.get("CompletedDateTime"):
        task["CompletedDateTime"] = stamp


def seed(org: Org, records: int, rng: random.Random, today: date) -> None:
    """Leads and contacts (half each), accounts, campaigns with members, activities, deals."""
    now = datetime.combine(today, datetime.min.time(), UTC)

    def ago(low: float, high: float) -> datetime:
        return now - timedelta(days=rng.uniform(low, high))

    integration = org.insert(
        "User",
        {"Name": "Integration User", "Email": "integration@org.example", "IsActive": True},
        ago(900, 901),
    )
    org.integration_user = integration["Id"]
    people = (("Alice", "Owner"), ("Bob", "Seller"), ("Cara", "Closer"), ("Dan", "Manager"))
    users = [
        org.insert(
            "User",
            {
                "Name": f"{given} {family}",
                "Email": f"{given.lower()}@org.example",
                "IsActive": True,
            },
            ago(800, 900),
        )
        for given, family in people
    ]
    owner_ids = [u["Id"] for u in users]
    org.ui_user = users[0]["Id"]
    campaigns = [
        org.insert("Campaign", {"Name": n, "Type": t}, ago(300, 400)) for n, t in CAMPAIGNS
    ]
    accounts = [
        org.insert("Account", {"Name": f"Company {i}", "Industry": rng.choice(INDUSTRIES),
                               "NumberOfEmployees": rng.choice([8, 40, 120, 600, 2500]),
                               "BillingCountry": rng.choice(COUNTRIES),
                               "Website": f"company{i}.example"}, ago(400, 800))
        for i in range(max(1, records // 4))
    ]  # fmt: skip
    import_at = ago(60, 61)
    for i in range(records):
        is_lead = i % 2 == 0
        first, last = rng.choice(FIRST), rng.choice(LAST)
        account = rng.choice(accounts)
        domain = rng.choice(FREE_MAIL) if rng.random() < 0.1 else account["Website"]
        fields: dict[str, Any] = {
            "FirstName": first, "LastName": last,
            "Email": f"{first.lower()}.{last.lower()}{i}@{domain}",
            "Title": rng.choice(TITLES), "OwnerId": rng.choice(owner_ids),
            "HasOptedOutOfEmail": rng.random() < 0.03,
            "LeadSource": rng.choice(["Web", "Web", "Phone Inquiry", "Partner Referral",
                                      "Purchased List", "Outbound"]),
        }  # fmt: skip
        if rng.random() < 0.3:
            for criterion in ("Need", "Authority", "Timing", "Budget"):
                fields[f"Qualification_{criterion}__c"] = rng.choice(
                    ["Met", "Met", "In progress", "Not met"]
                )
        created = ago(30, 700)
        if is_lead:
            fields.update(
                Company=account["Name"], Industry=account["Industry"],
                NumberOfEmployees=account["NumberOfEmployees"], Country=account["BillingCountry"],
                Status=rng.choice(["Open - Not Contacted", "Working - Contacted"]),
                Rating=rng.choice([None, None, "Cold", "Warm"]), IsConverted=False,
            )  # fmt: skip
            person = org.insert("Lead", fields, created)
            converted = rng.random() < 0.1
        else:
            person = org.insert("Contact", {**fields, "AccountId": account["Id"]}, created)
            converted = False
        before = {name: len(org.records[name]) for name in ENGAGEMENT}
        last_touch = _engagement(org, rng, person, campaigns, owner_ids, ago)
        if converted:
            convert(org, person["Id"], max(created, last_touch), account_id=account["Id"],
                    children=_added(org, before))  # fmt: skip
        if not is_lead and rng.random() < 0.12:
            _deal(org, rng, person, account, ago)
        stamp = (
            import_at if (records >= 5000 and is_lead and i < 5000) else max(created, last_touch)
        )
        person["LastModifiedDate"] = person["SystemModstamp"] = iso(stamp)


def _added(org: Org, before: dict[str, int]) -> list[dict[str, Any]]:
    """The records inserted since `before` (counts by object), newest first."""
    return [
        record
        for name, count in before.items()
        for record in islice(reversed(org.records[name].values()), len(org.records[name]) - count)
    ]


def _engagement(org, rng, person, campaigns, owner_ids, ago) -> datetime:  # noqa: ANN001
    """Campaign responses, logged calls and replies, meetings; returns the latest moment."""
    latest = ago(400, 700)
    warmth = rng.random()
    for campaign in rng.sample(campaigns, k=min(len(campaigns), int(warmth * 4))):
        at = ago(0, 120)
        status = rng.choice(["Sent", "Registered", "Attended", "Responded", "Downloaded"])
        member = {
            "CampaignId": campaign["Id"],
            "Status": status,
            "HasResponded": status != "Sent",
            "FirstRespondedDate": at.date().isoformat(),
        }
        member["LeadId" if person["Id"].startswith("00Q") else "ContactId"] = person["Id"]
        org.insert("CampaignMember", member, at)
        latest = max(latest, at)
    for _ in range(int(warmth * 3)):
        at = ago(0, 90)
        subtype = rng.choice(["Call", "Email"])
        subject = "Call" if subtype == "Call" else rng.choice(["Re: your proposal", "Follow-up"])
        org.insert(
            "Task",
            {
                "WhoId": person["Id"],
                "OwnerId": rng.choice(owner_ids),
                "Subject": subject,
                "TaskSubtype": subtype,
                "ActivityDate": at.date().isoformat(),
                "Status": "Completed",
                "IsClosed": True,
                "Priority": "Normal",
            },
            at,
        )
        latest = max(latest, at)
    if warmth > 0.8:
        at = ago(0, 30)
        org.insert(
            "Event",
            {
                "WhoId": person["Id"],
                "Subject": "Discovery meeting",
                "ActivityDateTime": iso(at),
                "Type": "Meeting",
            },
            at,
        )
        latest = max(latest, at)
    return latest


def _deal(org, rng, contact, account, ago) -> None:  # noqa: ANN001
    outcome = rng.choice(["open", "won", "lost"])
    closed = outcome != "open"
    opportunity = org.insert("Opportunity", {
        "Name": f"{account['Name']} deal", "AccountId": account["Id"],
        "StageName": {"open": "Proposal", "won": "Closed Won", "lost": "Closed Lost"}[outcome],
        "IsClosed": closed, "IsWon": outcome == "won",
        "CloseDate": ago(0, 200).date().isoformat(), "Amount": rng.choice([5000, 24000, 90000]),
        "Type": rng.choice(["New Business", "Renewal", "Subscription"]),
    }, ago(30, 300))  # fmt: skip
    org.insert("OpportunityContactRole", {"OpportunityId": opportunity["Id"],
                                          "ContactId": contact["Id"], "Role": "Decision Maker"},
               ago(30, 300))  # fmt: skip
