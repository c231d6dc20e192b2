"""What people and visitors do in the portal, for tests and demos: a rep logs a call or a
meeting, a visitor submits a form, a contact registers for or attends a webinar.

Each acts as HubSpot does: a logged activity is a new object linked to its contact, stamped
now (the contact's own `lastmodifieddate` does not move); a form submission is stored on its
form and updates the contact's conversion properties (which moves `lastmodifieddate`); a
participation moves only its marketing event.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .marketing import conversion_changes, insert_submission, participate, submission
from .schema_engagement import CONTACT_LINK_TYPES
from .values import now_ms

if TYPE_CHECKING:
    from .simulator import HubSpotSimulator

FORM_SOURCE = {"sourceType": "FORM", "sourceLabel": "Form submission"}


def _contact(sim: HubSpotSimulator, contact_id: str) -> dict:
    record = sim.store.get("contacts", contact_id)
    if record is None:
        raise KeyError(f"no contact {contact_id}")
    return record


def log_activity(
    sim: HubSpotSimulator,
    kind: str,
    contact_id: str,
    properties: dict[str, str],
    at: int | None = None,
) -> str:
    """A call, meeting, email, note or communication on a contact; returns its id."""
    if kind not in CONTACT_LINK_TYPES:
        raise ValueError(f"not an activity type: {kind}")
    moment = now_ms() if at is None else at
    with sim.store.lock:
        _contact(sim, contact_id)
        clean, problems = sim.store.check(kind, properties)
        if problems:
            raise ValueError(problems[0].message)
        record = sim.store.create(kind, clean, moment)
        sim.store.associate(
            kind, record["id"], "contacts", contact_id, (CONTACT_LINK_TYPES[kind][1],)
        )
        return record["id"]


def submit_form(
    sim: HubSpotSimulator, form_name: str, contact_id: str, at: int | None = None
) -> str:
    """A submission of the form named `form_name` (created when the portal has none) by a
    contact; returns the form's id."""
    moment = now_ms() if at is None else at
    with sim.store.lock:
        record = _contact(sim, contact_id)
        marketing = sim.store.marketing
        form = next((f for f in marketing.forms.values() if f.name == form_name), None)
        if form is None:
            form = marketing.add_form(form_name, moment)
        row = submission(
            record["properties"], moment, "https://www.example.com/lp", str(uuid.uuid4())
        )
        insert_submission(form, row)
        changes = conversion_changes(record["properties"], form_name, moment)
        stamp = max(moment, now_ms())  # the contact changes now, whenever the form was sent
        sim.store.update("contacts", contact_id, changes, stamp, human=True, source=FORM_SOURCE)
        return form.id


def record_participation(
    sim: HubSpotSimulator,
    event_name: str,
    contact_id: str,
    state: str,
    at: int | None = None,
    event_type: str = "WEBINAR",
) -> str:
    """A contact's registration or attendance (REGISTERED, ATTENDED, CANCELLED, NO_SHOW) at the
    marketing event named `event_name` (created when missing); returns the event's id."""
    moment = now_ms() if at is None else at
    with sim.store.lock:
        record = _contact(sim, contact_id)
        marketing = sim.store.marketing
        event = next((e for e in marketing.events.values() if e.name == event_name), None)
        if event is None:
            event = marketing.add_event(event_name, event_type, moment, moment + 3_600_000, moment)
        participate(event, record, state, moment)
        return event.object_id
