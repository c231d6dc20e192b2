"""What an adapter hands the core, checked as it comes in.

An adapter is a plugin the core did not write. An answer of the wrong type fails far from
its cause (`'str' object has no attribute 'ok'`), and a result for another record than the
item at its position would be recorded against the wrong one: a refused write taken as
acknowledged, a task's CRM id stored under another key. So every read batch and write answer
is checked here, an `isinstance` and a comparison per item (nothing next to the request that
brought it). A wrong one is an `AdapterError` naming the adapter and its method: the call
fails as a whole, as one that raised does, so nothing of it is recorded and no cursor moves
past its records (unanswered updates stay intents, unanswered tasks pending, for the next run
to settle).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from crm_qualify.connector.contract import (
    Adapter,
    AdapterError,
    ContactBatch,
    KnownVersions,
    RawContact,
    RecordError,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import Contact, PlannedTask, RecordUpdate

R = TypeVar("R", WriteResult, TaskResult)


def read_changed(
    adapter: Adapter, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
) -> Iterator[ContactBatch]:
    """`adapter.read_changed`, each batch checked."""
    read = adapter.read_changed(cursor, until=until, known=known)
    yield from _batches(adapter.name, "read_changed", read)


def read_contacts(adapter: Adapter, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
    """`adapter.read_contacts`, each batch checked."""
    yield from _batches(adapter.name, "read_contacts", adapter.read_contacts(ids))


def write_updates(adapter: Adapter, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
    """`adapter.write_updates`: one `WriteResult` per update, in order, for its record."""
    return _answers(
        adapter.name,
        ("write_updates", "update", "record"),
        adapter.write_updates(updates),
        WriteResult,
        [u.contact_id for u in updates],
    )


def create_tasks(adapter: Adapter, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
    """`adapter.create_tasks`: one `TaskResult` per task, in order, under its key."""
    asked = [t.key for t in tasks]
    call = ("create_tasks", "task", "key")
    return _answers(adapter.name, call, adapter.create_tasks(tasks), TaskResult, asked)


def close_tasks(adapter: Adapter, crm_ids: Sequence[str]) -> list[TaskResult]:
    """`adapter.close_tasks`: one `TaskResult` per task, in order, keyed by its CRM id."""
    call = ("close_tasks", "task", "CRM id")
    return _answers(adapter.name, call, adapter.close_tasks(crm_ids), TaskResult, list(crm_ids))


def find_tasks(adapter: Adapter, keys: Sequence[str]) -> dict[str, str]:
    """`adapter.find_tasks`: a CRM id (str) for some of the keys asked, none other."""
    found = adapter.find_tasks(keys)
    if not isinstance(found, dict):
        raise AdapterError(
            f"adapter {adapter.name}: find_tasks returned {type(found).__name__};"
            " expected a dict of key -> CRM id"
        )
    asked = set(keys)
    for key, crm_id in found.items():
        if key not in asked:
            raise AdapterError(
                f"adapter {adapter.name}: find_tasks answered key {key!r}, not asked"
            )
        if not isinstance(crm_id, str) or not crm_id:
            raise AdapterError(
                f"adapter {adapter.name}: find_tasks answered {type(crm_id).__name__} for key"
                f" {key!r}; expected its CRM id (str)"
            )
    return found


def existing_task_keys(adapter: Adapter) -> Iterator[tuple[str, str]]:
    """`adapter.existing_task_keys`: (key, CRM id) pairs of str."""
    for pair in adapter.existing_task_keys():
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(map(_is_str, pair))):
            raise AdapterError(
                f"adapter {adapter.name}: existing_task_keys yielded {type(pair).__name__};"
                " expected a (key, CRM id) tuple of two str"
            )
        yield pair


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _batches(name: str, method: str, read: Any) -> Iterator[ContactBatch]:
    """Each batch checked; the adapter's generator closed with this one (`read_ahead` closes
    it when a run stops early), as `yield from` would."""
    if not isinstance(read, Iterable):
        raise AdapterError(
            f"adapter {name}: {method} returned {type(read).__name__};"
            " expected an iterator of ContactBatch"
        )
    try:
        for batch in read:
            yield _batch(name, method, batch)
    finally:
        close = getattr(read, "close", None)
        if callable(close):
            close()


def _batch(name: str, method: str, batch: Any) -> ContactBatch:
    if not isinstance(batch, ContactBatch):
        raise AdapterError(
            f"adapter {name}: {method} yielded {type(batch).__name__}; expected ContactBatch"
        )
    _holding(name, method, "contacts", batch.contacts, Contact)
    _holding(name, method, "raw", batch.raw, RawContact)
    _holding(name, method, "errors", batch.errors, RecordError)
    return batch


def _holding(name: str, method: str, part: str, items: Iterable[Any], kind: type) -> None:
    wrong = next((item for item in items if not isinstance(item, kind)), None)
    if wrong is not None:
        raise AdapterError(
            f"adapter {name}: {method} yielded a ContactBatch whose {part} holds"
            f" {type(wrong).__name__}; expected {kind.__name__}"
        )


def _answers(
    name: str, call: tuple[str, str, str], results: Any, kind: type[R], wanted: Sequence[str]
) -> list[R]:
    """A write call's answer: a list of `kind`, one per item, in order, each naming its item
    (a `WriteResult` its record, a `TaskResult` its key or CRM id) as `wanted` does. `call`:
    the method, what it takes (`update`) and what names one (`record`)."""
    method, item, ident = call
    if not isinstance(results, list | tuple):
        raise AdapterError(
            f"adapter {name}: {method} returned {type(results).__name__};"
            f" expected a list of {kind.__name__}"
        )
    wrong = next((result for result in results if not isinstance(result, kind)), None)
    if wrong is not None:
        raise AdapterError(
            f"adapter {name}: {method} returned {type(wrong).__name__} items;"
            f" expected {kind.__name__}"
        )
    if len(results) != len(wanted):
        raise AdapterError(
            f"adapter {name}: {method} returned {len(results)} results for {len(wanted)} {item}s"
        )
    for position, (want, result) in enumerate(zip(wanted, results, strict=True)):
        got = result.contact_id if isinstance(result, WriteResult) else result.key
        if got != want:
            raise AdapterError(
                f"adapter {name}: {method} result {position} is for {ident} {got!r}, not"
                f" {want!r}; expected one result per {item}, in order"
            )
    return list(results)
