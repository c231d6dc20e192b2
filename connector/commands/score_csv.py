"""Contacts from a CSV export, for `crm-qualify score`: one row per contact, documented columns.

Headers are matched case-insensitively, spaces taken as underscores. Columns:
- profile: `id` (required), `object_type`, `email`, `first_name`, `last_name`, `title`,
  `company`, `industry`, `employees`, `country`, `owner_id`, `origin` (inbound / outbound),
  `created_at`, `updated_at`, `stage`, `unsubscribed`, `hard_bounced` (true / false);
- signals: `<signal>_at`, the date of its last occurrence, and `<signal>_count`, how many
  there were (1 when left out), e.g. `demo_request_at`, `email_open_count`: one event each,
  as CRMs that keep counters report them; a count needs its date (0 with none is no event);
- qualification: `qualification_<criterion>` = met / in_progress / not_met;
- one deal: `deal_status` (open / won / lost), `deal_closed_at` (needs the status).
Any other column is ignored and named once on stderr. Empty cells are unknown.

Times are ISO 8601 with their zone (`2026-11-30T09:00:00Z`, `...+01:00`). A date alone
(`2026-11-30`), as many exports give it, is that day at 00:00 UTC; a date and time without a
zone is refused, saying so: the hour it names could be any of a day's.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from crm_qualify.connector.model import Contact, EventType
from pydantic import ValidationError

PROFILE = ("id", "object_type", "email", "first_name", "last_name", "title", "company",
           "industry", "employees", "country", "owner_id", "origin", "created_at", "updated_at",
           "stage", "unsubscribed", "hard_bounced")  # fmt: skip
DEAL = ("deal_status", "deal_closed_at")
_TRUE, _FALSE = {"true", "yes", "1", "y"}, {"false", "no", "0", "n", ""}
SIGNALS = {kind.value for kind in EventType}
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def not_utf8(text: str) -> str | None:
    """What is wrong with text read with `surrogateescape` that was not UTF-8 there, or None:
    the first such byte and its column (a Latin-1 or Windows export, say)."""
    for column, character in enumerate(text, start=1):
        if "\udc80" <= character <= "\udcff":
            return f"byte 0x{ord(character) - 0xDC00:02x} at column {column} is not UTF-8 text"
    return None


def _column(header: str) -> str:
    return header.strip().casefold().replace(" ", "_").replace("-", "_")


def known(column: str) -> bool:
    if column in PROFILE or column in DEAL or column.startswith("qualification_"):
        return True
    signal, _, suffix = column.rpartition("_")
    return suffix in ("at", "count") and signal in SIGNALS


def read_csv_contacts(
    stream: IO[str], ignored: list[str]
) -> Iterator[tuple[int, Contact | None, str | None]]:
    """(line number, contact, error) per row; `ignored` receives the unknown columns."""
    reader = csv.reader(stream, strict=True)
    header = next(reader, None)
    if header is None:
        return
    columns = [_column(h) for h in header]
    ignored += [h for h, c in zip(header, columns, strict=True) if not known(c)]
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # strict: a quote left open, or one inside a bare cell
            yield (
                start,
                None,
                (
                    f"line {start}: {exc} (a quote not closed reads every line after it into one"
                    " cell): fix the quoting; the rest of the file is not read"
                ),
            )
            return
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if problem := not_utf8(",".join(row)):
            yield number, None, f"line {number}: {problem}: save the file as UTF-8"
            continue
        cells = {c: v.strip() for c, v in zip(columns, row, strict=False) if v.strip()}
        document, sources = _document(cells)
        record = cells.get("id", "?")
        try:
            yield number, Contact.model_validate(document), None
        except ValidationError as exc:
            problems = "; ".join(
                f"{column}: {_message(item, column)}"
                for item in exc.errors()
                for column in [_source(item["loc"], sources)]
            )
            yield number, None, f"line {number}: contact {record}: {problems}"


def _moment(value: str) -> str:
    """A date alone (a common export) as that day at 00:00 UTC; anything else as given."""
    return f"{value}T00:00:00Z" if _DAY.fullmatch(value) else value


def _message(error: Any, column: str) -> str:
    """Pydantic's message, or which column a missing one goes with, or how to fix a time given
    without its zone."""
    if error["type"] == "missing" and column.endswith("_at"):
        return f"required with {column.removesuffix('_at')}_count: the date of its last occurrence"
    if error["type"] == "missing" and column == "deal_status":
        return "required with deal_closed_at: open / won / lost"
    if error["type"] != "timezone_aware":
        return error["msg"]
    given = error["input"]
    utc = f"{given.isoformat() if isinstance(given, datetime) else given}Z"
    return (
        f"a date and time without a time zone: add it ({utc} for UTC, or an offset such as"
        " +01:00), or give the date alone (read as 00:00 UTC)"
    )


def _document(cells: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The canonical document of one row, and the signal behind each event (for errors). A
    count without its date, or a deal's date without its status, is kept for validation to
    refuse: dropping it would score the row as if it were not there. A count of 0 is none."""
    document: dict[str, Any] = {c: v for c, v in cells.items() if c in PROFILE}
    for moment in ("created_at", "updated_at"):
        if moment in document:
            document[moment] = _moment(document[moment])
    for flag in ("unsubscribed", "hard_bounced"):
        if flag in document:
            value = document[flag].casefold()
            document[flag] = True if value in _TRUE else False if value in _FALSE else value
    events, sources = [], []
    for kind in EventType:
        at, count = cells.get(f"{kind.value}_at"), cells.get(f"{kind.value}_count")
        if at or (count and count != "0"):
            event = {"type": kind.value, "count": count or 1}
            if at:
                event["at"] = _moment(at)
            events.append(event)
            sources.append(kind.value)
    if events:
        document["events"] = events
    answers = {
        c.removeprefix("qualification_"): v
        for c, v in cells.items()
        if c.startswith("qualification_")
    }
    if answers:
        document["qualification"] = answers
    if "deal_status" in cells or "deal_closed_at" in cells:
        deal = {"id": f"{cells.get('id', 'row')}-deal"}
        if "deal_status" in cells:
            deal["status"] = cells["deal_status"]
        if "deal_closed_at" in cells:
            deal["closed_at"] = _moment(cells["deal_closed_at"])
        document["deals"] = [deal]
    return document, sources


def _source(loc: tuple[Any, ...], sources: list[str]) -> str:
    """The CSV column an error is about."""
    if loc and loc[0] == "events" and len(loc) > 1 and isinstance(loc[1], int):
        field = loc[2] if len(loc) > 2 and loc[2] in ("at", "count") else "at/_count"
        return f"{sources[loc[1]]}_{field}"
    if loc and loc[0] == "qualification" and len(loc) > 1:
        return f"qualification_{loc[1]}"
    if loc and loc[0] == "deals":
        return f"deal_{loc[-1]}"
    return ".".join(str(part) for part in loc) or "record"
