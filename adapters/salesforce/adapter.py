"""The Salesforce adapter: the core's contract (`crm_qualify.connector.contract.Adapter`)
over the REST API through `simple-salesforce`.

Leads (not converted) and Contacts are read by SOQL ordered by (SystemModstamp, Id), 2,000 per
page through `nextRecordsUrl`, and resumed from a keyset cursor. Our own writes move
SystemModstamp, so an incremental read (a stored position for the object, and `known` given:
the engine's mirror holds what we wrote) leaves out records whose last change is ours
(`LastModifiedById != <integration user>`); a full read (no position, or no `known`) reads
everyone. Missed until the next full read: a person's edit between our read of a record and
our write to it that touches no activity object (the sweep reads those people anyway), and
changes made as the integration user by anything else (a flow our write fires, another tool
sharing the user). Their engagement (Tasks,
Events, campaign responses) and deals (OpportunityContactRole -> Opportunity) come from
IN-list queries per page, never one query per record. Records go to the core untranslated
(`RawContact`), so one bad value fails one record. Field writes go through sObject
Collections, 200 records per call; tasks are upserted by their key, an External ID + Unique
field, so Salesforce itself never holds two tasks with one key (see `writer.py`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from crm_qualify.adapters.salesforce.client import SalesforceClient
from crm_qualify.adapters.salesforce.doctor import field_info, run_checks
from crm_qualify.adapters.salesforce.reader import Cursor, people_touched
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.adapters.salesforce.soql import in_chunks, quote, task_query, when
from crm_qualify.adapters.salesforce.translate import (
    ObjectMapping,
    PeopleMapping,
    Related,
    TranslationError,
    number,
    parse_time,
    to_contact,
)
from crm_qualify.adapters.salesforce.writer import Writer
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
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import Contact, PlannedTask, RecordUpdate

log = logging.getLogger(__name__)
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
NEXT_PAGE = re.compile(r"/services/data/v[\d.]+/query(?:All)?/[\w-]+")


def is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(SALESFORCE_ID.fullmatch(value))


def _refuse(field: str, message: str) -> Contact:
    raise TranslationError(field, message)


class SalesforceAdapter:
    name = "salesforce"
    settings_model = SalesforceSettings

    def __init__(
        self, settings: SalesforceSettings, mapping: dict[str, Any], client: SalesforceClient
    ) -> None:
        self.settings = settings
        self.client = client
        self.objects = {s: ObjectMapping.from_document(mapping, s) for s in settings.objects}
        self.people = PeopleMapping.from_document(mapping)
        stages = [set(m.stages) for m in self.objects.values()]
        self.writable_stages = frozenset.intersection(*map(frozenset, stages))
        self.writer = Writer(client, self.objects, self.people.task_key)
        self._campaigns: dict[str, dict[str, Any]] | None = None

    @classmethod
    def from_config(
        cls, settings: SalesforceSettings, mapping: dict[str, Any]
    ) -> SalesforceAdapter:
        return cls(settings, mapping, SalesforceClient(settings))

    def __repr__(self) -> str:
        return f"SalesforceAdapter(login_url={self.settings.login_url!r})"

    # queries ---------------------------------------------------------------------------------
    def _query(self, what: str, soql: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of one query (2,000 records each), following nextRecordsUrl, which must be a
        query locator on the instance (it is appended to the instance host)."""
        page = self.client.call(what, lambda sf: sf.query(soql))
        while True:
            rows = page.get("records") or []
            yield [
                {k: v for k, v in r.items() if k != "attributes"}
                for r in rows
                if isinstance(r, dict)
            ]
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            if not (isinstance(next_url, str) and NEXT_PAGE.fullmatch(next_url)):
                raise AdapterError(f"{what}: unexpected nextRecordsUrl {str(next_url)[:80]!r}")
            page = self.client.call(
                f"{what} (more)",
                lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True),
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
        query itself (`LastModifiedById`); None (a full read): every record is read."""
        state = Cursor.load(cursor)
        sweep_from = state.sweep_from()
        lookback = timedelta(seconds=self.settings.lookback_seconds)
        seen: dict[str, set[str]] = {sobject: set() for sobject in self.objects}
        ours = self.client.integration_user() if state.positions and known else None
        for sobject, mapping in self.objects.items():
            soql = self._changed_soql(mapping, state, until, ours)
            for records in self._query(f"GET query {sobject}", soql):
                fresh = [
                    r for r in records if not (is_id(r.get("Id")) and r["Id"] in seen[sobject])
                ]
                seen[sobject].update(r["Id"] for r in fresh if is_id(r.get("Id")))
                raw = self._raw(mapping, fresh)
                last = _position(records)
                if last:
                    state.positions[sobject] = last
                yield ContactBatch(cursor=state.dump(), raw=raw)
            state.positions[sobject] = (when(until), "")
            yield ContactBatch(cursor=state.dump())
        if sweep_from is not None:
            touched = people_touched(
                self._query,
                parse_time(sweep_from, "cursor") - lookback,
                until,
                self.people.task_key,
                deals="Contact" in self.objects,
            )
            for sobject, mapping in self.objects.items():
                ids = sorted(touched.get(sobject, set()) - seen[sobject])
                for records in self._pages_by_id(mapping, ids):
                    yield ContactBatch(cursor=state.dump(), raw=self._raw(mapping, records))
        state.activity = when(until)
        yield ContactBatch(cursor=state.dump())

    def _changed_soql(
        self, mapping: ObjectMapping, state: Cursor, until: datetime, ours: str | None = None
    ) -> str:
        """People of one object changed after the cursor's position, up to `until`; when
        resuming from a position, not those last changed by `ours` (the integration user)."""
        position = state.positions.get(mapping.sobject)
        conditions = [mapping.where] if mapping.where else []
        if position and ours:
            conditions.append(f"LastModifiedById != {quote(ours)}")
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
        fields = ", ".join(self.people.read_fields(mapping))
        return (
            f"SELECT {fields} FROM {mapping.sobject} WHERE {' AND '.join(conditions)}"
            " ORDER BY SystemModstamp, Id"
        )

    def _pages_by_id(
        self, mapping: ObjectMapping, ids: Sequence[str]
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of the people with these ids (and the object's `where`), IN lists cut to fit."""
        fields = ", ".join(self.people.read_fields(mapping))
        where = f"{mapping.where} AND " if mapping.where else ""
        template = f"SELECT {fields} FROM {mapping.sobject} WHERE {where}Id IN ({{values}})"
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
            fields = ", ".join(self.people.read_fields(mapping))
            # A malformed id literal fails the whole query in SOQL: such ids are simply not
            # found. A 15-character id finds its 18-character record.
            valid = [i for i in record_ids if is_id(i)]
            records = (
                self._all(
                    f"GET query {sobject}",
                    f"SELECT {fields} FROM {sobject} WHERE Id IN ({{values}})",
                    valid,
                )
                if valid
                else []
            )
            found = {r["Id"][:15] for r in records if is_id(r.get("Id"))}
            errors = [
                RecordError(f"{sobject}/{i}", None, "not found")
                for i in record_ids
                if not is_id(i) or i[:15] not in found
            ]
            yield ContactBatch(raw=self._raw(mapping, records), errors=errors)

    def _raw(self, mapping: ObjectMapping, records: list[dict[str, Any]]) -> list[RawContact]:
        """The records as the core wants them: untranslated, each with its own translation.
        A record without a Salesforce id fails on its own; a second copy of one id in the
        same answer is the same record read twice and is left out."""
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
            return raw
        related = self._related(list(usable), sobject == "Contact")
        return raw + [
            RawContact(
                f"{sobject}/{record_id}",
                partial(to_contact, mapping, self.people, record, related),
                (sobject, record_id),
            )
            for record_id, record in usable.items()
        ]

    def _related(self, ids: list[str], contacts: bool) -> Related:
        key = self.people.task_key
        tasks = self._all("GET query Task", task_query(key, self.settings.api_version), ids)
        events = self._all(
            "GET query Event",
            "SELECT Id, WhoId, Subject, ActivityDateTime, CreatedDate FROM Event"
            " WHERE WhoId IN ({values})",
            ids,
        )
        person = "ContactId" if contacts else "LeadId"
        members = self._all(
            "GET query CampaignMember",
            f"SELECT Id, {person}, CampaignId, Status, FirstRespondedDate, CreatedDate"
            f" FROM CampaignMember WHERE {person} IN ({{values}})",
            ids,
        )
        return Related(
            tasks=_group(tasks, "WhoId"),
            events=_group(events, "WhoId"),
            members=_group(members, person),
            campaigns=self._campaign_index(),
            deals=self._deal_rows(ids) if contacts else {},
        )

    def _campaign_index(self) -> dict[str, dict[str, Any]]:
        if self._campaigns is None:
            rows = self._query("GET query Campaign", "SELECT Id, Name, Type FROM Campaign")
            self._campaigns = {r["Id"]: r for page in rows for r in page if is_id(r.get("Id"))}
        return self._campaigns

    def _deal_rows(self, contact_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Opportunity rows by contact id, through OpportunityContactRole."""
        roles = self._all(
            "GET query OpportunityContactRole",
            "SELECT OpportunityId, ContactId FROM OpportunityContactRole"
            " WHERE ContactId IN ({values})",
            contact_ids,
        )
        wanted = sorted({r["OpportunityId"] for r in roles if is_id(r.get("OpportunityId"))})
        if not wanted:
            return {}
        opportunities = _group(
            self._all(
                "GET query Opportunity",
                "SELECT Id, IsClosed, IsWon, Amount, CloseDate, Type FROM Opportunity"
                " WHERE Id IN ({values})",
                wanted,
            ),
            "Id",
        )
        deals: dict[str, list[dict[str, Any]]] = {}
        for role in roles:
            opportunity, contact = role.get("OpportunityId"), role.get("ContactId")
            rows = opportunities.get(opportunity, []) if is_id(opportunity) else []
            if rows and is_id(contact):
                deals.setdefault(contact, []).append(rows[0])
        return deals

    # writes ----------------------------------------------------------------------------------
    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        return self.writer.write_updates(updates)

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        return self.writer.create_tasks(tasks)

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        key = self.people.task_key
        wanted = {k.casefold(): k for k in keys}
        rows = self._all(
            "GET query Task", f"SELECT Id, {key} FROM Task WHERE {key} IN ({{values}})", list(keys)
        )
        return {
            wanted[row[key].casefold()]: row["Id"]
            for row in rows
            if isinstance(row.get(key), str)
            and row[key].casefold() in wanted
            and is_id(row.get("Id"))
        }

    def existing_task_keys(self) -> Iterator[tuple[str, str]]:
        key = self.people.task_key
        soql = f"SELECT Id, {key} FROM Task WHERE {key} != null ORDER BY Id"
        for page in self._query("GET query Task", soql):
            for row in page:
                if isinstance(row.get(key), str) and is_id(row.get("Id")):
                    yield row[key], row["Id"]

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        return self.writer.delete_tasks(crm_ids)

    def fetch_outcomes(self, since: datetime) -> Iterator[Outcome]:
        soql = (
            "SELECT Id, IsWon, CloseDate, Amount FROM Opportunity WHERE IsClosed = true"
            f" AND CloseDate >= {since.astimezone(UTC).date().isoformat()}"
        )
        for page in self._query("GET query Opportunity", soql):
            rows = [row for row in page if is_id(row.get("Id"))]
            roles = _group(
                self._all(
                    "GET query OpportunityContactRole",
                    "SELECT OpportunityId, ContactId FROM OpportunityContactRole"
                    " WHERE OpportunityId IN ({values})",
                    [row["Id"] for row in rows],
                ),
                "OpportunityId",
            )
            for row in rows:
                try:
                    closed_at = parse_time(row.get("CloseDate"), "CloseDate")
                    amount = number(row, "Amount")
                except TranslationError as exc:
                    log.warning("Opportunity/%s left out of the outcomes: %s", row["Id"], exc)
                    continue
                contacts = [r.get("ContactId") for r in roles.get(row["Id"], [])]
                yield Outcome(
                    deal_id=row["Id"],
                    won=row.get("IsWon") is True,
                    closed_at=closed_at,
                    contact_ids=tuple(c for c in contacts if is_id(c)),
                    amount=amount,
                )

    # checks ----------------------------------------------------------------------------------
    def describe(self, object_type: str) -> dict[str, dict[str, Any]]:
        """The describe answer's fields by name, as Salesforce sends them."""
        answer = self.client.call(
            f"GET describe {object_type}", lambda sf: getattr(sf, object_type).describe()
        )
        return {f["name"]: f for f in answer["fields"]}

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        return {name: field_info(f) for name, f in self.describe(object_type).items()}

    def check(self) -> list[CheckResult]:
        return run_checks(self)

    def usage(self) -> ApiUsage:
        return self.client.usage()


def _shown(value: Any) -> str:
    """A bad id as errors show it: short, and never a whole object."""
    if value is None:
        return "missing"
    return repr(value[:40]) if isinstance(value, str) else f"of type {type(value).__name__}"


def _position(records: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(SystemModstamp, Id) of the last record that has both: where the next page starts."""
    for record in reversed(records):
        stamp, record_id = record.get("SystemModstamp"), record.get("Id")
        if isinstance(stamp, str) and is_id(record_id):
            return stamp, record_id
    return None


def _group(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if isinstance(row.get(key), str):
            grouped.setdefault(row[key], []).append(row)
    return grouped
