"""Writes to Salesforce, one result per record, and the rule that keeps tasks single: a task
is upserted by its key (an External ID + Unique field), never inserted blindly.

Field updates (`PATCH composite/sobjects`) are idempotent: every transient failure is retried.
A task upsert (`PATCH composite/sobjects/Task/<key field>`) is retried only when Salesforce
certainly did not act on it (429, a refused connection, a rolled-back lock); after any other
failure (5xx, a reset, a lost or late answer) its tasks come back `uncertain` and the core
looks their keys up before sending anything again. Even a resend cannot make a second task:
Salesforce matches the key and updates the one it has (`created: false`). The upsert sends no
Status (Salesforce defaults it on create), so such an update never reopens a closed task.

Per record: lock contention is retryable; a value Salesforce refuses (restricted picklist,
validation rule, wrong type) is not, and names the field it blamed. A task key Salesforce says
is already held (DUPLICATE_VALUE: two upserts of one key racing) is uncertain: looked up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm_qualify.adapters.salesforce.client import (
    TRANSIENT_CODES,
    SalesforceCallError,
    SalesforceClient,
)
from crm_qualify.adapters.salesforce.translate import ObjectMapping, task_record, to_fields
from crm_qualify.connector.contract import (
    OutcomeUnknown,
    TaskResult,
    TranslationError,
    WriteResult,
)
from crm_qualify.connector.model import PlannedTask, RecordUpdate

COLLECTION = 200
UPDATE_PATH = "composite/sobjects"
RETRYABLE_CODES = TRANSIENT_CODES | {"ALL_OR_NONE_OPERATION_ROLLED_BACK"}
DELETED = "ENTITY_IS_DELETED"
"""The record is in the recycle bin (deleted, or merged away): a write cannot land."""
CONVERTED = "CANNOT_UPDATE_CONVERTED_LEAD"
"""A lead converted since it was read: it takes no write again, and its contact carries the
person (read with the lead's history), so to the core it is gone like a merged record."""


def translate_updates(
    objects: Mapping[str, ObjectMapping], updates: Sequence[RecordUpdate]
) -> tuple[dict[int, WriteResult], list[tuple[int, RecordUpdate, dict[str, Any]]]]:
    """Each update's Salesforce fields, by position; one that cannot be translated gets its
    refused `WriteResult` instead (named by field), and the rest go on. REST collections and
    Bulk ingest share it."""
    refused: dict[int, WriteResult] = {}
    translated = []
    for position, update in enumerate(updates):
        mapping = objects.get(update.object_type)
        try:
            if mapping is None:
                raise TranslationError("object", f"{update.object_type} is not synced")
            translated.append((position, update, to_fields(mapping, update.values())))
        except TranslationError as exc:
            refused[position] = WriteResult(
                update.contact_id, False, str(exc), retryable=False, field=exc.field
            )
    return refused, translated


@dataclass(frozen=True)
class Row:
    """One record's outcome: `detail` is the record id when `ok`, the error otherwise."""

    ok: bool
    detail: str | None
    retryable: bool = False
    field: str | None = None
    uncertain: bool = False

    @property
    def gone(self) -> bool:
        """The record is deleted (merged-away records are deleted too) or a converted lead."""
        return not self.ok and (self.detail or "").startswith((DELETED, CONVERTED))


def _row(item: Any) -> Row:
    if not isinstance(item, dict):
        return Row(False, "unreadable result", retryable=True, uncertain=True)
    if item.get("success") is True:
        return Row(True, item.get("id"))
    errors = item.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    code = str(first.get("statusCode") or "UNKNOWN")
    fields = [f for f in first.get("fields") or [] if isinstance(f, str)]
    message = f"{code}: {first.get('message')}" + (f" ({', '.join(fields)})" if fields else "")
    return Row(
        False, message, retryable=code in RETRYABLE_CODES, field=fields[0] if fields else None
    )


def _rows(answer: Any, count: int) -> list[Row]:
    """Per-record outcomes of a collection answer; an answer of the wrong shape may still
    have been applied, so every record is then uncertain."""
    if not isinstance(answer, list) or len(answer) != count:
        return [Row(False, "unreadable answer", retryable=True, uncertain=True)] * count
    return [_row(item) for item in answer]


class Writer:
    def __init__(
        self, client: SalesforceClient, objects: Mapping[str, ObjectMapping], task_key: str
    ) -> None:
        self.client, self.objects, self.key = client, objects, task_key

    def _send(
        self, what: str, path: str, records: list[dict[str, Any]], *, idempotent: bool
    ) -> list[Row]:
        """One collection call: per-record rows, or the same row for all when it failed."""
        try:
            answer = self.client.restful(
                what,
                path,
                "PATCH",
                json={"allOrNone": False, "records": records},
                idempotent=idempotent,
            )
        except OutcomeUnknown as exc:
            return [Row(False, str(exc), retryable=True, uncertain=True)] * len(records)
        except SalesforceCallError as exc:
            if exc.status == 404 and path != UPDATE_PATH:
                detail = f"{exc} (is {self.key} an External ID field? see crm-qualify doctor)"
                return [Row(False, detail, field=self.key)] * len(records)
            return [Row(False, str(exc), retryable=exc.transient)] * len(records)
        return _rows(answer, len(records))

    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results, translated = translate_updates(self.objects, updates)
        records = [
            {"attributes": {"type": update.object_type}, "id": update.contact_id, **fields}
            for _, update, fields in translated
        ]
        positions = [position for position, _, _ in translated]
        for start in range(0, len(records), COLLECTION):
            chunk = records[start : start + COLLECTION]
            rows = self._send(f"PATCH {UPDATE_PATH}", UPDATE_PATH, chunk, idempotent=True)
            for position, row in zip(positions[start : start + COLLECTION], rows, strict=True):
                results[position] = WriteResult(
                    updates[position].contact_id,
                    row.ok,
                    None if row.ok else row.detail,
                    retryable=row.retryable,
                    field=row.field,
                    gone=row.gone,
                )
        return [results[position] for position in range(len(updates))]

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        """Upsert by key; a key planned twice in one call is sent once (Salesforce would
        refuse both copies) and both get its result."""
        results: list[TaskResult] = []
        path = f"composite/sobjects/Task/{self.key}"
        for start in range(0, len(tasks), COLLECTION):
            chunk = tasks[start : start + COLLECTION]
            index: dict[str, int] = {}
            records = []
            for task in chunk:
                if task.key.casefold() not in index:
                    index[task.key.casefold()] = len(records)
                    records.append(task_record(task, self.key))
            rows = self._send("PATCH composite/sobjects/Task", path, records, idempotent=False)
            results += [_task_result(t.key, rows[index[t.key.casefold()]]) for t in chunk]
        return results

    def delete_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        """Delete (rollback); a task already deleted counts as done."""
        results: list[TaskResult] = []
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
                results += [
                    TaskResult(i, False, crm_id=i, error=str(exc), retryable=exc.transient)
                    for i in chunk
                ]
                continue
            for task_id, row in zip(chunk, _rows(answer, len(chunk)), strict=True):
                gone = row.ok or row.gone
                results.append(
                    TaskResult(task_id, gone, crm_id=task_id, error=None if gone else row.detail)
                )
        return results


def _task_result(key: str, row: Row) -> TaskResult:
    """An upsert refused with DUPLICATE_VALUE means the key is already held (a concurrent
    upsert of it won the race): the task exists, so it is looked up rather than reported."""
    if row.ok:
        return TaskResult(key, True, crm_id=row.detail)
    held = (row.detail or "").startswith("DUPLICATE_VALUE")
    return TaskResult(
        key,
        False,
        error=row.detail,
        uncertain=row.uncertain or held,
        retryable=row.retryable or held,
        field=row.field,
        gone=row.gone,
    )
