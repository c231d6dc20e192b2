"""Owned field values written back, 100 records per batch update (one `write` call with more
is split; updates of one record are merged, as HubSpot refuses an id twice in a batch), one
result per record.

A batch update is idempotent (it sets values), so it keeps the client's ordinary retries.
HubSpot fails a whole batch with 400 for one bad value: the batch is split until the bad
record stands alone. A value HubSpot refuses (VALIDATION_ERROR on a property, an unknown
option) is `retryable=False` with the property named in `field`; a record HubSpot no longer
has (OBJECT_NOT_FOUND: deleted or merged) is `gone`; anything transient (throttling, 5xx,
a dropped connection) is retryable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError, classify
from crm_qualify.adapters.hubspot.records import (
    BATCH,
    NOT_FOUND,
    context_ids,
    error_text,
    missing_properties,
    property_problems,
)
from crm_qualify.adapters.hubspot.setup import missing_properties_error
from crm_qualify.adapters.hubspot.translate import ContactMapping, to_properties
from crm_qualify.adapters.hubspot.values import objects, parse_time
from crm_qualify.connector.contract import TranslationError, WriteResult
from crm_qualify.connector.model import RecordUpdate

REFUSED = frozenset({"VALIDATION_ERROR", NOT_FOUND, "CONFLICT"})
"""Categories of a refusal that repeating the same write will not change."""


def blamed_property(error: dict[str, Any]) -> str | None:
    """The property HubSpot blamed first (`records.property_problems`), reported as the
    result's `field` (and so left out of its text)."""
    problems = property_problems(error)
    return problems[0][0] if problems else None


def refusal(record: str, error: dict[str, Any]) -> WriteResult:
    category = str(error.get("category") or "")
    field = blamed_property(error)
    return WriteResult(
        record,
        False,
        error_text(error, field),
        retryable=category not in REFUSED,
        field=field,
        gone=category == NOT_FOUND,
    )


def _updated_at(row: dict[str, Any]) -> datetime | None:
    """The record's new modification stamp, so the next run knows that version as ours."""
    try:
        return parse_time(row.get("updatedAt"), "updatedAt")
    except TranslationError:
        return None


class FieldWriter:
    def __init__(self, client: HubSpotClient, mapping: ContactMapping, object_type: str) -> None:
        self.client = client
        self.mapping = mapping
        self.object_type = object_type

    def write(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results: dict[str, WriteResult] = {}
        merged: dict[str, dict[str, str]] = {}  # HubSpot refuses an id twice in one batch
        for update in updates:
            try:
                properties = to_properties(self.mapping, update.values())
            except TranslationError as exc:
                results[update.contact_id] = WriteResult(
                    update.contact_id, False, str(exc), retryable=False, field=exc.field
                )
                continue
            if properties:
                merged.setdefault(update.contact_id, {}).update(properties)
            else:
                results.setdefault(update.contact_id, WriteResult(update.contact_id, True))
        inputs = [{"id": record, "properties": props} for record, props in merged.items()]
        for start in range(0, len(inputs), BATCH):
            results.update(self._update_batch(inputs[start : start + BATCH]))
        return [
            results.get(u.contact_id) or WriteResult(u.contact_id, False, "no answer")
            for u in updates
        ]

    def _update_batch(self, inputs: list[dict[str, Any]]) -> dict[str, WriteResult]:
        try:
            _, body = self.client.call(
                f"POST {self.object_type}/batch/update",
                self.client.batch.update,
                self.object_type,
                {"inputs": inputs},
            )
        except HubSpotError as exc:
            return self._failed_batch(inputs, exc)
        results = {
            str(row["id"]): WriteResult(str(row["id"]), True, stamp=_updated_at(row))
            for row in objects(body.get("results"))
            if row.get("id") is not None
        }
        for error in objects(body.get("errors")):
            if not results:  # nothing applied: no acknowledgement is lost by stopping
                self._stop_if_properties_missing(error)
            for record in context_ids(error, "id", "ids"):
                results[record] = refusal(record, error)
        return results

    def _stop_if_properties_missing(self, error: dict[str, Any]) -> None:
        """A property the portal lacks refuses every write carrying it: the run stops."""
        missing = missing_properties(error)
        if missing:
            raise missing_properties_error(self.mapping.owned.fields, missing)

    def _failed_batch(
        self, inputs: list[dict[str, Any]], exc: HubSpotError
    ) -> dict[str, WriteResult]:
        if exc.status == 400 and not exc.garbled:
            self._stop_if_properties_missing(exc.body)
            if len(inputs) == 1:
                return {inputs[0]["id"]: refusal(inputs[0]["id"], exc.body)}
            middle = len(inputs) // 2
            return self._update_batch(inputs[:middle]) | self._update_batch(inputs[middle:])
        retryable = classify(exc).transient
        return {i["id"]: WriteResult(i["id"], False, str(exc), retryable) for i in inputs}
