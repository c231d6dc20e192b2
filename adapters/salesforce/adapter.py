"""The Salesforce adapter: the core's contract (`crm_qualify.connector.contract.Adapter`)
over the REST API through `simple-salesforce`.

Leads (not converted) and Contacts are read by SOQL ordered by (SystemModstamp, Id), pages
through `nextRecordsUrl`, and resumed from a keyset cursor. Our own writes move
SystemModstamp, so an incremental read (a stored position for the object, and `known` given:
the engine's mirror holds what we wrote) leaves out records whose last change is ours
(`LastModifiedById != <integration user>`); a full read (no position, or no `known`) reads
everyone. The lookback before a stored position (`lookback_seconds`, for rows that commit
late) costs no reads: a person whose stamp the mirror holds is left out of the page that
brings it back, the activity sweep leaves out the rows the last run handed on with their
person, and a record merged away that the last run handed on with its master does not bring
the master back (`reader.Holding`), so an idle rerun reads nothing but its empty query pages.
Missed until the next full read: a person's edit between our read of a record and our write
to it that touches no activity object (the sweep reads those people anyway), and changes made
as the integration user by anything else (a flow our write fires, another tool sharing the
user).

Their engagement (Tasks, Events, campaign responses with their campaign) and deals
(OpportunityContactRole with its Opportunity) come in the same rows, through relationship
subqueries: one request per page (child rows count toward a page's 2,000). Only the people
whose child set Salesforce cut short are read again, by IN list, never one query per record.
People go to the core in batches of 1,000 (`reader.BATCH`: whole collections of writes),
untranslated (`RawContact`), so one bad value fails one record. Field writes go through
sObject Collections, 200 records per call; tasks are upserted by their key, an External ID +
Unique field, so Salesforce itself never holds two tasks with one key (see `tasks.py`).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from crm_qualify.adapters.salesforce.accounts import (
    Account,
    AccountMapping,
    Candidates,
    find_accounts,
    queried,
    with_account,
)
from crm_qualify.adapters.salesforce.bulk import BulkApi, BulkReads
from crm_qualify.adapters.salesforce.bulk_writes import BulkWrites, fewer_in_collections
from crm_qualify.adapters.salesforce.client import SalesforceCallError, SalesforceClient
from crm_qualify.adapters.salesforce.doctor import run_checks
from crm_qualify.adapters.salesforce.history import field_sources
from crm_qualify.adapters.salesforce.in_flight import finish_writes_in_flight
from crm_qualify.adapters.salesforce.mapping_schema import SalesforceMapping
from crm_qualify.adapters.salesforce.reader import (
    BATCH,
    Cursor,
    Holding,
    Pending,
    child_sets,
    people_touched,
    related,
)
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.adapters.salesforce.soql import (
    Engagement,
    converted_leads,
    engagement,
    in_chunks,
    quote,
    when,
)
from crm_qualify.adapters.salesforce.staging import Staging
from crm_qualify.adapters.salesforce.tasks import TaskWriter
from crm_qualify.adapters.salesforce.translate import (
    ObjectMapping,
    PeopleMapping,
    Related,
    TranslationError,
    field_info,
    number,
    parse_time,
    to_contact,
)
from crm_qualify.adapters.salesforce.values import is_id
from crm_qualify.adapters.salesforce.writes import FieldWriter
from crm_qualify.connector.contract import (
    AdapterError,
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
from crm_qualify.connector.field_fit import learn_lengths
from crm_qualify.connector.model import Contact, FieldSource, PlannedTask, RecordUpdate
from crm_qualify.connector.ops.logs import redact

log = logging.getLogger(__name__)
NEXT_PAGE = re.compile(r"/services/data/v[\d.]+/query(?:All)?/[\w-]+")


def _refuse(field: str, message: str) -> Contact:
    raise TranslationError(field, message)


class SalesforceAdapter:
    name = "salesforce"
    settings_model = SalesforceSettings
    mapping_schema = SalesforceMapping

    def __init__(
        self, settings: SalesforceSettings, mapping: dict[str, Any], client: SalesforceClient
    ) -> None:
        self.settings = settings
        self.client = client
        self.traffic = client.traffic
        """The core's requests in flight (`endpoints.py`); the engine writes through it."""
        self.objects = {s: ObjectMapping.from_document(mapping, s) for s in settings.objects}
        self.people = PeopleMapping.from_document(mapping)
        self.answered_criteria = frozenset(self.people.qualification)
        """The qualification criteria the mapping answers (`doctor.unanswered_criteria`)."""
        self.criteria_table = "people.qualification"
        self.accounts = AccountMapping.from_document(mapping)
        stages = [set(m.owned.stages) for m in self.objects.values()]
        self.writable_stages = frozenset.intersection(*map(frozenset, stages))
        self.owned_fields = {sobject: m.owned for sobject, m in self.objects.items()}
        """What the engine checks against the describe answers before it writes."""
        self.fields = FieldWriter(client, self.objects)
        self.tasks = TaskWriter(client, self.people.task_key, self._query, self._all)
        self.bulk_api = BulkApi(client, settings.bulk_timeout_seconds, sleep=self.traffic.backoff)
        """Its polls wait as a retry's backoff does: a read given up by a stop ends at once."""
        self.bulk_reads = BulkReads(self.bulk_api, settings.bulk_threshold)
        self.bulk_writes = BulkWrites(
            self.bulk_api, self.objects, self.people.task_key, settings.bulk_threshold
        )
        self._every_converted: dict[str, dict[str, Any]] | None = None
        """Every converted lead by contact id, while one read lasts (`_converted_leads`)."""
        self._many_contacts = False
        """While `read_changed` lasts: its Contact query selects `CONVERTED_SCAN` people or
        more, so every converted lead is read once for all its batches (`_converted_leads`)."""
        self._trail: dict[str, dict[str, list[str]]] = {}
        """While `read_changed` lasts: by object, master id -> the ids merged into it that the
        people query brought (`_merges`)."""
        self._candidates: Candidates | None = None
        """Where a read's Leads find their Accounts: staged by a Bulk read, else asked over
        REST, each domain and company name once a read (`accounts.queried`)."""
        self._holding: Holding | None = None
        """While `read_changed` lasts: the activity rows handed on with their people, and
        the records merged away handed on with their master."""
        self.kinds = {
            sobject: engagement(sobject, self.people.task_key, settings.api_version)
            for sobject in self.objects
        }
        """What is read with each person of an object (see `soql.engagement`)."""

    @classmethod
    def from_config(
        cls, settings: SalesforceSettings, mapping: dict[str, Any]
    ) -> SalesforceAdapter:
        return cls(settings, mapping, SalesforceClient(settings))

    def __repr__(self) -> str:
        return f"SalesforceAdapter(login_url={redact(self.settings.login_url)!r})"

    # queries ---------------------------------------------------------------------------------
    def _query(self, what: str, soql: str, deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Pages of one query (2,000 records each, with the query's `totalSize`), following
        nextRecordsUrl, which must be a query locator on the instance (it is appended to the
        instance host). `deleted`: through queryAll, deleted and merged records too."""
        page = self.client.call(what, lambda sf: sf.query(soql, include_deleted=deleted))
        while True:
            found = Page(
                (_unattributed(r) for r in page.get("records") or [] if isinstance(r, dict)),
                page.get("totalSize"),
            )
            next_url = page.get("nextRecordsUrl")
            done = page.get("done", True) or not next_url
            del page  # the answer as sent (each row's `attributes`) is not held beside its rows
            yield found
            del found
            if done:
                return
            if not (isinstance(next_url, str) and NEXT_PAGE.fullmatch(next_url)):
                raise AdapterError(f"{what}: unexpected nextRecordsUrl {str(next_url)[:80]!r}")
            page = self.client.call(
                f"{what} (more)",
                lambda sf, url=next_url: sf.query_more(
                    url, identifier_is_url=True, include_deleted=deleted
                ),
            )

    def _all(self, what: str, template: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for statement in in_chunks(template, ids):
            for page in self._query(what, statement):
                rows += page
        return rows

    # reads -----------------------------------------------------------------------------------
    def read_changed(
        self, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
    ) -> Iterator[ContactBatch]:
        """`known` given: records whose last change is our own write are left out by the
        query itself (`LastModifiedById`); None (a full read): every record is read.

        A read from stored positions goes through queryAll (`_changed_where`): the records
        merged away in its window come in cursor order among the people, deleted with
        `MasterRecordId`, and each master is handed on with them (`Contact.merged_ids`); a
        read from nothing (a first or full read) needs no merge trail."""
        state = Cursor.load(cursor)
        every_row = bool(state.positions)
        self._every_converted = None  # converted leads are read again by each read
        self._many_contacts = False
        sweep_from = state.sweep_from()
        lookback = timedelta(seconds=self.settings.lookback_seconds)
        seen: dict[str, set[str]] = {sobject: set() for sobject in self.objects}
        ours = self.client.integration_user() if state.positions and known else None
        held, state.held = state.held, {}  # a cursor saved before the end holds none
        holding = self._holding = Holding(until - lookback, held)
        pending = Pending(state)
        staging = Staging()
        self._candidates = queried(self._query, self.accounts, staging)
        self._trail = {sobject: {} for sobject in self.objects}
        unchanged: set[str] = set()  # people met again at the version the mirror holds
        try:
            for sobject, mapping in self.objects.items():
                where = self._changed_where(mapping, state, until, ours)
                resumed = known if sobject in state.positions else None
                people = self._people(mapping, where, known is None, staging, every_row)
                for records, ordered in people:
                    again = self._merges(mapping, records, seen[sobject], pending, holding)
                    mirrored = _known_ids(sobject, records, resumed, ours is not None)
                    for record in records:
                        position = _position([record]) if ordered else None
                        if _deleted(record):  # merged away: its master carries it
                            if (master := _master_of(record)) in again:
                                pending.add(sobject, again.pop(master), None)
                            pending.add(sobject, None, position)
                            continue
                        same = is_id(record.get("Id")) and record["Id"] in mirrored
                        if same:
                            unchanged.add(record["Id"])
                        first = not same and _first_read(seen[sobject], record)
                        pending.add(sobject, record if first else None, position)
                    yield from self._batches(pending, BATCH, every_row)
                pending.add(sobject, None, (when(self.client.crm_clock.bound(until)), ""))
            if sweep_from is not None:
                touched = people_touched(
                    self._query,
                    parse_time(sweep_from, "cursor") - lookback,
                    until,
                    self.people.task_key,
                    deals="Contact" in self.objects,
                    held=held,
                    ours=ours,
                )
                for sobject, mapping in self.objects.items():
                    # Masters the people query left out (last changed by us: a merge made
                    # as the integration user) are read by id, with their trail.
                    masters = set(self._trail[sobject]) - unchanged
                    wanted = touched.get(sobject, set()) | masters
                    ids = sorted(i for i in wanted if i not in seen[sobject])
                    for records in self._pages_by_id(mapping, ids):
                        for record in records:
                            if _first_read(seen[sobject], record):
                                pending.add(sobject, record, None)
                        yield from self._batches(pending, BATCH, every_row)
            yield from self._batches(pending, None, every_row)
        finally:
            self._candidates = None
            self._holding = None
            self._trail = {}
            self._every_converted = None  # not held while the run decides and writes
            self._many_contacts = False
            staging.close()
        state.activity = when(self.client.crm_clock.bound(until))
        state.held = holding.cursor_rows()
        yield ContactBatch(cursor=state.dump())

    def _batches(self, pending: Pending, size: int | None, resumed: bool) -> Iterator[ContactBatch]:
        """Batches of `size` people while that many are pending (None: whatever is left).
        `resumed` (a read from stored positions): each carries the leads converted into its
        Contacts, as gone (`_raw`). A read from nothing does not: a first read has no mirror
        to drop them from, and a full read drops every record it does not meet (converted
        leads are not read), without a line logged for each of the org's conversions."""
        while pending.entries and (size is None or pending.count >= size):
            taken = pending.take(size)
            raw: list[RawContact] = []
            gone: list[RecordError] = []
            for obj, rows in taken.items():
                people, converted = self._raw(self.objects[obj], rows, self._candidates)
                raw += people
                gone += converted
            errors = gone if resumed else []
            yield ContactBatch(cursor=pending.state.dump(), raw=raw, errors=errors)
            if size is None:
                return

    def _select(
        self, mapping: ObjectMapping, extra: Sequence[str] = (), every_row: bool = False
    ) -> str:
        """SELECT the person's fields (and `extra`) and, by subquery, what is read with each
        person (`every_row`: for queryAll, whose subqueries would bring deleted and archived
        child rows too)."""
        fields = list(dict.fromkeys([*self.people.read_fields(mapping), *extra]))
        children = [kind.subquery(every_row) for kind in self.kinds[mapping.sobject]]
        return f"SELECT {', '.join([*fields, *children])} FROM {mapping.sobject}"

    def _people(
        self,
        mapping: ObjectMapping,
        where: str,
        full: bool,
        staging: Staging,
        every_row: bool = False,
    ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """Pages of the people `where` selects (`_changed_where`), each saying whether it
        comes in cursor order; `every_row`: through queryAll, with the records merged away
        (`IsDeleted`, `MasterRecordId`). On a full read of an object whose first page counts
        `bulk_threshold` records or more, the rest comes from Bulk API 2.0, unordered, and
        Leads (the first page too) are matched to Accounts staged by two more query jobs."""
        soql = self._people_soql(mapping, where, every_row)
        resource = "queryAll" if every_row else "query"
        pages = self._query(f"GET {resource} {mapping.sobject}", soql, deleted=every_row)
        first = next(pages)
        total = getattr(first, "total", None)
        bulk = full and self.bulk_reads.worth(total) and len(first) < total
        if mapping.sobject == "Contact":
            self._many_contacts = isinstance(total, int) and total >= CONVERTED_SCAN
        if bulk and mapping.sobject == "Lead" and self.accounts.match_leads:
            self._candidates = self.bulk_reads.accounts(staging, self.accounts)
        yield first, True
        del first  # handed on: not held while the rest of the object is read
        if not bulk:
            yield from ((rows, True) for rows in pages)
            return
        pages.close()
        fields = [*self.people.read_fields(mapping), *(DELETION if every_row else ())]
        kinds = self.kinds[mapping.sobject]
        for rows in self.bulk_reads.people(
            staging, mapping.sobject, fields, where, kinds, every_row
        ):
            yield rows, False

    def _changed_soql(
        self, mapping: ObjectMapping, state: Cursor, until: datetime, ours: str | None = None
    ) -> str:
        """People of one object changed after the cursor's position, up to `until`, in
        cursor order (see `_changed_where`)."""
        where = self._changed_where(mapping, state, until, ours)
        return self._people_soql(mapping, where, every_row=bool(state.positions))

    def _people_soql(self, mapping: ObjectMapping, where: str, every_row: bool) -> str:
        """The people query over REST, in cursor order; `every_row` (queryAll) also selects
        what marks a record merged away."""
        select = self._select(mapping, DELETION if every_row else (), every_row)
        return f"{select} WHERE {where} ORDER BY SystemModstamp, Id"

    def _changed_where(
        self, mapping: ObjectMapping, state: Cursor, until: datetime, ours: str | None = None
    ) -> str:
        """People of one object changed after the cursor's position, up to `until`; when
        resuming from a position, not those last changed by `ours` (the integration user).
        A read from stored positions (queryAll) also selects the records merged away in its
        window, whoever changed them last; other deleted records are not read: a deletion
        leaves the mirror with the next full read."""
        position = state.positions.get(mapping.sobject)
        conditions = [mapping.where] if mapping.where else []
        own = f"LastModifiedById != {quote(ours)}" if position and ours else ""
        if state.positions:
            kept = " AND ".join(filter(None, ["IsDeleted = false", own]))
            conditions.append(f"(({kept}) OR {MERGED_AWAY})")
        elif own:
            conditions.append(own)
        if position:
            lookback = timedelta(seconds=self.settings.lookback_seconds)
            since = parse_time(position[0], "cursor") - lookback
            last_id = position[1] if not lookback else ""
            if last_id:
                # Keyset: strictly after (SystemModstamp, Id) of the last record read.
                conditions.append(
                    f"(SystemModstamp > {when(since)} OR (SystemModstamp = {when(since)}"
                    f" AND Id > {quote(last_id)}))"
                )
            else:
                # No last id (lookback on, or the object was read to its end): the whole
                # second is re-read. Never an empty Id literal, which SOQL rejects.
                conditions.append(f"SystemModstamp >= {when(since)}")
        # SystemModstamp has second precision: the run's own second is included (and read
        # again next run through the lookback) rather than left waiting a whole run.
        conditions.append(f"SystemModstamp <= {when(until)}")
        return " AND ".join(conditions)

    def _pages_by_id(
        self, mapping: ObjectMapping, ids: Sequence[str]
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of the people with these ids (and the object's `where`), IN lists cut to fit."""
        where = f"{mapping.where} AND " if mapping.where else ""
        template = f"{self._select(mapping)} WHERE {where}Id IN ({{values}})"
        for statement in in_chunks(template, ids):
            yield from self._query(f"GET query {mapping.sobject}", statement)

    def read_contacts(self, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
        wanted: dict[str, list[str]] = {}
        for object_type, record_id in ids:
            sobject = object_type or ("Lead" if record_id.startswith("00Q") else "Contact")
            wanted.setdefault(sobject, []).append(record_id)
        for sobject, record_ids in wanted.items():
            mapping = self.objects.get(sobject)
            if mapping is None:
                errors = [
                    RecordError(f"{sobject}/{i}", None, "object not synced") for i in record_ids
                ]
                yield ContactBatch(errors=errors)
                continue
            # A malformed id literal fails the whole query in SOQL: such ids are simply not
            # found. A 15-character id finds its 18-character record.
            valid = [i for i in record_ids if is_id(i)]
            records = (
                self._all(
                    f"GET query {sobject}",
                    self._select(mapping, CONVERSION.get(sobject, ())) + " WHERE Id IN ({values})",
                    valid,
                )
                if valid
                else []
            )
            found = {r["Id"][:15] for r in records if is_id(r.get("Id"))}
            errors = [
                RecordError(f"{sobject}/{i}", None, "not found: malformed id")
                for i in record_ids
                if not is_id(i)
            ]
            errors += [
                RecordError(
                    f"{sobject}/{i}",
                    None,
                    "not found: deleted or merged",
                    key=(sobject, i),
                    gone=True,
                )
                for i in valid
                if i[:15] not in found
            ]
            records, followed = _converted_apart(records)
            errors += [_converted(lead, contact) for lead, contact in followed]
            raw, converted = self._raw(mapping, records)
            yield ContactBatch(raw=raw, errors=errors + converted)
            contacts = [("Contact", contact) for _, contact in followed if is_id(contact)]
            if contacts and "Contact" in self.objects:
                told = {("Lead", lead) for lead, _ in followed}  # each conversion said once
                for batch in self.read_contacts(contacts):
                    yield replace(batch, errors=[e for e in batch.errors if e.key not in told])

    def _raw(
        self,
        mapping: ObjectMapping,
        records: list[dict[str, Any]],
        candidates: Candidates | None = None,
    ) -> tuple[list[RawContact], list[RecordError]]:
        """The records as the core wants them: untranslated, each with its own translation.
        A record without a Salesforce id fails on its own; a second copy of one id in the
        same answer is the same record read twice and is left out. `candidates`: where the
        read's Leads find their Accounts (None: a query for these).

        And the leads these Contacts were converted from (read with them for their history),
        each as gone: a converted lead takes no write again and is never read again (the
        people query reads only leads not converted), so the read that learns of a conversion
        is the one that tells the core, which drops the lead from the mirror as it drops a
        record merged away; the person goes on as the Contact, which carries the lead's tasks."""
        sobject, usable, raw = mapping.sobject, {}, []
        for n, record in enumerate(records):
            record_id = record.get("Id")
            if is_id(record_id):
                usable.setdefault(record_id, record)
                continue
            shown = _shown(record_id)
            message = f"Id: not a Salesforce record id: {shown}"
            raw.append(
                RawContact(f"{sobject}/(row {n}, Id {shown})", partial(_refuse, "Id", message))
            )
        if not usable:
            return raw, []
        linked = self._accounts(mapping, list(usable.values()), candidates)
        found = self._related(sobject, list(usable.values()))
        ours = self.client.integration_user()
        translate = partial(_translate, mapping, self.people, self.accounts, ours)
        people = [
            RawContact(
                f"{sobject}/{record_id}",
                partial(translate, record, found, linked.get(record_id)),
                (sobject, record_id),
                _stamp(record),
            )
            for record_id, record in usable.items()
        ]
        converted = [
            _converted(lead["Id"], contact)
            for contact, lead in found.converted.items()
            if contact in usable and is_id(lead.get("Id"))
        ]
        return raw + people, converted

    def _accounts(
        self,
        mapping: ObjectMapping,
        people: list[dict[str, Any]],
        candidates: Candidates | None,
    ) -> dict[str, Account]:
        """Lead id -> the Account its email domain or company matches (`accounts.py`): from
        the read's `candidates` (staged by a Bulk read, or asked once a read), else a query for
        these; nothing for Contacts, which have their Account."""
        if mapping.sobject != "Lead" or not self.accounts.match_leads:
            return {}
        email, company = mapping.profile.get("email", ""), mapping.profile.get("company", "")
        candidates = candidates or queried(self._query, self.accounts)
        return find_accounts(candidates, self.accounts, email, company, people)

    def _related(self, sobject: str, people: list[dict[str, Any]]) -> Related:
        """What came with these people, their child sets taken out of their rows; the sets
        Salesforce cut short read again, for those people only, by IN list."""
        kinds = self.kinds[sobject]
        rows, again = child_sets(people, kinds)
        for kind in kinds:
            if again[kind.relationship]:
                rows[kind.relationship].update(self._by_ids(kind, again[kind.relationship]))
        if self._holding is not None:
            self._holding.add(rows)
        found = related(rows)
        found.merged = self._trail.get(sobject, {})
        if sobject == "Contact" and "Lead" in self.objects:
            found.converted = self._converted_leads(people)
        return found

    def _merges(
        self,
        mapping: ObjectMapping,
        records: list[dict[str, Any]],
        seen: set[str],
        pending: Pending,
        holding: Holding,
    ) -> dict[str, dict[str, Any]]:
        """Notes the records merged away on this page in the read's trail (its master takes
        them when its batch is made), and returns, read again by id, the masters already
        handed on before their victim came: a batch cut between the two, or a Bulk page. A
        record the last complete run handed on with its master, met again in the lookback at
        the same stamp, is no news: its master is not read again for it."""
        late: set[str] = set()
        for record in records:
            if (master := _master_of(record)) is None or holding.held_before(record):
                continue
            holding.hold(record)
            victims = self._trail[mapping.sobject].setdefault(master, [])
            if record["Id"] not in victims:
                victims.append(record["Id"])
            if master in seen and not pending.holds(mapping.sobject, master):
                late.add(master)
        if not late:
            return {}
        rows = [row for page in self._pages_by_id(mapping, sorted(late)) for row in page]
        return {row["Id"]: row for row in rows if is_id(row.get("Id"))}

    def _converted_leads(self, people: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The lead each of these contacts was converted from (`ConvertedContactId`), with its
        stage, origin and qualification, its creation and the opportunity it became: asked
        on every read of a contact, not only while its stage is empty, because the contact's
        own fields never carry the lead's creation (read once, then not, a converted person's
        oldest record, and with it the person's email and fit, changed after our first
        write). A few: by IN list; many (a first read): every converted lead of the org, read
        once per `read_changed` (a few pages rather than a query per 400). Many is the read's
        count, not the batch's: the batch shared with the last Leads, and the last one, hold
        fewer contacts, and IN lists for them ask what that one reading brings anyway."""
        contacts = [p["Id"] for p in people if isinstance(p.get("Id"), str)]
        if not contacts:
            return {}
        lead, mapping = self.people, self.objects["Lead"]
        fields = [f for f in (mapping.owned.fields.get("stage"), lead.lead_source,
                              *lead.qualification.values()) if f]  # fmt: skip
        held = self._many_contacts or self._every_converted is not None
        if held or len(contacts) >= CONVERTED_SCAN:
            if self._every_converted is None:
                every = converted_leads(fields, every=True)
                rows = [row for page in self._query("GET query Lead", every) for row in page]
                self._every_converted = _by_contact(rows)
            return {c: self._every_converted[c] for c in contacts if c in self._every_converted}
        return _by_contact(self._all("GET query Lead", converted_leads(fields), contacts))

    def _by_ids(self, kind: Engagement, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        found = _group(
            self._all(f"GET query {kind.sobject}", kind.by_ids(), ids),
            kind.link,
        )
        return {person: found.get(person, []) for person in ids}

    def field_sources(
        self, wanted: SourceQuestions
    ) -> dict[tuple[str, str], dict[str, FieldSource]]:
        """Who set these owned values, from each record's creator and last modifier."""
        ours = self.client.integration_user()
        return field_sources(self._all, list(self.objects), ours, wanted)

    # writes ----------------------------------------------------------------------------------
    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """An ingest job takes one object: in a call worth Bulk, an object with fewer updates
        than `bulk_threshold`, so few that sObject Collections take fewer requests than a job
        (the few Leads decided with a batch of Contacts), goes in collections."""
        # Salesforce refuses a whole record for a text longer than its field (STRING_TOO_LONG):
        # each text field's length, once a process (the fit check's describe may have told)
        learn_lengths(self, {update.object_type for update in updates})
        if not self.bulk_writes.worth(len(updates)):
            return self.fields.write(updates)
        counts = Counter(update.object_type for update in updates)
        bulk = {
            sobject: self.bulk_writes.worth(n) or not fewer_in_collections(n)
            for sobject, n in counts.items()
        }
        if not any(bulk.values()):
            return self.fields.write(updates)
        if all(bulk.values()):
            return self.bulk_writes.write_updates(updates)
        jobs = iter(self.bulk_writes.write_updates([u for u in updates if bulk[u.object_type]]))
        collections = iter(self.fields.write([u for u in updates if not bulk[u.object_type]]))
        return [next(jobs) if bulk[u.object_type] else next(collections) for u in updates]

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        if self.bulk_writes.worth(len(tasks)):
            results = self.bulk_writes.create_tasks(tasks)
        else:
            results = self.tasks.create(tasks)
        return self._onto_converted_contacts(tasks, results)

    def _onto_converted_contacts(
        self, tasks: Sequence[PlannedTask], results: list[TaskResult]
    ) -> list[TaskResult]:
        """Tasks refused because their Lead was converted since it was read (Salesforce
        answers CANNOT_UPDATE_CONVERTED_LEAD: after a conversion only the Contact and Account
        it became may be referenced): gone, and owed to that Contact (`moved_to`). A Lead
        gone otherwise (deleted, merged), or a failed look-up, leaves them gone."""
        leads = {
            task.contact_id
            for task, result in zip(tasks, results, strict=True)
            if task.object_type == "Lead" and result.gone
        }
        if not leads:
            return results
        soql = "SELECT Id, ConvertedContactId FROM Lead WHERE IsConverted = true"
        soql += " AND Id IN ({values})"
        try:
            rows = self._all("GET query Lead", soql, sorted(leads))
        except AdapterError as exc:
            log.warning("the Contacts of %d converted lead(s) not found: %s", len(leads), exc)
            return results
        into = {
            row["Id"][:15]: row["ConvertedContactId"]
            for row in rows
            if is_id(row.get("Id")) and is_id(row.get("ConvertedContactId"))
        }
        return [
            replace(result, moved_to=("Contact", contact))
            if task.object_type == "Lead"
            and result.gone
            and (contact := into.get(task.contact_id[:15]))
            else result
            for task, result in zip(tasks, results, strict=True)
        ]

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        return self.tasks.find(keys)

    def existing_task_keys(self) -> Iterator[tuple[str, str]]:
        return self.tasks.existing()

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        return self.tasks.close(crm_ids)

    def finish_writes_in_flight(self) -> int:
        """The Bulk ingest jobs a dead run closed on our objects, waited for (`in_flight.py`)."""
        objects = frozenset({*self.objects, "Task"})
        return finish_writes_in_flight(self.bulk_api, self.client.integration_user, objects)

    def fetch_outcomes(self, since: datetime) -> Iterator[Outcome]:
        """Closed opportunities with their contact roles, in one request per page."""
        roles = Engagement("OpportunityContactRoles", "OpportunityContactRole", "OpportunityId",
                           ("ContactId",))  # fmt: skip
        soql = (
            f"SELECT Id, IsWon, CloseDate, CreatedDate, Amount, {roles.subquery()} FROM Opportunity"
            f" WHERE IsClosed = true AND CloseDate >= {since.astimezone(UTC).date().isoformat()}"
        )
        for page in self._query("GET query Opportunity", soql):
            rows = [row for row in page if is_id(row.get("Id"))]
            found, again = child_sets(rows, [roles])
            contacts_of = found[roles.relationship]
            if again[roles.relationship]:
                contacts_of.update(self._by_ids(roles, again[roles.relationship]))
            for row in rows:
                try:
                    closed_at = parse_time(row.get("CloseDate"), "CloseDate")
                    created_at = parse_time(row.get("CreatedDate"), "CreatedDate")
                    amount = number(row, "Amount")
                except TranslationError as exc:
                    log.warning("Opportunity/%s left out of the outcomes: %s", row["Id"], exc)
                    continue
                contacts = [r.get("ContactId") for r in contacts_of.get(row["Id"], [])]
                yield Outcome(
                    deal_id=row["Id"],
                    won=row.get("IsWon") is True,
                    closed_at=closed_at,
                    contact_ids=tuple(c for c in contacts if is_id(c)),
                    amount=amount,
                    created_at=created_at,
                )

    # checks ----------------------------------------------------------------------------------
    def describe(self, object_type: str) -> dict[str, dict[str, Any]]:
        """The describe answer's fields by name, as Salesforce sends them. An answer without
        a `fields` list (a proxy's or a wrong host's `{}`) is a failed call naming what is
        missing, which doctor reports as a failed check instead of crashing on a KeyError."""
        what = f"GET describe {object_type}"
        answer = self.client.call(what, lambda sf: getattr(sf, object_type).describe())
        fields = answer.get("fields") if isinstance(answer, dict) else None
        if not isinstance(fields, list):
            raise SalesforceCallError(what, 200, "UNEXPECTED_ANSWER", "no 'fields' list in it")
        return {
            f["name"]: f for f in fields if isinstance(f, dict) and isinstance(f.get("name"), str)
        }

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        """Also tells the object's owned fields their text lengths (`OwnedFields.learn`)."""
        fields = {name: field_info(f) for name, f in self.describe(object_type).items()}
        mapping = self.objects.get(object_type)
        if mapping is not None:
            mapping.owned.learn(fields)
        return fields

    def check(self) -> list[CheckResult]:
        return run_checks(self)

    def usage(self) -> ApiUsage:
        return self.client.usage()

    def clock_offset(self) -> float | None:
        return self.client.crm_clock.offset


class Page(list[dict[str, Any]]):
    """A page of query results, and `total`: how many records the whole query selects."""

    def __init__(self, records: Iterable[dict[str, Any]] = (), total: Any = None) -> None:
        super().__init__(records)
        self.total = total if isinstance(total, int) else None


DELETION = ("IsDeleted", "MasterRecordId")
"""Selected through queryAll: a record merged away is deleted and names its master."""
MERGED_AWAY = "(IsDeleted = true AND MasterRecordId != null)"
CONVERSION = {"Lead": ("IsConverted", "ConvertedContactId")}
"""Read with a record fetched by id: a converted lead is followed to its contact."""
CONVERTED_SCAN = 1_000
"""New contacts from which reading every converted lead once beats IN lists (about 400 ids
each)."""


def _translate(
    mapping: ObjectMapping,
    people: PeopleMapping,
    accounts: AccountMapping,
    ours: str | None,
    record: dict[str, Any],
    found: Related,
    account: Account | None,
) -> Contact:
    """One person translated, and linked to the Account matched to it, if any."""
    contact = to_contact(mapping, people, record, found, ours)
    return with_account(contact, account, accounts, people.recurring) if account else contact


def _by_contact(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        row["ConvertedContactId"]: row
        for row in rows
        if isinstance(row.get("ConvertedContactId"), str)
    }


def _converted(lead: str, contact: str) -> RecordError:
    """A converted lead as the core is told of it: gone, its person carried by its contact."""
    return RecordError(
        f"Lead/{lead}",
        "IsConverted",
        f"converted into Contact/{contact}: a converted lead is never written, its contact is"
        " read instead",
        key=("Lead", lead),
        gone=True,
    )


def _converted_apart(
    records: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Records that may be written, and (lead id, contact id) of the converted leads among
    them: those are never handed on (Salesforce refuses to update them), their contacts are."""
    kept, followed = [], []
    for record in records:
        if record.get("IsConverted") is True and is_id(record.get("Id")):
            followed.append((record["Id"], str(record.get("ConvertedContactId") or "none")))
        else:
            kept.append(record)
    return kept, followed


def _shown(value: Any) -> str:
    """A bad id as errors show it: short, and never a whole object."""
    if value is None:
        return "missing"
    return repr(value[:40]) if isinstance(value, str) else f"of type {type(value).__name__}"


def _first_read(seen: set[str], record: dict[str, Any]) -> bool:
    """Whether this run reads the record for the first time (a parent returned again, on a
    later page or by the sweep, is handed on once), noting it as read. A record without a
    usable id is handed on: it fails on its own."""
    record_id = record.get("Id")
    if not is_id(record_id):
        return True
    if record_id in seen:
        return False
    seen.add(record_id)
    return True


def _deleted(record: dict[str, Any]) -> bool:
    """A queryAll row of a deleted record (REST: true; a Bulk CSV: "true")."""
    return record.get("IsDeleted") in (True, "true")


def _master_of(record: dict[str, Any]) -> str | None:
    """The record a deleted one was merged into (`MasterRecordId`), if any."""
    master = record.get("MasterRecordId")
    merged = _deleted(record) and is_id(master) and is_id(record.get("Id"))
    return master if merged else None


def _stamp(record: dict[str, Any]) -> datetime | None:
    """The record's `SystemModstamp` as read (`RawContact.stamp`); None when unreadable."""
    try:
        return parse_time(record.get("SystemModstamp"), "SystemModstamp")
    except TranslationError:
        return None


def _known_ids(
    sobject: str, records: list[dict[str, Any]], known: KnownVersions | None, by_others: bool
) -> set[str]:
    """Ids of these people whose version the core already holds (`known`: the version it
    read, or its own write), met again in the lookback: their record has not changed since
    (activity on them is for the sweep to find). `by_others`: the query left out what we
    changed last, so none of these is our write, even one stamped inside our write's round
    trip (SystemModstamp has second precision): only the version read is known."""
    if known is None:
        return set()
    hits = []
    for record in records:
        stamp = _stamp(record)
        if stamp is not None and is_id(record.get("Id")):
            hits.append(((sobject, record["Id"]), stamp))
    return {record_id for _, record_id in known(hits, by_others=by_others)} if hits else set()


def _position(records: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(SystemModstamp, Id) of the last record that has both: where the next page starts."""
    for record in reversed(records):
        stamp, record_id = record.get("SystemModstamp"), record.get("Id")
        if isinstance(stamp, str) and is_id(record_id):
            return stamp, record_id
    return None


def _unattributed(row: dict[str, Any]) -> dict[str, Any]:
    """The row without its `attributes`, in place: the answer is ours alone, and a copy of
    each row would be held beside it while the page is made. Its subqueries' rows and their
    parents (`Campaign`) lose theirs too, in place: a row's child rows wait with it until
    their batch is taken, each `attributes` an object and a URL of its own (a tenth of a
    raw batch). Every query row comes through here, so what reads them takes them as they
    are."""
    row.pop("attributes", None)
    for value in row.values():
        if isinstance(value, dict):
            records = value.get("records")
            if isinstance(records, list):  # a subquery's answer
                for child in records:
                    if isinstance(child, dict):
                        _unattributed(child)
            elif "attributes" in value:  # a parent's fields (`Campaign.Name`)
                _unattributed(value)
    return row


def _group(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if isinstance(row.get(key), str):
            grouped.setdefault(row[key], []).append(row)
    return grouped
