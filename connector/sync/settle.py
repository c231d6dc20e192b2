"""What earlier runs left, settled before a run plans anything new: the task ledger learned
from the CRM (once per state file), task creations of unknown outcome looked up, writes a
dead run left in flight waited for, and follow-ups that went with their deleted record.

The CRM is asked, never guessed at: a creation whose answer was lost is looked up by its key
before anything is sent again, so no rerun, retry or crash duplicates a task.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.contract import Adapter
from crm_qualify.connector.model import PlannedTask
from crm_qualify.connector.sync import boundary
from crm_qualify.connector.sync.state import TASK_CREATED, TASK_PENDING, StateStore
from crm_qualify.connector.sync.task_lookups import look_up

log = logging.getLogger(__name__)

LEDGER_KEY = "task_ledger_rebuilt_at"


def rebuild_ledger(
    adapter: Adapter, store: StateStore, instance: str, counts: Counter[str]
) -> None:
    """A new or emptied state store learns which task keys the CRM already carries, so a
    second state file on the same portal creates no duplicate."""
    if store.get_meta(instance, LEDGER_KEY):
        return
    existing = boundary.existing_task_keys(adapter)
    found = store.record_existing_tasks(instance, existing)
    store.set_meta(instance, LEDGER_KEY, datetime.now(UTC).isoformat())
    counts["tasks_found_in_crm"] += found
    if found:
        log.info("task ledger rebuilt from the CRM: %d task key(s) already there", found)


def settle_pending_tasks(
    adapter: Adapter,
    store: StateStore,
    instance: str,
    lookup_delay: timedelta,
    counts: Counter[str],
    *,
    dry_run: bool = False,
) -> list[PlannedTask]:
    """Creations sent but never acknowledged: the CRM is asked, never blindly re-sent; only
    once `lookup_delay` (`sync.lookup_delay_seconds`) has passed, so a search index that lags
    the write cannot make a landed task look missing. Returns those it did not find, which
    are owed again (a dry run asks as well, records nothing, and lists them)."""
    pending = store.tasks_in(instance, TASK_PENDING, sent_before=datetime.now(UTC) - lookup_delay)
    waiting = store.count_tasks(instance, TASK_PENDING) - len(pending)
    if waiting:
        log.info("%d task creation(s) of unknown outcome wait for the look-up delay", waiting)
    if not pending:
        return []
    found = look_up(adapter, [task.key for task in pending])
    owed = [task for task in pending if task.key not in found]
    if dry_run:
        return owed
    store.mark_tasks_created(instance, list(found.items()))
    why = "not in the CRM after an unknown outcome"  # the CRM refused nothing: no attempt
    store.mark_tasks_owed(instance, [(task.key, why) for task in owed], attempt=False)
    counts["tasks_recovered"] += len(found)
    log.info(
        "settled %d unacknowledged task creation(s): %d found in the CRM, %d owed",
        len(pending),
        len(found),
        len(owed),
    )
    return owed


def finish_writes_in_flight(adapter: Adapter, counts: Counter[str]) -> None:
    """A dead run's writes that the CRM accepted but applies later land before its open
    intents are settled by a read: settled earlier, a late one would put back the older
    values over this run's. An adapter that cannot say raises, and the run ends."""
    finish = getattr(adapter, "finish_writes_in_flight", None)
    if finish is None:
        return
    waited = finish()
    counts["writes_waited_for"] += waited
    if waited:
        log.info("waited for %d write(s) a dead run left in flight at the CRM", waited)


def gone_with_their_record(adapter: Adapter, store: StateStore, instance: str) -> list[PlannedTask]:
    """Open follow-ups of records that left the mirror as deleted (`StateStore.rechecks`)
    that the CRM no longer has: they went with their record (Salesforce deletes a record's
    tasks; HubSpot keeps them)."""
    keys = store.rechecks(instance)
    if not keys:
        return []
    found = look_up(adapter, keys)
    vanished = [key for key in keys if key not in found]
    return store.owed_tasks(instance, vanished, TASK_CREATED)
