"""Building SOQL safely: quoted literals, datetime literals, and IN lists cut so that every
statement stays under Salesforce's URI length (queries travel in a GET query string); and the
engagement read with each person, as relationship subqueries of the person's query."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_plus

MAX_QUERY_URI = 12_000
"""Well under the ~16 KB URI limit, with room for the path and headers."""


def quote(value: str) -> str:
    """A SOQL string literal: backslashes and single quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def when(moment: datetime) -> str:
    """A SOQL datetime literal (second precision, as SystemModstamp is kept)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_chunks(template: str, values: Sequence[str]) -> Iterator[str]:
    """`template` with `{values}` filled by as many quoted values as fit one request.

    Linear: URL encoding works character by character, so the encoded length of a statement
    is the encoded template plus each encoded literal plus one encoded separator between
    neighbours, and is kept as a running sum instead of re-encoding the statement per value.
    A single value too long for any request still gets a statement of its own.
    """
    base = len(quote_plus(template.format(values="")))
    separator = len(quote_plus(", "))
    chunk: list[str] = []
    length = base
    for value in values:
        literal = quote(value)
        cost = len(quote_plus(literal))
        if chunk and length + separator + cost > MAX_QUERY_URI:
            yield template.format(values=", ".join(chunk))
            chunk, length = [], base
        length += cost + (separator if chunk else 0)
        chunk.append(literal)
    if chunk:
        yield template.format(values=", ".join(chunk))


LIVE = {
    "Task": "IsDeleted = false AND IsArchived = false",
    "Event": "IsDeleted = false AND IsArchived = false",
}
"""The child rows `query` returns, as queryAll conditions (SOAP API `queryAll()`: deleted
and merged records, and archived Tasks and Events, which `query()` filters out)."""

COMPLETED_SINCE = 49.0
"""`Task.CompletedDateTime` exists from API version 49.0 (Summer '20) on."""


@dataclass(frozen=True)
class Engagement:
    """One kind of row read with each person: through the person's child relationship, a
    subquery of the person's own query (one request per page), or, for the people whose
    child set Salesforce cut short, by an IN list of their ids."""

    relationship: str
    """The child relationship on the person (`Tasks`): it keys the rows in a person's row."""
    sobject: str
    link: str
    """The child's field naming the person (`WhoId`, `LeadId`, `ContactId`)."""
    fields: tuple[str, ...]
    """Selected both ways; child-to-parent paths (`Campaign.Name`) bring the parent along."""

    def subquery(self, every_row: bool = False) -> str:
        """`every_row`: for a statement sent through queryAll, which brings deleted child
        rows too, and archived Tasks and Events: left out here, as `query` leaves them out."""
        where = f" WHERE {LIVE.get(self.sobject, 'IsDeleted = false')}" if every_row else ""
        return f"(SELECT {', '.join(self.fields)} FROM {self.relationship}{where})"

    def by_ids(self) -> str:
        """The same rows for a list of people (`{values}`: their ids)."""
        return (
            f"SELECT {self.link}, {', '.join(self.fields)} FROM {self.sobject}"
            f" WHERE {self.link} IN ({{values}})"
        )


def engagement(sobject: str, key_field: str, api_version: str) -> list[Engagement]:
    """What is read with each Lead or Contact: Tasks (ours with their status and the times
    the follow-up SLA is measured with), Events, campaign responses with their campaign's
    name and type, and for contacts their opportunities through OpportunityContactRole. Four
    subqueries of the twenty a statement may hold, one level deep (any API version). Each row
    comes with its Id and SystemModstamp, which let the next run's sweep know it is held
    (`reader.Holding`)."""
    completed = ("CompletedDateTime",) if float(api_version) >= COMPLETED_SINCE else ()
    task = ("Id", "SystemModstamp", "Subject", "TaskSubtype", "ActivityDate", "Status",
            "IsClosed", "CreatedDate")  # fmt: skip
    meeting = ("Id", "SystemModstamp", "Subject", "ActivityDateTime", "CreatedDate")
    kinds = [
        Engagement("Tasks", "Task", "WhoId", (*task, *completed, key_field)),
        Engagement("Events", "Event", "WhoId", meeting),
        Engagement(
            "CampaignMembers",
            "CampaignMember",
            "LeadId" if sobject == "Lead" else "ContactId",
            (
                "Id",
                "SystemModstamp",
                "CampaignId",
                "Status",
                "FirstRespondedDate",
                "CreatedDate",
                "Campaign.Name",
                "Campaign.Type",
            ),
        ),
    ]
    if sobject == "Contact":
        deal = ("Id", "IsClosed", "IsWon", "Amount", "CloseDate", "Type", "CreatedDate")
        kinds.append(
            Engagement(
                "OpportunityContactRoles",
                "OpportunityContactRole",
                "ContactId",
                (
                    "Id",
                    "SystemModstamp",
                    "OpportunityId",
                    *(f"Opportunity.{name}" for name in deal),
                ),
            )
        )
    return kinds


def task_query(key_field: str, api_version: str) -> str:
    """The Tasks of a list of people (`{values}`: their ids), as the subquery reads them."""
    (tasks,) = [k for k in engagement("Lead", key_field, api_version) if k.sobject == "Task"]
    return tasks.by_ids()


CONVERTED_DEAL = ("Id", "IsClosed", "IsWon", "Amount", "CloseDate", "Type", "CreatedDate")


def converted_leads(fields: Sequence[str], every: bool = False) -> str:
    """The leads converted into a list of contacts (`{values}`: the contacts' ids), or into
    any contact (`every`), with `fields` and the opportunity each was converted into
    (`ConvertedOpportunity.*`)."""
    deal = [f"ConvertedOpportunity.{name}" for name in CONVERTED_DEAL]
    names = dict.fromkeys(["Id", "ConvertedContactId", "CreatedDate", *fields, *deal])
    which = "ConvertedContactId != null" if every else "ConvertedContactId IN ({values})"
    return f"SELECT {', '.join(names)} FROM Lead WHERE IsConverted = true AND {which}"
