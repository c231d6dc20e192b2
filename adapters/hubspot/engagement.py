"""HubSpot engagement -> canonical events, driven by the `[engagement]` section of the mapping
(mappings/hubspot.toml): plain data, so a portal's own forms, call outcomes or event types are
named there, not here.

Sources and their rules:
- `activities`: calls, meetings, emails, notes and communications linked to the contact. A
  row gives the event of the first rule for its object whose `where` patterns (property ->
  case-insensitive regular expression, all must match) match; dated by the rule's `at`
  property (`hs_timestamp` by default). No rule matches: no event (an outgoing sales email
  is the rep's action, not the contact's).
- `forms`: each submission gives the event of the first rule whose `form` pattern matches the
  form's name (or equals its id); `forms_default` for the rest ("" leaves them out). A
  contact's submissions are those under its email or an additional email; its first and
  recent conversion (its own properties) that none of them matches were sent from an address
  it no longer has, and count as submissions of a form by that name (`proven_conversions`).
- `marketing_events`: each participation gives the event of the first rule whose `type`
  (the event's type) and `state` (its attendance state) patterns match: one event per
  participation, so an attendee counts as attended, not also as registered.

A source that replaces one of the contact's own summaries names it: the contact-property
events whose mapping entry says `fallback_for = "<source>"` are used only while that source
is not read (not in the mapping, or the portal refuses it): counted once, never twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from crm_qualify.adapters.hubspot.translate import ContactMapping
from crm_qualify.adapters.hubspot.values import lenient, parse_time, properties_of, text_value
from crm_qualify.connector.model import EngagementEvent, EventType

ACTIVITY_TYPES = ("calls", "meetings", "emails", "notes", "communications")
FORMS, MARKETING_EVENTS = "forms", "marketing_events"
DETAIL_MAX = 200
SAME_SUBMISSION_MS = 60_000
"""A conversion property dated this close to a submission of its form found is that
submission: HubSpot stamps both from it (a slack for clocks that differ)."""


@dataclass(frozen=True)
class ActivityRule:
    event: EventType
    at: str
    where: tuple[tuple[str, re.Pattern[str]], ...]

    def matches(self, props: dict[str, Any]) -> bool:
        return all(
            pattern.search(lenient(text_value, props.get(name), name) or "")
            for name, pattern in self.where
        )


@dataclass(frozen=True)
class ParticipationRule:
    event: EventType
    event_type: re.Pattern[str] | None
    state: re.Pattern[str] | None


@dataclass(frozen=True)
class EngagementMapping:
    """The `[engagement]` section, prepared."""

    activities: dict[str, list[ActivityRule]] = field(default_factory=dict)
    forms: list[tuple[re.Pattern[str], EventType]] = field(default_factory=list)
    forms_default: EventType | None = None
    read_forms: bool = False
    participations: list[ParticipationRule] = field(default_factory=list)
    read_marketing_events: bool = False

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> EngagementMapping:
        section = document.get("engagement", {})
        activities: dict[str, list[ActivityRule]] = {}
        for rule in section.get("activities", []):
            kind = rule["object"]
            if kind not in ACTIVITY_TYPES:
                raise ValueError(f"engagement.activities: unknown object {kind!r}")
            activities.setdefault(kind, []).append(
                ActivityRule(
                    EventType(rule["event"]),
                    rule.get("at", "hs_timestamp"),
                    tuple((p, _pattern(v)) for p, v in rule.get("where", {}).items()),
                )
            )
        default = section.get("forms_default", "form_submission")
        return cls(
            activities=activities,
            forms=[(_pattern(r["form"]), EventType(r["event"])) for r in section.get("forms", [])],
            forms_default=EventType(default) if default else None,
            read_forms="forms" in section or "forms_default" in section,
            participations=[
                ParticipationRule(
                    EventType(r["event"]),
                    _pattern(r["type"]) if r.get("type") else None,
                    _pattern(r["state"]) if r.get("state") else None,
                )
                for r in section.get("marketing_events", [])
            ],
            read_marketing_events=bool(section.get("marketing_events")),
        )

    def properties(self, kind: str) -> list[str]:
        """What a batch read of one activity type asks for."""
        names = ["hs_timestamp", "hs_createdate"]
        for rule in self.activities.get(kind, []):
            names += [rule.at, *(name for name, _ in rule.where)]
        return list(dict.fromkeys(names))

    def sources(self) -> list[str]:
        """Every source the mapping reads, by name (activity types, forms, marketing events)."""
        found = list(self.activities)
        found += [FORMS] if self.read_forms else []
        return found + ([MARKETING_EVENTS] if self.read_marketing_events else [])


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


def without_fallbacks(
    mapping: ContactMapping, document: dict[str, Any], sources: set[str]
) -> ContactMapping:
    """The contact mapping without the summaries that `sources` (read this run) replace."""
    section = document["objects"][mapping.object_type]

    def kept(entries: list[dict[str, Any]]) -> set[str]:
        return {e["event"] for e in entries if e.get("fallback_for") not in sources}

    counters, dates = kept(section.get("counters", [])), kept(section.get("dates", []))
    conversions = section.get("conversions", {})
    reduced = replace(
        mapping,
        counters=[c for c in mapping.counters if c[0].value in counters],
        dates=[d for d in mapping.dates if d[0].value in dates],
        conversion_pairs=(
            [] if conversions.get("fallback_for") in sources else mapping.conversion_pairs
        ),
        properties=[],
    )
    reduced.properties.extend(reduced.read_properties())  # nothing read that is not used
    return reduced


# ----- rows -> events ---------------------------------------------------------------------------
def activity_events(
    rules: dict[str, list[ActivityRule]], rows: dict[str, list[dict[str, Any]]]
) -> list[EngagementEvent]:
    """Events of a contact's activity rows, by type; an undated row gives none (a malformed
    activity is context: it never fails its contact)."""
    events = []
    for kind, kind_rows in rows.items():
        for row in kind_rows:
            props = properties_of(row)
            rule = next((r for r in rules.get(kind, []) if r.matches(props)), None)
            if rule is None:
                continue
            at = lenient(parse_time, props.get(rule.at), rule.at)
            if at is not None:
                source = f"{kind}/{row['id']}" if row.get("id") else None
                events.append(
                    EngagementEvent(type=rule.event, at=at, detail=kind[:-1], source_id=source)
                )
    return events


@dataclass(frozen=True)
class Submission:
    form_id: str
    form_name: str
    at_ms: int
    submission_id: str = ""
    """Its conversion id (or form and time) in the index; "" for a conversion that only the
    contact's own properties show."""


def proven_conversions(
    pairs: list[tuple[str, str]], props: dict[str, Any], found: list[Submission]
) -> list[Submission]:
    """The conversions a contact's own properties show (`pairs`: name and date properties)
    that no submission `found` under its addresses is: sent from an address it had then (its
    email changed since), they are its all the same. A malformed value fails the contact,
    naming the property, as when these properties stand in for the forms."""
    proven: dict[int, Submission] = {}
    for name_prop, at_prop in pairs:
        name = text_value(props.get(name_prop), name_prop)
        at = parse_time(props.get(at_prop), at_prop)
        if not name or at is None:
            continue
        at_ms = int(at.timestamp() * 1000)
        if not any(_same_submission(item, name, at_ms) for item in found):
            proven[at_ms] = Submission("", name, at_ms)
    return list(proven.values())


def _same_submission(item: Submission, name: str, at_ms: int) -> bool:
    """A conversion is a submission found when both are of one form (the conversion's name
    holds the form's: HubSpot may prefix it with the page's) and close in time: another form
    sent within the minute from the contact's new address is another conversion."""
    form = item.form_name.casefold()
    return abs(item.at_ms - at_ms) <= SAME_SUBMISSION_MS and bool(form) and form in name.casefold()


def form_events(mapping: EngagementMapping, found: list[Submission]) -> list[EngagementEvent]:
    events = []
    for item in found:
        kind = next(
            (
                event
                for pattern, event in mapping.forms
                if pattern.pattern == item.form_id or pattern.search(item.form_name)
            ),
            mapping.forms_default,
        )
        if kind is not None:
            events.append(
                EngagementEvent(
                    type=kind,
                    at=_moment(item.at_ms),
                    detail=item.form_name[:DETAIL_MAX],
                    source_id=f"{FORMS}/{item.submission_id}" if item.submission_id else None,
                )
            )
    return events


@dataclass(frozen=True)
class Participation:
    event_id: str
    event_name: str
    event_type: str
    state: str
    at_ms: int


def participation_events(
    rules: list[ParticipationRule], found: list[Participation]
) -> list[EngagementEvent]:
    events = []
    for item in found:
        rule = next(
            (
                r
                for r in rules
                if (r.event_type is None or r.event_type.search(item.event_type))
                and (r.state is None or r.state.search(item.state))
            ),
            None,
        )
        if rule is not None:
            detail = item.event_name[:DETAIL_MAX]
            events.append(EngagementEvent(type=rule.event, at=_moment(item.at_ms), detail=detail))
    return events


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
