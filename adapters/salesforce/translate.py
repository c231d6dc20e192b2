"""Salesforce records <-> the canonical model, driven by mappings/salesforce.toml. Pure.

A value that cannot be translated raises `TranslationError` naming the Salesforce field (for
related rows, `Object.Field`: `CampaignMember.Status`), so the record is reported and the rest
of the batch goes on. Harmless oddities are normalised, never refused: a numeric string in a
number field is read as its number, "true" / "false" in a checkbox as booleans, a stage,
rating, highest-stage or customer-type value the mapping does not know as "not ours yet"
(overwritten by the next write; the diff counts a highest stage it does not know as none), a
lead source it does not know as an unknown origin, and any value in the hard-bounce field as a
bounce. Markup and quotes in names are data: kept as they are, never interpreted.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_qualify.adapters.salesforce.history import LAST_CHANGE, last_change
from crm_qualify.adapters.salesforce.values import flag, number, parse_time, text, whole
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

REASONS_MAX = 32_000


def _scored_at(record: dict[str, Any], field: str) -> str | None:
    parsed = parse_time(record.get(field), field)
    return parsed.isoformat().replace("+00:00", "Z") if parsed else None


SALESFORCE = Spelling(
    text=text,
    number=number,
    flag=flag,
    time=_scored_at,
    empty=lambda record, field: record.get(field) in (None, ""),
    write_number=lambda value, _: float(value),
    write_flag=bool,
    cleared=None,
    reasons_max=REASONS_MAX,
)
"""Field values as the REST API's JSON types: numbers, booleans, null to clear."""


@dataclass(frozen=True)
class ObjectMapping:
    sobject: str
    where: str
    owned: OwnedFields
    profile: dict[str, str]

    @classmethod
    def from_document(cls, document: dict[str, Any], sobject: str) -> ObjectMapping:
        section = document["objects"][sobject]
        return cls(
            sobject=sobject,
            where=section.get("where", ""),
            owned=OwnedFields.from_section(section, SALESFORCE),
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
            *LAST_CHANGE,
            *mapping.owned.fields.values(),
            *mapping.profile.values(),
            *self.qualification.values(),
        ]
        names += [f for f in (self.unsubscribed, self.hard_bounce, self.lead_source) if f]
        return list(dict.fromkeys(names))


@dataclass
class Related:
    """What was read about a batch of people besides their own record, as Salesforce sent it
    (rows by person id): translated with the person, so a bad row fails only its person."""

    tasks: dict[str, list[dict[str, Any]]]
    events: dict[str, list[dict[str, Any]]]
    members: dict[str, list[dict[str, Any]]]
    campaigns: dict[str, dict[str, Any]]
    deals: dict[str, list[dict[str, Any]]]
    """Opportunity rows by contact id."""
    converted: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """The lead converted into each contact (by contact id), where it was looked up."""
    merged: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Ids of the records merged into each person (`MasterRecordId`), where looked up."""


def _matches(pattern: re.Pattern, value: str | None) -> bool:
    return bool(pattern.search(value or ""))


def _member_events(
    people: PeopleMapping, person_id: str, related: Related
) -> list[EngagementEvent]:
    events = []
    for member in related.members.get(person_id, []):
        campaign_id = text(member, "CampaignId", "CampaignMember") or ""
        campaign = related.campaigns.get(campaign_id, {})
        status = text(member, "Status", "CampaignMember")
        kind, name = text(campaign, "Type", "Campaign"), text(campaign, "Name", "Campaign")
        responded = member.get("FirstRespondedDate") or member.get("CreatedDate")
        at = parse_time(responded, "CampaignMember.FirstRespondedDate")
        for kinds, statuses, names, event in people.member_rules:
            if _matches(kinds, kind) and _matches(statuses, status) and _matches(names, name):
                if at:
                    # A record is a campaign's member once: a person's records in one
                    # campaign are one response of a kind (`decision/person.py`: the latest).
                    source = f"Campaign/{campaign_id}/{event.value}" if campaign_id else None
                    events.append(EngagementEvent(type=event, at=at, detail=name, source_id=source))
                break
    return events


def _activity_events(
    people: PeopleMapping, person_id: str, related: Related
) -> list[EngagementEvent]:
    events = []
    for task in related.tasks.get(person_id, []):
        if task.get(people.task_key):
            continue
        subject = text(task, "Subject", "Task")
        at = parse_time(task.get("ActivityDate") or task.get("CreatedDate"), "Task.ActivityDate")
        for subtype, subjects, event in people.task_rules:
            if (not subtype or task.get("TaskSubtype") == subtype) and _matches(subjects, subject):
                if at:
                    source = text(task, "Id", "Task")
                    events.append(
                        EngagementEvent(type=event, at=at, detail=subject, source_id=source)
                    )
                break
    if people.event_type:
        for meeting in related.events.get(person_id, []):
            when = meeting.get("ActivityDateTime") or meeting.get("CreatedDate")
            at = parse_time(when, "Event.ActivityDateTime")
            if at:
                detail = text(meeting, "Subject", "Event")
                source = text(meeting, "Id", "Event")
                events.append(
                    EngagementEvent(type=people.event_type, at=at, detail=detail, source_id=source)
                )
    return events


def _our_tasks(people: PeopleMapping, person_id: str, related: Related) -> list[ExistingTask]:
    tasks = []
    for task in related.tasks.get(person_id, []):
        key = text(task, people.task_key, "Task")
        if not key:
            continue
        day = parse_time(task.get("ActivityDate"), "Task.ActivityDate")
        try:
            due = day + timedelta(days=1) if day else None
        except OverflowError:
            raise TranslationError("Task.ActivityDate", "Task.ActivityDate: out of range") from None
        closed = flag(task, "IsClosed", "Task")
        tasks.append(
            ExistingTask(
                id=text(task, "Id", "Task") or "",
                key=key,
                due=due,
                due_is_day=True,
                completed=closed,
                created_at=_lenient_time(task, "CreatedDate"),
                completed_at=_lenient_time(task, "CompletedDateTime") if closed else None,
                modified_at=_lenient_time(task, "SystemModstamp"),
            )
        )
    return tasks


def _lenient_time(task: dict[str, Any], field: str) -> datetime | None:
    """A task's creation or completion time: only the SLA report reads them, so one that
    cannot be read is unknown rather than a reason to leave the person unscored."""
    try:
        return parse_time(task.get(field), f"Task.{field}")
    except TranslationError:
        return None


def _deals(people: PeopleMapping, person_id: str, related: Related) -> list[Deal]:
    return [_deal(people, row) for row in related.deals.get(person_id, [])]


def _deal(people: PeopleMapping, row: dict[str, Any]) -> Deal:
    won, closed = flag(row, "IsWon", "Opportunity"), flag(row, "IsClosed", "Opportunity")
    return Deal(
        id=text(row, "Id", "Opportunity") or "",
        status="won" if won else "lost" if closed else "open",
        amount=number(row, "Amount", "Opportunity"),
        recurring=_matches(people.recurring, text(row, "Type", "Opportunity")),
        closed_at=parse_time(row.get("CloseDate"), "Opportunity.CloseDate") if closed else None,
        created_at=_lenient_time(row, "CreatedDate"),
    )


def with_lead_history(
    contact: Contact, lead: dict[str, Any], mapping: ObjectMapping, people: PeopleMapping
) -> Contact:
    """A Contact with the history of the lead converted into it, where the Contact itself
    says nothing: the lead's stage (so the stage never moves back behind where the person
    was), its qualification answers and origin, its earlier creation, and the opportunity
    it was converted into (`ConvertedOpportunity`) when no contact role names it. The lead's
    stage value is read with the Contact's stage table (the same picklist on both objects)."""
    stage = contact.stage or mapping.owned.stage_of_value.get(
        text(lead, mapping.owned.fields.get("stage", ""), "Lead") or ""
    )
    created = parse_time(lead.get("CreatedDate"), "Lead.CreatedDate")
    deals = list(contact.deals)
    opportunity = lead.get("ConvertedOpportunity")
    if isinstance(opportunity, dict) and opportunity.get("Id") not in {d.id for d in deals}:
        deals.append(_deal(people, opportunity))
    return contact.model_copy(
        update={
            "stage": stage,
            "qualification": {**_answers(people, lead), **contact.qualification},
            "origin": contact.origin
            if contact.origin is not Origin.UNKNOWN
            else _origin(people, lead),
            "created_at": min((t for t in (contact.created_at, created) if t), default=None),
            "deals": deals,
        }
    )


def _origin(people: PeopleMapping, record: dict[str, Any]) -> Origin:
    source = text(record, people.lead_source) if people.lead_source else None
    if source in people.inbound:
        return Origin.INBOUND
    return Origin.OUTBOUND if source in people.outbound else Origin.UNKNOWN


def _answers(people: PeopleMapping, record: dict[str, Any]) -> dict[str, CriterionStatus]:
    answers = {}
    for criterion, field in people.qualification.items():
        value = text(record, field)
        if value:
            if value not in people.answers:
                raise TranslationError(field, f"{field}: unknown answer {value[:40]!r}")
            answers[criterion] = people.answers[value]
    return answers


def to_contact(
    mapping: ObjectMapping,
    people: PeopleMapping,
    record: dict[str, Any],
    related: Related,
    ours: str | None = None,
) -> Contact:
    """One Lead or Contact row and its related rows -> a canonical Contact; the first value
    that cannot be read raises `TranslationError` naming its Salesforce field. `ours`: the
    integration user, who the record's last change is told apart from (`last_change`)."""
    profile = mapping.profile
    person_id = text(record, "Id")
    if not person_id:
        raise TranslationError("Id", "Id: the record has no Id")
    stage_value = text(record, mapping.owned.fields.get("stage", "")) or ""
    try:
        contact = Contact(
            id=person_id,
            object_type=mapping.sobject,
            email=text(record, profile.get("email", "")),
            phone=text(record, profile.get("phone", "")),
            first_name=text(record, profile.get("first_name", "")),
            last_name=text(record, profile.get("last_name", "")),
            title=text(record, profile.get("title", "")),
            company=text(record, profile.get("company", "")),
            industry=text(record, profile.get("industry", "")),
            employees=whole(record, profile.get("employees", "")),
            country=text(record, profile.get("country", "")),
            owner_id=text(record, profile.get("owner_id", "")),
            merged_ids=related.merged.get(person_id, []),
            origin=_origin(people, record),
            created_at=parse_time(record.get("CreatedDate"), "CreatedDate"),
            updated_at=parse_time(record.get("SystemModstamp"), "SystemModstamp"),
            stage=mapping.owned.stage_of_value.get(stage_value),
            unsubscribed=flag(record, people.unsubscribed),
            hard_bounced=bool(people.hard_bounce and record.get(people.hard_bounce)),
            qualification=_answers(people, record),
            events=_member_events(people, person_id, related)
            + _activity_events(people, person_id, related),
            deals=_deals(people, person_id, related),
            tasks=_our_tasks(people, person_id, related),
            owned=mapping.owned.read(record),
            last_change=last_change(record, ours),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        canonical = str(first["loc"][0]) if first["loc"] else ""
        where = (
            profile.get(canonical) or mapping.owned.fields.get(canonical) or canonical or "record"
        )
        raise TranslationError(where, f"{where}: {first['msg']}") from None
    lead = related.converted.get(person_id)
    return with_lead_history(contact, lead, mapping, people) if lead else contact


def to_fields(mapping: ObjectMapping, values: dict[str, Any]) -> dict[str, Any]:
    """Canonical values -> Salesforce field values (JSON types the REST API takes)."""
    return mapping.owned.write(values, f"{mapping.sobject} field")


PRIORITY = {"high": "High", "medium": "Normal", "low": "Low"}


def task_record(task: PlannedTask, key_field: str) -> dict[str, Any]:
    """A Task to upsert by `key_field`. No Status: Salesforce gives a new task its default
    (Not Started), and an upsert that finds the task already there leaves its status alone."""
    record = {
        "attributes": {"type": "Task"},
        "WhoId": task.contact_id,
        "Subject": task.subject[:255],
        "Description": task.body[:32_000],
        "ActivityDate": task.due.astimezone(UTC).date().isoformat(),
        "Priority": PRIORITY[task.priority],
        "TaskSubtype": "Call" if task.task_type == "call" else "Task",
        key_field: task.key,
    }
    if task.owner_id and task.owner_id.startswith("005"):
        record["OwnerId"] = task.owner_id
    return record


FIELD_KINDS = {
    **dict.fromkeys(("string", "textarea", "phone", "encryptedstring"), "text"),
    **dict.fromkeys(("double", "int", "long", "percent", "currency"), "number"),
    **dict.fromkeys(("picklist", "multipicklist"), "choice"),
    "boolean": "flag",
    "datetime": "datetime",
    "date": "date",
}
"""Salesforce field types in canonical terms (`FieldInfo.kind`)."""


def field_info(field: dict[str, Any]) -> FieldInfo:
    """One field of a describe answer, as the contract reports it: a picklist that is not
    restricted takes any text; an inactive value is no option; a text field's `length` is
    the most characters it takes (Salesforce refuses the whole record, STRING_TOO_LONG, for
    a longer value: the core cuts it, `OwnedFields.write`)."""
    kind = FIELD_KINDS.get(field["type"], "")
    if kind == "choice" and not field.get("restrictedPicklist"):
        kind = "text"
    length = field.get("length")
    return FieldInfo(
        name=field["name"],
        type=field["type"],
        label=field.get("label", ""),
        writable=bool(field.get("updateable")),
        options=tuple(
            p["value"] for p in field.get("picklistValues") or [] if p.get("active", True)
        ),
        kind=kind,
        length=length if kind == "text" and isinstance(length, int) and length > 0 else None,
    )
