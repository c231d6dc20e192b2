"""Undo a run: put back the values it overwrote and remove the tasks it created.

Driven by the audit trail. A field is restored only while it still holds what the run wrote
(re-read from the CRM now): a value a person changed since is reported and left alone, a
record a later run wrote to is left whole (a record never mixes two runs' decisions), and so
is a task completed or changed in the CRM since it was created. A stage is never moved
backwards: HubSpot refuses it through the API unless the stage is cleared
first, and the engine never does it either, so such fields are reported for a person to
decide; the highest stage reached never goes down either.

A task is removed (HubSpot archives it, Salesforce deletes it) only with what it serves: a
task key is created once, ever, so a task removed while a later decision still calls for it
would be lost for good. A hand-off stays while its record stays at MQL or beyond (it always
does, unless a person moved it back); a hot-lead call goes when the temperature is put back
to something other than hot, and the hot episode ends with it, on every record of its person
(a later run that finds the contact hot again starts a new episode, with its own call), and
stays while the contact stays hot; an escalation stays while its follow-up is open, a
duplicate review always.

The rollback is itself a run in the audit trail (mode `rollback of …`), holds the portal's
sync lease so no sync interleaves with it, and running it again changes nothing: restored
fields already hold their old value, removed tasks are marked closed in the task ledger. The
mirror takes what it read back (a person's values it keeps, so the next run diffs against
them) and what it did, as a sync's reads and writes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_qualify.connector.contract import Adapter, AdapterError
from crm_qualify.connector.decision.planning import ESCALATION, MQL_HANDOFF, REVIEW, escalated
from crm_qualify.connector.model import (
    Contact,
    ExistingTask,
    FieldUpdate,
    RecordUpdate,
    Stage,
    Temperature,
)
from crm_qualify.connector.sync import boundary
from crm_qualify.connector.sync.diff import same
from crm_qualify.connector.sync.lease import Lease, LeaseHeld
from crm_qualify.connector.sync.mirror import AckedWrite, Key
from crm_qualify.connector.sync.people import People, task_person
from crm_qualify.connector.sync.records import translate_batch
from crm_qualify.connector.sync.redundant import touched
from crm_qualify.connector.sync.retention import missing_run
from crm_qualify.connector.sync.state import (
    ROLLBACK_MODE,
    TASK_CLOSED,
    TASK_CREATED,
    TASK_PENDING,
    WRITE_ACKED,
    WRITE_FAILED,
    WRITE_INTENDED,
    AuditWrite,
    StateStore,
    TaskRecord,
)
from crm_qualify.connector.sync.task_lookups import look_up

ProgressCallback = Callable[[str, int], None]
"""Told what a long rollback has done: ("read", n) per batch read back, ("planned", n) once
the records to restore and tasks to remove are known, ("restored", n) per chunk written,
("closed", n) once tasks are removed."""

WRITE_CHUNK = 100
"""Updates per write call: each chunk's writes are in the audit trail before the next is sent."""


@dataclass
class RollbackReport:
    run_id: str
    rollback_run_id: str | None = None
    status: str = "planned"
    restored: list[RecordUpdate] = field(default_factory=list)
    """What the plan restores (all of it, in a dry run)."""
    written: list[RecordUpdate] = field(default_factory=list)
    """What the CRM acknowledged restoring."""
    held: list[tuple[str, str, str]] = field(default_factory=list)
    """(record, field, why not restored)."""
    tasks_to_close: list[TaskRecord] = field(default_factory=list)
    """The tasks the plan removes from the CRM."""
    tasks_closed: list[str] = field(default_factory=list)
    """The keys of those the CRM acknowledged removing."""
    earlier_rollbacks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    read: list[Contact] = field(default_factory=list, repr=False)
    """The records as read back, for the mirror."""
    settled: list[tuple[str, str]] = field(default_factory=list)
    """(key, CRM id) of the run's creations of unknown outcome found in the CRM: the rollback
    records them created before it removes them."""


class RollbackError(Exception):
    """The rollback cannot start (unknown run, dry run, a sync holding the lease)."""


def _restorable(write: AuditWrite, current: Any, ours: dict[str, Any]) -> str | None:
    """Why this field cannot be put back, or None when it can. `ours`: the values we last
    wrote to the record, so a later run's value is not taken for a person's."""
    if same(current, write.old):
        return "already holds its value from before the run"
    shown = "empty" if current in (None, "") else repr(str(current)[:40])
    later = f"written since by a later run (now {shown}): roll that run back first"
    if not same(current, write.new):
        if write.field in ours and same(current, ours[write.field]):
            return later
        return f"changed since the run (now {shown}): a person's value is kept"
    before = "empty" if write.old in (None, "") else repr(write.old)
    if write.field == "stage":
        return (
            f"not moved back from {write.new!r} to {before}: a stage never moves backwards;"
            " set it by hand if needed"
        )
    if write.field == "highest_stage":
        return f"not lowered from {write.new!r} to {before}: the highest stage never goes down"
    return None


@dataclass
class _Now:
    """What the CRM holds now for the records a rollback touches."""

    contacts: dict[tuple[str, str], Contact] = field(default_factory=dict)
    owned: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, ExistingTask] = field(default_factory=dict)
    """The tasks on those records, by CRM id."""
    gone: set[tuple[str, str]] = field(default_factory=set)
    """Records the CRM no longer has (not an error: there is nothing to restore)."""


def _current_values(
    adapter: Adapter,
    keys: list[tuple[str, str]],
    report: RollbackReport,
    progress: ProgressCallback | None = None,
) -> _Now:
    """The owned values and tasks each record holds now, and the records that are gone."""
    now = _Now()
    if not keys:
        return now
    for batch in boundary.read_contacts(adapter, keys):
        contacts, errors = translate_batch(batch)
        for contact in contacts:
            now.contacts[(contact.object_type, contact.id)] = contact
            now.owned[(contact.object_type, contact.id)] = contact.owned
            now.tasks.update((task.id, task) for task in contact.tasks)
        for error in errors:
            if error.gone and error.key is not None:
                now.gone.add(error.key)
            else:
                report.errors.append(str(error))
        if progress:
            progress("read", len(contacts))
    return now


def _temperatures_after(
    current: dict[tuple[str, str], dict[str, Any]], restored: list[RecordUpdate]
) -> dict[tuple[str, str], Any]:
    """Each record's temperature once the plan is carried out."""
    after = {key: owned.get("temperature") for key, owned in current.items()}
    for update in restored:
        for change in update.changes:
            if change.field == "temperature":
                after[update.key] = change.new
    return after


def _serves(task: TaskRecord, record: Contact, temperature: Any) -> str | None:
    """What a task the run created still serves once the rollback is done (None: nothing, it
    is removed). A task key is created once, ever: removed while a later decision still calls
    for it, a hand-off (planned as a record reaches MQL), a hot episode's call, a follow-up's
    escalation or a person's review would be lost for good."""
    if task.kind == MQL_HANDOFF:
        stage = record.stage
        if stage is not None and stage.rank >= Stage.MQL.rank:
            stays = "which stays (a stage never moves backwards)"
            return f"it hands over stage {stage.value!r}, {stays}"
    elif task.kind == "hot_call":
        if temperature == Temperature.HOT:
            return "the contact stays hot (its temperature is not put back)"
    elif task.kind == ESCALATION:
        followup = escalated(task.key)
        if any(existing.key == followup and existing.is_open for existing in record.tasks):
            return "the follow-up it escalates is still open"
    elif task.kind == REVIEW:
        return "a rollback does not undo who is one person"
    return None


def _found_pending(
    adapter: Adapter,
    store: StateStore,
    run_id: str,
    tasks: list[TaskRecord],
    lookup_delay: timedelta,
    report: RollbackReport,
) -> list[TaskRecord]:
    """The run's task creations sent and never answered (the run was killed in the call, or
    the answer lost) that the CRM holds: removed like the others, else a rollback in the
    window before a sync settles them left them in the CRM. They are asked for once
    `lookup_delay` has passed since they were sent, as a sync asks (a search index that lags
    the write would make a landed task look missing, and it would stay); before that the
    rollback cannot start. Those not found stay pending, for the next sync to settle."""
    pending = [task for task in tasks if task.status == TASK_PENDING]
    if not pending:
        return []
    sent = store.last_sent_pending(run_id)  # None: sent long ago, as a sync reads it
    if sent is not None and (ready := sent + lookup_delay) > datetime.now(UTC):
        raise RollbackError(
            f"{len(pending)} task creation(s) of run {run_id} were sent and never answered"
            " (the run was killed, or the answer lost); the CRM can be asked for them from"
            f" {ready:%Y-%m-%d %H:%M:%S} UTC (sync.lookup_delay_seconds): roll back then, so"
            " that those it created are removed with the rest"
        )
    found = look_up(adapter, [task.key for task in pending])
    report.settled = [(task.key, found[task.key]) for task in pending if task.key in found]
    return [
        replace(task, status=TASK_CREATED, crm_id=found[task.key])
        for task in pending
        if task.key in found
    ]


def plan_rollback(
    adapter: Adapter,
    store: StateStore,
    instance: str,
    run_id: str,
    progress: ProgressCallback | None = None,
    lookup_delay: timedelta = timedelta(0),
) -> RollbackReport:
    """What a rollback would restore, hold back and close; reads the CRM, writes nothing.
    `lookup_delay`: `sync.lookup_delay_seconds` (see `_found_pending`)."""
    run = store.run(run_id)
    if run is None:
        raise RollbackError(missing_run(store, instance, run_id))
    if run.instance != instance:
        raise RollbackError(f"run {run_id} belongs to instance {run.instance}, not {instance}")
    if run.dry_run:
        raise RollbackError(f"run {run_id} was a dry run: it wrote nothing")
    report = RollbackReport(run_id, earlier_rollbacks=store.rollbacks_of(run_id))
    by_record: dict[tuple[str, str], dict[str, AuditWrite]] = {}
    for write in store.writes_for_run(run_id):
        # a run writes a field once per record; were it more, the first old value is the prior
        by_record.setdefault((write.object_type, write.contact_id), {}).setdefault(
            write.field, write
        )
    tasks = store.tasks_for_run(run_id)
    created = [t for t in tasks if t.status == TASK_CREATED and t.crm_id]
    created += _found_pending(adapter, store, run_id, tasks, lookup_delay, report)
    keys = list(dict.fromkeys([*by_record, *((t.object_type, t.contact_id) for t in created)]))
    now = _current_values(adapter, keys, report, progress)
    current, gone = now.owned, now.gone
    ours = store.last_written(instance, list(by_record))
    again = store.written_again(run_id)
    for key, writes in by_record.items():
        label = f"{key[0]}/{key[1]}"
        if key in gone:
            report.held += [
                (label, name, "no longer in the CRM (deleted or merged)") for name in writes
            ]
            continue
        if key not in current:
            report.held += [(label, name, "could not be read back from the CRM") for name in writes]
            continue
        later = {name: again[(*key, name)] for name in writes if (*key, name) in again}
        if later:  # its decision is a later run's: restoring some fields would mix two
            runs = ", ".join(sorted(set(later.values())))
            why = f"a later run ({runs}) decided this record again (it wrote"
            why += f" {', '.join(sorted(later))}): roll that run back first"
            report.held += [(label, name, why) for name in writes]
            continue
        changes = []
        for name, write in writes.items():
            value = current[key].get(name)
            why = _restorable(write, value, ours.get(key, {}))
            if why:
                report.held.append((label, name, why))
            else:
                changes.append(FieldUpdate(field=name, old=value, new=write.old))
        if changes:
            report.restored.append(
                RecordUpdate(contact_id=key[1], object_type=key[0], changes=changes)
            )
    temperatures = _temperatures_after(current, report.restored)
    for task in created:
        key = (task.object_type, task.contact_id)
        seen = now.tasks.get(task.crm_id or "")
        record = now.contacts.get(key)
        label, name = f"{task.object_type}/{task.contact_id}", f"task {task.crm_id}"
        if record is None and key not in gone:
            report.held.append((label, name, "could not be read back from the CRM"))
        elif seen is None and record is not None:
            why = "no longer on its record (deleted or moved in the CRM): left alone"
            report.held.append((label, name, why))
        elif seen is not None and touched(seen, task):
            done = "completed" if not seen.is_open else "changed in the CRM"
            report.held.append((label, name, f"{done} since the run: kept"))
        elif record is not None and (serves := _serves(task, record, temperatures.get(key))):
            report.held.append((label, name, f"kept: {serves}"))
        else:
            report.tasks_to_close.append(task)
    report.read = list(now.contacts.values())
    report.counts.update(
        records=len(report.restored),
        fields=sum(len(u.changes) for u in report.restored),
        held=len(report.held),
        tasks=len(report.tasks_to_close),
    )
    if progress:
        progress("planned", len(report.restored) + len(report.tasks_to_close))
    return report


def rollback(
    adapter: Adapter,
    store: StateStore,
    instance: str,
    run_id: str,
    *,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
    progress: ProgressCallback | None = None,
    lookup_delay: timedelta = timedelta(0),
) -> RollbackReport:
    """Plan, then (unless `dry_run`) restore and remove under the sync lease, recorded as a
    run; the mirror takes the records as read back first, then what the CRM acknowledged. A
    CRM failure part-way ends the rollback run as `failed`; running it again resumes.
    `progress`, when given, is told what is done as it goes (`ProgressCallback`)."""
    lease = Lease(store, instance, "rollback", clock=clock)
    if not dry_run:
        try:
            lease.acquire()
        except LeaseHeld as held:
            raise RollbackError(str(held)) from None
    try:
        read_at = _moment(clock)
        report = plan_rollback(adapter, store, instance, run_id, progress, lookup_delay)
        if dry_run:
            return report
        store.mark_tasks_created(instance, report.settled)
        report.rollback_run_id = store.start_run(
            instance, mode=ROLLBACK_MODE + run_id, dry_run=False
        )
        # as a sync's read: the next incremental read may skip these records as our own change
        store.mirror.upsert(instance, report.read, read_at, due=True)
        written = report.written
        report.status = "ok"
        try:
            _restore(adapter, store, instance, report, written, clock, progress)
            _close(adapter, store, instance, report, _removable(report), progress)
        except AdapterError as exc:
            report.status = "failed"
            report.errors.append(f"{type(exc).__name__}: {exc}")
        if report.status == "ok" and report.errors:
            report.status = "partial"
        counts = {
            "records_written": len(written),
            "fields_written": sum(len(u.changes) for u in written),
            "fields_held_back": len(report.held),
            "tasks_closed": len(report.tasks_closed),
        }
        store.finish_run(report.rollback_run_id, report.status, counts, report.errors)
        return report
    finally:
        if not dry_run:
            lease.release()


def _restore(
    adapter: Adapter,
    store: StateStore,
    instance: str,
    report: RollbackReport,
    written: list[RecordUpdate],
    clock: Callable[[], float],
    progress: ProgressCallback | None = None,
) -> None:
    """Each chunk: intended, sent, then acknowledged as a sync's writes are, the mirror with
    it: the restored values become the CRM's mirrored values (with our write's stamp, so the
    next read knows that version as ours), and the records are due, so the next run decides
    them again from the mirror on every CRM alike, with no read."""
    if not report.restored:
        return
    assert report.rollback_run_id is not None
    for start in range(0, len(report.restored), WRITE_CHUNK):
        chunk = report.restored[start : start + WRITE_CHUNK]
        store.record_writes(report.rollback_run_id, instance, chunk, WRITE_INTENDED)
        sent_at = _moment(clock)
        results = boundary.write_updates(adapter, chunk)
        acked_at = _moment(clock)
        acked = []
        for update, result in zip(chunk, results, strict=True):
            if result.ok:
                acked.append(AckedWrite(update, sent_at, acked_at, result.stamp))
            else:
                label = f"{update.object_type}/{update.contact_id}"
                report.errors.append(f"{label}: write: {result.error}")
        outcomes = [
            (u, WRITE_ACKED if r.ok else WRITE_FAILED) for u, r in zip(chunk, results, strict=True)
        ]
        with store.transaction():
            store.settle_writes(report.rollback_run_id, instance, outcomes, remember=False)
            store.mirror.record_batch(instance, acked, [], [], acked_at)
            store.mirror.mark_due(instance, [w.update.key for w in acked])
        written.extend(w.update for w in acked)
        if progress:
            progress("restored", len(chunk))


def _removable(report: RollbackReport) -> list[TaskRecord]:
    """The planned removals but the hot-lead calls of records whose temperature the CRM did
    not take back (the contact is still hot: the call stays for the rerun to remove)."""
    unwritten = {u.key for u in report.restored} - {u.key for u in report.written}
    return [
        task
        for task in report.tasks_to_close
        if task.kind != "hot_call" or (task.object_type, task.contact_id) not in unwritten
    ]


def _close(
    adapter: Adapter,
    store: StateStore,
    instance: str,
    report: RollbackReport,
    tasks: list[TaskRecord],
    progress: ProgressCallback | None = None,
) -> None:
    """Remove `tasks` from the CRM; each one removed is closed in the task ledger and leaves
    its mirrored record, and a removed call ends its person's hot episode in the mirror."""
    if not tasks:
        return
    sent = [t for t in tasks if t.crm_id]
    for task in tasks:
        if not task.crm_id:
            label = f"{task.object_type}/{task.contact_id}"
            report.held.append((label, f"task {task.key}", "its CRM id is not known: left alone"))
    results = boundary.close_tasks(adapter, [t.crm_id or "" for t in sent])
    removed, ended = [], []
    with store.transaction():
        for task, result in zip(sent, results, strict=True):
            key = (task.object_type, task.contact_id)
            if result.ok:
                store.set_task_status(instance, task.key, TASK_CLOSED, None)
                report.tasks_closed.append(task.key)
                removed.append((key, task.crm_id or ""))
                if task.kind == "hot_call":
                    ended.append(task)
            else:
                report.errors.append(f"{key[0]}/{key[1]}: task {task.crm_id}: {result.error}")
        store.mirror.remove_tasks(instance, removed)
        store.mirror.end_episodes(instance, _episode_holders(store, instance, ended))
    if progress:
        progress("closed", len(tasks))


def _episode_holders(store: StateStore, instance: str, calls: list[TaskRecord]) -> list[Key]:
    """The records whose hot episode removing these calls ends: each call's record and every
    other record of the person its key names. A person's episode is the earliest of its
    records' (`person_decisions`), so one record left with it would bring the removed call's
    episode, and its key, back."""
    persons = {person for call in calls if (person := task_person(call.key))}
    members = People(store).members(instance, persons) if persons else []
    return list(dict.fromkeys([*((call.object_type, call.contact_id) for call in calls), *members]))


def _moment(clock: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


__all__ = ["RollbackError", "RollbackReport", "plan_rollback", "rollback"]
