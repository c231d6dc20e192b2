"""The Salesforce adapter: the core's contract (`crm_qualify.connector.contract.Adapter`)
over the REST API through `simple-salesforce`.

Leads (not converted) and Contacts are read by SOQL ordered by (SystemModstamp, Id), 2,000 per
page through `nextRecordsUrl`, and resumed from a keyset cursor; their engagement (Tasks,
Events, campaign responses) and deals (OpportunityContactRole -> Opportunity) come from
IN-list queries per page, never one query per record. Writes and task creations go through
sObject Collections, 200 records per call, with per-record results.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_qualify.adapters.salesforce.client import (
    TRANSIENT_CODES,
    SalesforceCallError,
    SalesforceClient,
)
from crm_qualify.adapters.salesforce.doctor import run_checks
from crm_qualify.adapters.salesforce.reader import Cursor, people_touched
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.adapters.salesforce.soql import in_chunks, quote, when
from crm_qualify.adapters.salesforce.translate import (
    ObjectMapping,
    PeopleMapping,
    Related,
    TranslationError,
    parse_time,
    task_record,
    to_contact,
    to_fields,
)
from crm_qualify.connector.contract import (
    ApiUsage,
    CheckResult,
    ContactBatch,
    FieldInfo,
    Outcome,
    RecordError,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import Deal, PlannedTask, RecordUpdate

log = logging.getLogger(__name__)
COLLECTION = 200


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
        """Pages of one query (2,000 records each), following nextRecordsUrl."""
        page = self.client.call(what, lambda sf: sf.query(soql))
        while True:
            yield [{k: v for k, v in r.items() if k != "attributes"} for r in page["records"]]
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            next_url = page["nextRecordsUrl"]
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
    def read_changed(self, cursor: str | None, *, until: datetime) -> Iterator[ContactBatch]:
        state = Cursor.load(cursor)
        sweep_from = state.sweep_from()
        lookback = timedelta(seconds=self.settings.lookback_seconds)
        seen: dict[str, set[str]] = {sobject: set() for sobject in self.objects}
        for sobject, mapping in self.objects.items():
            position = state.positions.get(sobject)
            conditions = [mapping.where] if mapping.where else []
            if position:
                since = parse_time(position[0], "cursor") - lookback
                last_id = position[1] if not lookback else ""
                conditions.append(
                    f"(SystemModstamp > {when(since)} OR (SystemModstamp = {when(since)}"
                    f" AND Id > {quote(last_id)}))"
                )
            # SystemModstamp has second precision: the run's own second is included (and read
            # again next run through the lookback) rather than left waiting a whole run.
            conditions.append(f"SystemModstamp <= {when(until)}")
            fields = ", ".join(self.people.read_fields(mapping))
            soql = (
                f"SELECT {fields} FROM {sobject} WHERE {' AND '.join(conditions)}"
                " ORDER BY SystemModstamp, Id"
            )
            for records in self._query(f"GET query {sobject}", soql):
                fresh = [r for r in records if r["Id"] not in seen[sobject]]
                seen[sobject].update(r["Id"] for r in fresh)
                contacts, errors = self._translate(mapping, fresh)
                if records:
                    state.positions[sobject] = (records[-1]["SystemModstamp"], records[-1]["Id"])
                yield ContactBatch(contacts, state.dump(), errors)
            state.positions[sobject] = (when(until), "")
            yield ContactBatch([], state.dump(), [])
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
                    contacts, errors = self._translate(mapping, records)
                    yield ContactBatch(contacts, state.dump(), errors)
        state.activity = when(until)
        yield ContactBatch([], state.dump(), [])

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
                yield ContactBatch([], None, errors)
                continue
            fields = ", ".join(self.people.read_fields(mapping))
            records = self._all(
                f"GET query {sobject}",
                f"SELECT {fields} FROM {sobject} WHERE Id IN ({{values}})",
                record_ids,
            )
            found = {r["Id"] for r in records}
            contacts, errors = self._translate(mapping, records)
            errors += [
                RecordError(f"{sobject}/{i}", None, "not found")
                for i in record_ids
                if i not in found
            ]
            yield ContactBatch(contacts, None, errors)

    def _translate(
        self, mapping: ObjectMapping, records: list[dict[str, Any]]
    ) -> tuple[list, list[RecordError]]:
        if not records:
            return [], []
        related = self._related([r["Id"] for r in records], mapping.sobject == "Contact")
        contacts, errors = [], []
        for record in records:
            try:
                contacts.append(to_contact(mapping, self.people, record, related))
            except TranslationError as exc:
                errors.append(RecordError(f"{mapping.sobject}/{record['Id']}", exc.field, str(exc)))
        return contacts, errors

    def _related(self, ids: list[str], contacts: bool) -> Related:
        key = self.people.task_key
        tasks = self._all(
            "GET query Task",
            "SELECT Id, WhoId, Subject, TaskSubtype, ActivityDate, Status, IsClosed, CreatedDate,"
            f" {key} FROM Task WHERE WhoId IN ({{values}})",
            ids,
        )
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
            deals=self._deals(ids) if contacts else {},
        )

    def _campaign_index(self) -> dict[str, dict[str, Any]]:
        if self._campaigns is None:
            self._campaigns = {
                row["Id"]: row
                for page in self._query("GET query Campaign", "SELECT Id, Name, Type FROM Campaign")
                for row in page
            }
        return self._campaigns

    def _deals(self, contact_ids: list[str]) -> dict[str, list[Deal]]:
        roles = self._all(
            "GET query OpportunityContactRole",
            "SELECT OpportunityId, ContactId FROM OpportunityContactRole"
            " WHERE ContactId IN ({values})",
            contact_ids,
        )
        if not roles:
            return {}
        opportunities = {
            row["Id"]: row
            for row in self._all(
                "GET query Opportunity",
                "SELECT Id, IsClosed, IsWon, Amount, CloseDate, Type FROM Opportunity"
                " WHERE Id IN ({values})",
                sorted({r["OpportunityId"] for r in roles}),
            )
        }
        deals: dict[str, list[Deal]] = {}
        for role in roles:
            row = opportunities.get(role["OpportunityId"])
            if row is None:
                continue
            status = "won" if row.get("IsWon") else "lost" if row.get("IsClosed") else "open"
            deals.setdefault(role["ContactId"], []).append(
                Deal(
                    id=row["Id"],
                    status=status,
                    amount=row.get("Amount"),
                    recurring=bool(self.people.recurring.search(row.get("Type") or "")),
                    closed_at=parse_time(row.get("CloseDate"), "CloseDate")
                    if row.get("IsClosed")
                    else None,
                )
            )
        return deals

    # writes ----------------------------------------------------------------------------------
    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results: dict[tuple[str, str], WriteResult] = {}
        records, keys = [], []
        for update in updates:
            key = (update.object_type, update.contact_id)
            mapping = self.objects.get(update.object_type)
            try:
                if mapping is None:
                    raise TranslationError("object", f"{update.object_type} is not synced")
                fields = to_fields(mapping, update.values())
            except TranslationError as exc:
                results[key] = WriteResult(update.contact_id, False, str(exc))
                continue
            records.append(
                {"attributes": {"type": update.object_type}, "id": update.contact_id, **fields}
            )
            keys.append(key)
        for start in range(0, len(records), COLLECTION):
            chunk, chunk_keys = (
                records[start : start + COLLECTION],
                keys[start : start + COLLECTION],
            )
            for key, outcome in zip(chunk_keys, self._collection("PATCH", chunk), strict=True):
                ok, error, retryable = outcome
                results[key] = WriteResult(key[1], ok, error, retryable)
        return [results[(u.object_type, u.contact_id)] for u in updates]

    def _collection(
        self, method: str, records: list[dict[str, Any]]
    ) -> list[tuple[bool, str | None, bool]]:
        """(ok, error, retryable) per record, in order; a failed call fails every record."""
        try:
            answer = self.client.restful(
                f"{method} composite/sobjects",
                "composite/sobjects",
                method,
                json={"allOrNone": False, "records": records},
            )
        except SalesforceCallError as exc:
            retryable = exc.status is None or exc.status >= 500 or exc.code in TRANSIENT_CODES
            return [(False, str(exc), retryable)] * len(records)
        outcomes = []
        for row in answer:
            if row.get("success"):
                outcomes.append((True, row.get("id"), False))
                continue
            errors = row.get("errors") or [{}]
            first = errors[0]
            fields = ", ".join(first.get("fields") or [])
            message = f"{first.get('statusCode')}: {first.get('message')}" + (
                f" ({fields})" if fields else ""
            )
            outcomes.append((False, message, first.get("statusCode") in TRANSIENT_CODES))
        return outcomes

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        results = []
        for start in range(0, len(tasks), COLLECTION):
            chunk = tasks[start : start + COLLECTION]
            records = [task_record(t, self.people.task_key) for t in chunk]
            for task, (ok, detail, _) in zip(chunk, self._collection("POST", records), strict=True):
                results.append(
                    TaskResult(task.key, True, crm_id=detail)
                    if ok
                    else TaskResult(task.key, False, error=detail)
                )
        return results

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        key = self.people.task_key
        rows = self._all(
            "GET query Task", f"SELECT Id, {key} FROM Task WHERE {key} IN ({{values}})", list(keys)
        )
        return {row[key]: row["Id"] for row in rows if row.get(key) in set(keys)}

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        results = []
        for start in range(0, len(crm_ids), COLLECTION):
            chunk = list(crm_ids[start : start + COLLECTION])
            try:
                answer = self.client.restful(
                    "DELETE composite/sobjects",
                    "composite/sobjects",
                    "DELETE",
                    params={"ids": ",".join(chunk), "allOrNone": "false"},
                )
            except SalesforceCallError as exc:
                results += [TaskResult(i, False, crm_id=i, error=str(exc)) for i in chunk]
                continue
            for task_id, row in zip(chunk, answer, strict=True):
                ok = bool(row.get("success")) or any(
                    e.get("statusCode") == "ENTITY_IS_DELETED" for e in row.get("errors") or []
                )
                results.append(
                    TaskResult(task_id, ok, crm_id=task_id, error=None if ok else str(row))
                )
        return results

    def fetch_outcomes(self, since: datetime) -> Iterator[Outcome]:
        soql = (
            "SELECT Id, IsWon, CloseDate, Amount FROM Opportunity WHERE IsClosed = true"
            f" AND CloseDate >= {since.astimezone(UTC).date().isoformat()}"
        )
        for page in self._query("GET query Opportunity", soql):
            roles = _group(
                self._all(
                    "GET query OpportunityContactRole",
                    "SELECT OpportunityId, ContactId FROM OpportunityContactRole"
                    " WHERE OpportunityId IN ({values})",
                    [row["Id"] for row in page],
                ),
                "OpportunityId",
            )
            for row in page:
                yield Outcome(
                    deal_id=row["Id"],
                    won=bool(row.get("IsWon")),
                    closed_at=parse_time(row.get("CloseDate"), "CloseDate"),
                    contact_ids=tuple(r["ContactId"] for r in roles.get(row["Id"], [])),
                    amount=row.get("Amount"),
                )

    # checks ----------------------------------------------------------------------------------
    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        answer = self.client.call(
            f"GET describe {object_type}", lambda sf: getattr(sf, object_type).describe()
        )
        return {
            f["name"]: FieldInfo(
                name=f["name"],
                type=f["type"],
                label=f.get("label", ""),
                writable=bool(f.get("updateable")),
                options=tuple(p["value"] for p in f.get("picklistValues") or []),
            )
            for f in answer["fields"]
        }

    def check(self) -> list[CheckResult]:
        return run_checks(self)

    def usage(self) -> ApiUsage:
        return self.client.usage()


def _group(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get(key):
            grouped.setdefault(row[key], []).append(row)
    return grouped
