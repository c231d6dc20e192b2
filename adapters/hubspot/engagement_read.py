"""Form submissions and marketing event participations: portal-wide streams, indexed per
process and topped up at the start of every read.

Neither can be asked per contact in batches: submissions are listed per form
(`GET /form-integrations/v1/submissions/forms/{guid}`, 50 a page, newest first, scope
`forms`), participations per marketing event (`GET /marketing/v3/marketing-events/
participations/{id}/breakdown`, 100 a page, scope `crm.objects.marketing_events.read`). So
the adapter keeps both in memory, by email and by contact id: the first read in a process (and
every walk, which rebuilds them) reads each form and event once; later reads list the forms
and events (one or two pages) and read only what is new: a form's pages down to the newest
submission already held, the breakdown of an event whose `updatedAt` or counters moved.

A new submission updates its contact's conversion properties (its `lastmodifieddate`), so the
contact search finds it; a participation does not touch the contact, so `touched` hands the
reader the contacts whose participation occurred in the window.

A portal that refuses a stream (403, scope missing) is noted once: that source is then
`unavailable` (doctor shows why) and the contact's own summaries stand in for it
(`fallback_for` in the mapping).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.engagement import (
    FORMS,
    MARKETING_EVENTS,
    EngagementMapping,
    Participation,
    Submission,
)
from crm_qualify.adapters.hubspot.records import next_after
from crm_qualify.adapters.hubspot.typed import lenient, objects, parse_time, record_id
from crm_qualify.connector.contract import AuthError

log = logging.getLogger(__name__)

FORMS_PATH = "/marketing/v3/forms"
SUBMISSIONS_PATH = "/form-integrations/v1/submissions/forms/{formGuid}"
EVENTS_PATH = "/marketing/marketing-events/v3"
BREAKDOWN_PATH = "/marketing/v3/marketing-events/participations/{marketingEventId}/breakdown"
FORMS_PAGE, SUBMISSIONS_PAGE, EVENTS_PAGE, BREAKDOWN_PAGE = 100, 50, 100, 100
SCOPES = {FORMS: "forms", MARKETING_EVENTS: "crm.objects.marketing_events.read"}
_COUNTERS = ("registrants", "attendees", "cancellations", "noShows")


def get(
    client: HubSpotClient, endpoint: str, path: str, query: dict[str, Any], **params: str
) -> dict[str, Any]:
    """One GET through the official client's HTTP layer (host, token, urllib3 without
    retries or redirects) and `client.call` (budgets, retries, errors)."""
    api = client.basic.api_client

    def send(**kwargs: Any) -> Any:
        return api.call_api(
            path,
            "GET",
            path_params=params,
            query_params=[(k, v) for k, v in query.items() if v is not None],
            header_params={"Accept": "application/json"},
            auth_settings=["oauth2"],
            **kwargs,
        )

    _, body = client.call(endpoint, send)
    return body


def pages(
    client: HubSpotClient, endpoint: str, path: str, limit: int, **params: str
) -> Iterator[dict[str, Any]]:
    """Every page of one cursor-paged GET, following `paging.next.after` to its end."""
    after: str | None = None
    while True:
        page = get(client, endpoint, path, {"limit": limit, "after": after}, **params)
        yield page
        after = next_after(page)
        if not after:
            return


def refused(exc: AuthError) -> bool:
    """A 403 (a scope the app lacks), as opposed to a token HubSpot rejects (401)."""
    return "refused" in str(exc)


@dataclass
class _FormMark:
    newest: int = -1
    at_newest: set[str] = field(default_factory=set)
    """conversionIds stamped `newest`: read already."""


class Streams:
    """The per-process indexes, and which streams the portal serves."""

    def __init__(self, client: HubSpotClient, mapping: EngagementMapping) -> None:
        self.client = client
        self.mapping = mapping
        self.wanted = [s for s in (FORMS, MARKETING_EVENTS) if s in mapping.sources()]
        self.unavailable: dict[str, str] = {}
        self._by_email: dict[str, list[Submission]] = {}
        self._forms: dict[str, _FormMark] = {}
        self._by_contact: dict[str, dict[str, Participation]] = {}
        self._events: dict[str, tuple[Any, ...]] = {}
        self._recent: list[tuple[str, Participation]] = []
        """(contact id, participation) read by the last refresh."""
        self._contacts_of: dict[str, set[str]] = {}
        self.fresh = True

    def available(self) -> set[str]:
        return {s for s in self.wanted if s not in self.unavailable}

    def refresh(self, rebuild: bool) -> None:
        """Top the indexes up (`rebuild`: read everything again, as a walk does)."""
        if rebuild:
            self._by_email, self._forms = {}, {}
            self._by_contact, self._events, self._contacts_of = {}, {}, {}
        self._recent = []
        for source, top_up in (
            (FORMS, self._top_up_forms),
            (MARKETING_EVENTS, self._top_up_events),
        ):
            if source not in self.wanted or source in self.unavailable:
                continue
            try:
                top_up()
            except AuthError as exc:
                if not refused(exc):
                    raise
                self.unavailable[source] = f"needs the {SCOPES[source]} scope ({exc})"
                log.warning(
                    "HubSpot refused %s: read without it (the contact's own summaries stand in)"
                    " until the app has the %s scope",
                    source,
                    SCOPES[source],
                )
        self.fresh = False

    # ----- forms -----------------------------------------------------------------------------
    def _top_up_forms(self) -> None:
        for page in pages(self.client, "GET forms", FORMS_PATH, FORMS_PAGE):
            for form in objects(page.get("results")):
                form_id = record_id(form)
                if form_id and not form.get("archived"):
                    self._read_form(form_id, str(form.get("name") or form_id))

    def _read_form(self, form_id: str, name: str) -> None:
        """Pages newest first down to the newest submission already held."""
        mark = self._forms.setdefault(form_id, _FormMark())
        newest, at_newest = mark.newest, set(mark.at_newest)
        for page in pages(
            self.client,
            "GET form submissions",
            SUBMISSIONS_PATH,
            SUBMISSIONS_PAGE,
            formGuid=form_id,
        ):
            for row in objects(page.get("results")):
                at = row.get("submittedAt")
                if not isinstance(at, int) or isinstance(at, bool):
                    continue
                conversion = str(row.get("conversionId") or "")
                if at < newest or (at == newest and conversion in at_newest):
                    return
                self._add_submission(form_id, name, row, at)
                if at > mark.newest:
                    mark.newest, mark.at_newest = at, set()
                if at == mark.newest:
                    mark.at_newest.add(conversion)

    def _add_submission(self, form_id: str, name: str, row: dict[str, Any], at: int) -> None:
        email = next(
            (
                str(v.get("value") or "").strip().lower()
                for v in objects(row.get("values"))
                if v.get("name") == "email"
            ),
            "",
        )
        if email:
            self._by_email.setdefault(email, []).append(Submission(form_id, name, at))

    def submissions(self, email: str | None) -> list[Submission]:
        return list(self._by_email.get((email or "").strip().lower(), []))

    # ----- marketing events ------------------------------------------------------------------
    def _top_up_events(self) -> None:
        for page in pages(self.client, "GET marketing events", EVENTS_PATH, EVENTS_PAGE):
            for event in objects(page.get("results")):
                event_id = str(event.get("objectId") or "")
                mark = (event.get("updatedAt"), *(event.get(c) for c in _COUNTERS))
                if event_id and self._events.get(event_id) != mark:
                    self._read_event(event_id, event)
                    self._events[event_id] = mark

    def _read_event(self, event_id: str, event: dict[str, Any]) -> None:
        for contact in self._contacts_of.pop(event_id, set()):
            self._by_contact.get(contact, {}).pop(event_id, None)
        name, kind = str(event.get("eventName") or event_id), str(event.get("eventType") or "")
        for page in pages(
            self.client,
            "GET marketing event participations",
            BREAKDOWN_PATH,
            BREAKDOWN_PAGE,
            marketingEventId=event_id,
        ):
            for row in objects(page.get("results")):
                found = _participation(row, event_id, name, kind)
                if found is not None:
                    contact, item = found
                    self._by_contact.setdefault(contact, {})[event_id] = item
                    self._contacts_of.setdefault(event_id, set()).add(contact)
                    self._recent.append((contact, item))

    def participations(self, contact_id: str) -> list[Participation]:
        return list(self._by_contact.get(contact_id, {}).values())

    def touched(self, low_ms: int, until_ms: int) -> Iterator[str]:
        """Contacts whose participation read this time occurred in [low, until)."""
        seen: set[str] = set()
        for contact, item in self._recent:
            if contact not in seen and low_ms <= item.at_ms < until_ms:
                seen.add(contact)
                yield contact


def _participation(
    row: dict[str, Any], event_id: str, name: str, kind: str
) -> tuple[str, Participation] | None:
    links = row.get("associations") if isinstance(row.get("associations"), dict) else {}
    contact = record_id({"id": (links.get("contact") or {}).get("contactId")})
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    state = props.get("attendanceState")
    at = props.get("occurredAt")
    if isinstance(at, str):
        moment = lenient(parse_time, at, "occurredAt")
        at = int(moment.timestamp() * 1000) if moment else None
    if contact is None or not isinstance(state, str) or not isinstance(at, int):
        return None
    return contact, Participation(event_id, name, kind, state, at)
