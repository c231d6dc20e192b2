"""Building SOQL safely: quoted literals, datetime literals, and IN lists cut so that every
statement stays under Salesforce's URI length (queries travel in a GET query string)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


COMPLETED_SINCE = 49.0
"""`Task.CompletedDateTime` exists from API version 49.0 (Summer '20) on."""


def task_query(key_field: str, api_version: str) -> str:
    """The Tasks of a page of people (`{values}`: their ids): their engagement, and for ours
    the status and the times the follow-up SLA is measured with (creation, completion)."""
    completed = " CompletedDateTime," if float(api_version) >= COMPLETED_SINCE else ""
    return (
        "SELECT Id, WhoId, Subject, TaskSubtype, ActivityDate, Status, IsClosed, CreatedDate,"
        f"{completed} {key_field} FROM Task WHERE WhoId IN ({{values}})"
    )
