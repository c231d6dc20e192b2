"""Who set a contact's owned properties, from HubSpot's property history.

HubSpot keeps every property's values, newest first, each with `timestamp`, `sourceType`
(CRM_UI for an edit in the app, IMPORT, AUTOMATION_PLATFORM for workflows, INTEGRATION for
an app's API write...), `sourceId` (for an app, its id; for a user, `userId:<id>`) and
`updatedByUserId`. The v3 object endpoints serve it as `propertiesWithHistory` on a single
read, a list page (50 records a page instead of 100) and a batch read (at most 50 inputs:
"The maximum number of inputs supported in a batch request for property histories is 50");
search never does. So history is read only for the records the core asks about
(`Adapter.field_sources`), with batch reads of 50, never with every read.

The mapping's `[sources]` table says which source types are a person's and which are
automation's; others are unknown. crm-qualify's own writes (INTEGRATION, with our app's id)
count as automation here: the core recognises them itself, as the values of its last
acknowledged writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.translate import ContactMapping, owned_value
from crm_qualify.adapters.hubspot.values import lenient, objects, parse_time, record_id
from crm_qualify.connector.contract import SourceQuestions, TranslationError
from crm_qualify.connector.model import FieldSource

Setter = Literal["person", "automation", "unknown"]
HISTORY_BATCH = 50
"""HubSpot's limit of inputs in one batch read that asks for property history."""


@dataclass(frozen=True)
class SourceKinds:
    """The mapping's `[sources]`: HubSpot source types that are a person's, automation's."""

    person: frozenset[str]
    automation: frozenset[str]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> SourceKinds:
        section = document.get("sources", {})
        return cls(
            person=frozenset(section.get("person", [])),
            automation=frozenset(section.get("automation", [])),
        )

    def of(self, entry: dict[str, Any]) -> Setter:
        kind = str(entry.get("sourceType") or "")
        if kind in self.person:
            return "person"
        return "automation" if kind in self.automation else "unknown"


def field_sources(
    client: HubSpotClient,
    mapping: ContactMapping,
    kinds: SourceKinds,
    wanted: SourceQuestions,
) -> dict[tuple[str, str], dict[str, FieldSource]]:
    """Who set the asked owned fields of these contacts, from batch reads of 50 with
    `propertiesWithHistory`. Records HubSpot does not return, and properties without
    history, are left out (unknown)."""
    fields_of = {record: list(fields) for (_, record), fields in wanted}
    object_of = {record: object_type for (object_type, record), _ in wanted}
    ids = list(fields_of)
    found: dict[tuple[str, str], dict[str, FieldSource]] = {}
    for start in range(0, len(ids), HISTORY_BATCH):
        chunk = ids[start : start + HISTORY_BATCH]
        names = sorted(
            {
                mapping.owned.fields[f]
                for i in chunk
                for f in fields_of[i]
                if f in mapping.owned.fields
            }
        )
        inputs = [{"id": i} for i in chunk]
        body = {"properties": [], "propertiesWithHistory": names, "inputs": inputs}
        _, page = client.call(
            f"POST {mapping.object_type}/batch/read (history)",
            client.batch.read,
            mapping.object_type,
            body,
        )
        for row in objects(page.get("results")):
            record = record_id(row)
            if record not in fields_of:
                continue
            history = row.get("propertiesWithHistory")
            history = history if isinstance(history, dict) else {}
            answers = {
                name: source
                for name in fields_of[record]
                if (source := _source(mapping, kinds, name, history)) is not None
            }
            found[(object_of[record], record)] = answers
    return found


def _source(
    mapping: ContactMapping, kinds: SourceKinds, name: str, history: dict[str, Any]
) -> FieldSource | None:
    """The newest entry of one property's history, and the value before it."""
    prop = mapping.owned.fields.get(name)
    entries = objects(history.get(prop)) if prop else []
    if not entries:
        return None
    newest = entries[0]
    earlier = entries[1].get("value") if len(entries) > 1 else None
    return FieldSource(
        by=kinds.of(newest),
        at=lenient(parse_time, newest.get("timestamp"), f"{prop}.timestamp"),
        value=_canonical(mapping, name, newest.get("value")),
        previous=_canonical(mapping, name, earlier),
    )


def _canonical(mapping: ContactMapping, name: str, value: Any) -> Any:
    """A history value as `Contact.owned` holds it; unreadable is unknown."""
    if value in (None, ""):
        return None
    try:
        return owned_value(mapping, name, value)
    except TranslationError:
        return None


__all__ = ["HISTORY_BATCH", "SourceKinds", "field_sources"]
