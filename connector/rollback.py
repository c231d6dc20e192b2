"""Undo a run: put back the values it overwrote and close the tasks it created.

Driven by the audit trail. A field is restored only while it still holds what the run wrote:
a value a person (or a later run) changed since is reported and left alone. A stage is never
moved backwards (HubSpot refuses it through the API; the engine never does it): such fields
are reported for a person to decide. The rollback is itself a run in the audit trail, so it
can be audited, and running it again changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connector.contract import Adapter
from connector.diff import same
from connector.model import FieldUpdate, RecordUpdate, Stage
from connector.state import TASK_CLOSED, TASK_CREATED, AuditWrite, StateStore


@dataclass
class RollbackReport:
    run_id: str
    rollback_run_id: str | None = None
    restored: list[RecordUpdate] = field(default_factory=list)
    held: list[tuple[str, str, str]] = field(default_factory=list)
    """(record, field, why not restored)."""
    tasks_closed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


class RollbackError(Exception):
    pass


def _restorable(write: AuditWrite, current: Any) -> str | None:
    """Why this field cannot be put back, or None when it can."""
    if same(current, write.old):
        return "already holds the value from before the run"
    if not same(current, write.new):
        return f"changed since the run (now {str(current)[:40]!r}); a person's value is kept"
    if write.field == "stage":
        before = Stage(write.old) if write.old in set(Stage) else None
        if before is None or before.rank < Stage(write.new).rank:
            return f"a stage is never moved backwards ({write.new} -> {write.old}); set it by hand"
    return None


def rollback(
    adapter: Adapter, store: StateStore, instance: str, run_id: str, *, dry_run: bool = False
) -> RollbackReport:
    run = store.run(run_id)
    if run is None:
        raise RollbackError(f"no run {run_id} in the state store")
    if run.instance != instance:
        raise RollbackError(f"run {run_id} belongs to instance {run.instance}, not {instance}")
    if run.dry_run:
        raise RollbackError(f"run {run_id} was a dry run: it wrote nothing")
    report = RollbackReport(run_id)
    writes = store.writes_for_run(run_id)
    by_record: dict[tuple[str, str], list[AuditWrite]] = {}
    for write in writes:
        by_record.setdefault((write.object_type, write.contact_id), []).append(write)
    current: dict[tuple[str, str], dict[str, Any]] = {}
    for batch in adapter.read_contacts(list(by_record)):
        for contact in batch.contacts:
            current[(contact.object_type, contact.id)] = contact.owned
        report.errors += [f"{e.record}: {e.field or 'record'}: {e.message}" for e in batch.errors]
    for key, record_writes in by_record.items():
        label = f"{key[0]}/{key[1]}"
        if key not in current:
            report.held += [(label, w.field, "could not be read back") for w in record_writes]
            continue
        latest = {w.field: w for w in record_writes}  # a run writes a field once; keep the last
        changes = []
        for write in latest.values():
            why = _restorable(write, current[key].get(write.field))
            if why:
                report.held.append((label, write.field, why))
            else:
                changes.append(
                    FieldUpdate(field=write.field, old=current[key].get(write.field), new=write.old)
                )
        if changes:
            report.restored.append(
                RecordUpdate(contact_id=key[1], object_type=key[0], changes=changes)
            )
    tasks = [t for t in store.tasks_for_run(run_id) if t.status == TASK_CREATED and t.crm_id]
    report.counts.update(
        records=len(report.restored),
        fields=sum(len(u.changes) for u in report.restored),
        held=len(report.held),
        tasks=len(tasks),
    )
    if dry_run:
        return report
    report.rollback_run_id = store.start_run(instance, mode=f"rollback of {run_id}", dry_run=False)
    written = []
    if report.restored:
        results = adapter.write_updates(report.restored)
        for update, result in zip(report.restored, results, strict=True):
            if result.ok:
                written.append(update)
            else:
                report.errors.append(f"{update.object_type}/{update.contact_id}: {result.error}")
        store.record_writes(report.rollback_run_id, instance, written)
    if tasks:
        for task, result in zip(tasks, adapter.close_tasks([t.crm_id for t in tasks]), strict=True):
            if result.ok:
                store.set_task_status(instance, task.key, TASK_CLOSED, None)
                report.tasks_closed.append(task.key)
            else:
                report.errors.append(f"task {task.crm_id}: {result.error}")
    counts = {
        "records_written": len(written),
        "fields_written": sum(len(u.changes) for u in written),
        "fields_held_back": len(report.held),
        "tasks_closed": len(report.tasks_closed),
    }
    status = "partial" if report.errors else "ok"
    store.finish_run(report.rollback_run_id, status, counts, report.errors)
    return report
