"""HubSpot records <-> the canonical model, driven by the mapping data (mappings/hubspot.toml).

Pure functions. HubSpot sends every property value as a string or null, but an adapter meets
proxies, imports and portals that send other things; so each value is read through a typed
accessor that either normalises it harmlessly or raises `TranslationError` naming the HubSpot
property, and never anything else. Harmless normalisations (each covered by
tests/hubspot/test_malformed.py):

- a JSON number where text is expected is its text (`42` -> "42"); a JSON boolean where
  true/false is expected is its value, and "TRUE" / "False" are read in any case;
- an integer where a datetime is expected is epoch milliseconds; a datetime without a zone
  is UTC;
- a `numemployees` bucket is its lower bound ("100-500" -> 100, "1000+" -> 1000); any
  other text ("lots", a count too large to be one) fails the record (taken for unknown,
  the company's size would silently stand in for it);
- a negative engagement counter is 0; any value of the hard-bounce property is a bounce;
- stage, temperature, highest-stage, customer-type, source and buying-role values the
  mapping does not list are kept as the CRM's text or ignored, as for any custom value (the
  diff counts a highest stage it does not know as none);
- on deals and tasks (context, not the record itself), an unreadable amount, date, stage or
  key is left out rather than failing the contact.

Owned values keep HubSpot's own text ("17" stays "17"), so a rollback restores exactly what
the CRM held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from crm_qualify.adapters.hubspot.records import digest
from crm_qualify.adapters.hubspot.values import (
    company_size,
    counter,
    empty,
    fail,
    finite_number,
    flag,
    format_time,
    lenient,
    objects,
    parse_time,
    properties_of,
    record_id,
    render_number,
    text_value,
)
from crm_qualify.connector.contract import FieldInfo, TranslationError
from crm_qualify.connector.model import (
    Contact,
    CriterionStatus,
    Deal,
    EngagementEvent,
    EventType,
    ExistingTask,
    Origin,
    PlannedTask,
)
from crm_qualify.connector.owned_values import OwnedFields, Spelling
from pydantic import ValidationError

REASONS_MAX = 65_000  # HubSpot text properties hold 65,536 characters
STAMPS = ("lastmodifieddate", "hs_lastmodifieddate")
"""What HubSpot moves on every change, ours included: left out of `Contact.source_digest`."""


@dataclass(frozen=True)
class ContactMapping:
    """The `objects.<type>` section of the mapping, prepared for fast look-ups."""

    object_type: str
    owned: OwnedFields
    profile: dict[str, str]
    origin_property: str | None
    origin_of_source: dict[str, Origin]
    unsubscribed: str | None
    hard_bounce: str | None
    qualification: dict[str, str]
    answers: dict[str | None, dict[str, CriterionStatus]]
    """Answer of each value: by criterion, and under None for every criterion."""
    authority_property: str | None
    authority_roles: frozenset[str]
    counters: list[tuple[EventType, str, str]]
    dates: list[tuple[EventType, str]]
    conversion_pairs: list[tuple[str, str]]
    conversion_rules: list[tuple[re.Pattern[str], EventType]]
    properties: list[str] = field(default_factory=list)
    digested: tuple[str, ...] = ()
    """What `Contact.source_digest` covers: every property the full mapping reads but the
    owned ones and the stamps (`digested_properties`), the same in a mapping reduced for
    the sources a run reads (`engagement.without_fallbacks`)."""

    @classmethod
    def from_document(cls, document: dict[str, Any], object_type: str) -> ContactMapping:
        section = document["objects"][object_type]
        origin = section.get("origin", {})
        consent = section.get("consent", {})
        authority = section.get("authority", {})
        conversions = section.get("conversions", {})
        mapping = cls(
            object_type=object_type,
            owned=OwnedFields.from_section(section, HUBSPOT),
            profile=dict(section.get("profile", {})),
            origin_property=origin.get("property"),
            origin_of_source={
                **{s: Origin.INBOUND for s in origin.get("inbound", [])},
                **{s: Origin.OUTBOUND for s in origin.get("outbound", [])},
            },
            unsubscribed=consent.get("unsubscribed"),
            hard_bounce=consent.get("hard_bounce"),
            qualification=dict(section.get("qualification", {})),
            answers=answer_tables(section.get("qualification_values", {})),
            authority_property=authority.get("property"),
            authority_roles=frozenset(authority.get("roles", [])),
            counters=[
                (EventType(c["event"]), c["count"], c["at"]) for c in section.get("counters", [])
            ],
            dates=[(EventType(d["event"]), d["at"]) for d in section.get("dates", [])],
            conversion_pairs=[tuple(p) for p in conversions.get("pairs", [])],
            conversion_rules=[
                (re.compile(pattern, re.IGNORECASE), EventType(event))
                for pattern, event in conversions.get("rules", [])
            ],
        )
        mapping.properties.extend(mapping.read_properties())
        return replace(mapping, digested=mapping.digested_properties())

    def read_properties(self) -> list[str]:
        """Every contact property a read needs, once."""
        names = [
            "lastmodifieddate",
            "createdate",
            *self.owned.fields.values(),
            *self.profile.values(),
        ]
        names += [p for p in (self.origin_property, self.unsubscribed, self.hard_bounce) if p]
        names += list(self.qualification.values())
        names += [self.authority_property] if self.authority_property else []
        names += [prop for _, count, at in self.counters for prop in (count, at)]
        names += [at for _, at in self.dates]
        names += [prop for pair in self.conversion_pairs for prop in pair]
        return list(dict.fromkeys(names))

    def digested_properties(self) -> tuple[str, ...]:
        """The properties read that only others change: our writes touch the owned ones
        and the stamps alone, so a record whose others are as read holds no one else's
        change, whatever its stamp says."""
        ours = {*self.owned.fields.values(), *STAMPS}
        return tuple(name for name in self.read_properties() if name not in ours)

    def property_of(self, canonical: str) -> str:
        """The HubSpot property behind a canonical contact field, for error messages."""
        return self.profile.get(canonical) or self.owned.fields.get(canonical) or canonical


# contacts ----------------------------------------------------------------------------------
def _scored_at(props: dict[str, Any], prop: str) -> str | None:
    """HubSpot's own text for a datetime we wrote (it echoes ours), once it parses."""
    value = props.get(prop)
    parsed = parse_time(value, prop)
    return value if isinstance(value, str) else format_time(parsed) if parsed else None


HUBSPOT = Spelling(
    text=lambda props, prop: text_value(props.get(prop), prop),
    number=lambda props, prop: render_number(props.get(prop), prop),
    flag=lambda props, prop: flag(props.get(prop), prop),
    time=_scored_at,
    empty=lambda props, prop: empty(props.get(prop)),
    write_number=render_number,
    write_flag=lambda value: "true" if value is True or str(value).lower() == "true" else "false",
    cleared="",  # clears the property (rollback to "never set")
    reasons_max=REASONS_MAX,
)
"""Property values are text, numbers without ".0", checkboxes "true" / "false"."""


def owned_value(mapping: ContactMapping, name: str, value: Any) -> Any:
    """One owned field's HubSpot value as `Contact.owned` holds it (property history)."""
    return mapping.owned.value(name, {mapping.owned.fields[name]: value})


def _events(mapping: ContactMapping, props: dict[str, Any]) -> list[EngagementEvent]:
    events = []
    for kind, count_prop, at_prop in mapping.counters:
        count = counter(props.get(count_prop), count_prop)
        at = parse_time(props.get(at_prop), at_prop)
        if count and at:
            events.append(EngagementEvent(type=kind, at=at, count=count))
    for kind, at_prop in mapping.dates:
        if at := parse_time(props.get(at_prop), at_prop):
            events.append(EngagementEvent(type=kind, at=at))
    seen = set()
    for name_prop, at_prop in mapping.conversion_pairs:
        name = text_value(props.get(name_prop), name_prop)
        at = parse_time(props.get(at_prop), at_prop)
        if not name or not at or (name, at) in seen:
            continue
        seen.add((name, at))
        kind = next(
            (event for pattern, event in mapping.conversion_rules if pattern.search(name)),
            EventType.FORM_SUBMISSION,
        )
        events.append(EngagementEvent(type=kind, at=at, detail=name[:200]))
    return events


def answer_tables(section: dict[str, Any]) -> dict[str | None, dict[str, CriterionStatus]]:
    """`qualification_values`: value -> answer for every criterion (under None), and each
    sub-table's for its criterion; the canonical answers always mean themselves."""
    shared = {status.value: status for status in CriterionStatus}
    shared |= {k: CriterionStatus(v) for k, v in section.items() if not isinstance(v, dict)}
    tables: dict[str | None, dict[str, CriterionStatus]] = {None: shared}
    for criterion, table in section.items():
        if isinstance(table, dict):
            tables[criterion] = {**shared, **{k: CriterionStatus(v) for k, v in table.items()}}
    return tables


def _qualification(mapping: ContactMapping, props: dict[str, Any]) -> dict[str, CriterionStatus]:
    answers = {}
    for criterion, prop in mapping.qualification.items():
        value = text_value(props.get(prop), prop)
        if value:
            known = mapping.answers.get(criterion, mapping.answers[None])
            if value not in known:
                raise fail(prop, "value not in qualification_values", value)
            answers[criterion] = known[value]
    prop = mapping.authority_property
    if prop and "authority" not in answers:
        roles = set(filter(None, (text_value(props.get(prop), prop) or "").split(";")))
        if roles & mapping.authority_roles:
            answers["authority"] = CriterionStatus.MET
    return answers


def _profile(mapping: ContactMapping, props: dict[str, Any]) -> dict[str, Any]:
    texts = ("email", "phone", "first_name", "last_name", "title", "company", "industry", "country")
    values: dict[str, Any] = {
        name: text_value(props.get(mapping.profile[name]), mapping.profile[name])
        for name in (*texts, "owner_id")
        if name in mapping.profile
    }
    if "employees" in mapping.profile:
        prop = mapping.profile["employees"]
        values["employees"] = company_size(props.get(prop), prop)
    if "merged_ids" in mapping.profile:
        prop = mapping.profile["merged_ids"]
        merged = text_value(props.get(prop), prop) or ""
        values["merged_ids"] = [part.strip() for part in merged.split(";") if part.strip()]
    return values


def _optional_text(props: dict[str, Any], prop: str | None) -> str | None:
    return text_value(props.get(prop), prop) if prop else None


def to_contact(
    mapping: ContactMapping,
    record: dict[str, Any],
    deals: list[Deal],
    tasks: list[ExistingTask],
) -> Contact:
    """A HubSpot contact (batch-read JSON) with its deals and tasks, as a canonical contact."""
    contact_id = record_id(record)
    if contact_id is None:
        raise fail("hs_object_id", "the record has no id", record)
    props = properties_of(record)
    source = _optional_text(props, mapping.origin_property)
    stage_value = _optional_text(props, mapping.owned.fields.get("stage"))
    bounce = props.get(mapping.hard_bounce) if mapping.hard_bounce else None
    unsubscribed = props.get(mapping.unsubscribed) if mapping.unsubscribed else None
    try:
        return Contact(
            id=contact_id,
            object_type=mapping.object_type,
            **_profile(mapping, props),
            origin=mapping.origin_of_source.get(source or "", Origin.UNKNOWN),
            created_at=parse_time(props.get("createdate"), "createdate"),
            updated_at=parse_time(props.get("lastmodifieddate"), "lastmodifieddate"),
            stage=mapping.owned.stage_of_value.get(stage_value or ""),
            unsubscribed=flag(unsubscribed, mapping.unsubscribed or "unsubscribed"),
            hard_bounced=not empty(bounce),
            qualification=_qualification(mapping, props),
            events=_events(mapping, props),
            deals=deals,
            tasks=tasks,
            owned=mapping.owned.read(props),
            source_digest=digest(record, mapping.digested),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = mapping.property_of(str(first["loc"][0])) if first["loc"] else "record"
        raise TranslationError(where, f"{where}: {first['msg']}") from None


def to_properties(mapping: ContactMapping, values: dict[str, Any]) -> dict[str, str]:
    """Canonical field values -> HubSpot property values (strings, as the API takes them)."""
    written = mapping.owned.write(values, "HubSpot property")
    return {prop: str(value) for prop, value in written.items()}


# deals, pipelines and tasks ----------------------------------------------------------------
def deal_stages(pipelines: dict[str, Any]) -> dict[str, tuple[bool, bool]]:
    """Deal stage id -> (closed, won), from the pipelines: never the literal 'closedwon'."""
    stages = {}
    for pipeline in objects(pipelines.get("results")):
        for stage in objects(pipeline.get("stages")):
            stage_id = record_id(stage)
            if stage_id is None:
                continue
            meta = stage.get("metadata") if isinstance(stage.get("metadata"), dict) else {}
            closed = str(meta.get("isClosed", "false")).lower() == "true"
            probability = lenient(finite_number, meta.get("probability") or 0, "probability")
            stages[stage_id] = (closed, closed and (probability or 0) >= 1.0)
    return stages


def to_deal(
    row: dict[str, Any], stages: dict[str, tuple[bool, bool]], recurring_property: str
) -> Deal:
    """A deal as context for its contacts; unreadable amounts and dates are left out."""
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    stage = lenient(text_value, props.get("dealstage"), "dealstage") or ""
    closed, won = stages.get(stage, (False, False))
    amount = lenient(finite_number, props.get("amount"), "amount")
    recurring = lenient(finite_number, props.get(recurring_property), recurring_property)
    return Deal(
        id=str(record_id(row)),
        status="won" if won else "lost" if closed else "open",
        amount=amount,
        recurring=(recurring or 0) > 0,
        closed_at=lenient(parse_time, props.get("closedate"), "closedate") if closed else None,
        created_at=lenient(
            parse_time, row.get("createdAt") or props.get("createdate"), "createdAt"
        ),
    )


TASK_PRIORITY = {"high": "HIGH", "medium": "MEDIUM", "low": "LOW"}
TASK_TYPE = {"call": "CALL", "email": "EMAIL", "todo": "TODO"}


def task_input(task: PlannedTask, key_property: str, association_type: int) -> dict[str, Any]:
    """A batch-create input: the task, its key, and its link to the contact."""
    properties = {
        "hs_task_subject": task.subject[:255],
        "hs_task_body": task.body,
        "hs_timestamp": format_time(task.due),
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": TASK_PRIORITY[task.priority],
        "hs_task_type": TASK_TYPE[task.task_type],
        key_property: task.key,
    }
    if task.owner_id:
        properties["hubspot_owner_id"] = task.owner_id
    return {
        "objectWriteTraceId": task.key,
        "properties": properties,
        "associations": [
            {
                "to": {"id": task.contact_id},
                "types": [
                    {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": association_type,
                    }
                ],
            }
        ],
    }


@dataclass(frozen=True)
class Related:
    """A contact's deals and tasks as HubSpot sent them, and what reading them needs."""

    deals: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    stages: dict[str, tuple[bool, bool]]
    recurring_property: str
    key_property: str


def translate_contact(mapping: ContactMapping, record: dict[str, Any], related: Related) -> Contact:
    """The whole translation of one read contact, deals and tasks included: what the core
    calls (through `RawContact.translate`) inside its guard."""
    deals = [to_deal(row, related.stages, related.recurring_property) for row in related.deals]
    tasks = [to_task(row, related.key_property) for row in related.tasks]
    return to_contact(mapping, record, deals, tasks)


def to_task(row: dict[str, Any], key_property: str) -> ExistingTask:
    """A task as context for its contact; an unreadable due date, time or key is left out.
    Its completion time is the CRM's `hs_task_completion_date`, kept only while the task is
    COMPLETED (a reopened task is open, whatever date it still carries)."""
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    completed = props.get("hs_task_status") == "COMPLETED"
    done_at = props.get("hs_task_completion_date") if completed else None
    return ExistingTask(
        id=str(record_id(row)),
        key=lenient(text_value, props.get(key_property), key_property),
        due=lenient(parse_time, props.get("hs_timestamp"), "hs_timestamp"),
        completed=completed,
        created_at=lenient(parse_time, props.get("hs_createdate"), "hs_createdate"),
        completed_at=lenient(parse_time, done_at, "hs_task_completion_date"),
        modified_at=lenient(parse_time, props.get("hs_lastmodifieddate"), "hs_lastmodifieddate"),
    )


FIELD_KINDS = {
    "string": "text",
    "phone_number": "text",
    "number": "number",
    "enumeration": "choice",
    "bool": "flag",
    "datetime": "datetime",
    "date": "date",
}
"""HubSpot property types in canonical terms (`FieldInfo.kind`)."""


def field_info(row: dict[str, Any]) -> FieldInfo:
    """One property definition as the contract describes a field: a calculated property, or
    one HubSpot marks read-only, cannot be written."""
    meta = row.get("modificationMetadata") or {}
    hubspot_type = str(row.get("type") or "")
    return FieldInfo(
        name=str(row.get("name")),
        label=str(row.get("label") or ""),
        type=hubspot_type,
        writable=not (meta.get("readOnlyValue", False) or row.get("calculated", False)),
        options=tuple(str(o.get("value")) for o in objects(row.get("options"))),
        kind=FIELD_KINDS.get(hubspot_type, ""),
    )
