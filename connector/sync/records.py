"""From a read batch to canonical contacts: every raw record translated in its own guard.

The one place a CRM value becomes canonical, for the engine, rollback and reports alike, so
no adapter can crash a run with one value: any exception becomes a `RecordError` naming the
record and, when the adapter said, the CRM field.
"""

from __future__ import annotations

from crm_qualify.connector.contract import ContactBatch, RecordError, TranslationError
from crm_qualify.connector.model import Contact


def translate_batch(batch: ContactBatch) -> tuple[list[Contact], list[RecordError]]:
    """The batch's contacts (a record read twice kept once) and its per-record errors."""
    errors = list(batch.errors)
    contacts: list[Contact] = []
    for item in batch.raw:
        try:
            contacts.append(item.translate())
        except Exception as exc:
            errors.append(_error(item.record, item.key, exc))
    contacts.extend(batch.contacts)
    seen: set[tuple[str, str]] = set()
    unique = []
    for contact in contacts:
        key = (contact.object_type, contact.id)
        if key not in seen:
            seen.add(key)
            unique.append(contact)
    return unique, errors


def _error(record: str, key: tuple[str, str] | None, exc: Exception) -> RecordError:
    field = exc.field if isinstance(exc, TranslationError) else None
    reason = str(exc) or type(exc).__name__
    if not isinstance(exc, ValueError | TypeError):
        reason = f"{type(exc).__name__}: {reason}"
    return RecordError(record, field, reason, key=key)
