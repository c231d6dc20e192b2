"""From a read batch to canonical contacts: every raw record translated in its own guard.

The one place a CRM value becomes canonical, for the engine, rollback and reports alike, so
no adapter can crash a run with one value: any exception becomes a `RecordError` naming the
record and, when the adapter said, the CRM field. A `TranslationError` is bad CRM data, and
so is a value the canonical model refuses (a pydantic `ValidationError` building the
`Contact`: its error names the canonical field); any other exception, or a translation that
returns no `Contact`, is a bug in the adapter's code, so its error names the exception type
(or what came back) and it is logged (masked, as every log line is).
"""

from __future__ import annotations

import logging
import traceback

from crm_qualify.connector.contract import (
    ContactBatch,
    RawContact,
    RecordError,
    TranslationError,
)
from crm_qualify.connector.model import Contact
from crm_qualify.connector.ops.logs import redact
from pydantic import ValidationError

log = logging.getLogger(__name__)


def translate_batch(batch: ContactBatch) -> tuple[list[Contact], list[RecordError]]:
    """The batch's contacts (a record read twice kept once) and its per-record errors."""
    errors = list(batch.errors)
    contacts: list[Contact] = []
    crash_sites: set[tuple[str, str, int]] = set()
    for item in batch.raw:
        outcome = _translate(item, crash_sites)
        if isinstance(outcome, Contact):
            contacts.append(outcome)
        else:
            errors.append(outcome)
    contacts.extend(batch.contacts)
    seen: set[tuple[str, str]] = set()
    unique = []
    for contact in contacts:
        key = (contact.object_type, contact.id)
        if key not in seen:
            seen.add(key)
            unique.append(contact)
    return unique, errors


def _translate(item: RawContact, crash_sites: set[tuple[str, str, int]]) -> Contact | RecordError:
    """One record's contact, or its error."""
    try:
        contact = item.translate()
    except TranslationError as exc:
        reason = str(exc) or type(exc).__name__
        return RecordError(item.record, exc.field, reason, key=item.key, stamp=item.stamp)
    except ValidationError as exc:
        return _refused_value(item, exc)
    except Exception as exc:
        _log_crash(item.record, exc, crash_sites)
        return _crash_error(item, exc)
    if isinstance(contact, Contact):
        return contact
    return _not_a_contact(item, type(contact).__name__, crash_sites)


def _refused_value(item: RawContact, exc: ValidationError) -> RecordError:
    """`employees: Input should be greater than or equal to 0`: a CRM value the canonical
    model refuses is bad data, named by the field pydantic names (another model's prefixed
    with it); the text is pydantic's, so it is masked."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "record"
        if exc.title != Contact.__name__:
            where = f"{exc.title}.{where}"
        problems.append((where, error["msg"]))
    reason = "; ".join(f"{where}: {msg}" for where, msg in problems)
    return RecordError(item.record, problems[0][0], redact(reason), key=item.key, stamp=item.stamp)


def _not_a_contact(item: RawContact, kind: str, seen: set[tuple[str, str, int]]) -> RecordError:
    """`record: translate returned NoneType, not a Contact`: a bug in the adapter (a "skip
    this one" `None`, a dict), logged at error level once per kind in a batch."""
    log.log(
        _first_at_error(("returned", kind, 0), seen),
        "%s: the adapter's translate returned %s, not a Contact, a bug in the adapter;"
        " the record is skipped",
        item.record,
        kind,
    )
    reason = f"translate returned {kind}, not a Contact"
    return RecordError(item.record, None, reason, key=item.key, stamp=item.stamp)


def _crash_error(item: RawContact, exc: Exception) -> RecordError:
    """`record: TypeError: …`: the type tells a bug from a CRM value; the text is a library's,
    so it is masked."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return RecordError(item.record, None, redact(reason), key=item.key, stamp=item.stamp)


def _log_crash(record: str, exc: Exception, seen: set[tuple[str, str, int]]) -> None:
    """The traceback at error level once per exception type and raising line in a batch (a
    bug hits every record alike), the repeats at debug level."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = (frames[-1].filename, frames[-1].lineno or 0) if frames else ("", 0)
    log.log(
        _first_at_error((type(exc).__name__, *where), seen),
        "%s: the adapter's translate raised %s, a bug in the adapter rather than bad CRM data;"
        " the record is skipped",
        record,
        type(exc).__name__,
        exc_info=exc,
    )


def _first_at_error(site: tuple[str, str, int], seen: set[tuple[str, str, int]]) -> int:
    """Error level the first time a batch meets `site` (a bug hits every record alike), debug
    level for the repeats."""
    level = logging.DEBUG if site in seen else logging.ERROR
    seen.add(site)
    return level
