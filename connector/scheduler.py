"""The daemon: scheduled syncs, one at a time per portal, and a clean stop.

APScheduler fires runs on the configured interval or cron expression with jitter; a missed
run is coalesced into one (`coalesce`, `max_instances=1`). A lease in the state store keeps a
second process sharing the same state file from syncing the same portal at the same time,
and is extended after every batch. On SIGTERM/SIGINT the engine finishes the batch in
flight, saves its checkpoint, and the daemon exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connector.engine import BatchReport, RunOptions, RunSummary, SyncEngine
from connector.observability import Health, Metrics
from connector.settings import ScheduleSettings
from connector.state import LEASE_SECONDS, lock_holder, sync_lock_name

log = logging.getLogger(__name__)


def make_trigger(schedule: ScheduleSettings) -> CronTrigger | IntervalTrigger:
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, jitter=schedule.jitter_seconds or None)
    return IntervalTrigger(
        minutes=schedule.interval_minutes, jitter=schedule.jitter_seconds or None
    )


@dataclass
class Daemon:
    engine: SyncEngine
    schedule: ScheduleSettings
    metrics: Metrics | None = None
    health: Health | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.holder = lock_holder("daemon")
        self.lock_name = sync_lock_name(self.engine.instance)
        self.idle = threading.Event()
        self.idle.set()
        self._forward = self.engine.on_batch
        self.engine.on_batch = self._on_batch
        self.scheduler = BackgroundScheduler(timezone="UTC")

    def sync_once(self) -> RunSummary | None:
        """One run under the lease; None when another process holds it (not an error)."""
        store = self.engine.store
        if self.engine.stop.is_set():
            return None
        if not store.acquire_lock(self.lock_name, self.holder, LEASE_SECONDS, self.clock()):
            log.info("another process is syncing %s; this run is skipped", self.engine.instance)
            if self.health:
                self.health.record("skipped")
            return None
        self.idle.clear()
        started = time.perf_counter()
        try:
            summary = self.engine.run(RunOptions(mode="scheduled"))
        finally:
            store.release_lock(self.lock_name, self.holder)
            self.idle.set()
        if self.metrics:
            self.metrics.observe(
                summary, self.engine.adapter.usage(), time.perf_counter() - started
            )
        if self.health:
            self.health.record(summary.status)
        return summary

    def _on_batch(self, report: BatchReport) -> None:
        self.engine.store.acquire_lock(self.lock_name, self.holder, LEASE_SECONDS, self.clock())
        if self._forward:
            self._forward(report)

    def start(self, run_now: bool = True) -> None:
        self.scheduler.add_job(
            self.sync_once,
            make_trigger(self.schedule),
            id="sync",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC) if run_now else None,
        )
        self.scheduler.start()
        log.info("daemon started: %s", describe(self.schedule))

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask the run in flight to stop after its batch; True if it ended within `timeout`."""
        self.engine.stop.set()
        self.scheduler.shutdown(wait=False)
        finished = self.idle.wait(timeout)
        log.info("daemon stopped%s", "" if finished else " (a batch was still running)")
        return finished


def describe(schedule: ScheduleSettings) -> str:
    when = (
        f"cron {schedule.cron!r}" if schedule.cron else f"every {schedule.interval_minutes:g} min"
    )
    return f"{when}, jitter up to {schedule.jitter_seconds} s"
