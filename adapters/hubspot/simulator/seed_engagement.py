"""Seeded engagement, consistent with each contact's own properties: calls, meetings, emails,
notes and communications associated with it; form submissions for the conversions it shows
(first / recent conversion, `num_conversion_events` in all); webinar participations for its
webinar conversions; all dated between its creation and its last activity.

Runs after `PortalBuilder` with its own random generator, so the rest of the portal stays
byte-identical for a given seed. `density` scales the activity objects per contact (about 2
at 1.0; the engagement benchmark asks for about 20).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from .marketing import Form, Marketing, add_submissions, participate, submission
from .schema_engagement import CONTACT_LINK_TYPES
from .store import ID_BASE, Store
from .values import DAY_MS, format_ms, parse_ms

HOUR_MS = 3_600_000
# Activity mix per contact at density 1.0, by lifecycle stage: (calls, meetings, emails, notes,
# communications) expected counts.
_MIX = {
    "subscriber": (0.0, 0.0, 0.3, 0.1, 0.0),
    "lead": (0.6, 0.2, 1.0, 0.3, 0.1),
    "marketingqualifiedlead": (1.0, 0.4, 1.5, 0.5, 0.2),
    "salesqualifiedlead": (1.5, 0.8, 2.0, 0.8, 0.3),
    "opportunity": (2.0, 1.5, 3.0, 1.0, 0.4),
    "customer": (1.5, 1.0, 2.5, 1.0, 0.3),
}
_DEFAULT_MIX = (0.3, 0.1, 0.6, 0.2, 0.1)
_KINDS = ("calls", "meetings", "emails", "notes", "communications")
_NOTES = (
    "Discussed current tooling and timeline.",
    "Sent the security whitepaper after our chat.",
    "Met at our trade show booth, badge scanned.",
    "Left a voicemail.",
    "Asked for references in their industry.",
)
WEBINARS = (
    ("Q3 Roadmap", "WEBINAR"),
    ("RevOps Best Practices", "WEBINAR"),
    ("SaaS Connect Paris", "CONFERENCE"),
)


class EngagementBuilder:
    def __init__(self, store: Store, rng: random.Random, anchor_ms: int, density: float) -> None:
        self.store, self.rng, self.anchor, self.density = store, rng, anchor_ms, density
        self.rows: dict[str, list[tuple[int, dict[str, str], str]]] = {k: [] for k in _KINDS}
        self.marketing = store.marketing
        self.submitted: dict[str, tuple[Form, list[dict[str, Any]]]] = {}
        """Per form name, the submissions seeded, added to the form in one go at the end."""

    def build(self) -> None:
        contacts = [r for r in self.store.objects["contacts"].values() if not r["archived"]]
        events = self._events()
        for record in contacts:
            self._contact(record, events)
        for form, rows in self.submitted.values():
            add_submissions(form, rows)
        for kind, rows in self.rows.items():
            self._insert(kind, rows)

    # ----- per contact -----------------------------------------------------------------------
    def _contact(self, record: dict[str, Any], events: dict[str, Any]) -> None:
        props = record["properties"]
        created = parse_ms(props.get("createdate")) or self.anchor - 400 * DAY_MS
        last = max(
            created + HOUR_MS,
            min(self.anchor - 1, parse_ms(props.get("lastmodifieddate")) or created),
        )
        mix = _MIX.get(props.get("lifecyclestage", ""), _DEFAULT_MIX)
        owner = props.get("hubspot_owner_id")
        for kind, mean in zip(_KINDS, mix, strict=True):
            for _ in range(self._count(mean * self.density)):
                self._activity(kind, record["id"], self.rng.randint(created, last), owner)
        if replied := parse_ms(props.get("hs_sales_email_last_replied")):
            self._activity("emails", record["id"], replied, owner, direction="INCOMING_EMAIL")
        if booked := parse_ms(props.get("engagements_last_meeting_booked")):
            self._activity("meetings", record["id"], booked, owner, outcome="SCHEDULED")
        self._conversions(record, created, last, events)

    def _count(self, mean: float) -> int:
        """A Poisson-like count with the given mean (sum of coin flips, cheap and seeded)."""
        whole, part = int(mean), mean - int(mean)
        return whole + (1 if self.rng.random() < part else 0)

    def _activity(
        self,
        kind: str,
        contact_id: str,
        at: int,
        owner: str | None,
        *,
        direction: str | None = None,
        outcome: str | None = None,
    ) -> None:
        rng, stamp = self.rng, format_ms(at)
        props: dict[str, str] = {"hs_timestamp": stamp}
        if kind == "calls":
            props |= {
                "hs_call_title": "Discovery call",
                "hs_call_status": rng.choice(("COMPLETED", "COMPLETED", "NO_ANSWER", "BUSY")),
                "hs_call_direction": rng.choice(("OUTBOUND", "OUTBOUND", "INBOUND")),
                "hs_call_duration": str(rng.randrange(30, 1800) * 1000),
            }
        elif kind == "meetings":
            props |= {
                "hs_meeting_title": "Intro meeting",
                "hs_meeting_outcome": outcome
                or rng.choice(("COMPLETED", "SCHEDULED", "NO_SHOW", "CANCELED")),
                "hs_meeting_start_time": format_ms(at + rng.randrange(1, 10) * DAY_MS),
            }
        elif kind == "emails":
            props |= {
                "hs_email_subject": "Re: our conversation" if direction else "Following up",
                "hs_email_direction": direction
                or rng.choice(("EMAIL", "EMAIL", "FORWARDED_EMAIL")),
                "hs_email_status": "SENT",
            }
        elif kind == "notes":
            props["hs_note_body"] = rng.choice(_NOTES)
        else:
            props |= {
                "hs_communication_channel_type": rng.choice(
                    ("LINKEDIN_MESSAGE", "SMS", "WHATS_APP")
                ),
                "hs_communication_logged_from": "CRM",
                "hs_communication_body": "Thanks for connecting!",
            }
        if owner:
            props["hubspot_owner_id"] = owner
        self.rows[kind].append((at, props, contact_id))

    # ----- forms and marketing events ----------------------------------------------------------
    def _events(self) -> dict[str, Any]:
        found = {}
        for n, (name, kind) in enumerate(WEBINARS):
            start = self.anchor - (90 - 35 * n) * DAY_MS
            found[name] = self.marketing.add_event(
                name, kind, start, start + 2 * HOUR_MS, start - 30 * DAY_MS
            )
        return found

    def _form(self, name: str) -> Form:
        found = next((f for f in self.marketing.forms.values() if f.name == name), None)
        if found is None:
            seeded = uuid.UUID(int=self.rng.getrandbits(128), version=4)
            found = self.marketing.add_form(name, self.anchor - 800 * DAY_MS, str(seeded))
        return found

    def _conversions(
        self, record: dict[str, Any], created: int, last: int, events: dict[str, Any]
    ) -> None:
        props = record["properties"]
        named = [
            (props.get(name), parse_ms(props.get(at)))
            for name, at in (
                ("first_conversion_event_name", "first_conversion_date"),
                ("recent_conversion_event_name", "recent_conversion_date"),
            )
        ]
        seen = set()
        for name, at in named:
            if name and at and (name, at) not in seen:
                seen.add((name, at))
                self._submit(record, name, at)
                self._webinar(record, name, at, events)
        extra = int(float(props.get("num_conversion_events") or 0)) - len(seen)
        pool = [name for name, _ in named if name]
        for _ in range(max(0, extra) if pool else 0):
            self._submit(record, self.rng.choice(pool), self.rng.randint(created, last))

    def _submit(self, record: dict[str, Any], name: str, at: int) -> None:
        conversion = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        row = submission(record["properties"], at, "https://www.example.com/resources", conversion)
        found = self.submitted.get(name)
        if found is None:
            found = self.submitted[name] = (self._form(name), [])
        found[1].append(row)

    def _webinar(self, record: dict[str, Any], name: str, at: int, events: dict[str, Any]) -> None:
        for title, event in events.items():
            if title.lower() in name.lower():
                state = "ATTENDED" if "attended" in name.lower() else "REGISTERED"
                participate(event, record, state, at)

    # ----- records ---------------------------------------------------------------------------
    def _insert(self, kind: str, rows: list[tuple[int, dict[str, str], str]]) -> None:
        """Ids ascending in creation order, each linked to its contact both ways."""
        rows.sort(key=lambda row: row[0])
        next_id = ID_BASE[kind] + 1000
        to_contact = (CONTACT_LINK_TYPES[kind][1],)
        for at, props, contact_id in rows:
            next_id += 1 + int(self.rng.random() * 3)
            oid = str(next_id)
            stamp = format_ms(at)
            modified = format_ms(min(self.anchor - 1, at + int(self.rng.random() * HOUR_MS)))
            props |= {"hs_createdate": stamp, "hs_lastmodifieddate": modified, "hs_object_id": oid}
            record = {
                "id": oid,
                "properties": props,
                "createdAt": stamp,
                "updatedAt": modified,
                "archived": False,
            }
            self.store.insert(kind, record)
            self.store.associate(kind, oid, "contacts", contact_id, to_contact)


def seed(store: Store, seed_value: int, anchor_ms: int, density: float) -> Marketing:
    rng = random.Random(seed_value * 104_729 + 17)
    EngagementBuilder(store, rng, anchor_ms, density).build()
    return store.marketing
