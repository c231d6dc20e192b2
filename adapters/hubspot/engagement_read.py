"""Form submissions and marketing event participations: portal-wide streams, indexed in the
state store and topped up at the start of every read.

Neither can be asked per contact in batches: submissions are listed per form
(`GET /form-integrations/v1/submissions/forms/{guid}`, 50 a page, newest first, scope
`forms`), participations per marketing event (`GET /marketing/v3/marketing-events/
participations/{id}/breakdown`, 100 a page, scope `crm.objects.marketing_events.read`). So
the adapter keeps an index of both in the rows the core lends it
(`connector/sync/adapter_state.py`), which outlive the process: a walk clears and rebuilds
it; every other read lists the forms and events (one or two pages) and reads only what is
new: a form's pages down to the newest submission held, the breakdown of an event whose
`updatedAt` or counters moved. A one-shot `sync` therefore reads what the daemon reads.

The index, per space: `forms` (per form: its name, the newest `submittedAt` held and the
`conversionId`s at that instant), `submissions` (per email, one row per `conversionId`:
form and time), `events` (per event: `updatedAt` and counters as read, name, type),
`participations` (per contact, one row per event: state and time, stamped with the time).
A form's mark is written with (or after) its rows and an event's rows replace its old ones
together with its mark, so a read that fails half-way leaves marks that claim nothing
unstored: the next read reads the rest again (writing a row twice is harmless). A batch looks
its contacts up in two queries (`lookup`); nothing but the form and event marks is held in
memory, and an event's participations while it is read.

A contact's submissions are those under its email and its additional emails (a merge keeps
the merged record's email there): the index is keyed by the address typed, as HubSpot lists
them. A new submission updates its contact's conversion properties (its `lastmodifieddate`),
so the contact search finds it; a participation does not touch the contact, so `touched`
hands the reader the contacts with a participation dated in the window (from the index: a
read that stored one and then failed still brings its contact in next time).

A portal that refuses a stream (403, scope missing) is noted once: that source is then
`unavailable` (doctor shows why) and the contact's own summaries stand in for it
(`fallback_for` in the mapping).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, ScopeRefused
from crm_qualify.adapters.hubspot.engagement import (
    FORMS,
    MARKETING_EVENTS,
    EngagementMapping,
    Participation,
    Submission,
)
from crm_qualify.adapters.hubspot.records import next_after
from crm_qualify.adapters.hubspot.values import lenient, objects, parse_time, record_id
from crm_qualify.connector.sync.adapter_state import AdapterState, Changes, Row

log = logging.getLogger(__name__)

FORMS_PATH = "/marketing/v3/forms"
SUBMISSIONS_PATH = "/form-integrations/v1/submissions/forms/{formGuid}"
EVENTS_PATH = "/marketing/marketing-events/v3"
BREAKDOWN_PATH = "/marketing/v3/marketing-events/participations/{marketingEventId}/breakdown"
FORMS_PAGE, SUBMISSIONS_PAGE, EVENTS_PAGE, BREAKDOWN_PAGE = 100, 50, 100, 100
SCOPES = {FORMS: "forms", MARKETING_EVENTS: "crm.objects.marketing_events.read"}
_COUNTERS = ("registrants", "attendees", "cancellations", "noShows")
FORM_MARKS, SUBMISSIONS, EVENT_MARKS, PARTICIPATIONS = (
    "forms",
    "submissions",
    "events",
    "participations",
)
"""The index's spaces in the state store."""
FLUSH_ROWS = 2000
"""Submission rows written at a time while a form is read (a walk reads whole histories)."""


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


@dataclass(frozen=True)
class _FormMark:
    """The newest submission of a form held in the index."""

    newest: int = -1
    at_newest: frozenset[str] = frozenset()
    """conversionIds stamped `newest`: read already."""

    @classmethod
    def load(cls, value: Any) -> _FormMark:
        if not isinstance(value, dict):
            return cls()
        return cls(int(value.get("newest", -1)), frozenset(value.get("at_newest", ())))

    def after(self, at: int, conversion: str) -> _FormMark:
        """The mark once a submission (`at`, `conversion`) is held too."""
        if at > self.newest:
            return _FormMark(at, frozenset({conversion}))
        if at == self.newest:
            return _FormMark(at, self.at_newest | {conversion})
        return self

    def holds(self, at: int, conversion: str) -> bool:
        """Whether a submission is at or below the mark: read already (pages come newest
        first, so the rest of the form is too)."""
        return at < self.newest or (at == self.newest and conversion in self.at_newest)


@dataclass(frozen=True)
class BatchStreams:
    """The submissions (by normalised email) and participations (by contact id) of one
    batch's contacts, looked up together; a contact the batch did not name is looked up on
    its own."""

    streams: Streams
    by_email: dict[str, list[Submission]]
    by_contact: dict[str, list[Participation]]

    def submissions(self, emails: Iterable[str]) -> list[Submission]:
        """A contact's submissions under any of its addresses."""
        keys = list(dict.fromkeys(filter(None, map(normal_email, emails))))
        missing = [k for k in keys if k not in self.by_email]
        more = self.streams.lookup(missing, []).by_email if missing else {}
        return [item for k in keys for item in self.by_email.get(k, more.get(k, []))]

    def participations(self, contact_ids: Iterable[str]) -> list[Participation]:
        """A contact's participations under any of its ids (its own, then those merged into
        it), one per event: the latest, as HubSpot keeps one per contact and event."""
        ids = list(dict.fromkeys(contact_ids))
        missing = [i for i in ids if i not in self.by_contact]
        more = self.streams.lookup([], missing).by_contact if missing else {}
        latest: dict[str, Participation] = {}
        for item in (item for i in ids for item in self.by_contact.get(i, more.get(i, []))):
            held = latest.get(item.event_id)
            if held is None or item.at_ms > held.at_ms:
                latest[item.event_id] = item
        return list(latest.values())


class Streams:
    """The index of both streams (in `state`), and which streams the portal serves."""

    def __init__(self, client: HubSpotClient, mapping: EngagementMapping) -> None:
        self.client = client
        self.mapping = mapping
        self.wanted = [s for s in (FORMS, MARKETING_EVENTS) if s in mapping.sources()]
        self.unavailable: dict[str, str] = {}
        self.state = AdapterState.scratch("hubspot")
        """Where the index lives: the run's handle from the engine (`use`), else a private
        in-memory store (an adapter used outside the engine)."""
        self._form_names: dict[str, str] = {}
        self._event_names: dict[str, tuple[str, str]] = {}
        """(name, type) per event: what a participation is, by its event."""

    def use(self, state: AdapterState) -> None:
        self.state = state

    def available(self) -> set[str]:
        return {s for s in self.wanted if s not in self.unavailable}

    def refresh(self, rebuild: bool) -> None:
        """Top the index up (`rebuild`: clear it and read everything again, as a walk does)."""
        if rebuild:
            cleared = Changes()
            for space in (FORM_MARKS, SUBMISSIONS, EVENT_MARKS, PARTICIPATIONS):
                cleared.clear(space)
            self.state.apply(cleared)
        for source, top_up in (
            (FORMS, self._top_up_forms),
            (MARKETING_EVENTS, self._top_up_events),
        ):
            if source not in self.wanted or source in self.unavailable:
                continue
            try:
                top_up()
            except ScopeRefused as exc:
                self.unavailable[source] = f"needs the {SCOPES[source]} scope ({exc})"
                log.warning(
                    "HubSpot refused %s: read without it (the contact's own summaries stand in)"
                    " until the app has the %s scope",
                    source,
                    SCOPES[source],
                )

    def probe(self, source: str) -> str | None:
        """Whether the portal serves `source`, at the cost of a one-row page (and one row of
        the first form's submissions or event's participations): None when it does, else why
        not. Doctor asks this; reading the history is for a sync."""
        first, path, page, child = {
            FORMS: ("GET forms", FORMS_PATH, "GET form submissions", SUBMISSIONS_PATH),
            MARKETING_EVENTS: (
                "GET marketing events",
                EVENTS_PATH,
                "GET marketing event participations",
                BREAKDOWN_PATH,
            ),
        }[source]
        try:
            listed = objects(get(self.client, first, path, {"limit": 1}).get("results"))
            if listed and source == FORMS and (form_id := record_id(listed[0])):
                get(self.client, page, child, {"limit": 1}, formGuid=form_id)
            elif listed and (event_id := str(listed[0].get("objectId") or "")):
                get(self.client, page, child, {"limit": 1}, marketingEventId=event_id)
        except ScopeRefused as exc:
            return f"needs the {SCOPES[source]} scope ({exc})"
        return None

    def lookup(self, emails: Iterable[str | None], contact_ids: Iterable[str]) -> BatchStreams:
        """Two indexed queries for a batch (only for the streams read)."""
        available = self.available()
        by_email: dict[str, list[Submission]] = {}
        if FORMS in available:
            keys = [k for k in map(normal_email, emails) if k]
            found = self.state.rows(SUBMISSIONS, keys)
            by_email = {k: [self._as_submission(r) for r in found.get(k, [])] for k in keys}
        by_contact: dict[str, list[Participation]] = {}
        if MARKETING_EVENTS in available:
            ids = list(contact_ids)
            rows = self.state.rows(PARTICIPATIONS, ids)
            by_contact = {i: [self._as_participation(r) for r in rows.get(i, [])] for i in ids}
        return BatchStreams(self, by_email, by_contact)

    def touched(self, low_ms: int, until_ms: int) -> Iterator[str]:
        """Contacts with a participation dated in [low, until)."""
        if MARKETING_EVENTS not in self.available():
            return
        yield from dict.fromkeys(
            r.key for r in self.state.stamped(PARTICIPATIONS, low_ms, until_ms)
        )

    # ----- forms -----------------------------------------------------------------------------
    def _top_up_forms(self) -> None:
        held = {row.key: row.value for row in self.state.all_rows(FORM_MARKS)}
        names = {key: str(value.get("name") or key) for key, value in held.items()}
        for page in pages(self.client, "GET forms", FORMS_PATH, FORMS_PAGE):
            for form in objects(page.get("results")):
                form_id = record_id(form)
                if form_id and not form.get("archived"):
                    names[form_id] = str(form.get("name") or form_id)
                    self._read_form(form_id, names[form_id], held.get(form_id))
        self._form_names = names

    def _read_form(self, form_id: str, name: str, held: Any) -> None:
        """Pages newest first down to the newest submission held; the rows land as they are
        read, the form's new mark with the last of them."""
        known = _FormMark.load(held)
        mark = known
        changes = Changes()
        for at, conversion, email in self._unread(form_id, known):
            if email:
                item = conversion or f"{form_id}:{at}"
                changes.put(SUBMISSIONS, [Row(email, item, [form_id, at])])
            mark = mark.after(at, conversion)
            if len(changes) >= FLUSH_ROWS:
                self.state.apply(changes)
                changes = Changes()
        if mark != known or not isinstance(held, dict) or held.get("name") != name:
            value = {"name": name, "newest": mark.newest, "at_newest": sorted(mark.at_newest)}
            changes.put(FORM_MARKS, [Row(form_id, "", value)])
        self.state.apply(changes)

    def _unread(self, form_id: str, known: _FormMark) -> Iterator[tuple[int, str, str]]:
        """(submittedAt, conversionId, email) of the submissions above `known`."""
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
                if known.holds(at, conversion):
                    return
                yield at, conversion, _email(row)

    def _as_submission(self, row: Row) -> Submission:
        form_id, at = row.value
        return Submission(form_id, self._form_names.get(form_id, form_id), at, row.item)

    # ----- marketing events ------------------------------------------------------------------
    def _top_up_events(self) -> None:
        held = {row.key: row.value for row in self.state.all_rows(EVENT_MARKS)}
        names = {key: (str(v.get("name")), str(v.get("type"))) for key, v in held.items()}
        for page in pages(self.client, "GET marketing events", EVENTS_PATH, EVENTS_PAGE):
            for event in objects(page.get("results")):
                event_id = str(event.get("objectId") or "")
                if not event_id:
                    continue
                names[event_id] = (
                    str(event.get("eventName") or event_id),
                    str(event.get("eventType") or ""),
                )
                mark = [event.get("updatedAt"), *(event.get(c) for c in _COUNTERS)]
                if (held.get(event_id) or {}).get("mark") != mark:
                    self._read_event(event_id, mark, *names[event_id])
        self._event_names = names

    def _read_event(self, event_id: str, mark: list[Any], name: str, kind: str) -> None:
        """The event's participations, replacing the ones held, with its new mark: one
        transaction once every page is read."""
        changes = Changes()
        changes.drop_item(PARTICIPATIONS, event_id)
        for page in pages(
            self.client,
            "GET marketing event participations",
            BREAKDOWN_PATH,
            BREAKDOWN_PAGE,
            marketingEventId=event_id,
        ):
            for row in objects(page.get("results")):
                found = _participation(row)
                if found is not None:
                    contact, state, at = found
                    changes.put(PARTICIPATIONS, [Row(contact, event_id, [state, at], at)])
        value = {"mark": mark, "name": name, "type": kind}
        changes.put(EVENT_MARKS, [Row(event_id, "", value)])
        self.state.apply(changes)

    def _as_participation(self, row: Row) -> Participation:
        state, at = row.value
        name, kind = self._event_names.get(row.item, (row.item, ""))
        return Participation(row.item, name, kind, state, at)


def normal_email(email: str | None) -> str:
    return (email or "").strip().lower()


def _email(row: dict[str, Any]) -> str:
    return next(
        (
            normal_email(str(v.get("value") or ""))
            for v in objects(row.get("values"))
            if v.get("name") == "email"
        ),
        "",
    )


def _participation(row: dict[str, Any]) -> tuple[str, str, int] | None:
    """(contact id, attendance state, occurredAt in epoch ms) of a breakdown row."""
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
    return contact, state, at
