"""The daemon: scheduled syncs, one at a time per portal, and a clean stop.

APScheduler fires runs on the configured interval or cron expression with jitter; a missed
run is coalesced into one (`coalesce`, `max_instances=1`). A lease in the state store keeps a
second process sharing the same state file from syncing the same portal at the same time,
and is extended after every batch. On SIGTERM/SIGINT the engine finishes the batch in
flight, saves its checkpoint, and the daemon exits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from crm_qualify.connector.ops.logs import redact, run_context
from crm_qualify.connector.ops.observability import Health, Metrics
from crm_qualify.connector.ops.progress import Progress
from crm_qualify.connector.settings import ScheduleSettings
from crm_qualify.connector.sync import retention
from crm_qualify.connector.sync.engine import (
    DECIDED_WITH_KEY,
    BatchReport,
    RunOptions,
    RunSummary,
    SyncEngine,
)
from crm_qualify.connector.sync.fingerprints import decision_fingerprint
from crm_qualify.connector.sync.lease import Lease, LeaseHeld
from crm_qualify.connector.sync.state import (
    TASK_OWED,
    TASK_PENDING,
    StateStoreError,
    sync_lock_name,
)

log = logging.getLogger(__name__)

# Crontab numbers days from Sunday (0 or 7); APScheduler 3's `from_crontab` numbers them from
# Monday, so "1-5" would run Tuesday to Saturday. Numbers are translated to names instead.
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_day_of_week(field: str) -> str:
    """A crontab day-of-week field (numbers from Sunday) as APScheduler day names."""
    if field == "*" or any(c.isalpha() for c in field):
        return field
    names: list[str] = []
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, last_text = span.split("-", 1)
            first, last = int(first_text), int(last_text)
        else:
            first = int(span)
            last = 6 if step_text else first
        if not 0 <= first <= last <= 7:
            raise ValueError(f"day of week {item!r}: days are 0-7 (0 and 7 are Sunday)")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"day of week {item!r}: the step must be at least 1")
        names += [CRON_DAYS[day] for day in range(first, last + 1, step)]
    return ",".join(dict.fromkeys(names))


def make_trigger(schedule: ScheduleSettings) -> CronTrigger | IntervalTrigger:
    """The run trigger; a bad cron expression raises ValueError naming `schedule.cron`."""
    jitter = schedule.jitter_seconds or None
    if not schedule.cron:
        return IntervalTrigger(minutes=schedule.interval_minutes, jitter=jitter, timezone=UTC)
    fields = schedule.cron.split()
    if len(fields) != 5:
        raise ValueError(
            f"schedule.cron: {schedule.cron!r} needs 5 fields (minute hour day month weekday)"
        )
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=cron_day_of_week(weekday),
            jitter=jitter,
            timezone=UTC,
        )
    except ValueError as exc:
        raise ValueError(f"schedule.cron: {schedule.cron!r}: {exc}") from None


def longest_gap_seconds(schedule: ScheduleSettings, now: datetime | None = None) -> float:
    """The longest wait between two scheduled runs over the coming five weeks, so a weekday
    cron is not reported unhealthy over a weekend."""
    if not schedule.cron:
        return schedule.interval_minutes * 60
    trigger = make_trigger(schedule.model_copy(update={"jitter_seconds": 0}))
    start = now or datetime.now(UTC)
    horizon = start + timedelta(days=35)
    previous: datetime | None = None
    fire = trigger.get_next_fire_time(None, start)
    longest = 0.0
    while fire is not None and fire <= horizon:
        if previous is not None:
            longest = max(longest, (fire - previous).total_seconds())
        previous, fire = fire, trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return longest or 35 * 86400.0


def health_max_age(schedule: ScheduleSettings) -> float:
    """How long without a successful run before /healthz says 503: two missed runs, at least
    an hour (a long first full read must not look like a hang)."""
    return max(2 * longest_gap_seconds(schedule) + schedule.jitter_seconds, 3600.0)


@dataclass
class Daemon:
    engine: SyncEngine
    schedule: ScheduleSettings
    metrics: Metrics | None = None
    health: Health | None = None
    progress: Progress | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.lock_name = sync_lock_name(self.engine.instance)
        self.idle = threading.Event()
        self.idle.set()
        self._forward = self.engine.on_batch
        self.engine.on_batch = self._on_batch
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self._rules_seen: str | None = None
        """The rules fingerprint the state store held after this daemon's last run."""

    def sync_once(self) -> RunSummary | None:
        """One run under the lease; None when another process holds it (not an error) or
        when the run crashed (logged, counted, and /healthz turns 503)."""
        if self.engine.stop.is_set():
            return None
        lease = Lease(self.engine.store, self.engine.instance, "daemon", clock=self.clock)
        try:
            lease.acquire()
        except LeaseHeld as held:
            log.info("this run is skipped: %s", held)
            if self.health:
                self.health.record("skipped")
            return None
        if self._rules_changed_elsewhere():
            lease.release()
            if self.health:  # no run failed: `runs` has none to show
                self.health.record("paused")
            if self.metrics:
                self.metrics.errors.labels("paused").inc()
            return None
        self.idle.clear()
        started = time.perf_counter()
        if self.progress:
            self.progress.start()
        try:
            summary = self.engine.run(RunOptions(mode="scheduled"))
            if summary.status in ("ok", "partial"):
                self._apply_retention()
            self._rules_seen = self._rules_in_store()
        except Exception as exc:
            self._crashed(exc)
            return None
        finally:
            lease.release()
            if self.progress:
                self.progress.finish()
            self.idle.set()
        if self.metrics:
            self.metrics.observe(
                summary, self.engine.adapter.usage(), time.perf_counter() - started
            )
            self._observe_backlog()
        if self.health:
            self.health.record(summary.status)
        return summary

    def _rules_in_store(self) -> str | None:
        return self.engine.store.get_meta(self.engine.instance, DECIDED_WITH_KEY)

    def _rules_changed_elsewhere(self) -> bool:
        """Whether another process (a `sync --once` with another configuration) decided the
        contacts with other rules since this daemon's last run. Running on would put its own
        rules back, and the two would undo each other's stages and hand-offs: the daemon
        waits, /healthz fails, until it is restarted with the configuration meant to hold."""
        found = self._rules_in_store()
        seen = self._rules_seen
        if seen is None or found in (seen, decision_fingerprint(self.engine.settings)):
            return False
        log.error(
            "the contacts were decided with another configuration (%s, `crm-qualify runs`"
            " shows its rules version) since this daemon's last run: another process ran"
            " with it. Runs are paused so as not to undo it; restart the daemon with the"
            " configuration that should hold.",
            f"fingerprint {found[:10]}" if found else "none recorded",
        )
        return True

    def _apply_retention(self) -> None:
        """Once a day after a successful run, still under the lease: runs older than
        `sync.keep_runs_days` leave the state store (no VACUUM: SQLite reuses the pages)."""
        engine = self.engine
        try:
            retention.apply_if_due(
                engine.store,
                engine.instance,
                engine.settings.sync.keep_runs_days,
                stop=engine.stop.is_set,
            )
        except StateStoreError as exc:
            log.error("retention could not be applied (the next run tries again): %s", exc)
        except Exception:  # housekeeping: never turns a good run into a crash
            log.exception("retention failed (the next run tries again)")

    def _observe_backlog(self) -> None:
        store, instance = self.engine.store, self.engine.instance
        try:
            attention = len(store.attention(instance))
            owed = store.count_tasks(instance, TASK_OWED)
            pending = store.count_tasks(instance, TASK_PENDING)
        except StateStoreError as exc:
            log.error("cannot read the backlog for /metrics: %s", exc)
            return
        if self.metrics:
            self.metrics.observe_backlog(attention, owed, pending)

    def _crashed(self, error: Exception) -> None:
        """An error the engine could not record (the state store itself failing): logged,
        counted, /healthz turns 503, and the schedule goes on; the next run settles it."""
        store, instance = self.engine.store, self.engine.instance
        try:
            ours = [
                run
                for run in store.runs(instance, limit=5)
                if run.mode == "scheduled" and run.status == "running"
            ]
        except StateStoreError:
            ours = []
        run_id = ours[0].id if ours else "-"
        with run_context(run_id):
            log.error("run crashed: %s", redact(f"{type(error).__name__}: {error}"))
        if ours:
            problem = redact(f"crashed: {type(error).__name__}: {error}")
            with contextlib.suppress(StateStoreError):
                store.finish_run(run_id, "failed", {}, [problem])
        if self.metrics:
            self.metrics.crashed(self.engine.adapter.usage())
        if self.health:
            self.health.record("failed")

    def _on_batch(self, report: BatchReport) -> None:
        if self.metrics:
            self.metrics.observe_usage(self.engine.adapter.usage())
        if self.progress:
            self.progress.batch(report)
        if self._forward:
            self._forward(report)

    def start(self, run_now: bool = True) -> None:
        """Schedule runs (the first one now unless `run_now` is false); raises ValueError for
        a bad cron expression before anything starts."""
        first = {"next_run_time": datetime.now(UTC)} if run_now else {}
        self.scheduler.add_job(
            self.sync_once,
            make_trigger(self.schedule),
            id="sync",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **first,
        )
        self.scheduler.start()
        log.info("daemon started: %s", describe(self.schedule))

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask the run in flight to stop after its batch; True if it ended within `timeout`."""
        self.engine.stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        finished = self.idle.wait(timeout)
        log.info("daemon stopped%s", "" if finished else " (a batch was still running)")
        return finished


def describe(schedule: ScheduleSettings) -> str:
    when = (
        f"cron {schedule.cron!r} (UTC)"
        if schedule.cron
        else f"every {schedule.interval_minutes:g} min"
    )
    return f"{when}, jitter up to {schedule.jitter_seconds} s"
