"""Salesforce records <-> the canonical model, driven by mappings/salesforce.toml. Pure.

A value that cannot be translated raises `TranslationError` naming the field, so the record
is reported and the rest of the batch goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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

REASONS_MAX = 32_000
_NUMBERS = {"score", "fit_score", "engagement_score", "intent_score"}


@dataclass(frozen=True)
class ObjectMapping:
    sobject: str
    where: str
    fields: dict[str, str]
    stages: dict[str, str]
    stage_of_value: dict[str, Stage]
    temperatures: dict[str, str]
    temperature_of_value: dict[str, str]
    profile: dict[str, str]

    @classmethod
    def from_document(cls, document: dict[str, Any], sobject: str) -> ObjectMapping:
        section = document["objects"][sobject]
        stages = dict(section.get("stages", {}))
        temperatures = dict(section.get("temperatures", {}))
        return cls(
            sobject=sobject,
            where=section.get("where", ""),
            fields=dict(section.get("fields", {})),
            stages=stages,
            stage_of_value={v: Stage(k) for k, v in stages.items()},
            temperatures=temperatures,
            temperature_of_value={v: k for k, v in temperatures.items()},
            profile=dict(section.get("profile", {})),
        )


@dataclass(frozen=True)
class PeopleMapping:
    """What Leads and Contacts share: consent, origin, qualification, engagement rules."""

    unsubscribed: str | None
    hard_bounce: str | None
    lead_source: str | None
    inbound: frozenset[str]
    outbound: frozenset[str]
    qualification: dict[str, str]
    answers: dict[str, CriterionStatus]
    member_rules: list[tuple[re.Pattern, re.Pattern, re.Pattern, EventType]]
    task_rules: list[tuple[str, re.Pattern, EventType]]
    event_type: EventType | None
    recurring: re.Pattern
    task_key: str

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> PeopleMapping:
        people = document.get("people", {})
        engagement = document.get("engagement", {})

        def pattern(text: str | None) -> re.Pattern:
            return re.compile(text or ".*", re.IGNORECASE)

        return cls(
            unsubscribed=people.get("unsubscribed"),
            hard_bounce=people.get("hard_bounce"),
            lead_source=people.get("lead_source"),
            inbound=frozenset(people.get("inbound_sources", [])),
            outbound=frozenset(people.get("outbound_sources", [])),
            qualification=dict(people.get("qualification", {})),
            answers={
                k: CriterionStatus(v) for k, v in people.get("qualification_values", {}).items()
            },
            member_rules=[
                (
                    pattern(r.get("type")),
                    pattern(r.get("status")),
                    pattern(r.get("name")),
                    EventType(r["event"]),
                )
                for r in engagement.get("campaign_members", [])
            ],
            task_rules=[
                (r.get("subtype", ""), pattern(r.get("subject")), EventType(r["event"]))
                for r in engagement.get("tasks", [])
            ],
            event_type=(
                EventType(engagement["events"]["event"]) if "events" in engagement else None
            ),
            recurring=pattern(document.get("deals", {}).get("recurring_types", "^$")),
            task_key=document.get("tasks", {}).get("key_field", "CRMQ_Task_Key__c"),
        )

    def read_fields(self, mapping: ObjectMapping) -> list[str]:
        names = [
            "Id",
            "CreatedDate",
            "SystemModstamp",
            *mapping.fields.values(),
            *mapping.profile.values(),
            *self.qualification.values(),
        ]
        names += [f for f in (self.unsubscribed, self.hard_bounce, self.lead_source) if f]
        return list(dict.fromkeys(names))


def parse_time(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        text = str(value).replace("Z", "+00:00")
        if re.search(r"[+-]\d{4}$", text):
            text = text[:-2] + ":" + text[-2:]
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TranslationError(field, f"{field}: not a date: {str(value)[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _owned(mapping: ObjectMapping, record: dict[str, Any]) -> dict[str, Any]:
    owned: dict[str, Any] = {}
    for name, field in mapping.fields.items():
        value = record.get(field)
        if value in (None, ""):
            continue
        if name == "stage":
            stage = mapping.stage_of_value.get(value)
            owned[name] = stage.value if stage else value
        elif name == "temperature":
            owned[name] = mapping.temperature_of_value.get(value, value)
        elif name in _NUMBERS:
            try:
                owned[name] = float(value)
            except (TypeError, ValueError):
                raise TranslationError(field, f"{field}: not a number: {value!r}") from None
        elif name == "scored_at":
            parsed = parse_time(value, field)
            owned[name] = parsed.isoformat().replace("+00:00", "Z") if parsed else None
        else:
            owned[name] = value
    return owned


@dataclass
class Related:
    """What was read about a batch of people besides their own record."""

    tasks: dict[str, list[dict[str, Any]]]
    events: dict[str, list[dict[str, Any]]]
    members: dict[str, list[dict[str, Any]]]
    campaigns: dict[str, dict[str, Any]]
    deals: dict[str, list[Deal]]


def _events(people: PeopleMapping, person_id: str, related: Related) -> list[EngagementEvent]:
    events = []
    for member in related.members.get(person_id, []):
        campaign = related.campaigns.get(member.get("CampaignId") or "", {})
        at = parse_time(
            member.get("FirstRespondedDate") or member.get("CreatedDate"), "CampaignMember"
        )
        for kind, status, name, event in people.member_rules:
            if (
                kind.search(campaign.get("Type") or "")
                and status.search(member.get("Status") or "")
                and name.search(campaign.get("Name") or "")
            ):
                if at:
                    events.append(EngagementEvent(type=event, at=at, detail=campaign.get("Name")))
                break
    for task in related.tasks.get(person_id, []):
        if task.get(people.task_key):
            continue
        at = parse_time(task.get("ActivityDate") or task.get("CreatedDate"), "Task.ActivityDate")
        for subtype, subject, event in people.task_rules:
            if (not subtype or task.get("TaskSubtype") == subtype) and subject.search(
                task.get("Subject") or ""
            ):
                if at:
                    events.append(EngagementEvent(type=event, at=at, detail=task.get("Subject")))
                break
    if people.event_type:
        for meeting in related.events.get(person_id, []):
            at = parse_time(meeting.get("ActivityDateTime") or meeting.get("CreatedDate"), "Event")
            if at:
                events.append(
                    EngagementEvent(type=people.event_type, at=at, detail=meeting.get("Subject"))
                )
    return events


def _our_tasks(people: PeopleMapping, person_id: str, related: Related) -> list[ExistingTask]:
    tasks = []
    for task in related.tasks.get(person_id, []):
        key = task.get(people.task_key)
        if not key:
            continue
        day = parse_time(task.get("ActivityDate"), "Task.ActivityDate")
        tasks.append(
            ExistingTask(
                id=task["Id"],
                key=key,
                due=day + timedelta(days=1) if day else None,
                completed=bool(task.get("IsClosed")),
            )
        )
    return tasks


def to_contact(
    mapping: ObjectMapping, people: PeopleMapping, record: dict[str, Any], related: Related
) -> Contact:
    profile = mapping.profile
    person_id = record["Id"]
    source = record.get(people.lead_source) if people.lead_source else None
    origin = (
        Origin.INBOUND
        if source in people.inbound
        else Origin.OUTBOUND
        if source in people.outbound
        else Origin.UNKNOWN
    )
    answers = {}
    for criterion, field in people.qualification.items():
        value = record.get(field)
        if value:
            if value not in people.answers:
                raise TranslationError(field, f"{field}: unknown answer {value!r}")
            answers[criterion] = people.answers[value]
    employees_field = profile.get("employees", "")
    employees = record.get(employees_field)
    try:
        headcount = int(employees) if employees not in (None, "") else None
    except (TypeError, ValueError):
        raise TranslationError(
            employees_field, f"{employees_field}: not a whole number: {str(employees)[:40]!r}"
        ) from None
    owned = _owned(mapping, record)
    events = _events(people, person_id, related)
    tasks = _our_tasks(people, person_id, related)
    try:
        return Contact(
            id=person_id,
            object_type=mapping.sobject,
            email=record.get(profile.get("email", "")) or None,
            first_name=record.get(profile.get("first_name", "")) or None,
            last_name=record.get(profile.get("last_name", "")) or None,
            title=record.get(profile.get("title", "")) or None,
            company=record.get(profile.get("company", "")) or None,
            industry=record.get(profile.get("industry", "")) or None,
            employees=headcount,
            country=record.get(profile.get("country", "")) or None,
            owner_id=record.get(profile.get("owner_id", "")) or None,
            origin=origin,
            created_at=parse_time(record.get("CreatedDate"), "CreatedDate"),
            updated_at=parse_time(record.get("SystemModstamp"), "SystemModstamp"),
            stage=mapping.stage_of_value.get(record.get(mapping.fields.get("stage", "")) or ""),
            unsubscribed=bool(people.unsubscribed and record.get(people.unsubscribed)),
            hard_bounced=bool(people.hard_bounce and record.get(people.hard_bounce)),
            qualification=answers,
            events=events,
            deals=related.deals.get(person_id, []),
            tasks=tasks,
            owned=owned,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        raise TranslationError(where, f"{where}: {first['msg']}") from None


def to_fields(mapping: ObjectMapping, values: dict[str, Any]) -> dict[str, Any]:
    """Canonical values -> Salesforce field values (JSON types the REST API takes)."""
    fields: dict[str, Any] = {}
    for name, value in values.items():
        field = mapping.fields.get(name)
        if field is None:
            raise TranslationError(name, f"{name}: no {mapping.sobject} field in the mapping")
        if value is None:
            fields[field] = None
        elif name == "stage":
            if value not in mapping.stages:
                raise TranslationError(field, f"{field}: no value for stage {value}")
            fields[field] = mapping.stages[value]
        elif name == "temperature":
            fields[field] = mapping.temperatures.get(value, value)
        elif name in _NUMBERS:
            fields[field] = float(value)
        elif name == "renurture":
            fields[field] = bool(value)
        elif name == "reasons":
            text = str(value)
            fields[field] = text if len(text) <= REASONS_MAX else text[: REASONS_MAX - 1] + "…"
        else:
            fields[field] = value
    return fields


PRIORITY = {"high": "High", "medium": "Normal", "low": "Low"}


def task_record(task: PlannedTask, key_field: str) -> dict[str, Any]:
    record = {
        "attributes": {"type": "Task"},
        "WhoId": task.contact_id,
        "Subject": task.subject[:255],
        "Description": task.body[:32_000],
        "ActivityDate": task.due.astimezone(UTC).date().isoformat(),
        "Priority": PRIORITY[task.priority],
        "Status": "Not Started",
        "TaskSubtype": "Call" if task.task_type == "call" else "Task",
        key_field: task.key,
    }
    if task.owner_id and task.owner_id.startswith("005"):
        record["OwnerId"] = task.owner_id
    return record
