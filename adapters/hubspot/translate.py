"""HubSpot records <-> the canonical model, driven by the mapping data (mappings/hubspot.toml).

Pure functions. A value that cannot be translated raises `TranslationError` naming the
property, so the record is reported and the rest of the batch goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crm_qualify.connector.contract import TranslationError
from crm_qualify.connector.model import (
    Contact,
    CriterionStatus,
    Deal,
    EngagementEvent,
    EventType,
    ExistingTask,
    Origin,
    PlannedTask,
    Stage,
)
from pydantic import ValidationError

REASONS_MAX = 65_000  # HubSpot text properties hold 65,536 characters
_NUMBER_FIELDS = {"score", "fit_score", "engagement_score", "intent_score"}


@dataclass(frozen=True)
class ContactMapping:
    """The `objects.<type>` section of the mapping, prepared for fast look-ups."""

    object_type: str
    fields: dict[str, str]
    stages: dict[str, str]
    stage_of_value: dict[str, Stage]
    temperatures: dict[str, str]
    profile: dict[str, str]
    origin_property: str | None
    origin_of_source: dict[str, Origin]
    unsubscribed: str | None
    hard_bounce: str | None
    qualification: dict[str, str]
    authority_property: str | None
    authority_roles: frozenset[str]
    counters: list[tuple[EventType, str, str]]
    dates: list[tuple[EventType, str]]
    conversion_pairs: list[tuple[str, str]]
    conversion_rules: list[tuple[re.Pattern[str], EventType]]
    properties: list[str] = field(default_factory=list)

    @classmethod
    def from_document(cls, document: dict[str, Any], object_type: str) -> ContactMapping:
        section = document["objects"][object_type]
        stages = dict(section.get("stages", {}))
        origin = section.get("origin", {})
        consent = section.get("consent", {})
        authority = section.get("authority", {})
        conversions = section.get("conversions", {})
        mapping = cls(
            object_type=object_type,
            fields=dict(section.get("fields", {})),
            stages=stages,
            stage_of_value={value: Stage(name) for name, value in stages.items()},
            temperatures=dict(section.get("temperatures", {})),
            profile=dict(section.get("profile", {})),
            origin_property=origin.get("property"),
            origin_of_source={
                **{s: Origin.INBOUND for s in origin.get("inbound", [])},
                **{s: Origin.OUTBOUND for s in origin.get("outbound", [])},
            },
            unsubscribed=consent.get("unsubscribed"),
            hard_bounce=consent.get("hard_bounce"),
            qualification=dict(section.get("qualification", {})),
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
        return mapping

    def read_properties(self) -> list[str]:
        """Every contact property a read needs, once."""
        names = ["lastmodifieddate", "createdate", *self.fields.values(), *self.profile.values()]
        names += [p for p in (self.origin_property, self.unsubscribed, self.hard_bounce) if p]
        names += list(self.qualification.values())
        names += [self.authority_property] if self.authority_property else []
        names += [prop for _, count, at in self.counters for prop in (count, at)]
        names += [at for _, at in self.dates]
        names += [prop for pair in self.conversion_pairs for prop in pair]
        return list(dict.fromkeys(names))


def parse_time(value: str | None, prop: str) -> datetime | None:
    """HubSpot sends datetimes as ISO 8601 or as epoch milliseconds, dates as YYYY-MM-DD."""
    if value in (None, ""):
        return None
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TranslationError(prop, f"{prop}: not a date: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _count(value: str | None, prop: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return max(0, int(float(value)))
    except ValueError:
        raise TranslationError(prop, f"{prop}: not a number: {value[:40]!r}") from None


def _number(value: str, prop: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise TranslationError(prop, f"{prop}: not a number: {value[:40]!r}") from None


def _employees(value: str | None) -> int | None:
    """`numemployees` is a bucket ("100-500", "1000+"): the lower bound."""
    if not value:
        return None
    match = re.match(r"\s*(\d[\d,]*)", value)
    return int(match.group(1).replace(",", "")) if match else None


def _owned(mapping: ContactMapping, props: dict[str, Any]) -> dict[str, Any]:
    owned: dict[str, Any] = {}
    for name, prop in mapping.fields.items():
        value = props.get(prop)
        if value in (None, ""):
            continue
        if name == "stage":
            stage = mapping.stage_of_value.get(value)
            owned[name] = stage.value if stage else value
        elif name == "temperature":
            reverse = {v: k for k, v in mapping.temperatures.items()}
            owned[name] = reverse.get(value, value)
        elif name in _NUMBER_FIELDS:
            owned[name] = _number(value, prop)
        elif name == "renurture":
            owned[name] = value == "true"
        elif name == "scored_at":
            parsed = parse_time(value, prop)
            owned[name] = parsed.isoformat().replace("+00:00", "Z") if parsed else None
        else:
            owned[name] = value
    return owned


def _events(mapping: ContactMapping, props: dict[str, Any]) -> list[EngagementEvent]:
    events = []
    for kind, count_prop, at_prop in mapping.counters:
        count, at = (
            _count(props.get(count_prop), count_prop),
            parse_time(props.get(at_prop), at_prop),
        )
        if count and at:
            events.append(EngagementEvent(type=kind, at=at, count=count))
    for kind, at_prop in mapping.dates:
        if at := parse_time(props.get(at_prop), at_prop):
            events.append(EngagementEvent(type=kind, at=at))
    seen = set()
    for name_prop, at_prop in mapping.conversion_pairs:
        name, at = props.get(name_prop), parse_time(props.get(at_prop), at_prop)
        if not name or not at or (name, at) in seen:
            continue
        seen.add((name, at))
        kind = next(
            (event for pattern, event in mapping.conversion_rules if pattern.search(name)),
            EventType.FORM_SUBMISSION,
        )
        events.append(EngagementEvent(type=kind, at=at, detail=name[:200]))
    return events


def _qualification(mapping: ContactMapping, props: dict[str, Any]) -> dict[str, CriterionStatus]:
    answers = {}
    for criterion, prop in mapping.qualification.items():
        value = props.get(prop)
        if value:
            try:
                answers[criterion] = CriterionStatus(value)
            except ValueError:
                raise TranslationError(prop, f"{prop}: unknown answer {value[:40]!r}") from None
    if mapping.authority_property and "authority" not in answers:
        roles = set(filter(None, (props.get(mapping.authority_property) or "").split(";")))
        if roles & mapping.authority_roles:
            answers["authority"] = CriterionStatus.MET
    return answers


def to_contact(
    mapping: ContactMapping,
    record: dict[str, Any],
    deals: list[Deal],
    tasks: list[ExistingTask],
) -> Contact:
    """A HubSpot contact (batch-read JSON) with its deals and tasks, as a canonical contact."""
    props = record.get("properties") or {}
    profile = mapping.profile
    source = props.get(mapping.origin_property) if mapping.origin_property else None
    bounce = props.get(mapping.hard_bounce) if mapping.hard_bounce else None
    stage_value = props.get(mapping.fields.get("stage", ""))
    try:
        return Contact(
            id=str(record["id"]),
            object_type=mapping.object_type,
            email=props.get(profile.get("email", "")) or None,
            first_name=props.get(profile.get("first_name", "")) or None,
            last_name=props.get(profile.get("last_name", "")) or None,
            title=props.get(profile.get("title", "")) or None,
            company=props.get(profile.get("company", "")) or None,
            industry=props.get(profile.get("industry", "")) or None,
            employees=_employees(props.get(profile.get("employees", ""))),
            country=props.get(profile.get("country", "")) or None,
            owner_id=props.get(profile.get("owner_id", "")) or None,
            origin=mapping.origin_of_source.get(source or "", Origin.UNKNOWN),
            created_at=parse_time(props.get("createdate"), "createdate"),
            updated_at=parse_time(props.get("lastmodifieddate"), "lastmodifieddate"),
            stage=mapping.stage_of_value.get(stage_value or ""),
            unsubscribed=bool(mapping.unsubscribed and props.get(mapping.unsubscribed) == "true"),
            hard_bounced=bool(bounce),
            qualification=_qualification(mapping, props),
            events=_events(mapping, props),
            deals=deals,
            tasks=tasks,
            owned=_owned(mapping, props),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        raise TranslationError(where, f"{where}: {first['msg']}") from None


def to_properties(mapping: ContactMapping, values: dict[str, Any]) -> dict[str, str]:
    """Canonical field values -> HubSpot property values (strings, as the API takes them).
    A canonical stage without a HubSpot value (target) is not written."""
    properties: dict[str, str] = {}
    for name, value in values.items():
        prop = mapping.fields.get(name)
        if prop is None:
            raise TranslationError(name, f"{name}: no HubSpot property in the mapping")
        if value is None:
            properties[prop] = ""  # clears the property (rollback to "never set")
            continue
        if name == "stage":
            if value not in mapping.stages:
                continue
            value = mapping.stages[value]
        elif name == "temperature":
            value = mapping.temperatures.get(value, value)
        elif name == "renurture":
            value = "true" if value else "false"
        elif name == "reasons" and isinstance(value, str) and len(value) > REASONS_MAX:
            value = value[: REASONS_MAX - 1] + "…"
        properties[prop] = str(value)
    return properties


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


def to_task(record: dict[str, Any], key_property: str) -> ExistingTask:
    props = record.get("properties") or {}
    return ExistingTask(
        id=str(record["id"]),
        key=props.get(key_property) or None,
        due=parse_time(props.get("hs_timestamp"), "hs_timestamp"),
        completed=props.get("hs_task_status") == "COMPLETED",
    )
