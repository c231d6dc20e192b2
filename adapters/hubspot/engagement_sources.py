"""Everything beyond the contact's own properties that its facts come from, for the adapter:
the activity objects and the primary company linked to it (read with its deals and tasks),
the form and marketing event streams (`engagement_read.Streams`), which sources the portal
serves, and the translation that adds them to the contact.

Which sources are read is the mapping's (`[engagement]`, `[companies]`); which the portal
serves is found on the first read (a 403 on a stream: scope missing) and by `doctor`. The
contact's own summaries stand in for the sources not read (`fallback_for`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError, ScopeRefused
from crm_qualify.adapters.hubspot.companies import (
    COMPANIES,
    PRIMARY_V3,
    CompanyMapping,
    OptionLabels,
    fill,
    primary_only,
)
from crm_qualify.adapters.hubspot.engagement import (
    ACTIVITY_TYPES,
    FORMS,
    MARKETING_EVENTS,
    EngagementMapping,
    activity_events,
    form_events,
    participation_events,
    proven_conversions,
    without_fallbacks,
)
from crm_qualify.adapters.hubspot.engagement_read import SCOPES, BatchStreams, Streams
from crm_qualify.adapters.hubspot.records import MERGED_IDS, Links, inline_primary
from crm_qualify.adapters.hubspot.translate import ContactMapping, Related, translate_contact
from crm_qualify.adapters.hubspot.values import properties_of
from crm_qualify.connector.contract import CheckResult
from crm_qualify.connector.model import Contact
from crm_qualify.connector.sync.adapter_state import AdapterState

ACTIVITY_SCOPE = "crm.objects.contacts.read"
"""Calls, meetings, emails, notes and communications are read under the contacts scope."""


class EngagementSources:
    def __init__(
        self, client: HubSpotClient, document: dict[str, Any], contacts: ContactMapping
    ) -> None:
        self.client = client
        self.document = document
        self.mapping = EngagementMapping.from_document(document)
        self.companies = CompanyMapping.from_document(document)
        self.full_contacts = contacts
        self.contacts = without_fallbacks(contacts, document, set(self.mapping.sources()))
        """The contact mapping without the summaries the sources read replace (all of them
        until a read finds one unavailable)."""
        self.streams = Streams(client, self.mapping)
        self.labels = OptionLabels(client)
        self.activity_types = tuple(t for t in ACTIVITY_TYPES if t in self.mapping.activities)
        self.linked_types = self.activity_types + (
            (COMPANIES,) if self.companies.fill_missing else ()
        )
        """Types read with each contact, beside deals and tasks."""
        self.sweep_types = ("deals", *self.linked_types)
        """Types whose changes bring their contacts into an incremental run."""
        self._prepared = False

    # ----- per read ----------------------------------------------------------------------------
    def use_state(self, state: AdapterState) -> None:
        """The run's handle on the stream index: the next read by id tops it up first."""
        self.streams.use(state)
        self._prepared = False

    def prepare(self, rebuild: bool) -> None:
        """Top the streams up before a read (`rebuild`: a walk reads them all again), and
        leave out the summaries that the sources read now replace."""
        self.streams.refresh(rebuild)
        read = set(self.activity_types) | self.streams.available()
        self.contacts = without_fallbacks(self.full_contacts, self.document, read)
        if self.companies.fill_missing:
            self.labels.get()
        self._prepared = True

    def ready(self) -> None:
        """Prepared once per run for reads by id (retries, `sync --contact`): a run's
        `read_changed` tops the streams up anyway."""
        if not self._prepared:
            self.prepare(rebuild=False)

    def touched(self, low_ms: int, until_ms: int) -> Iterable[str]:
        return self.streams.touched(low_ms, until_ms)

    def lookup(self, rows: Mapping[str, dict[str, Any]]) -> BatchStreams:
        """The stream rows of a batch's contacts (id -> contact row), looked up together."""
        emails = [email for row in rows.values() for email in self.emails(row)]
        ids = [i for record, row in rows.items() for i in self.contact_ids(record, row)]
        return self.streams.lookup(emails, ids)

    def contact_ids(self, record: str, row: dict[str, Any]) -> list[str]:
        """The contact's id, then the ids HubSpot merged into it (the mapping's
        `merged_ids`, `;`-separated): a participation stays under the id it was recorded
        for, and whether a merge moves it to the merged contact is not documented."""
        prop = self.full_contacts.profile.get("merged_ids", MERGED_IDS)
        merged = (part.strip() for part in (text_of(row, prop) or "").split(";"))
        return list(dict.fromkeys([record, *filter(None, merged)]))

    def emails(self, row: dict[str, Any]) -> list[str]:
        """Every address a contact row has: its email, then its additional emails (the
        mapping's `additional_emails`, `;`-separated)."""
        profile = self.full_contacts.profile
        found = [text_of(row, profile.get("email", "email")) or ""]
        if "additional_emails" in profile:
            found += (text_of(row, profile["additional_emails"]) or "").split(";")
        return [email for email in found if email.strip()]

    def properties(self, to_type: str) -> list[str]:
        if to_type == COMPANIES:
            return self.companies.properties
        return self.mapping.properties(to_type)

    def links(self, to_type: str, links: Links, rows: dict[str, dict[str, Any]]) -> Links:
        """What to read of a type's links: a contact's primary company only (from the list
        page's link types, or the v4 read's "Primary" label)."""
        if to_type != COMPANIES:
            return links
        for record in links.linked:
            if record not in links.primary and record in rows:
                primary = inline_primary(rows[record], COMPANIES, PRIMARY_V3)
                if primary:
                    links.primary[record] = primary
        return primary_only(links)

    def translate(
        self,
        record: dict[str, Any],
        related: Related,
        others: dict[str, list[dict[str, Any]]],
        streams: BatchStreams,
    ) -> Contact:
        """The contact with its deals and tasks (`translate_contact`), plus its activities,
        form submissions (under any of its addresses, and the conversions its own properties
        prove beyond them) and participations (`streams`: its batch's, from the index) and
        company firmographics."""
        contact = translate_contact(self.contacts, record, related)
        events = activity_events(
            self.mapping.activities, {t: others.get(t, []) for t in self.activity_types}
        )
        available = self.streams.available()
        if FORMS in available:
            submitted = streams.submissions(self.emails(record))
            pairs = self.full_contacts.conversion_pairs
            submitted += proven_conversions(pairs, properties_of(record), submitted)
            events += form_events(self.mapping, submitted)
        if MARKETING_EVENTS in available:
            found = streams.participations(self.contact_ids(contact.id, record))
            events += participation_events(self.mapping.participations, found)
        companies = others.get(COMPANIES) or [None]
        update: dict[str, Any] = fill(self.companies, contact, companies[0], self.labels.get())
        if events:
            update["events"] = [*contact.events, *events]
        return contact.model_copy(update=update) if update else contact

    # ----- doctor ------------------------------------------------------------------------------
    def checks(self) -> list[CheckResult]:
        """One line per source: one small page read, and what stands in when the portal
        refuses it (the history itself is read by a sync, into the state file's index)."""
        results = [self._probe(kind) for kind in self.linked_types]
        for source in self.streams.wanted:
            try:
                problem = self.streams.probe(source)
            except HubSpotError as exc:
                results.append(CheckResult(f"source {source}", False, str(exc)))
                continue
            results.append(
                CheckResult(
                    f"source {source}",
                    problem is None,
                    "available" if problem is None else f"{problem}; {_stand_in(source)}",
                )
            )
        return results

    def _probe(self, kind: str) -> CheckResult:
        """One record of the type (a one-row list page): whether the token may read it."""
        try:
            self.client.call("GET objects/list", self.client.basic.get_page, kind, limit=1)
            if kind == COMPANIES:
                self.labels.get()
        except ScopeRefused as exc:
            scope = "crm.objects.companies.read" if kind == COMPANIES else ACTIVITY_SCOPE
            return CheckResult(f"source {kind}", False, f"needs the {scope} scope ({exc})")
        except HubSpotError as exc:
            return CheckResult(f"source {kind}", False, str(exc))
        return CheckResult(f"source {kind}", True, "available")


def text_of(row: dict[str, Any], prop: str) -> str | None:
    """A contact row's property as text, None when absent or not text."""
    props = row.get("properties")
    value = props.get(prop) if isinstance(props, dict) else None
    return value if isinstance(value, str) else None


def _stand_in(source: str) -> str:
    if source == FORMS:
        return "the contact's first and recent conversion stand in (scope: " + SCOPES[FORMS] + ")"
    return "webinar attendance is not read"
