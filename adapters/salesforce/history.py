"""Who set a person's owned fields in Salesforce, from the record's creator and last modifier.

Salesforce answers per record what HubSpot answers per property: `LastModifiedById` and
`LastModifiedDate` name the last change to any field, `CreatedById` the creator. The core asks
only about values it has no acknowledged write for (a value equal to our last write is ours),
so a value asked about was set before or beside our writes, and is read as:
- the last change by a user other than the integration user (our API user): that person's,
  dated then (a flow runs as the user whose change started it, so its values count as that
  person's);
- the last change ours, the record created by someone else: a person's, undated (the value
  predates our writes; who exactly the record cannot say);
- created and last changed by the integration user: crm-qualify's own (a state store that
  lost its audit trail);
- the integration user unknown: unknown.
Field history (`LeadHistory`, `ContactHistory`) would name the setter per field and the value
before it, for the fields an admin tracks (20 per object at most); it is not read yet, so a
stage moved back before crm-qualify's first write is not seen here (one moved back after it
is: the core compares with its own writes). The people query selects these fields, so the
answer comes with each read (`last_change`, kept on the mirrored contact); a record mirrored
without it is asked by one query per IN list of ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crm_qualify.adapters.salesforce.values import parse_time
from crm_qualify.connector.contract import SourceQuestions, TranslationError
from crm_qualify.connector.model import FieldSource

LAST_CHANGE = ("CreatedById", "LastModifiedById", "LastModifiedDate")
"""Selected with every person read (`last_change`): three columns instead of a query."""
SETTERS = f"SELECT Id, {', '.join(LAST_CHANGE)} FROM {{sobject}} WHERE Id IN ({{{{values}}}})"
"""Who set a record's values, per object: one query per IN list of ids, for people mirrored
before their reads carried `LAST_CHANGE`."""

Rows = Callable[[str, str, Sequence[str]], list[dict[str, Any]]]
"""(what, SOQL template with `{values}`, ids) -> rows: the adapter's IN-list query."""


def field_sources(
    rows_of: Rows, synced: Sequence[str], ours: str | None, wanted: SourceQuestions
) -> dict[tuple[str, str], dict[str, FieldSource]]:
    """Who set the asked fields of these Leads and Contacts (`synced`: the objects read)."""
    asked: dict[str, dict[str, Sequence[str]]] = {}
    for (sobject, record), fields in wanted:
        if sobject in synced:
            asked.setdefault(sobject, {})[record] = fields
    found: dict[tuple[str, str], dict[str, FieldSource]] = {}
    for sobject, records in asked.items():
        soql = SETTERS.format(sobject=sobject)
        for row in rows_of(f"GET query {sobject} (last modifier)", soql, list(records)):
            record = row.get("Id")
            if record not in records:
                continue
            source = _setter(row, ours)
            found[(sobject, record)] = dict.fromkeys(records[record], source)
    return found


def last_change(row: dict[str, Any], ours: str | None) -> FieldSource | None:
    """Who last changed a person's record as read (`LAST_CHANGE` selected with it), so the
    core asks no question about it; None for a row read without those fields."""
    return _setter(row, ours) if "LastModifiedById" in row else None


def _setter(row: dict[str, Any], ours: str | None) -> FieldSource:
    if not ours:
        return FieldSource(by="unknown")
    modifier, creator = row.get("LastModifiedById"), row.get("CreatedById")
    if modifier != ours:
        try:
            at = parse_time(row.get("LastModifiedDate"), "LastModifiedDate")
        except TranslationError:
            at = None
        return FieldSource(by="person" if modifier else "unknown", at=at)
    return FieldSource(by="connector" if creator == ours else "person")
