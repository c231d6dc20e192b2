"""Task keys looked up in the CRM, and an escalation created only for a follow-up it holds.

`look_up` asks the CRM which of some keys its tasks carry (`Adapter.find_tasks`, 10,000 keys a
call; the adapter packs as many into a request as the CRM takes): a creation whose answer was
lost is settled by it, never blindly sent again.

The mirror says a follow-up is open and overdue, but a person may have deleted it since, and
no read reports that: a deletion leaves the record's own stamp alone, HubSpot's search finds
no archived task, and Salesforce's queries leave out deleted ones. So before an escalation
is created, its follow-up's key is looked up, with the batch that planned it or, held for a
full call, as that call leaves (so the keys of a call are asked together). A follow-up not
found is `gone` in the task ledger, so it is never escalated nor looked up again; one the
ledger holds closed (a rollback closed it) or gone already is not looked up, nor one being
removed (`closing`: a follow-up a merge doubled), whose escalation waits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from crm_qualify.connector.contract import Adapter
from crm_qualify.connector.decision.planning import ESCALATION, escalated
from crm_qualify.connector.model import PlannedTask
from crm_qualify.connector.sync import boundary
from crm_qualify.connector.sync.state import TASK_CLOSED, TASK_CLOSING, TASK_GONE, StateStore

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 10_000


def look_up(adapter: Adapter, keys: Sequence[str]) -> dict[str, str]:
    """The CRM id of each key's task, for the keys a task in the CRM carries."""
    found: dict[str, str] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        found.update(boundary.find_tasks(adapter, keys[start : start + LOOKUP_CHUNK]))
    return found


def followup_of(escalation: PlannedTask) -> str:
    """The key of the follow-up an escalation is about (`<its key>:escalation`)."""
    return escalated(escalation.key)


def without_gone_follow_ups(
    tasks: list[PlannedTask],
    adapter: Adapter,
    store: StateStore,
    instance: str,
    counts: Counter[str],
    dry_run: bool = False,
) -> list[PlannedTask]:
    """`tasks` but the escalations of follow-ups no longer in the CRM; unless `dry_run`, the
    ledger marks such a follow-up and its escalation (owed already when the escalation was
    held for a full call) `gone`, so neither is sent nor asked for again. `counts` gets the keys
    looked up and those found gone."""
    followups = [followup_of(task) for task in tasks if task.kind == ESCALATION]
    if not followups:
        return tasks
    ledger = store.tasks_by_key(instance, followups)
    closed = {
        key for key in followups if key in ledger and ledger[key].status in (TASK_CLOSED, TASK_GONE)
    }
    closing = {key for key in followups if key in ledger and ledger[key].status == TASK_CLOSING}
    asked = [key for key in followups if key not in closed and key not in closing]
    found = look_up(adapter, asked) if asked else {}
    gone = [key for key in asked if key not in found]
    counts["follow_ups_looked_up"] += len(asked)
    counts["follow_ups_gone"] += len(gone)
    if gone:
        log.info("%d overdue follow-up(s) no longer in the CRM: not escalated", len(gone))
    dropped = closed | closing | set(gone)
    kept, escalations = [], []
    for task in tasks:
        if task.kind == ESCALATION and followup_of(task) in dropped:
            escalations.append(task.key)
        else:
            kept.append(task)
    if not dry_run:  # one of a follow-up being removed is not made, nor marked gone
        later = [key for key in escalations if escalated(key) not in closing]
        for key in [*gone, *later]:
            store.set_task_status(instance, key, TASK_GONE, None)
    return kept
