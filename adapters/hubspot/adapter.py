"""The HubSpot adapter: the core's contract (`crm_qualify.connector.contract.Adapter`)
over HubSpot's CRM v3/v4 API, through the official `hubspot-api-client`.

Reads are batched, 1,000 contacts at a time. The pages that find contacts carry them: a walk's
list pages hold the mapped properties and the deal and task links, a search's pages (and a
walk's by search, when few types are linked: `search_walk_cheaper`) the mapped properties,
so neither is read again. Per batch then: batch reads (100 ids) of the
contacts that came without their row (the task sweep's, retries), one v4 association read
(1,000 ids) each for deals and tasks of the contacts whose links did not come inline (search
hits, or more than 100 links), and batch reads of the batch's deals and tasks, each id once
a run and 100 a request: a company is kept for the run, and contacts whose records would make
a short request wait for a later batch (`records.hold_back`; README, "Linked records across
batches"). Records go to the core untranslated (`RawContact`): the core translates each in its own
guard. Writes: `writes.py` (owned fields) and `tasks.py` (follow-up tasks). The request
counts this gives are in docs/performance.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import repeat
from typing import Any, TypeVar

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.companies import COMPANIES, PRIMARY_V3, pick
from crm_qualify.adapters.hubspot.company_match import DomainMatch, find_companies, linked
from crm_qualify.adapters.hubspot.doctor import run_checks
from crm_qualify.adapters.hubspot.engagement_sources import EngagementSources
from crm_qualify.adapters.hubspot.history import SourceKinds, field_sources
from crm_qualify.adapters.hubspot.mapping_schema import HubSpotMapping
from crm_qualify.adapters.hubspot.reader import (
    ChangeReader,
    Cursor,
    Hits,
    Known,
    Stamped,
    epoch_ms,
    search_walk_cheaper,
)
from crm_qualify.adapters.hubspot.records import (
    ContactRows,
    Links,
    Rows,
    associated,
    batch_read,
    hold_back,
    inline_links,
    inline_primary,
    next_after,
    read_linked,
)
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.setup import create_properties
from crm_qualify.adapters.hubspot.tasks import TaskWriter
from crm_qualify.adapters.hubspot.translate import (
    ContactMapping,
    Related,
    deal_stages,
    field_info,
    to_deal,
)
from crm_qualify.adapters.hubspot.values import lenient, objects, parse_time, record_id
from crm_qualify.adapters.hubspot.writes import FieldWriter
from crm_qualify.connector.contract import (
    ApiUsage,
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
from crm_qualify.connector.ops.logs import redact
from crm_qualify.connector.sync.adapter_state import AdapterState

log = logging.getLogger(__name__)
T = TypeVar("T")

READ_BATCH = 1000
"""Contacts read together: one v4 association request per type serves all of them, and
their deals and tasks are read 100 at a time across the whole batch."""
FIRST_BATCH = 200
"""A run's first batch: handed over once one v4 request's worth of contacts (1,000) is read,
its request carrying the links of the 800 after it, so deciding starts after 5 search pages
instead of 10 with no request more (the engine is the slower side of a full sync). The second
batch is those 800, so each later batch's links are read whole with the batch before, as its
deals and tasks are (`_batch_sizes`)."""
LEAVE_AT_SEARCH_END = READ_BATCH // 2
"""Contacts waiting when the search's last page is in that leave then, while the sweeps
search, instead of waiting for the sweeps' contacts to join them. Deciding and writing 800
contacts took about 1 s of a 10,000-contact incremental run at 250 ms, during which the
sweeps' searches wait at 4 a second (`bench/hubspot_sync.py`: 1.16 times the floor against
1.21-1.25). The cost: contacts only a sweep finds then make a batch of their own, 2 v4 reads
and up to 2 short deal and task reads more. Fewer waiting contacts take less time than that
is worth."""
WAITS = 10
"""Batches a contact may wait for its linked records to fill a request (`records.hold_back`):
the cursor stays before it meanwhile, so a restart reads at most this many batches again."""
LINKED = ("deals", "tasks")
DEAL_PROPERTIES = ["dealstage", "pipeline", "amount", "closedate", "hs_mrr"]
TASK_PROPERTIES = [
    "hs_timestamp",
    "hs_task_status",
    "hs_createdate",
    "hs_task_completion_date",
    "hs_lastmodifieddate",
]


class HubSpotAdapter:
    name = "hubspot"
    settings_model = HubSpotSettings
    mapping_schema = HubSpotMapping

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
        self.writable_stages = frozenset(self.contacts.owned.stages)
        self.owned_fields = {self.object_type: self.contacts.owned}
        self.answered_criteria = frozenset(self.contacts.qualification) | (
            {"authority"} if self.contacts.authority_property else set()
        )
        """The qualification criteria the mapping answers (a buying role answers authority)."""
        self.criteria_table = f"objects.{self.object_type}.qualification"
        """What the engine checks against the properties before it writes."""
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
            properties=self.contacts.properties,
            associations=self.linked,
            sweep_types=self.engagement.sweep_types,
            touched=self.engagement.touched,
            search_walk=search_walk_cheaper(len(self.linked), READ_BATCH),
            digested=self.contacts.digested,
            owned=self.contacts.owned,
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
        return f"HubSpotAdapter(base_url={redact(self.settings.base_url)!r})"

    # checks and schema -----------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        return run_checks(self)

    def setup(self) -> list[CheckResult]:
        return create_properties(self.client, self.contacts, self.task_key_property)

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        _, body = self.client.call(
            "GET properties", self.client.properties.get_all, object_type, archived=False
        )
        return {info.name: info for info in map(field_info, objects(body.get("results")))}

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
        pending = _Pending()
        held = {to_type: Rows() for to_type in self.linked}
        sizes = _batch_sizes()
        size = next(sizes)
        for hits, after in self.reader.changed(position, until, self._known(known)):
            pending.add(hits, after)
            while pending.ready(size, self.linked):
                yield self._batch(pending.take(size), pending, held)
                size = next(sizes)
            leave = hits.search_done and len(pending.ids) >= LEAVE_AT_SEARCH_END
            while leave and pending.ids:
                count = min(size, len(pending.ids) - pending.back)
                yield self._batch(pending.take(count), pending, held)
                size = next(sizes)
        while pending.marks:
            count = min(size, len(pending.ids) - pending.back)
            yield self._batch(pending.take(count), pending, held)
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

        def check(rows: list[Stamped]) -> set[str]:
            hits = [
                ((object_type, oid), datetime.fromtimestamp(ms / 1000, UTC), digest, owned)
                for oid, ms, digest, owned in rows
            ]
            return {oid for _, oid in known(hits)}

        return check

    def read_contacts(self, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
        wanted = list(dict.fromkeys(record for _, record in ids))
        self.engagement.ready()
        for start in range(0, len(wanted), READ_BATCH):
            yield self._batch(Hits(wanted[start : start + READ_BATCH]))

    def _batch(
        self, hits: Hits, ahead: _Pending | None = None, held: dict[str, Rows] | None = None
    ) -> ContactBatch:
        """One batch read and handed over untranslated, with the cursor past every contact
        handed over so far (`ahead.settle`). `ahead`: the contacts read next, whose links
        fill this batch's last requests (the rows wait in `held`), and where the contacts
        that wait for a fuller request go back (`records.hold_back`)."""
        ahead = ahead or _Pending()
        ids = list(dict.fromkeys(hits))
        if not ids:
            return ContactBatch(cursor=ahead.settle())
        read, waiting = self._read(ids, hits, ahead, held or {t: Rows() for t in self.linked})
        ids = [i for i in ids if i not in waiting]
        stages = self.pipeline_stages() if read.deals.found else {}
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
                errors.append(
                    RecordError(label, None, "not found: deleted or merged", key=key, gone=True)
                )
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
                raw.append(RawContact(label, translate, key, _stamp(row)))
        return ContactBatch(cursor=ahead.settle(), errors=errors, raw=raw)

    def _read(
        self, ids: list[str], hits: Hits, ahead: _Pending, held: dict[str, Rows]
    ) -> tuple[ContactRows, set[str]]:
        """The contacts (from their pages, else batch reads), their links (inline, else v4
        reads), and the records linked to them, each read once: first every type's links,
        then which contacts wait for a later batch (`records.hold_back`, when contacts come
        after this batch: they go back to `ahead`), then the linked records of the others."""
        missing = [i for i in ids if i not in hits.rows]
        contacts = batch_read(self.client, self.object_type, missing, self.contacts.properties)
        for record in ids:
            if record in hits.rows:
                contacts.found.setdefault(record, hits.rows[record])
        live = [i for i in ids if i in contacts.found]
        types = self.linked

        def links_of(to_type: str) -> Links:
            found = self._links(live, to_type, hits, ahead)
            return self.engagement.links(to_type, found, hits.rows)

        links = self._each(types, links_of)
        waiting: set[str] = set()
        if ahead.ids:
            following = {t: ahead.linked(t) for t in types}
            waiting = hold_back(live, links, held, following, ahead.movable)
            ahead.put_back([i for i in live if i in waiting], contacts.found, hits.inline, links)
            for record in waiting:
                contacts.found.pop(record)
                for found in links.values():
                    found.linked.pop(record, None)
        task_properties = [*TASK_PROPERTIES, self.task_key_property]
        properties = {"deals": DEAL_PROPERTIES, "tasks": task_properties}

        def rows_of(to_type: str) -> Rows:
            wanted = properties.get(to_type) or self.engagement.properties(to_type)
            return self._related(to_type, links[to_type], wanted, ahead, held[to_type])

        rows = self._each(types, rows_of)
        others = {t: (links[t], rows[t]) for t in self.engagement.linked_types}
        read = ContactRows(
            contacts, links["deals"], rows["deals"], links["tasks"], rows["tasks"], others
        )
        return read, waiting

    def _each(self, types: tuple[str, ...], call: Callable[[str], T]) -> dict[str, T]:
        """`call` for each type, all in flight at once."""
        answers = self.traffic.together(*[partial(call, t) for t in types])
        return dict(zip(types, answers, strict=True))

    def _links(self, ids: list[str], to_type: str, hits: Hits, ahead: _Pending) -> Links:
        """Links that came inline and complete, or were read with the batch before; a v4
        read for the rest, which also reads those of the next batch's contacts (its request
        has room: 1,000 ids), so this batch's last requests can be filled with theirs as a
        walk's inline links allow."""
        links = Links()
        unread = []
        early = ahead.links.setdefault(to_type, Links())
        for record in ids:
            inline = (
                inline_links(hits.rows[record], to_type)
                if to_type in hits.inline.get(record, ())
                else None
            )
            read_early = early.linked.pop(record, None)
            primary = early.primary.pop(record, None)
            found = inline if inline is not None else read_early
            if found is None:
                unread.append(record)
            else:
                links.linked[record] = found
                if primary:
                    links.primary[record] = primary
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
        """The batch's records of one type; a company is kept for the run (many contacts
        share it), the others once used."""
        ids = sorted({linked for targets in links.linked.values() for linked in targets})
        return read_linked(
            self.client,
            object_type,
            ids,
            properties,
            held,
            ahead.linked(object_type),
            keep=object_type == COMPANIES,
        )

    def pipeline_stages(self) -> dict[str, tuple[bool, bool]]:
        """Each deal stage of every pipeline: (closed, won), read once."""
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
        stages = self.pipeline_stages()
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

    def clock_offset(self) -> float | None:
        return self.client.crm_clock.offset


def _stamp(row: dict[str, Any]) -> datetime | None:
    """The contact's `lastmodifieddate` as read (`RawContact.stamp`); None when unreadable."""
    props = row.get("properties")
    value = props.get("lastmodifieddate") if isinstance(props, dict) else None
    return lenient(parse_time, value, "lastmodifieddate")


def _batch_sizes() -> Iterator[int]:
    """A short first batch, one ending where its v4 requests ended, then `READ_BATCH`."""
    yield FIRST_BATCH
    yield READ_BATCH - FIRST_BATCH
    yield from repeat(READ_BATCH)


class _Pending:
    """Hits waiting for a batch, and the cursor after each reader step. Each id has its place
    in the order the reader gave them (`seqs`); a batch's cursor is that of the last step whose
    contacts have all been handed over (`settle`): a step split between two batches, or one
    holding a contact that waits for a later batch (`put_back`), is read again from its start
    after a restart, never skipped."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.seqs: list[int] = []
        self.added = 0
        self.rows: dict[str, dict[str, Any]] = {}
        self.inline: dict[str, tuple[str, ...]] = {}
        self.truncated: dict[str, set[str]] = {}
        """The types whose inline links HubSpot paged (v4 reads complete them), by contact:
        found once, as `ready` asks after every reader step."""
        self.marks: list[tuple[int, Cursor]] = []  # (ids added after a step, its cursor)
        self.links: dict[str, Links] = {}
        """Links read one batch early (`HubSpotAdapter._links`), or of contacts put back,
        by type and contact."""
        self.taken: dict[str, int] = {}
        """The place of each id of the batch being read."""
        self.waited: dict[str, int] = {}
        """How many batches a contact put back has waited."""
        self.back = 0
        """How many of the first `ids` were put back: the next batch takes them on top of its
        size, so each batch still reads the links of the 1,000 after it in its v4 request."""

    def add(self, hits: Hits, cursor: Cursor) -> None:
        for record in hits:
            self.ids.append(record)
            self.seqs.append(self.added)
            self.added += 1
            if record in hits.rows:
                self.rows[record] = hits.rows[record]
                if record in hits.inline:
                    self.inline[record] = hits.inline[record]
                    row = hits.rows[record]
                    paged = {t for t in hits.inline[record] if inline_links(row, t) is None}
                    if paged:
                        self.truncated[record] = paged
        self.marks.append((self.added, cursor))

    def linked(self, to_type: str) -> Iterator[str]:
        """Ids of `to_type` linked to the waiting contacts: inline and complete in their
        rows, or read early (a contact's primary company only, the one read)."""
        early = self.links.get(to_type, Links())
        for record in self.ids:
            row = self.rows.get(record)
            found = (
                inline_links(row, to_type)
                if row is not None and to_type in self.inline.get(record, ())
                else None
            )
            if found is None:
                found = early.linked.get(record, [])
            if to_type == COMPANIES:
                primary = early.primary.get(record)
                if row is not None and primary is None:
                    primary = inline_primary(row, COMPANIES, PRIMARY_V3)
                found = pick(found, primary)
            yield from found

    def ready(self, size: int, types: tuple[str, ...]) -> bool:
        """Whether a batch of `size` can leave: the contacts after it fill its v4 request
        (1,000 ids with its own whose links are unknown) and the last deal and task requests."""
        fresh = len(self.ids) - self.back
        if fresh < size:
            return False
        unread = max((len(self.unlinked(t, self.back + size)) for t in types), default=0)
        return fresh - size >= READ_BATCH - unread

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
                or to_type in self.truncated.get(record, ())
            )
        ]

    def take(self, count: int) -> Hits:
        """The contacts put back, and `count` after them."""
        count += self.back
        self.back = 0
        ids, self.ids = self.ids[:count], self.ids[count:]
        seqs, self.seqs = self.seqs[:count], self.seqs[count:]
        self.taken = dict(zip(ids, seqs, strict=True))
        rows = {i: self.rows.pop(i) for i in ids if i in self.rows}
        for record in ids:
            self.truncated.pop(record, None)
        return Hits(ids, rows, {i: self.inline.pop(i) for i in ids if i in self.inline})

    def movable(self, record: str) -> bool:
        """Whether a contact of the batch being read may wait for a later batch."""
        return self.waited.get(record, 0) < WAITS

    def put_back(
        self,
        records: list[str],
        rows: dict[str, dict[str, Any]],
        inline: dict[str, tuple[str, ...]],
        links: dict[str, Links],
    ) -> None:
        """Contacts of the batch being read that wait for the next one, first in line, with
        their rows and links (nothing of them is read again)."""
        self.ids[:0] = records
        self.seqs[:0] = [self.taken[r] for r in records]
        self.back = len(records)
        for record in records:
            self.rows[record] = rows[record]
            if record in inline:
                self.inline[record] = inline[record]
            self.waited[record] = self.waited.get(record, 0) + 1
            for to_type, found in links.items():
                early = self.links.setdefault(to_type, Links())
                if record in found.linked:
                    early.linked[record] = found.linked[record]
                if record in found.primary:
                    early.primary[record] = found.primary[record]

    def settle(self) -> str | None:
        """The cursor after the batch being read: that of the last step whose contacts have
        all been handed over (None: no step is done yet)."""
        waiting = set(self.ids[: self.back])
        for record in self.taken:
            if record not in waiting:
                self.waited.pop(record, None)
        self.taken = {}
        done = min(self.seqs) if self.seqs else self.added
        passed = [cursor for end, cursor in self.marks if end <= done]
        self.marks = [(end, cursor) for end, cursor in self.marks if end > done]
        return passed[-1].dump() if passed else None


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
