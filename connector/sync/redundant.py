"""Follow-ups a merge in the CRM doubled, removed through the write protocol.

Two records decided as two people, each given its own hand-off (or hot-lead call, or
escalation), then merged in the CRM: both CRMs move every task to the surviving record, which
now carries two open follow-ups of one kind from crm-qualify, and its owner would work the same
hand-off twice. The planner never adds a follow-up of a kind while one is open, so only a
merge (or records joining one person) makes such a pair. A run that decides the record keeps
one of each kind and removes the others nobody touched, by the rule a rollback removes a task
by (`touched`): one completed, changed since its creation (reassigned, edited) or rescheduled
is a person's and stays. Kept first: one a person touched, then (for escalations) the one
about the follow-up kept, then the oldest. A person gets one hand-off, ever, so one a person
completed is the one kept, and an open hand-off the merge brought beside it goes; a hot-lead
call comes again with each episode, so a completed one (maybe of an episode long over)
stands for no open one.

Written as every CRM write is: intended (the ledger marks each key `closing`, on the record
that holds it now), sent (`Adapter.close_tasks`: Salesforce deletes, HubSpot archives; one
removed already counts as removed), acknowledged (`closed` in the ledger, and gone from its
mirrored record). Keys a dead run left `closing` are sent again at the next run's start.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.contract import (
    Adapter,
    AdapterError,
    AuthError,
    BudgetExhausted,
    RecordError,
)
from crm_qualify.connector.decision.planning import (
    ESCALATION,
    KEY_PREFIX,
    MQL_HANDOFF,
    escalated,
    task_kind,
)
from crm_qualify.connector.model import Contact, ExistingTask
from crm_qualify.connector.ops.logs import redact
from crm_qualify.connector.sync import boundary
from crm_qualify.connector.sync.state import (
    TASK_CLOSED,
    TASK_CLOSING,
    TASK_CREATED,
    StateStore,
    TaskRecord,
)

log = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclass(frozen=True)
class Closing:
    """A redundant follow-up to remove: the record holding it now, its key and CRM id."""

    record: Key
    key: str
    crm_id: str


def due_moved(seen: ExistingTask, task: TaskRecord) -> bool:
    """A due time other than the one we gave: a person rescheduled the task, however soon
    after its creation (`changed_since_created` must allow a minute, in which HubSpot stamps
    a new task again itself). Salesforce keeps the date only (`due_is_day`)."""
    if seen.due is None or task.due is None:
        return False
    given = datetime.fromisoformat(task.due)
    if seen.due_is_day:  # `due` is the end of that day: the next day's midnight
        return (seen.due - timedelta(days=1)).date() != given.astimezone(UTC).date()
    return abs((seen.due - given).total_seconds()) >= 1


def touched(seen: ExistingTask, task: TaskRecord) -> bool:
    """A person's since we created it: completed, changed in the CRM, or rescheduled. Such a
    task is never removed (a rollback keeps it, and so does a merge's clean-up)."""
    return not seen.is_open or seen.changed_since_created or due_moved(seen, task)


def _group(key: str) -> str | None:
    """What makes two of our follow-ups one too many: the same kind, and for an escalation
    the kind of the follow-up it escalates."""
    if key.endswith(f":{ESCALATION}"):
        kind = task_kind(escalated(key))
        return f"{ESCALATION}:{kind}" if kind else None
    return task_kind(key)


def _counted(task: ExistingTask) -> bool:
    """One of ours that holds its group's place: an open one, or a hand-off a person
    completed (a person gets one hand-off, ever; a hot-lead call comes again with each
    episode and recall slot, and an escalation is about its own follow-up)."""
    if not task.key or not task.key.startswith(KEY_PREFIX):
        return False
    return task.is_open or task_kind(task.key) == MQL_HANDOFF


def doubled(contact: Contact) -> list[ExistingTask]:
    """The record's follow-ups of ours that share their group with another, where one of them
    is open (cheap: most records carry fewer than two, and the ledger is asked only for
    these): open ones, and completed hand-offs (`_counted`)."""
    if len(contact.tasks) < 2:
        return []
    ours = [(t, _group(t.key or "")) for t in contact.tasks if _counted(t)]
    if len(ours) < 2:
        return []
    counts = Counter(group for _, group in ours)
    open_groups = {group for t, group in ours if t.is_open}
    return [
        t for t, group in ours if group is not None and counts[group] > 1 and group in open_groups
    ]


def _removable(task: ExistingTask, ledger: Mapping[str, TaskRecord]) -> bool:
    """Created by us (the ledger knows it so) and untouched since."""
    record = ledger.get(task.key or "")
    return record is not None and record.status == TASK_CREATED and not touched(task, record)


def redundant(
    tasks: Sequence[ExistingTask], ledger: Mapping[str, TaskRecord]
) -> list[ExistingTask]:
    """Of `doubled` tasks, those to remove: all but one of each group, each untouched and
    known to the ledger (a task it does not know is left alone)."""
    by_group: dict[str, list[ExistingTask]] = {}
    for task in tasks:
        by_group.setdefault(_group(task.key or "") or "", []).append(task)
    kept: set[str] = set()
    removed: list[ExistingTask] = []
    for group in sorted(by_group, key=lambda g: g.startswith(ESCALATION)):  # follow-ups first
        ranked = sorted(
            by_group[group],
            key=lambda task: (
                _removable(task, ledger),
                escalated(task.key or "") not in kept,
                task.created_at or datetime.max.replace(tzinfo=UTC),
                task.key or "",
            ),
        )
        kept.add(ranked[0].key or "")
        for task in ranked[1:]:
            if _removable(task, ledger):
                removed.append(task)
            else:
                kept.add(task.key or "")
    return removed


def plan_closing(contacts: Sequence[Contact], store: StateStore, instance: str) -> list[Closing]:
    """The redundant follow-ups `contacts` carry (the ledger read only for doubled ones)."""
    found = {(c.object_type, c.id): pair for c in contacts if len(pair := doubled(c)) > 1}
    if not found:
        return []
    ledger = store.tasks_by_key(instance, [t.key or "" for ts in found.values() for t in ts])
    return [
        Closing(record, task.key or "", task.id)
        for record, tasks in found.items()
        for task in redundant(_not_closing(tasks, ledger), ledger)
    ]


def _not_closing(
    tasks: Sequence[ExistingTask], ledger: Mapping[str, TaskRecord]
) -> list[ExistingTask]:
    """The tasks but those a removal left `closing` (its answer lost, or refused for now):
    they are on their way out, sent again at each run's start, so they are neither kept nor
    counted as the one of their kind a record keeps. Ranked among the rest, such a task was
    taken for a person's and the record's other follow-up was removed instead: both went,
    and the MQL lost its hand-off."""
    return [t for t in tasks if (r := ledger.get(t.key or "")) is None or r.status != TASK_CLOSING]


def left_closing(store: StateStore, instance: str) -> list[Closing]:
    """Removals a dead or failed run intended and never saw acknowledged."""
    return [
        Closing((task.object_type, task.contact_id), task.key, task.crm_id)
        for task in store.task_records_in(instance, TASK_CLOSING)
        if task.crm_id
    ]


def close(
    adapter: Adapter,
    store: StateStore,
    instance: str,
    closing: Sequence[Closing],
    counts: Counter[str],
) -> list[str]:
    """Intend, send, acknowledge; returns the errors (record, task) of removals the CRM
    refused: a transient one stays `closing` for the next run, another is left in place."""
    if not closing:
        return []
    store.mark_tasks_closing(instance, [(c.key, c.record, c.crm_id) for c in closing])
    try:
        results = boundary.close_tasks(adapter, [c.crm_id for c in closing])
    except (AuthError, BudgetExhausted):
        raise
    except AdapterError as exc:  # left `closing`: the next run sends them again
        why = redact(str(exc))[:200]
        log.warning("%d doubled follow-up(s) not removed this run: %s", len(closing), why)
        return [f"{len(closing)} doubled follow-up(s) not removed, sent again next run: {why}"]
    errors: list[str] = []
    removed, refused = [], []
    for task, result in zip(closing, results, strict=True):
        if result.ok:
            removed.append(task)
            continue
        label = f"{task.record[0]}/{task.record[1]}"
        after = "; sent again next run" if result.retryable else "; left in place"
        errors.append(str(RecordError(label, "task", f"{task.crm_id}: {result.error}{after}")))
        if not result.retryable:
            refused.append(task.key)
    with store.transaction():
        for task in removed:
            store.set_task_status(instance, task.key, TASK_CLOSED, None)
        for key in refused:
            store.set_task_status(instance, key, TASK_CREATED, None)
        store.mirror.remove_tasks(instance, [(t.record, t.crm_id) for t in removed])
    counts["tasks_closed"] += len(removed)
    if removed:
        log.info("removed %d follow-up(s) a merge in the CRM doubled", len(removed))
    return errors


def resume(adapter: Adapter, store: StateStore, instance: str, counts: Counter[str]) -> list[str]:
    """Removals a dead run intended and never acknowledged, sent again (a task removed
    already counts as removed)."""
    return close(adapter, store, instance, left_closing(store, instance), counts)
