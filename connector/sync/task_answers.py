"""Answers to a batch of task creations, sorted for the task ledger, and tasks whose record
is gone owed again to another record of its person.

Each answer is one of: created (recorded with its CRM id); refused by the CRM (owed again,
one attempt counted); failed for a reason that passes (owed, no attempt counted); of unknown
outcome (left `pending`, looked up by a later run, never blindly resent); or refused because
its record is gone (deleted, merged or converted since it was read): owed again, under the
same key, on the record the CRM says it lives on as, else on the survivor among the
person's records left.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from crm_qualify.connector.contract import TaskResult
from crm_qualify.connector.model import PlannedTask
from crm_qualify.connector.sync.flight import Answer
from crm_qualify.connector.sync.people import People, task_person
from crm_qualify.connector.sync.state import StateStore

log = logging.getLogger(__name__)


@dataclass
class Landed:
    """Answers to one batch of task creations, before they are recorded."""

    created: list[tuple[PlannedTask, str]] = field(default_factory=list)
    failed: list[tuple[str, str | None]] = field(default_factory=list)
    """Refused by the CRM: owed, one attempt more (after `OWED_RETRY_ATTEMPTS` they are sent
    only with their record's next plan)."""
    failed_for_now: list[tuple[str, str | None]] = field(default_factory=list)
    """Failed for a reason that passes (an outage, a lock): owed, no attempt counted."""
    refused: list[tuple[PlannedTask, TaskResult]] = field(default_factory=list)
    """The tasks of `failed` and `failed_for_now` with their answers: each an error of its
    record."""
    uncertain: int = 0
    """Answers of unknown outcome: their keys stay `pending`."""
    dropped: list[PlannedTask] = field(default_factory=list)
    """Refused because their record is gone: owed to another record of the person."""
    moved: list[PlannedTask] = field(default_factory=list)
    """Refused because their record is gone, on the record the CRM says it lives on as
    (`TaskResult.moved_to`): owed to that one."""
    gone: list[tuple[str, str]] = field(default_factory=list)
    """Records these answers found gone that `known_gone` did not hold."""


def sort_answers(
    tasks: Sequence[PlannedTask],
    answers: Sequence[Answer[TaskResult] | None],
    known_gone: Collection[tuple[str, str]],
) -> Landed:
    """The answers to `tasks`, in order, sorted. A refusal that is not of unknown outcome,
    for a record found gone (by `known_gone`, its write's answer, or an earlier task's), is
    the record's being gone, not the task's fault."""
    landed = Landed()
    for task, answer in zip(tasks, answers, strict=True):
        assert answer is not None, "a batch is acknowledged only once fully answered"
        result = answer.result
        record = (task.object_type, task.contact_id)
        gone = record in known_gone or record in landed.gone
        if result.ok and result.crm_id:
            landed.created.append((task, result.crm_id))
        elif result.gone or (not result.uncertain and gone):
            if result.moved_to is not None:
                kind, moved_to = result.moved_to
                landed.moved.append(replace(task, object_type=kind, contact_id=moved_to))
            else:
                landed.dropped.append(task)
            if not gone:
                landed.gone.append(record)
        elif result.uncertain:
            landed.uncertain += 1
        else:
            failed = landed.failed_for_now if result.retryable else landed.failed
            failed.append((task.key, result.error))
            landed.refused.append((task, result))
    return landed


def record_answers(store: StateStore, instance: str, landed: Landed, counts: Counter[str]) -> None:
    """The created and the refused in the ledger (the caller's transaction)."""
    created = [(task.key, crm_id) for task, crm_id in landed.created]
    store.mark_tasks_created(instance, created)
    store.mark_tasks_owed(instance, landed.failed)
    store.mark_tasks_owed(instance, landed.failed_for_now, attempt=False)
    counts["tasks_created"] += len(created)


def owe_to_the_person(
    store: StateStore,
    people: People,
    instance: str,
    dropped: list[PlannedTask],
    counts: Counter[str],
    moved_on: Sequence[PlannedTask] = (),
) -> None:
    """Tasks refused because their record is gone (it has left the mirror and the identity
    index): owed again, under the same key, on the record the CRM said it lives on as
    (`moved_on`: a lead converted into a Contact no run has read yet), else on the survivor
    among the person's records left, for the next run to create. Not decided again: the same
    run may already have written the person's new stage to that record, after which no
    hand-off would be due."""
    if not dropped and not moved_on:
        return
    moved = [*moved_on, *to_the_person(people, instance, dropped)]
    store.retarget_tasks(instance, moved)
    orphans = {task.key for task in dropped} - {task.key for task in moved}
    store.forget_tasks(instance, sorted(orphans))
    counts["tasks_planned_again"] += len(moved)
    counts["tasks_gone_with_their_record"] += len(orphans)
    log.info(
        "%d task(s) whose record is gone: %d owed to another record of the person,"
        " %d with no record left",
        len(dropped) + len(moved_on),
        len(moved),
        len(orphans),
    )


def to_the_person(people: People, instance: str, tasks: list[PlannedTask]) -> list[PlannedTask]:
    """Copies of `tasks` on the survivor of their person's records in the identity index
    (those of a person with no record left are left out)."""
    persons = {person for task in tasks if (person := task_person(task.key))}
    left = people.stored(instance, people.members(instance, persons))
    survivors = {person.key: person.survivor for person in left.values()}
    return [
        replace(task, object_type=survivor[0], contact_id=survivor[1])
        for task in tasks
        if (survivor := survivors.get(task_person(task.key) or "")) is not None
    ]
