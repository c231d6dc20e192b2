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
    """`template` with `{values}` filled by as many quoted values as fit one request."""
    chunk: list[str] = []
    for value in values:
        candidate = [*chunk, quote(value)]
        statement = template.format(values=", ".join(candidate))
        if chunk and len(quote_plus(statement)) > MAX_QUERY_URI:
            yield template.format(values=", ".join(chunk))
            chunk = [quote(value)]
        else:
            chunk = candidate
    if chunk:
        yield template.format(values=", ".join(chunk))
