"""The HubSpot adapter: the core's contract (`crm_qualify.connector.contract.Adapter`)
over HubSpot's CRM v3/v4 API, through the official `hubspot-api-client`.

Reads are batched: per 100 contacts, one batch read of the mapped properties, one v4
association read each for deals and tasks, and batch reads of those deals and tasks. Writes
go 100 records per batch update; results come back unordered and are matched by id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError
from crm_qualify.adapters.hubspot.reader import ChangeReader, Cursor, epoch_ms
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.setup import create_properties, property_checks
from crm_qualify.adapters.hubspot.translate import (
    ContactMapping,
    TranslationError,
    parse_time,
    task_input,
    to_contact,
    to_properties,
    to_task,
)
from crm_qualify.connector.contract import (
    ApiUsage,
    AuthError,
    CheckResult,
    ContactBatch,
    FieldInfo,
    Outcome,
    RecordError,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import Deal, ExistingTask, PlannedTask, RecordUpdate

log = logging.getLogger(__name__)

BATCH = 100
READ_BATCH = 500
"""Contacts read together: one association request serves up to 1,000 of them."""
DEAL_PROPERTIES = ["dealstage", "pipeline", "amount", "closedate", "hs_mrr"]
TASK_PROPERTIES = ["hs_timestamp", "hs_task_status"]


class HubSpotAdapter:
    name = "hubspot"
    settings_model = HubSpotSettings

    def __init__(
        self, settings: HubSpotSettings, mapping: dict[str, Any], client: HubSpotClient
    ) -> None:
        self.settings = settings
        self.client = client
        self.object_type = settings.object_type
        self.contacts = ContactMapping.from_document(mapping, self.object_type)
        self.writable_stages = frozenset(self.contacts.stages)
        tasks = mapping.get("tasks", {})
        self.task_key_property = tasks.get("key_property", "crmq_task_key")
        self.task_association = int(tasks.get("contact_association_type", 204))
        deals = mapping.get("deals", {})
        self.recurring_property = deals.get("recurring_property", "hs_mrr")
        self.reader = ChangeReader(client, self.object_type, int(settings.lookback_seconds * 1000))
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
            self._stages()
            results.append(CheckResult("deal pipelines", True, "closed and won stages known"))
        except HubSpotError as exc:
            results.append(CheckResult("deal pipelines", False, str(exc)))
        return results

    def setup(self) -> list[CheckResult]:
        return create_properties(self.client, self.object_type, self.task_key_property)

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        _, body = self.client.call(
            "GET properties", self.client.properties.get_all, object_type, archived=False
        )
        return {
            row["name"]: FieldInfo(
                name=row["name"],
                label=row.get("label", ""),
                type=row.get("type", ""),
                writable=not (row.get("modificationMetadata") or {}).get("readOnlyValue", False),
                options=tuple(o["value"] for o in row.get("options") or []),
            )
            for row in body.get("results", [])
        }

    # reads -----------------------------------------------------------------------------------
    def read_changed(self, cursor: str | None, *, until: datetime) -> Iterator[ContactBatch]:
        try:
            position = Cursor.load(cursor)
        except ValueError:
            log.warning("the saved cursor is unreadable: walking the whole portal again")
            position = None
        pending: list[str] = []
        last: Cursor | None = None
        for ids, after in self.reader.changed(position, until):
            pending += ids
            last = after
            if len(pending) >= READ_BATCH:
                yield self._batch(pending, last)
                pending, last = [], None
        if last is not None:
            yield self._batch(pending, last)

    def _batch(self, ids: list[str], cursor: Cursor) -> ContactBatch:
        contacts, errors = self._read(ids) if ids else ([], [])
        return ContactBatch(contacts=contacts, cursor=cursor.dump(), errors=errors)

    def read_contacts(self, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
        wanted = [record_id for _, record_id in ids]
        for start in range(0, len(wanted), BATCH):
            contacts, errors = self._read(wanted[start : start + BATCH])
            yield ContactBatch(contacts=contacts, cursor=None, errors=errors)

    def _read(self, ids: list[str]) -> tuple[list, list[RecordError]]:
        ids = list(dict.fromkeys(ids))
        records = self._batch_read(self.object_type, ids, self.contacts.properties)
        deal_links = self._associated(ids, "deals")
        task_links = self._associated(ids, "tasks")
        deals = self._deals({d for linked in deal_links.values() for d in linked})
        tasks = self._tasks({t for linked in task_links.values() for t in linked})
        contacts, errors = [], []
        for record_id in ids:
            record = records.get(record_id)
            if record is None:
                errors.append(RecordError(f"{self.object_type}/{record_id}", None, "not found"))
                continue
            try:
                contacts.append(
                    to_contact(
                        self.contacts,
                        record,
                        [deals[d] for d in deal_links.get(record_id, []) if d in deals],
                        [tasks[t] for t in task_links.get(record_id, []) if t in tasks],
                    )
                )
            except TranslationError as exc:
                errors.append(RecordError(f"{self.object_type}/{record_id}", exc.field, str(exc)))
        return contacts, errors

    def _batch_read(
        self, object_type: str, ids: Sequence[str], properties: list[str]
    ) -> dict[str, dict[str, Any]]:
        """POST batch/read (never a long GET query string: HTTP 414); 207 = some missing."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH):
            body = {
                "properties": properties,
                "inputs": [{"id": i} for i in ids[start : start + BATCH]],
            }
            _, page = self.client.call(
                f"POST {object_type}/batch/read", self.client.batch.read, object_type, body
            )
            found.update({str(row["id"]): row for row in page.get("results", [])})
        return found

    def _associated(self, ids: Sequence[str], to_type: str) -> dict[str, list[str]]:
        return self._associated_from(self.object_type, ids, to_type)

    def _stages(self) -> dict[str, tuple[bool, bool]]:
        """Deal stage id -> (closed, won), from the pipelines: never the literal 'closedwon'."""
        if self._deal_stages is None:
            _, body = self.client.call(
                "GET pipelines/deals", self.client.pipelines.get_all, "deals"
            )
            stages = {}
            for pipeline in body.get("results", []):
                for stage in pipeline.get("stages", []):
                    meta = stage.get("metadata") or {}
                    closed = str(meta.get("isClosed", "false")).lower() == "true"
                    won = closed and float(meta.get("probability") or 0) >= 1.0
                    stages[str(stage["id"])] = (closed, won)
            self._deal_stages = stages
        return self._deal_stages

    def _deals(self, ids: set[str]) -> dict[str, Deal]:
        if not ids:
            return {}
        stages = self._stages()
        deals = {}
        for deal_id, row in self._batch_read("deals", sorted(ids), DEAL_PROPERTIES).items():
            props = row.get("properties") or {}
            closed, won = stages.get(props.get("dealstage") or "", (False, False))
            deals[deal_id] = Deal(
                id=deal_id,
                status="won" if won else "lost" if closed else "open",
                amount=_float(props.get("amount")),
                recurring=(_float(props.get(self.recurring_property)) or 0) > 0,
                closed_at=_date(props.get("closedate")) if closed else None,
            )
        return deals

    def _tasks(self, ids: set[str]) -> dict[str, ExistingTask]:
        if not ids:
            return {}
        properties = [*TASK_PROPERTIES, self.task_key_property]
        tasks = {}
        for task_id, row in self._batch_read("tasks", sorted(ids), properties).items():
            try:
                tasks[task_id] = to_task(row, self.task_key_property)
            except TranslationError as exc:
                log.warning("task %s skipped: %s", task_id, exc)
        return tasks

    # writes ----------------------------------------------------------------------------------
    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results: dict[str, WriteResult] = {}
        inputs = []
        for update in updates:
            try:
                properties = to_properties(self.contacts, update.values())
            except TranslationError as exc:
                results[update.contact_id] = WriteResult(update.contact_id, False, str(exc))
                continue
            if properties:
                inputs.append({"id": update.contact_id, "properties": properties})
            else:
                results[update.contact_id] = WriteResult(update.contact_id, True)
        for start in range(0, len(inputs), BATCH):
            results.update(self._update_batch(inputs[start : start + BATCH]))
        return [
            results.get(u.contact_id) or WriteResult(u.contact_id, False, "no answer", True)
            for u in updates
        ]

    def _update_batch(self, inputs: list[dict[str, Any]]) -> dict[str, WriteResult]:
        """One batch update. A bad value fails HubSpot's whole batch with 400: split it in
        halves until the bad record stands alone, so the others are still written."""
        try:
            _, body = self.client.call(
                f"POST {self.object_type}/batch/update",
                self.client.batch.update,
                self.object_type,
                {"inputs": inputs},
            )
        except HubSpotError as exc:
            if exc.status != 400:
                retryable = exc.status is None or exc.status == 429 or exc.status >= 500
                return {i["id"]: WriteResult(i["id"], False, str(exc), retryable) for i in inputs}
            if len(inputs) == 1:
                return {inputs[0]["id"]: WriteResult(inputs[0]["id"], False, _message(exc))}
            middle = len(inputs) // 2
            return self._update_batch(inputs[:middle]) | self._update_batch(inputs[middle:])
        results = {
            str(row["id"]): WriteResult(str(row["id"]), True) for row in body.get("results", [])
        }
        for error in body.get("errors", []):
            context = error.get("context") or {}
            for record_id in context.get("id", []) + context.get("ids", []):
                results[str(record_id)] = WriteResult(
                    str(record_id), False, f"{error.get('category')}: {error.get('message')}"
                )
        return results

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        results: dict[str, TaskResult] = {}
        for start in range(0, len(tasks), BATCH):
            chunk = tasks[start : start + BATCH]
            body = {
                "inputs": [
                    task_input(t, self.task_key_property, self.task_association) for t in chunk
                ]
            }
            try:
                _, answer = self.client.call(
                    "POST tasks/batch/create", self.client.batch.create, "tasks", body
                )
            except HubSpotError as exc:
                results.update({t.key: TaskResult(t.key, False, error=str(exc)) for t in chunk})
                continue
            for row in answer.get("results", []):
                key = row.get("objectWriteTraceId") or (row.get("properties") or {}).get(
                    self.task_key_property
                )
                results[key] = TaskResult(key, True, crm_id=str(row["id"]))
            for error in answer.get("errors", []):
                for key in (error.get("context") or {}).get("objectWriteTraceId", []):
                    results[key] = TaskResult(key, False, error=error.get("message"))
        return [results.get(t.key) or TaskResult(t.key, False, error="no answer") for t in tasks]

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """Tasks carrying these keys (search, 100 values per IN filter)."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), 100):
            chunk = list(keys[start : start + 100])
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": self.task_key_property,
                                "operator": "IN",
                                "values": chunk,
                            }
                        ]
                    }
                ],
                "properties": [self.task_key_property],
                "limit": 200,
            }
            _, page = self.client.call(
                "POST tasks/search", self.client.search_api.do_search, "tasks", body, search=True
            )
            for row in page.get("results", []):
                key = (row.get("properties") or {}).get(self.task_key_property)
                if key in chunk:
                    found[key] = str(row["id"])
        return found

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        """Archive tasks a rolled-back run created (HubSpot batch archive answers 204)."""
        results = []
        for start in range(0, len(crm_ids), BATCH):
            chunk = list(crm_ids[start : start + BATCH])
            try:
                self.client.call(
                    "POST tasks/batch/archive",
                    self.client.batch.archive,
                    "tasks",
                    {"inputs": [{"id": i} for i in chunk]},
                )
                results += [TaskResult(i, True, crm_id=i) for i in chunk]
            except HubSpotError as exc:
                results += [TaskResult(i, False, crm_id=i, error=str(exc)) for i in chunk]
        return results

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
            rows = page.get("results", [])
            links = self._associated_from("deals", [str(r["id"]) for r in rows], self.object_type)
            for row in rows:
                props = row.get("properties") or {}
                yield Outcome(
                    deal_id=str(row["id"]),
                    won=stages.get(props.get("dealstage") or "", (True, False))[1],
                    closed_at=_date(props.get("closedate")),
                    contact_ids=tuple(links.get(str(row["id"]), [])),
                    amount=_float(props.get("amount")),
                )
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after or not rows:
                return

    def _associated_from(
        self, from_type: str, ids: Sequence[str], to_type: str
    ) -> dict[str, list[str]]:
        """v4 batch association read, 1,000 ids per request; ids without links are absent
        (HubSpot answers them with 207 NO_ASSOCIATIONS_FOUND rows)."""
        links: dict[str, list[str]] = {}
        for start in range(0, len(ids), 1000):
            _, page = self.client.call(
                f"POST associations/{from_type}/{to_type}/batch/read",
                self.client.associations.get_page,
                from_type,
                to_type,
                {"inputs": [{"id": i} for i in ids[start : start + 1000]]},
            )
            for row in page.get("results", []):
                links[str(row["from"]["id"])] = [str(to["toObjectId"]) for to in row.get("to", [])]
        return links

    def usage(self) -> ApiUsage:
        return self.client.usage()


def _message(exc: HubSpotError) -> str:
    return f"{exc.category or 'VALIDATION_ERROR'}: {exc.body.get('message') or exc}"


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _date(value: str | None) -> datetime | None:
    try:
        return parse_time(value, "closedate")
    except TranslationError:
        return None
