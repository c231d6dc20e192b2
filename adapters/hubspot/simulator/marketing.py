"""Forms with their submissions, and marketing events with their participations: portal data
that is not a CRM object, kept beside the store (`Store.marketing`) under its lock.

Shapes follow HubSpot: form definitions as the forms v3 API serves them
(`HubSpotFormDefinition`), submissions as the legacy `form-integrations/v1` API does
(`conversionId`, `submittedAt` in epoch ms, `values` as name/value pairs, `pageUrl`), newest
first; marketing events as `MarketingEventPublicReadResponseV2`, participations as
`ParticipationBreakdown`. A submission updates its contact as HubSpot does (conversion
properties, `lastmodifieddate`); a participation does not touch the contact, but moves its
event's `updatedAt` and counters.
"""

from __future__ import annotations

import bisect
import uuid
from dataclasses import dataclass, field
from typing import Any

from .values import format_ms

ATTENDANCE_STATES = ("REGISTERED", "ATTENDED", "CANCELLED", "NO_SHOW")
_COUNTERS = {
    "REGISTERED": "registrants",
    "ATTENDED": "attendees",
    "CANCELLED": "cancellations",
    "NO_SHOW": "noShows",
}


@dataclass
class Form:
    id: str
    name: str
    created: int
    updated: int
    archived: bool = False
    submissions: list[dict[str, Any]] = field(default_factory=list)
    """Newest first, as the submissions API serves them."""


@dataclass
class MarketingEvent:
    object_id: str
    name: str
    event_type: str
    start: int
    end: int
    created: int
    updated: int
    participations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By contact id: one participation per contact, its latest state."""


@dataclass
class Marketing:
    forms: dict[str, Form] = field(default_factory=dict)
    events: dict[str, MarketingEvent] = field(default_factory=dict)
    next_event_id: int = 4_100_000

    def add_form(self, name: str, now: int, form_id: str | None = None) -> Form:
        form = Form(form_id or str(uuid.uuid4()), name, now, now)
        self.forms[form.id] = form
        return form

    def add_event(
        self, name: str, event_type: str, start: int, end: int, now: int
    ) -> MarketingEvent:
        self.next_event_id += 1
        event = MarketingEvent(str(self.next_event_id), name, event_type, start, end, now, now)
        self.events[event.object_id] = event
        return event


def submission(contact: dict[str, str], at: int, page: str, rng_id: str) -> dict[str, Any]:
    """One submission row: the contact's email and names, as the form sent them."""
    values = [
        {"name": name, "value": contact[name]}
        for name in ("email", "firstname", "lastname")
        if contact.get(name)
    ]
    return {"conversionId": rng_id, "submittedAt": at, "values": values, "pageUrl": page}


def newest_first(row: dict[str, Any]) -> int:
    return -row["submittedAt"]


def insert_submission(form: Form, row: dict[str, Any]) -> None:
    """Keep newest first, a row before the older ones of its instant (seeding adds rows in any
    order): a bisect, as a scan made seeding quadratic in a form's submissions."""
    at = row["submittedAt"]
    form.submissions.insert(bisect.bisect_left(form.submissions, -at, key=newest_first), row)
    form.updated = max(form.updated, at)


def add_submissions(form: Form, rows: list[dict[str, Any]]) -> None:
    """Many rows at once, in the order `insert_submission` would leave them one by one: the
    later added first within an instant, so one stable sort of them reversed."""
    if rows:
        form.submissions[:] = sorted([*reversed(rows), *form.submissions], key=newest_first)
        form.updated = max(form.updated, max(row["submittedAt"] for row in rows))


def conversion_changes(props: dict[str, str], form_name: str, at: int) -> dict[str, str]:
    """What a form submission sets on its contact (the properties HubSpot maintains)."""
    stamp = format_ms(at)
    changes = {
        "recent_conversion_event_name": form_name,
        "recent_conversion_date": stamp,
        "num_conversion_events": str(int(float(props.get("num_conversion_events") or 0)) + 1),
    }
    if not props.get("first_conversion_event_name"):
        changes |= {"first_conversion_event_name": form_name, "first_conversion_date": stamp}
    return changes


def participate(event: MarketingEvent, contact: dict[str, Any], state: str, at: int) -> None:
    """Record a contact's registration / attendance (its latest state wins)."""
    if state not in ATTENDANCE_STATES:
        raise ValueError(f"attendance state must be one of {ATTENDANCE_STATES}, was {state!r}")
    props = contact["properties"]
    known = event.participations.get(contact["id"])
    event.participations[contact["id"]] = {
        "id": known["id"]
        if known
        else str(uuid.uuid5(uuid.NAMESPACE_URL, event.object_id + contact["id"])),
        "createdAt": known["createdAt"] if known else at,
        "state": state,
        "occurredAt": at,
        "email": props.get("email", ""),
        "firstname": props.get("firstname"),
        "lastname": props.get("lastname"),
        "contactId": contact["id"],
    }
    event.updated = max(event.updated, at)


def render_event(event: MarketingEvent) -> dict[str, Any]:
    counts = {name: 0 for name in _COUNTERS.values()}
    for row in event.participations.values():
        counts[_COUNTERS[row["state"]]] += 1
    return {
        "objectId": event.object_id,
        "eventName": event.name,
        "eventType": event.event_type,
        "startDateTime": format_ms(event.start),
        "endDateTime": format_ms(event.end),
        "eventOrganizer": "Marketing",
        "eventCancelled": False,
        "eventCompleted": event.end < event.updated,
        "customProperties": [],
        "createdAt": format_ms(event.created),
        "updatedAt": format_ms(event.updated),
        **counts,
    }


def render_participation(event: MarketingEvent, row: dict[str, Any]) -> dict[str, Any]:
    contact = {"contactId": row["contactId"], "email": row["email"]}
    contact |= {k: row[k] for k in ("firstname", "lastname") if row.get(k)}
    return {
        "id": row["id"],
        "createdAt": format_ms(row["createdAt"]),
        "properties": {"attendanceState": row["state"], "occurredAt": row["occurredAt"]},
        "associations": {
            "contact": contact,
            "marketingEvent": {"marketingEventId": event.object_id, "name": event.name},
        },
    }


def render_form(form: Form) -> dict[str, Any]:
    """A `HubSpotFormDefinition` with one email field (what every form here asks for)."""
    email_field = {
        "objectTypeId": "0-1",
        "name": "email",
        "label": "Email",
        "required": True,
        "hidden": False,
        "fieldType": "email",
        "dependentFields": [],
        "validation": {"blockedEmailDomains": [], "useDefaultBlockList": False},
    }
    out: dict[str, Any] = {
        "id": form.id,
        "name": form.name,
        "formType": "hubspot",
        "createdAt": format_ms(form.created),
        "updatedAt": format_ms(form.updated),
        "archived": form.archived,
        "fieldGroups": [
            {"groupType": "default_group", "richTextType": "text", "fields": [email_field]}
        ],
        "configuration": {
            "language": "en",
            "cloneable": True,
            "postSubmitAction": {"type": "thank_you", "value": "Thanks!"},
            "editable": True,
            "archivable": True,
            "recaptchaEnabled": False,
            "notifyContactOwner": False,
            "notifyRecipients": [],
            "createNewContactForNewEmail": False,
            "prePopulateKnownValues": True,
            "allowLinkToResetKnownValues": False,
            "lifecycleStages": [],
        },
        "displayOptions": {
            "renderRawHtml": False,
            "theme": "default_style",
            "submitButtonText": "Submit",
            "style": {
                "fontFamily": "arial, helvetica, sans-serif",
                "backgroundWidth": "100%",
                "labelTextColor": "#33475b",
                "labelTextSize": "14px",
                "helpTextColor": "#7C98B6",
                "helpTextSize": "11px",
                "legalConsentTextColor": "#33475b",
                "legalConsentTextSize": "14px",
                "submitColor": "#ff7a59",
                "submitAlignment": "left",
                "submitFontColor": "#ffffff",
                "submitSize": "12px",
            },
        },
        "legalConsentOptions": {"type": "none"},
    }
    return out
