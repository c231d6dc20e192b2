"""Owned field values written back, 200 records per sObject Collection (`PATCH
composite/sobjects`), one result per record. Tasks go through the same collection calls
(`tasks.py`), and large write sets through Bulk API 2.0 (`bulk_writes.py`).

Field updates are idempotent: every transient failure is retried. Per record: lock contention
is retryable; a value Salesforce refuses (restricted picklist, validation rule, wrong type) is
not, and names the field it blamed.
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
from crm_qualify.adapters.salesforce.translate import ObjectMapping, to_fields
from crm_qualify.connector.contract import OutcomeUnknown, TranslationError, WriteResult
from crm_qualify.connector.model import RecordUpdate

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


def rows_of(answer: Any, count: int) -> list[Row]:
    """Per-record outcomes of a collection answer; an answer of the wrong shape may still
    have been applied, so every record is then uncertain."""
    if not isinstance(answer, list) or len(answer) != count:
        return [Row(False, "unreadable answer", retryable=True, uncertain=True)] * count
    return [_row(item) for item in answer]


def send_collection(
    client: SalesforceClient,
    what: str,
    path: str,
    records: list[dict[str, Any]],
    *,
    idempotent: bool,
    key_field: str | None = None,
) -> list[Row]:
    """One collection call: per-record rows, or the same row for all when it failed.
    `key_field`: the External ID the path upserts by, named when Salesforce does not know it."""
    try:
        answer = client.restful(
            what, path, "PATCH", json={"allOrNone": False, "records": records},
            idempotent=idempotent,
        )  # fmt: skip
    except OutcomeUnknown as exc:
        return [Row(False, str(exc), retryable=True, uncertain=True)] * len(records)
    except SalesforceCallError as exc:
        if exc.status == 404 and key_field is not None:
            detail = f"{exc} (is {key_field} an External ID field? see crm-qualify doctor)"
            return [Row(False, detail, field=key_field)] * len(records)
        return [Row(False, str(exc), retryable=exc.transient)] * len(records)
    return rows_of(answer, len(records))


class FieldWriter:
    def __init__(self, client: SalesforceClient, objects: Mapping[str, ObjectMapping]) -> None:
        self.client, self.objects = client, objects

    def write(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results, translated = translate_updates(self.objects, updates)
        records = [
            {"attributes": {"type": update.object_type}, "id": update.contact_id, **fields}
            for _, update, fields in translated
        ]
        positions = [position for position, _, _ in translated]
        for start in range(0, len(records), COLLECTION):
            chunk = records[start : start + COLLECTION]
            rows = send_collection(
                self.client, f"PATCH {UPDATE_PATH}", UPDATE_PATH, chunk, idempotent=True
            )
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
