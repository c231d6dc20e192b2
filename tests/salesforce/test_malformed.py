"""Malformed Salesforce values never crash a read: a corpus of bad values is put into the
simulated org, read through the adapter over TLS, and each `RawContact` is translated.

Every case either fails alone, naming its record and the Salesforce field (`field`), or is a
documented harmless normalisation (`normalised`: what the translation makes of it, and why
that is safe). Every other record of the same read still translates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.contract import RawContact, TranslationError
from crm_qualify.connector.model import Contact, Origin

from tests.salesforce.conftest import make_adapter

Spoil = Callable[[SalesforceSimulator, str], None]
AGO = datetime.now(UTC) - timedelta(days=2)


def own(**fields: Any) -> Spoil:
    """Set fields on the person's own record."""
    return lambda sim, person: sim.org.records[_kind(person)][person].update(fields)


def related(sobject: str, **fields: Any) -> Spoil:
    """Add a related row pointing at the person (WhoId, LeadId / ContactId)."""

    def spoil(sim: SalesforceSimulator, person: str) -> None:
        link = {"WhoId": person}
        if sobject == "CampaignMember":
            campaign = sorted(sim.org.records["Campaign"])[0]
            link = {"CampaignId": campaign, f"{_kind(person)}Id": person}
        sim.org.insert(sobject, {**link, **fields}, AGO)

    return spoil


def campaign(**fields: Any) -> Spoil:
    """A campaign of its own (so no other person shares it), the person responding to it."""

    def spoil(sim: SalesforceSimulator, person: str) -> None:
        made = sim.org.insert("Campaign", {"Name": "Own campaign", **fields}, AGO)
        member = {"CampaignId": made["Id"], "LeadId": person, "Status": "Responded"}
        sim.org.insert("CampaignMember", member, AGO)

    return spoil


def deal(**fields: Any) -> Spoil:
    """An opportunity on the contact, through OpportunityContactRole."""

    def spoil(sim: SalesforceSimulator, person: str) -> None:
        base = {"Name": "Deal", "StageName": "Closed Won", "IsClosed": True, "IsWon": True,
                "CloseDate": "2026-10-01", "Amount": 1000}  # fmt: skip
        opportunity = sim.org.insert("Opportunity", {**base, **fields}, AGO)
        role = {"OpportunityId": opportunity["Id"], "ContactId": person}
        sim.org.insert("OpportunityContactRole", role, AGO)

    return spoil


def _kind(person: str) -> str:
    return "Lead" if person.startswith("00Q") else "Contact"


@dataclass(frozen=True)
class Case:
    name: str
    spoil: Spoil
    field: str | None = None
    """The Salesforce field the error names; None when the value is normalised."""
    normalised: Callable[[Contact], bool] | None = None
    why: str = ""
    sobject: str = "Lead"
    row: str = ""
    """For the cases that spoil the Id itself: how the record is named instead."""


CASES = [
    # wrong types in the person's own fields
    Case("text headcount", own(NumberOfEmployees="many"), "NumberOfEmployees"),
    Case("fractional headcount", own(NumberOfEmployees=12.5), "NumberOfEmployees"),
    Case("negative headcount", own(NumberOfEmployees=-3), "NumberOfEmployees"),
    Case("headcount beyond its 8 digits", own(NumberOfEmployees=10**30), "NumberOfEmployees"),
    Case("infinite headcount", own(NumberOfEmployees=float("inf")), "NumberOfEmployees"),
    Case("boolean headcount", own(NumberOfEmployees=True), "NumberOfEmployees"),
    Case("text score", own(CRMQ_Score__c="lots"), "CRMQ_Score__c"),
    Case("boolean score", own(CRMQ_Score__c=True), "CRMQ_Score__c"),
    Case("NaN score", own(CRMQ_Score__c=float("nan")), "CRMQ_Score__c"),
    Case("number as email", own(Email=12345), "Email"),
    Case("boolean first name", own(FirstName=True), "FirstName"),
    Case("object as title", own(Title={"a": 1}), "Title"),
    Case("huge title", own(Title="x" * 200_000), "Title"),
    Case("list as lead source", own(LeadSource=["Web"]), "LeadSource"),
    Case("number as owner", own(OwnerId=5), "OwnerId"),
    Case("number as stage", own(CRMQ_Stage__c=3), "CRMQ_Stage__c"),
    Case("boolean rating", own(Rating=False), "Rating"),
    Case(
        "unknown qualification answer",
        own(Qualification_Budget__c="Maybe"),
        "Qualification_Budget__c",
    ),
    Case("number as qualification", own(Qualification_Need__c=1), "Qualification_Need__c"),
    Case("text checkbox", own(HasOptedOutOfEmail="yes"), "HasOptedOutOfEmail"),
    Case("number as checkbox", own(CRMQ_Renurture__c=1), "CRMQ_Renurture__c"),
    # bad dates
    Case("impossible created date", own(CreatedDate="2026-13-45"), "CreatedDate"),
    Case("number as created date", own(CreatedDate=20261122), "CreatedDate"),
    Case("words as scored-at", own(CRMQ_Scored_At__c="yesterday"), "CRMQ_Scored_At__c"),
    # records without a usable id
    Case("record without Id", own(Id=None), "Id", row="Id missing"),
    Case("Id that is no Salesforce id", own(Id="<b>x</b>"), "Id", row="Id '<b>x</b>'"),
    Case("object as Id", own(Id={"x": 1}), "Id", row="Id of type"),
    # related rows
    Case(
        "integer CampaignMember Status",
        related("CampaignMember", Status=7),
        "CampaignMember.Status",
    ),
    Case(
        "bad campaign response date",
        related("CampaignMember", Status="Responded", FirstRespondedDate="soon"),
        "CampaignMember.FirstRespondedDate",
    ),
    Case("integer campaign type", campaign(Type=5), "Campaign.Type"),
    Case("integer Task Subject", related("Task", Subject=42, TaskSubtype="Email"), "Task.Subject"),
    Case(
        "February 30th on a task",
        related("Task", Subject="Call", ActivityDate="2026-02-30"),
        "Task.ActivityDate",
    ),
    Case(
        "our task due at the end of time",
        related("Task", CRMQ_Task_Key__c="crmq:k", ActivityDate="9999-12-31"),
        "Task.ActivityDate",
    ),
    Case("number as our task key", related("Task", CRMQ_Task_Key__c=123), "Task.CRMQ_Task_Key__c"),
    Case(
        "list as meeting subject",
        related("Event", Subject=["x"], ActivityDateTime="2026-11-01T10:00:00Z"),
        "Event.Subject",
    ),
    Case(
        "words as meeting time", related("Event", ActivityDateTime="noon"), "Event.ActivityDateTime"
    ),
    Case("text Amount", deal(Amount="lots"), "Opportunity.Amount", sobject="Contact"),
    Case("bad CloseDate", deal(CloseDate="Q3"), "Opportunity.CloseDate", sobject="Contact"),
    Case("text IsWon", deal(IsWon="maybe"), "Opportunity.IsWon", sobject="Contact"),
    # harmless normalisations
    Case(
        "numeric string headcount",
        own(NumberOfEmployees="250"),
        normalised=lambda c: c.employees == 250,
        why="a number held as text (a formula field) is read as that number",
    ),
    Case(
        "numeric string score",
        own(CRMQ_Score__c="71"),
        normalised=lambda c: c.owned["score"] == 71.0,
        why="our own score held as text is read as its number",
    ),
    Case(
        "huge score",
        own(CRMQ_Score__c=1e300),
        normalised=lambda c: c.owned["score"] == 1e300,
        why="a finite number is kept; the next write puts the real score back",
    ),
    Case(
        "text true checkbox",
        own(HasOptedOutOfEmail="true"),
        normalised=lambda c: c.unsubscribed,
        why='"true" / "false" are read as booleans',
    ),
    Case(
        "unknown stage value",
        own(CRMQ_Stage__c="Evangelist"),
        normalised=lambda c: c.stage is None and c.owned["stage"] == "Evangelist",
        why="a value the mapping does not know is not ours yet: the next write replaces it",
    ),
    Case(
        "unknown rating value",
        own(Rating="Tepid"),
        normalised=lambda c: c.owned["temperature"] == "Tepid",
        why="as for the stage: overwritten by the next write",
    ),
    Case(
        "unknown lead source",
        own(LeadSource="Carrier pigeon"),
        normalised=lambda c: c.origin == Origin.UNKNOWN,
        why="an unknown origin scores neutral",
    ),
    Case(
        "unknown campaign member status",
        related("CampaignMember", Status="Teleported"),
        normalised=lambda c: all(e.detail != "Teleported" for e in c.events),
        why="a status no rule names is no engagement",
    ),
    Case(
        "script in the first name",
        own(FirstName="<script>alert(1)</script>"),
        normalised=lambda c: c.first_name == "<script>alert(1)</script>",
        why="names are data, never rendered: kept as they are",
    ),
    Case(
        "markup in the company",
        own(Company="Acme & <b>Sons</b>"),
        normalised=lambda c: c.company == "Acme & <b>Sons</b>",
        why="kept as it is",
    ),
    Case(
        "quotes in the last name",
        own(LastName='O\'Brien "Bob" \\'),
        normalised=lambda c: c.last_name == 'O\'Brien "Bob" \\',
        why="kept as it is",
    ),
    Case(
        "emoji in the title",
        own(Title="Chief 🚀 Officer"),
        normalised=lambda c: c.title == "Chief 🚀 Officer",
        why="kept as it is",
    ),
    Case(
        "nulls everywhere",
        own(
            Email=None,
            FirstName=None,
            Title=None,
            Company=None,
            NumberOfEmployees=None,
            LeadSource=None,
            Rating=None,
            CRMQ_Score__c=None,
            HasOptedOutOfEmail=None,
        ),
        normalised=lambda c: (
            c.email is None
            and c.employees is None
            and c.owned == {"renurture": False, "disqualified": False, "duplicate": False}
        ),
        why="an empty field is simply unknown (a checkbox is never empty: unchecked)",
    ),
    Case(
        "empty strings",
        own(Email="", Title="", CRMQ_Stage__c=""),
        normalised=lambda c: c.email is None and c.title is None and "stage" not in c.owned,
        why="an empty text is an empty field",
    ),
    Case(
        "end-of-calendar placeholder date",
        related("Event", Subject="Demo", Type="Meeting", ActivityDateTime="9999-12-31T00:00:00Z"),
        field="Event.ActivityDateTime",
    ),
    Case(
        "junk in the bounce date",
        own(EmailBouncedDate="not a date"),
        normalised=lambda c: c.hard_bounced,
        why="any value in the bounce field means the address bounced",
    ),
]


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    """The org spoiled case by case (one person each), then read once."""
    with SalesforceSimulator(records=240, seed=11) as sim:
        leads = sorted(r["Id"] for r in sim.org.records["Lead"].values() if not r["IsConverted"])
        contacts = sorted(sim.org.records["Contact"])
        pools = {"Lead": iter(leads), "Contact": iter(contacts)}
        targets = {case.name: next(pools[case.sobject]) for case in CASES}
        duplicate, original = next(pools["Lead"]), next(pools["Lead"])
        for case in CASES:
            case.spoil(sim, targets[case.name])
        sim.org.records["Lead"][duplicate]["Id"] = original
        adapter = make_adapter(sim)
        raws = [
            raw
            for batch in adapter.read_changed(None, until=datetime.now(UTC) + timedelta(seconds=1))
            for raw in batch.raw
        ]
        yield {
            "targets": targets,
            "outcomes": {raw.record: (raw, _translate(raw)) for raw in raws},
            "raws": raws,
            "duplicate": (duplicate, original),
            "people": len(leads) + len(contacts),
        }


def _translate(raw: RawContact) -> Contact | TranslationError:
    try:
        return raw.translate()
    except TranslationError as exc:
        return exc


def _outcome(corpus: dict[str, Any], case: Case) -> tuple[RawContact, Any]:
    person = corpus["targets"][case.name]
    if case.field == "Id":
        (found,) = [v for k, v in corpus["outcomes"].items() if case.row in k]
        return found
    return corpus["outcomes"][f"{case.sobject}/{person}"]


def test_the_corpus_is_large():
    assert len(CASES) >= 35
    assert all(case.field or (case.normalised and case.why) for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_malformed_value_fails_alone_or_is_normalised(corpus, case):
    raw, outcome = _outcome(corpus, case)
    if case.field:
        assert isinstance(outcome, TranslationError), f"{case.name}: translated to {outcome}"
        assert outcome.field == case.field
        assert raw.record.startswith(f"{case.sobject}/")
        if case.field != "Id":
            assert raw.key == (case.sobject, corpus["targets"][case.name])
            assert raw.record == f"{case.sobject}/{corpus['targets'][case.name]}"
    else:
        assert isinstance(outcome, Contact), f"{case.name}: {outcome}"
        assert case.normalised(outcome), case.why


def test_a_repeated_id_is_read_once(corpus):
    duplicate, original = corpus["duplicate"]
    labels = [raw.record for raw in corpus["raws"]]
    assert labels.count(f"Lead/{original}") == 1
    assert f"Lead/{duplicate}" not in labels
    assert isinstance(corpus["outcomes"][f"Lead/{original}"][1], Contact)


def test_every_other_record_still_comes_through(corpus):
    spoiled = {f"{c.sobject}/{corpus['targets'][c.name]}" for c in CASES if c.field}
    others = {k: v for k, v in corpus["outcomes"].items() if k not in spoiled and "(row" not in k}
    failed = {k: o for k, (_, o) in others.items() if not isinstance(o, Contact)}
    assert not failed
    assert len(corpus["raws"]) == corpus["people"] - 1, "all but the duplicate copy"
    assert len(others) == corpus["people"] - 1 - len(spoiled)
