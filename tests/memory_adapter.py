"""A tiny in-memory CRM that implements the adapter contract, to prove the engine end to end.

It behaves like a real CRM where it matters to the engine: writes bump the record's
modification time (so our own writes come back on the next incremental read), the cursor is
(updated_at, id) so ties never loop, and faults can be injected per record or per call.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_qualify.connector.contract import (
    AdapterError,
    ApiUsage,
    CheckResult,
    ContactBatch,
    FieldInfo,
    KnownVersions,
    Outcome,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import (
    OWNED_FIELDS,
    Contact,
    ExistingTask,
    PlannedTask,
    RecordUpdate,
    Stage,
)
from pydantic import BaseModel


class MemorySettings(BaseModel):
    batch_size: int = 3


class MemoryAdapter:
    name = "memory"
    settings_model = MemorySettings

    def __init__(self, contacts: Iterable[Contact] = (), batch_size: int = 3) -> None:
        self.records: dict[str, Contact] = {c.id: c.model_copy(deep=True) for c in contacts}
        self.tasks: dict[str, PlannedTask] = {}
        self.task_ids = (f"T{n}" for n in itertools.count(1))
        self.batch_size = batch_size
        self.clock = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
        self.calls: dict[str, int] = {}
        self.fail_write_ids: set[str] = set()
        self.refuse_write_ids: set[str] = set()
        """Writes the CRM refuses for their value: not retryable, they need attention."""
        self.crash_after_task_create = False
        self.fail_tasks = False
        """Every task create fails for now (a transient error): the tasks stay owed."""
        self.closed_tasks: set[str] = set()
        """Tasks removed by `close_tasks` (a rollback), or completed in the CRM."""
        self.completed_tasks: set[str] = set()
        """Tasks a salesperson completed in the CRM."""
        self.task_times: dict[str, tuple[datetime, datetime]] = {}
        """(created, last changed) per task id."""
        self.skipped = 0
        """Changed records left unread because the core already held their version."""

    @classmethod
    def from_config(cls, settings: MemorySettings, mapping: dict[str, Any]) -> MemoryAdapter:
        return cls(batch_size=settings.batch_size)

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def delete(self, contact_id: str, *, with_tasks: bool = False) -> None:
        """A person deletes the record; its tasks stay (as HubSpot keeps them), or go with it
        (`with_tasks`, as Salesforce deletes them)."""
        del self.records[contact_id]
        if with_tasks:
            for crm_id in [i for i, t in self.tasks.items() if t.contact_id == contact_id]:
                del self.tasks[crm_id]

    def edit_task(self, crm_id: str) -> None:
        """A salesperson adds notes to a task, some minutes after it was created."""
        created, _ = self.task_times[crm_id]
        self.task_times[crm_id] = (created, created + timedelta(minutes=5))

    def human_edit(self, contact_id: str, **owned: Any) -> None:
        """A person changes owned fields in the CRM UI."""
        record = self.records[contact_id]
        record.owned.update(owned)
        record.updated_at = self._tick()

    def edit(self, contact_id: str, **profile: Any) -> None:
        """A person changes the record's profile (email, name...) in the CRM UI."""
        record = self.records[contact_id]
        for name, value in profile.items():
            setattr(record, name, value)
        record.updated_at = self._tick()

    def check(self) -> list[CheckResult]:
        return [CheckResult("memory", True, "always reachable")]

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        return {name: FieldInfo(name=name, type="string") for name in OWNED_FIELDS}

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
    ) -> Iterator[ContactBatch]:
        self._count("read_changed")
        start = tuple(json.loads(cursor)) if cursor else ("", "")
        ordered = sorted(
            (c for c in self.records.values() if (_ts(c), c.id) > start),
            key=lambda c: (_ts(c), c.id),
        )
        for offset in range(0, len(ordered), self.batch_size):
            chunk = ordered[offset : offset + self.batch_size]
            last = chunk[-1]
            held = known([(_key(c), c.updated_at) for c in chunk if c.updated_at]) if known else ()
            self.skipped += len(held)
            yield ContactBatch(
                contacts=[self._with_tasks(c) for c in chunk if _key(c) not in held],
                cursor=json.dumps([_ts(last), last.id]),
            )

    def read_contacts(self, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
        self._count("read_contacts")
        found = [self._with_tasks(self.records[cid]) for _, cid in ids if cid in self.records]
        yield ContactBatch(contacts=found, cursor=None)

    def _with_tasks(self, contact: Contact) -> Contact:
        copy = contact.model_copy(deep=True)
        copy.tasks = [
            ExistingTask(
                id=crm_id,
                key=t.key,
                due=t.due,
                completed=crm_id in self.closed_tasks or crm_id in self.completed_tasks,
                created_at=self.task_times.get(crm_id, (None, None))[0],
                modified_at=self.task_times.get(crm_id, (None, None))[1],
            )
            for crm_id, t in self.tasks.items()
            if t.contact_id == contact.id
        ]
        return copy

    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        self._count("write_updates")
        results = []
        for update in updates:
            if update.contact_id in self.fail_write_ids:
                results.append(WriteResult(update.contact_id, False, "FIELD_INVALID: rejected"))
                continue
            if update.contact_id in self.refuse_write_ids:
                refusal = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: bad value"
                results.append(
                    WriteResult(update.contact_id, False, refusal, retryable=False, field="score")
                )
                continue
            record = self.records.get(update.contact_id)
            if record is None:
                results.append(WriteResult(update.contact_id, False, "not found", gone=True))
                continue
            for change in update.changes:
                record.owned[change.field] = change.new
                if change.field == "stage":
                    record.stage = Stage(change.new)
            record.updated_at = self._tick()
            results.append(WriteResult(update.contact_id, True, stamp=record.updated_at))
        return results

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        self._count("create_tasks")
        results = []
        for task in tasks:
            if self.fail_tasks:
                results.append(TaskResult(task.key, False, error="HTTP 503"))
                continue
            if task.contact_id not in self.records:  # refused, without saying why
                results.append(TaskResult(task.key, False, error="invalid association"))
                continue
            crm_id = next(self.task_ids)
            self.tasks[crm_id] = task
            self.task_times[crm_id] = (self.clock, self.clock)
            results.append(TaskResult(task.key, True, crm_id))
        if self.crash_after_task_create:
            self.crash_after_task_create = False
            raise AdapterError("connection dropped after the tasks were created")
        return results

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        self._count("find_tasks")
        return {t.key: crm_id for crm_id, t in self.tasks.items() if t.key in keys}

    def existing_task_keys(self) -> Iterator[tuple[str, str]]:
        self._count("existing_task_keys")
        yield from ((t.key, crm_id) for crm_id, t in self.tasks.items())

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        """Removes them, as HubSpot's archive and Salesforce's delete do: no read or search
        finds them again."""
        self._count("close_tasks")
        self.closed_tasks.update(crm_ids)
        results = [TaskResult(crm_id, crm_id in self.tasks, crm_id) for crm_id in crm_ids]
        for crm_id in crm_ids:
            self.tasks.pop(crm_id, None)
        return results

    def fetch_outcomes(self, since: datetime) -> Iterator[Outcome]:
        for contact in self.records.values():
            for deal in contact.deals:
                if deal.status != "open" and (deal.closed_at or since) >= since:
                    yield Outcome(deal.id, deal.status == "won", deal.closed_at, (contact.id,))

    def usage(self) -> ApiUsage:
        return ApiUsage(requests=dict(self.calls))

    def write_calls(self) -> int:
        return self.calls.get("write_updates", 0) + self.calls.get("create_tasks", 0)


def _ts(contact: Contact) -> str:
    return contact.updated_at.isoformat() if contact.updated_at else ""


def _key(contact: Contact) -> tuple[str, str]:
    return (contact.object_type, contact.id)
