"""The labelled duplicates, near-misses and no-one records (`adapters/seeded_people.py`), as a
HubSpot portal holds them.

Every record is a contact (HubSpot has no leads), a lead in its lifecycle; one with a company
domain is associated with that company (created if the portal has none with that domain), as
HubSpot's automatic association does. Signals are written the way `PortalBuilder` writes
engagement (conversions by name, last reply and meeting dates); the seeded engagement that
runs next turns them into form submissions and meetings, as for every other contact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crm_qualify.adapters.seeded_people import SeededRecord, seeded_people
from crm_qualify.connector.model import EventType

from .seed_outcomes import CONVERSIONS, conversion_properties
from .store import Store
from .values import format_ms

E = EventType
PRIMARY_COMPANY = (1, 279)
"""Contact -> company association types of a primary company (as the seeded portal uses)."""


def seed(store: Store, anchor_ms: int) -> dict[str, tuple[str, str]]:
    """Add the seed's records; returns label -> ("contacts", id) for tests and reports."""
    now = datetime.fromtimestamp(anchor_ms / 1000, UTC)
    companies = {
        record["properties"].get("domain"): record["id"]
        for record in store.objects["companies"].values()
        if record["properties"].get("domain")
    }
    owners = [owner["id"] for owner in store.owners]
    placed: dict[str, tuple[str, str]] = {}
    for n, person in enumerate(seeded_people("hubspot").records):
        props = _properties(person, now)
        props["hubspot_owner_id"] = owners[n % len(owners)]
        contact = _insert(store, "contacts", _ms(person.created(now)), props)
        placed[person.label] = ("contacts", contact["id"])
        if person.domain:
            if person.domain not in companies:
                company = _insert(
                    store,
                    "companies",
                    _ms(person.created(now)),
                    {"name": person.company, "domain": person.domain},
                )
                companies[person.domain] = company["id"]
            company_id = companies[person.domain]
            store.associate("contacts", contact["id"], "companies", company_id, PRIMARY_COMPANY)
    return placed


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _properties(person: SeededRecord, now: datetime) -> dict[str, str]:
    fields = {
        "firstname": person.first_name,
        "lastname": person.last_name,
        "email": person.email,
        "phone": person.phone,
        "company": person.company,
        "jobtitle": person.title,
        "country": person.country,
    }
    props = {name: value for name, value in fields.items() if value}
    props |= {"hs_analytics_source": "ORGANIC_SEARCH", "lifecyclestage": "lead"}
    signals = sorted(person.signal_times(now), key=lambda item: item[1])
    props |= conversion_properties(
        [(at, CONVERSIONS[kind]) for kind, at in signals if kind in CONVERSIONS]
    )
    for kind, at in signals:
        if kind is E.EMAIL_REPLY:
            props["hs_sales_email_last_replied"] = format_ms(_ms(at))
        elif kind is E.MEETING_BOOKED:
            props["engagements_last_meeting_booked"] = format_ms(_ms(at))
    latest = max([person.created(now), *(at for _, at in signals)])
    props["lastmodifieddate"] = format_ms(_ms(latest))
    return props


def _insert(store: Store, object_type: str, created: int, props: dict[str, str]) -> dict[str, Any]:
    """A record as seeding adds them (no change history), after the ones already there."""
    object_id = store.next_id(object_type)
    modified_key = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
    props.setdefault("createdate", format_ms(created))
    props.setdefault(modified_key, format_ms(created))
    props["hs_object_id"] = object_id
    record = {
        "id": object_id,
        "properties": props,
        "createdAt": props["createdate"],
        "updatedAt": props[modified_key],
        "archived": False,
    }
    store.insert(object_type, record)
    return record
