"""One sync run: read -> score and decide -> diff -> write -> record, one batch at a time.

The engine holds one batch in memory, saves the adapter's cursor only after that batch's writes
are acknowledged, records every field write in the audit trail, and creates each planned task
at most once: the key is recorded as pending before the create call, so after a crash an
uncertain key is looked up in the CRM instead of being created again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crm_qualify.connector.contract import (
    Adapter,
    AdapterError,
    AuthError,
    BudgetExhausted,
    ContactBatch,
)
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.model import Contact, Decision, PlannedTask, RecordUpdate
from crm_qualify.connector.ops.logs import run_context
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.diff import Skip, plan_update
from crm_qualify.connector.sync.state import StateStore

log = logging.getLogger(__name__)

CONTACTS_STREAM = "contacts"


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    limit: int | None = None
    contact_ids: Sequence[tuple[str, str]] | None = None
    now: datetime | None = None
    mode: str = "once"


@dataclass
class BatchReport:
    """What one batch decided and did; dry runs print it, the daemon counts it."""

    contacts: list[Contact] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    updates: list[RecordUpdate] = field(default_factory=list)
    tasks: list[PlannedTask] = field(default_factory=list)
    skips: list[tuple[str, Skip]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    written: list[RecordUpdate] = field(default_factory=list)
    tasks_created: list[PlannedTask] = field(default_factory=list)
    write_failed: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class RunSummary:
    run_id: str
    status: str
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


class SyncEngine:
    """Runs syncs of one adapter instance against one state store."""

    def __init__(
        self,
        adapter: Adapter,
        settings: Settings,
        store: StateStore,
        *,
        on_batch: Callable[[BatchReport], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.adapter = adapter
        self.settings = settings
        self.store = store
        self.instance = settings.crm.instance
        self.on_batch = on_batch
        self.stop = stop or threading.Event()

    def run(self, options: RunOptions | None = None) -> RunSummary:
        options = options or RunOptions()
        now = options.now or datetime.now(UTC)
        run_id = self.store.start_run(self.instance, mode=options.mode, dry_run=options.dry_run)
        summary = RunSummary(run_id=run_id, status="ok", dry_run=options.dry_run)
        with run_context(run_id):
            log.info("run started (%s%s)", options.mode, ", dry run" if options.dry_run else "")
            try:
                if not options.dry_run:
                    self._recover_pending_tasks(run_id, summary)
                self._run_batches(options, now, summary)
            except (AuthError, BudgetExhausted, AdapterError) as exc:
                summary.status = "stopped" if isinstance(exc, BudgetExhausted) else "failed"
                summary.errors.append(f"{type(exc).__name__}: {exc}")
                log.error("run %s: %s", summary.status, exc)
            if summary.status == "ok" and summary.errors:
                summary.status = "partial"
            if self.stop.is_set() and summary.status in ("ok", "partial"):
                summary.status = "interrupted"
            self.store.finish_run(run_id, summary.status, dict(summary.counts), summary.errors)
            log.info("run %s: %s", summary.status, dict(summary.counts))
        return summary

    def _batches(self, options: RunOptions, now: datetime) -> Iterator[ContactBatch]:
        if options.contact_ids is not None:
            yield from self.adapter.read_contacts(options.contact_ids)
            return
        retries = self.store.retries(self.instance)[: self.settings.sync.max_retry_records]
        if retries:
            log.info("re-reading %d records whose last write failed", len(retries))
            yield from self.adapter.read_contacts(retries)
        cursor = self.store.get_cursor(self.instance, CONTACTS_STREAM)
        yield from self.adapter.read_changed(cursor, until=now)

    def _run_batches(self, options: RunOptions, now: datetime, summary: RunSummary) -> None:
        remaining = options.limit
        for batch in self._batches(options, now):
            contacts = list(batch.contacts)
            if remaining is not None:
                contacts = contacts[:remaining]
                remaining -= len(contacts)
            report = self._process(contacts, batch, now, options, summary)
            summary.errors.extend(report.errors)
            if self.on_batch:
                self.on_batch(report)
            if remaining is not None and remaining <= 0:
                break
            if self.stop.is_set():
                log.info("stop requested: checkpoint saved, ending the run")
                break

    def _process(
        self,
        contacts: list[Contact],
        batch: ContactBatch,
        now: datetime,
        options: RunOptions,
        summary: RunSummary,
    ) -> BatchReport:
        report = BatchReport(contacts=contacts)
        counts = summary.counts
        counts["read"] += len(contacts)
        for error in batch.errors:
            report.errors.append(f"{error.record}: {error.field or 'record'}: {error.message}")
            counts["read_errors"] += 1
        pairs = self._decide_all(contacts, now, report)
        counts["scored"] += len(pairs)
        last_written = self.store.last_written(
            self.instance, [(c.object_type, c.id) for c, _ in pairs]
        )
        policies = self.settings.fields
        stages = getattr(self.adapter, "writable_stages", None)
        for contact, decision in pairs:
            update, skips = plan_update(
                contact,
                decision,
                policies,
                last_written.get((contact.object_type, contact.id), {}),
                stages,
            )
            if update:
                report.updates.append(update)
            report.skips.extend((contact.label, skip) for skip in skips)
            report.tasks.extend(decision.tasks)
        counts["fields_planned"] += sum(len(u.changes) for u in report.updates)
        counts["tasks_planned"] += len(report.tasks)
        counts["fields_held_back"] += len(report.skips)
        if options.dry_run:
            return report
        self._write(report, summary.run_id, counts)
        self._create_tasks(report, summary.run_id, counts)
        self.store.clear_retries(
            self.instance,
            [
                key
                for key in ((c.object_type, c.id) for c in contacts)
                if key not in report.write_failed
            ],
        )
        if batch.cursor is not None and options.limit is None:
            self.store.set_cursor(self.instance, CONTACTS_STREAM, batch.cursor)
        return report

    def _decide_all(
        self, contacts: list[Contact], now: datetime, report: BatchReport
    ) -> list[tuple[Contact, Decision]]:
        pairs = []
        for contact in contacts:
            try:
                decision = decide(contact, self.settings.rules, now)
            except (ValueError, TypeError, KeyError) as exc:
                report.errors.append(f"{contact.label}: record: cannot score: {exc}")
                continue
            report.decisions.append(decision)
            pairs.append((contact, decision))
        return pairs

    def _write(self, report: BatchReport, run_id: str, counts: Counter[str]) -> None:
        if not report.updates:
            return
        results = self.adapter.write_updates(report.updates)
        if len(results) != len(report.updates):
            raise AdapterError(
                f"adapter returned {len(results)} results for {len(report.updates)} updates"
            )
        retries = []
        for update, result in zip(report.updates, results, strict=True):
            label = f"{update.object_type}/{update.contact_id}"
            if result.ok:
                report.written.append(update)
                continue
            report.errors.append(f"{label}: write: {result.error}")
            counts["write_errors"] += 1
            if result.retryable:
                report.write_failed.add((update.object_type, update.contact_id))
                retries.append((update.object_type, update.contact_id, result.error or "failed"))
        self.store.record_writes(run_id, self.instance, report.written)
        self.store.add_retries(self.instance, retries)
        counts["records_written"] += len(report.written)
        counts["fields_written"] += sum(len(u.changes) for u in report.written)

    def _create_tasks(self, report: BatchReport, run_id: str, counts: Counter[str]) -> None:
        planned = list({task.key: task for task in report.tasks}.values())
        if not planned:
            return
        known = self.store.tasks_by_key(self.instance, [t.key for t in planned])
        self._send_tasks([t for t in planned if t.key not in known], report, run_id, counts)

    def _recover_pending_tasks(self, run_id: str, summary: RunSummary) -> None:
        """Settle creations a crash left unacknowledged before planning anything new: those the
        CRM has are recorded, the others are created now, so none is duplicated or lost."""
        pending = self.store.pending_tasks(self.instance)
        if not pending:
            return
        found = self.adapter.find_tasks([task.key for task in pending])
        for key, crm_id in found.items():
            self.store.mark_task_created(self.instance, key, crm_id)
        summary.counts["tasks_recovered"] += len(found)
        report = BatchReport()
        self._send_tasks([t for t in pending if t.key not in found], report, run_id, summary.counts)
        summary.errors.extend(report.errors)
        log.info("settled %d unacknowledged task creations", len(pending))

    def _send_tasks(
        self, tasks: list[PlannedTask], report: BatchReport, run_id: str, counts: Counter[str]
    ) -> None:
        if not tasks:
            return
        self.store.mark_tasks_pending(self.instance, run_id, tasks)
        results = self.adapter.create_tasks(tasks)
        if len(results) != len(tasks):
            raise AdapterError(f"adapter returned {len(results)} results for {len(tasks)} tasks")
        created = 0
        for task, result in zip(tasks, results, strict=True):
            if result.ok and result.crm_id:
                self.store.mark_task_created(self.instance, task.key, result.crm_id)
                report.tasks_created.append(task)
                created += 1
            else:
                self.store.forget_task(self.instance, task.key)
                report.errors.append(f"{task.object_type}/{task.contact_id}: task: {result.error}")
                counts["task_errors"] += 1
        counts["tasks_created"] += created
