"""People whose won and lost deals follow the hidden true model (`adapters/true_outcomes.py`),
as a HubSpot portal holds them.

Each person is a contact whose properties carry their signals the way `PortalBuilder` writes
engagement (conversions by name, last reply and meeting dates, email counters); the seeded
engagement that runs next (`seed_engagement.py`) turns those into form submissions, webinar
participations, meetings and incoming emails, as for every other contact. HubSpot keeps the
first and the most recent conversion only, and one last-meeting date: a person with more
conversion signals keeps their first and last, and the meetings of a sales cycle (after the
deal) are left out so they never hide the one before it. Every person starts as a lead, so
the activities seeded by lifecycle stage say nothing about the outcome. Deals are linked
like seeded ones, dated when the person's deal was opened and closed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_qualify.adapters.true_outcomes import SeededPerson, draw_people
from crm_qualify.connector.model import EventType

from .seed_meta import stage_ids
from .store import Store
from .values import format_ms

E = EventType
CONVERSIONS = {
    E.DEMO_REQUEST: "Demo request",
    E.CONTENT_DOWNLOAD: "Whitepaper: Security Guide",
    E.WEBINAR_REGISTERED: "Webinar registration: Q3 Roadmap",
    E.WEBINAR_ATTENDED: "Webinar: RevOps Best Practices (attended)",
}
"""Names `seed_engagement` turns into form submissions and webinar participations."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def conversion_properties(conversions: list[tuple[datetime, str]]) -> dict[str, str]:
    """The contact's first/recent conversion summary for its form conversions, oldest first
    (HubSpot counts at most two in `num_conversion_events` here, as the seeds always did)."""
    if not conversions:
        return {}
    (first_at, first), (last_at, last) = conversions[0], conversions[-1]
    return {
        "first_conversion_event_name": first,
        "first_conversion_date": format_ms(_ms(first_at)),
        "recent_conversion_event_name": last,
        "recent_conversion_date": format_ms(_ms(last_at)),
        "num_conversion_events": str(min(2, len(conversions))),
    }


def seed(store: Store, seed_value: int, anchor_ms: int, count: int) -> None:
    """Add `count` people with outcome histories (their own RNG: the rest stays as seeded)."""
    rng = random.Random(seed_value * 104_729 + 13)
    now = datetime.fromtimestamp(anchor_ms / 1000, UTC)
    pipeline = store.pipelines[0]
    stages = stage_ids(pipeline)
    for person in draw_people(rng, count, now):
        contact = _insert(store, "contacts", _ms(person.created), _properties(person))
        if person.deal_created is None:
            continue
        kind = person.outcome if person.outcome in ("won", "lost") else "open"
        closes = person.deal_closed or person.deal_created + timedelta(days=90)
        deal = _insert(
            store,
            "deals",
            _ms(person.deal_created),
            {
                "dealname": f"{person.last_name} - Platform",
                "pipeline": pipeline["id"],
                "dealstage": rng.choice(stages[kind]),
                "amount": str(rng.randrange(20, 900) * 100),
                "closedate": format_ms(_ms(closes)),
                "dealtype": "newbusiness",
            },
        )
        store.associate("deals", deal["id"], "contacts", contact["id"], (3,))
        props = contact["properties"]
        props["num_associated_deals"] = "1"


def _properties(person: SeededPerson) -> dict[str, str]:
    props = {
        "firstname": person.first_name,
        "lastname": person.last_name,
        "email": person.email,
        "company": person.company,
        "jobtitle": person.title,
        "industry": person.industry,
        "hs_analytics_source": "ORGANIC_SEARCH",
        "lifecyclestage": "lead",
    }
    props |= conversion_properties(
        [(at, CONVERSIONS[k]) for k, at, _ in person.signals if k in CONVERSIONS]
    )
    stamps = [_ms(person.created)]
    for kind, at, count in person.signals:
        stamp = format_ms(_ms(at))
        stamps.append(_ms(at))
        if kind is E.EMAIL_OPEN:
            props |= {"hs_email_open": str(count), "hs_email_last_open_date": stamp}
        elif kind is E.EMAIL_CLICK:
            props |= {"hs_email_click": str(count), "hs_email_last_click_date": stamp}
        elif kind is E.EMAIL_REPLY:
            props["hs_sales_email_last_replied"] = stamp
        elif kind is E.MEETING_BOOKED:
            props["engagements_last_meeting_booked"] = stamp
    if "hs_email_click" in props:
        opens = max(int(props.get("hs_email_open", "0")), int(props["hs_email_click"]))
        props["hs_email_open"] = str(opens)
        props.setdefault("hs_email_last_open_date", props["hs_email_last_click_date"])
    props["lastmodifieddate"] = format_ms(max(stamps))
    return props


def _insert(store: Store, object_type: str, created: int, props: dict[str, str]) -> dict[str, Any]:
    """A record as seeding adds them (no change history), after the ones already there."""
    object_id = store.next_id(object_type)
    created_key = "createdate"
    modified_key = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
    props.setdefault(created_key, format_ms(created))
    props.setdefault(modified_key, format_ms(created))
    props["hs_object_id"] = object_id
    record = {
        "id": object_id,
        "properties": props,
        "createdAt": props[created_key],
        "updatedAt": props[modified_key],
        "archived": False,
    }
    store.insert(object_type, record)
    return record
