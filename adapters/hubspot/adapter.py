"""The HubSpot adapter: the core's contract (`crm_qualify.connector.contract.Adapter`)
over HubSpot's CRM v3/v4 API, through the official `hubspot-api-client`.

Reads are batched, 1,000 contacts at a time. The pages that find contacts carry them: a walk's
list pages hold the mapped properties and the deal and task links, a search's pages (and a
walk's by search, when few types are linked: `search_walk_cheaper`) the mapped properties,
so neither is read again. Per batch then: batch reads (100 ids) of the
contacts that came without their row (the task sweep's, retries), one v4 association read
(1,000 ids) each for deals and tasks of the contacts whose links did not come inline (search
hits, or more than 100 links), and batch reads of the batch's deals and tasks, each id once.
Records go to the core untranslated (`RawContact`): the core translates each in its own
guard. Writes: `writes.py` (owned fields) and `tasks.py` (follow-up tasks). The request
counts this gives are in docs/performance.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import repeat
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError
from crm_qualify.adapters.hubspot.companies import COMPANIES
from crm_qualify.adapters.hubspot.company_match import DomainMatch, find_companies, linked
from crm_qualify.adapters.hubspot.engagement_sources import EngagementSources
from crm_qualify.adapters.hubspot.history import SourceKinds, field_sources
from crm_qualify.adapters.hubspot.reader import (
    ChangeReader,
    Cursor,
    Hits,
    Known,
    epoch_ms,
    search_walk_cheaper,
)
from crm_qualify.adapters.hubspot.records import (
    ContactRows,
    Links,
    Rows,
    associated,
    batch_read,
    inline_links,
    next_after,
    read_linked,
)
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.setup import create_properties, property_checks, task_checks
from crm_qualify.adapters.hubspot.tasks import TaskWriter
from crm_qualify.adapters.hubspot.translate import (
    ContactMapping,
    Related,
    deal_stages,
    to_deal,
)
from crm_qualify.adapters.hubspot.typed import lenient, objects, parse_time, record_id
from crm_qualify.adapters.hubspot.writes import FieldWriter
from crm_qualify.connector.contract import (
    ApiUsage,
    AuthError,
    CheckResult,
    ContactBatch,
    FieldInfo,
    KnownVersions,
    Outcome,
    RawContact,
    RecordError,
    SourceQuestions,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import FieldSource, PlannedTask, RecordUpdate
from crm_qualify.connector.sync.adapter_state import AdapterState

log = logging.getLogger(__name__)

READ_BATCH = 1000
"""Contacts read together: one v4 association request per type serves all of them, and
their deals and tasks are read 100 at a time across the whole batch."""
FIRST_BATCH = 200
"""A run's first batch: handed over once one v4 request's worth of contacts (1,000) is read,
its request carrying the links of the 800 after it, so deciding starts after 5 search pages
instead of 10 with no request more (the engine is the slower side of a full sync). The second
batch is those 800, so each later batch's links are read whole with the batch before, as its
deals and tasks are (`_batch_sizes`)."""
LINKED = ("deals", "tasks")
DEAL_PROPERTIES = ["dealstage", "pipeline", "amount", "closedate", "hs_mrr"]
TASK_PROPERTIES = ["hs_timestamp", "hs_task_status", "hs_createdate", "hs_task_completion_date"]


class HubSpotAdapter:
    name = "hubspot"
    settings_model = HubSpotSettings

    def __init__(
        self, settings: HubSpotSettings, mapping: dict[str, Any], client: HubSpotClient
    ) -> None:
        self.settings = settings
        self.client = client
        self.traffic = client.traffic
        """The core's requests in flight and budgets (`endpoints.py`); the engine writes
        through it too."""
        self.object_type = settings.object_type
        self.contacts = ContactMapping.from_document(mapping, self.object_type)
        self.writable_stages = frozenset(self.contacts.stages)
        tasks = mapping.get("tasks", {})
        self.task_key_property = tasks.get("key_property", "crmq_task_key")
        deals = mapping.get("deals", {})
        self.recurring_property = deals.get("recurring_property", "hs_mrr")
        self.engagement = EngagementSources(client, mapping, self.contacts)
        self.company_match = DomainMatch.from_document(mapping)
        self.linked = (*LINKED, *self.engagement.linked_types)
        """Types read with each contact: deals, tasks, and what `[engagement]` and
        `[companies]` ask for (activities, the primary company)."""
        self.reader = ChangeReader(
            client,
            self.object_type,
            int(settings.lookback_seconds * 1000),
            self.task_key_property,
            properties=self.engagement.contacts.properties,
            associations=self.linked,
            sweep_types=self.engagement.sweep_types,
            touched=self.engagement.touched,
            search_walk=search_walk_cheaper(len(self.linked), READ_BATCH),
        )
        self.fields = FieldWriter(client, self.contacts, self.object_type)
        self.source_kinds = SourceKinds.from_document(mapping)
        self.tasks = TaskWriter(
            client, self.task_key_property, int(tasks.get("contact_association_type", 204))
        )
        self._deal_stages: dict[str, tuple[bool, bool]] | None = None

    @classmethod
    def from_config(cls, settings: HubSpotSettings, mapping: dict[str, Any]) -> HubSpotAdapter:
        return cls(settings, mapping, HubSpotClient(settings))

    def __repr__(self) -> str:
        return f"HubSpotAdapter(base_url={self.settings.base_url!r})"

    # checks and schema -----------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        try:
            fields = self.describe_fields(self.object_type)
        except AuthError as exc:
            return [CheckResult("credentials", False, str(exc))]
        except HubSpotError as exc:
            return [CheckResult("connectivity", False, str(exc))]
        results = [CheckResult("credentials", True, f"read {len(fields)} contact properties")]
        results += property_checks(self.contacts, fields)
        try:
            results += task_checks(self.describe_fields("tasks"), self.task_key_property)
            self._stages()
            results.append(CheckResult("deal pipelines", True, "closed and won stages known"))
        except (AuthError, HubSpotError) as exc:
            results.append(CheckResult("tasks and deal pipelines", False, str(exc)))
        results += self.engagement.checks()
        return results

    def setup(self) -> list[CheckResult]:
        return create_properties(self.client, self.object_type, self.task_key_property)

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        _, body = self.client.call(
            "GET properties", self.client.properties.get_all, object_type, archived=False
        )
        fields = {}
        for row in objects(body.get("results")):
            meta = row.get("modificationMetadata") or {}
            fields[str(row.get("name"))] = FieldInfo(
                name=str(row.get("name")),
                label=str(row.get("label") or ""),
                type=str(row.get("type") or ""),
                writable=not meta.get("readOnlyValue", False),
                options=tuple(str(o.get("value")) for o in objects(row.get("options"))),
            )
        return fields

    # reads -----------------------------------------------------------------------------------
    def read_changed(
        self, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
    ) -> Iterator[ContactBatch]:
        try:
            position = Cursor.load(cursor)
        except ValueError:
            log.warning("the saved cursor is unreadable: walking the whole portal again")
            position = None
        self.engagement.prepare(rebuild=position is None)
        self.reader.properties = self.engagement.contacts.properties  # a search body is short
        pending = _Pending()
        held = {to_type: Rows() for to_type in self.linked}
        sizes = _batch_sizes()
        size = next(sizes)
        for hits, after in self.reader.changed(position, until, self._known(known)):
            pending.add(hits, after)
            while pending.ready(size, self.linked):
                yield self._batch(*pending.take(size), ahead=pending, held=held)
                size = next(sizes)
        while pending.marks:
            count = min(size, len(pending.ids))
            yield self._batch(*pending.take(count), ahead=pending, held=held)
            size = next(sizes)

    def use_state(self, state: AdapterState) -> None:
        """The core's rows for this portal, where the form submission and marketing event
        index lives between processes (`engagement_read.py`)."""
        self.engagement.use_state(state)

    def _known(self, known: KnownVersions | None) -> Known | None:
        """The core's check in the reader's terms (ids and epoch ms)."""
        if known is None:
            return None
        object_type = self.object_type

        def check(rows: list[tuple[str, int]]) -> set[str]:
            hits = [
                ((object_type, oid), datetime.fromtimestamp(ms / 1000, UTC)) for oid, ms in rows
            ]
            return {oid for _, oid in known(hits)}

        return check

    def read_contacts(self, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
        wanted = list(dict.fromkeys(record for _, record in ids))
        self.engagement.ready()
        for start in range(0, len(wanted), READ_BATCH):
            yield self._batch(Hits(wanted[start : start + READ_BATCH]), None)

    def _batch(
        self,
        hits: Hits,
        cursor: str | None,
        ahead: _Pending | None = None,
        held: dict[str, Rows] | None = None,
    ) -> ContactBatch:
        """One batch read and handed over untranslated. `ahead`: the contacts read next,
        whose inline links fill this batch's last deal and task requests (the rows wait in
        `held`)."""
        ids = list(dict.fromkeys(hits))
        if not ids:
            return ContactBatch(cursor=cursor)
        read = self._read(ids, hits, ahead or _Pending(), held or {t: Rows() for t in self.linked})
        stages = self._stages() if read.deals.found else {}
        matched = find_companies(
            self.client,
            self.company_match,
            read,
            self.contacts.profile.get("email", "email"),
            self.engagement.companies.properties,
        )
        streams = self.engagement.lookup(read.contacts.found)
        raw, errors = [], []
        for record in ids:
            label, key = f"{self.object_type}/{record}", (self.object_type, record)
            problem = read.problem(record)
            if record in read.contacts.gone:
                errors.append(RecordError(label, None, "not found: deleted or merged"))
            elif problem:
                errors.append(RecordError(label, None, problem, key=key, transient=True))
            else:
                related = Related(
                    read.deal_rows(record),
                    read.task_rows(record),
                    stages,
                    self.recurring_property,
                    self.task_key_property,
                )
                row = read.contacts.found[record]
                others = read.other_rows(record)
                company = matched.get(record)
                if company:
                    others[COMPANIES] = [company]
                translate = partial(self.engagement.translate, row, related, others, streams)
                if company:
                    translate = partial(linked, translate, str(record_id(company)))
                raw.append(RawContact(label, translate, key))
        return ContactBatch(cursor=cursor, errors=errors, raw=raw)

    def _read(
        self, ids: list[str], hits: Hits, ahead: _Pending, held: dict[str, Rows]
    ) -> ContactRows:
        """The contacts (from their pages, else batch reads), their deal and task links
        (inline, else v4 reads), and those deals and tasks, each read once per batch."""
        missing = [i for i in ids if i not in hits.rows]
        contacts = batch_read(self.client, self.object_type, missing, self.contacts.properties)
        for record in ids:
            if record in hits.rows:
                contacts.found.setdefault(record, hits.rows[record])
        live = [i for i in ids if i in contacts.found]
        task_properties = [*TASK_PROPERTIES, self.task_key_property]

        def linked(to_type: str, properties: list[str]) -> tuple[Links, Rows]:
            found = self._links(live, to_type, hits, ahead)
            links = self.engagement.links(to_type, found, hits.rows)
            return links, self._related(to_type, links, properties, ahead, held[to_type])

        # Deals, tasks and each engagement type are independent chains of requests: all in
        # flight at once.
        extra = self.engagement.linked_types
        (deal_links, deals), (task_links, tasks), *others = self.traffic.together(
            partial(linked, "deals", DEAL_PROPERTIES),
            partial(linked, "tasks", task_properties),
            *(partial(linked, t, self.engagement.properties(t)) for t in extra),
        )
        return ContactRows(
            contacts, deal_links, deals, task_links, tasks, dict(zip(extra, others, strict=True))
        )

    def _links(self, ids: list[str], to_type: str, hits: Hits, ahead: _Pending) -> Links:
        """Links that came inline and complete, or were read with the batch before; a v4
        read for the rest, which also reads those of the next batch's contacts (its request
        has room: 1,000 ids), so this batch's last deal and task requests can be filled with
        theirs as a walk's inline links allow."""
        links = Links()
        unread = []
        early = ahead.links.setdefault(to_type, Links())
        for record in ids:
            found = (
                inline_links(hits.rows[record], to_type)
                if to_type in hits.inline.get(record, ())
                else early.linked.pop(record, None)
            )
            if found is None:
                unread.append(record)
            else:
                links.linked[record] = found
                if record in early.primary:
                    links.primary[record] = early.primary.pop(record)
        following = ahead.unlinked(to_type, max(0, READ_BATCH - len(unread)))
        if unread or following:
            fetched = associated(self.client, self.object_type, unread + following, to_type)
            for record, into in [(r, links) for r in unread] + [(r, early) for r in following]:
                if record in fetched.failed:
                    if into is links:  # one read early is read again with its own batch
                        links.failed[record] = fetched.failed[record]
                    continue
                into.linked[record] = fetched.linked.get(record, [])
                if record in fetched.primary:
                    into.primary[record] = fetched.primary[record]
        return links

    def _related(
        self,
        object_type: str,
        links: Links,
        properties: list[str],
        ahead: _Pending,
        held: Rows,
    ) -> Rows:
        ids = sorted({linked for targets in links.linked.values() for linked in targets})
        return read_linked(
            self.client, object_type, ids, properties, held, ahead.linked(object_type)
        )

    def _stages(self) -> dict[str, tuple[bool, bool]]:
        if self._deal_stages is None:
            _, body = self.client.call(
                "GET pipelines/deals", self.client.pipelines.get_all, "deals"
            )
            self._deal_stages = deal_stages(body)
        return self._deal_stages

    def field_sources(
        self, wanted: SourceQuestions
    ) -> dict[tuple[str, str], dict[str, FieldSource]]:
        """Who set these owned values, from property history (`history.py`)."""
        return field_sources(self.client, self.contacts, self.source_kinds, wanted)

    # writes ----------------------------------------------------------------------------------
    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        return self.fields.write(updates)

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        return self.tasks.create(tasks)

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        return self.tasks.find(keys)

    def existing_task_keys(self) -> Iterator[tuple[str, str]]:
        return self.tasks.existing()

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        return self.tasks.close(crm_ids)

    # outcomes --------------------------------------------------------------------------------
    def fetch_outcomes(self, since: datetime) -> Iterator[Outcome]:
        stages = self._stages()
        closed_ids = [s for s, (closed, _) in stages.items() if closed]
        if not closed_ids:
            return
        after = "0"
        while True:
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "dealstage", "operator": "IN", "values": closed_ids},
                            {
                                "propertyName": "closedate",
                                "operator": "GTE",
                                "value": str(epoch_ms(since)),
                            },
                        ]
                    }
                ],
                "properties": ["dealstage", "amount", "closedate"],
                "limit": 100,
                "after": after,
            }
            _, page = self.client.call(
                "POST deals/search", self.client.search_api.do_search, "deals", body, search=True
            )
            rows = [r for r in objects(page.get("results")) if record_id(r)]
            ids = [str(record_id(r)) for r in rows]
            links = associated(self.client, "deals", ids, self.object_type).linked
            for row, deal_id in zip(rows, ids, strict=True):
                yield _outcome(row, deal_id, stages, links.get(deal_id, []))
            after = next_after(page)
            if not after or not rows:
                return

    def usage(self) -> ApiUsage:
        return self.client.usage()


def _batch_sizes() -> Iterator[int]:
    """A short first batch, one ending where its v4 requests ended, then `READ_BATCH`."""
    yield FIRST_BATCH
    yield READ_BATCH - FIRST_BATCH
    yield from repeat(READ_BATCH)


class _Pending:
    """Hits waiting for a batch, and the cursor after each reader step. A batch ends with the
    cursor of the last step it holds whole: a step split between two batches is read again
    from its start after a restart, never skipped."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.rows: dict[str, dict[str, Any]] = {}
        self.inline: dict[str, tuple[str, ...]] = {}
        self.marks: list[tuple[int, Cursor]] = []  # (len(ids) after a step, its cursor)
        self.links: dict[str, Links] = {}
        """Links read one batch early (`HubSpotAdapter._links`), by type and contact."""

    def add(self, hits: Hits, cursor: Cursor) -> None:
        for record in hits:
            self.ids.append(record)
            if record in hits.rows:
                self.rows[record] = hits.rows[record]
                if record in hits.inline:
                    self.inline[record] = hits.inline[record]
        self.marks.append((len(self.ids), cursor))

    def linked(self, to_type: str) -> Iterator[str]:
        """Ids of `to_type` linked to the waiting contacts: inline and complete in their
        rows, or read early."""
        early = self.links.get(to_type, Links()).linked
        for record in self.ids:
            if to_type in self.inline.get(record, ()):
                yield from inline_links(self.rows[record], to_type) or []
            else:
                yield from early.get(record, [])

    def ready(self, size: int, types: tuple[str, ...]) -> bool:
        """Whether a batch of `size` can leave: the contacts after it fill its v4 request
        (1,000 ids with its own whose links are unknown) and the last deal and task requests."""
        if len(self.ids) < size:
            return False
        unread = max((len(self.unlinked(to_type, size)) for to_type in types), default=0)
        return len(self.ids) - size >= READ_BATCH - unread

    def unlinked(self, to_type: str, count: int) -> list[str]:
        """Those of the next `count` waiting contacts whose `to_type` links are unknown yet
        (no complete inline links, not read early), the contacts without a row left out:
        they are batch read with their own batch first."""
        early = self.links.get(to_type, Links()).linked
        return [
            record
            for record in self.ids[:count]
            if record in self.rows
            and record not in early
            and (
                to_type not in self.inline.get(record, ())
                or inline_links(self.rows[record], to_type) is None
            )
        ]

    def take(self, count: int) -> tuple[Hits, str | None]:
        ids, self.ids = self.ids[:count], self.ids[count:]
        whole = [cursor for end, cursor in self.marks if end <= count]
        self.marks = [(end - count, cursor) for end, cursor in self.marks if end > count]
        rows = {i: self.rows.pop(i) for i in ids if i in self.rows}
        taken = Hits(ids, rows, {i: self.inline.pop(i) for i in ids if i in self.inline})
        return taken, whole[-1].dump() if whole else None


def _outcome(
    row: dict[str, Any], deal_id: str, stages: dict[str, tuple[bool, bool]], contacts: list[str]
) -> Outcome:
    """A closed deal found by search (its stage is closed by the filter)."""
    deal = to_deal(row, stages, "hs_mrr")
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    return Outcome(
        deal_id=deal_id,
        won=deal.status == "won",
        closed_at=lenient(parse_time, props.get("closedate"), "closedate"),
        contact_ids=tuple(contacts),
        amount=deal.amount,
        created_at=deal.created_at,
    )
