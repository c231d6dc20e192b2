"""The scheduler: crontab meaning, one run per portal across processes, crashes, and stops."""

from __future__ import annotations

import ctypes
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.model import Contact, EngagementEvent, EventType, Origin
from crm_qualify.connector.ops.observability import Health, Metrics
from crm_qualify.connector.ops.scheduler import (
    Daemon,
    cron_day_of_week,
    health_max_age,
    longest_gap_seconds,
    make_trigger,
)
from crm_qualify.connector.settings import ScheduleSettings, Settings
from crm_qualify.connector.sync.engine import SyncEngine
from crm_qualify.connector.sync.state import StateStore, StateStoreError

from tests.memory_adapter import MemoryAdapter

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # a Sunday
SUNDAY = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


def contacts(n: int) -> list[Contact]:
    return [
        Contact(
            id=f"c{i}",
            origin=Origin.INBOUND,
            updated_at=NOW - timedelta(minutes=i),
            events=[EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(days=1))],
        )
        for i in range(n)
    ]


def daemon(path: Path, adapter: MemoryAdapter) -> Daemon:
    engine = SyncEngine(adapter, Settings(), StateStore(path))
    schedule = ScheduleSettings(interval_minutes=60, jitter_seconds=0)
    return Daemon(engine, schedule, Metrics("memory"), Health(max_age_seconds=3600))


def fires(cron: str, count: int) -> list[datetime]:
    trigger = make_trigger(ScheduleSettings(cron=cron, jitter_seconds=0))
    found, previous, now = [], None, SUNDAY
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, now)
        found.append(previous)
        now = previous + timedelta(seconds=1)
    return found


# ----- crontab --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sun,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("6-7", "sat,sun"),
        ("*", "*"),
        ("mon-fri", "mon-fri"),
    ],
)
def test_crontab_weekdays_count_from_sunday(field, names):
    assert cron_day_of_week(field) == names


def test_a_weekday_cron_fires_monday_to_friday_in_utc():
    days = [fire.strftime("%a %H:%M %Z") for fire in fires("0 9 * * 1-5", 6)]
    assert days == [f"{d} 09:00 UTC" for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Mon")]
    assert [f.strftime("%a") for f in fires("30 2 * * 0", 2)] == ["Sun", "Sun"]


@pytest.mark.parametrize(
    ("cron", "problem"),
    [("0 9 * *", "needs 5 fields"), ("0 25 * * *", "schedule.cron"), ("0 9 * * 8", "0-7")],
)
def test_a_bad_cron_expression_names_the_key(cron, problem):
    with pytest.raises(ValueError, match="schedule.cron") as error:
        make_trigger(ScheduleSettings(cron=cron))
    assert problem in str(error.value)


def test_health_allows_two_missed_runs_even_over_a_weekend():
    weekdays = ScheduleSettings(cron="0 9 * * 1-5", jitter_seconds=0)
    assert longest_gap_seconds(weekdays, NOW) == 3 * 86400  # Friday 9:00 to Monday 9:00
    assert health_max_age(ScheduleSettings(interval_minutes=15, jitter_seconds=30)) == 3600
    daily = ScheduleSettings(cron="0 3 * * *", jitter_seconds=60)
    assert health_max_age(daily) == 2 * 86400 + 60


# ----- one run at a time ------------------------------------------------------------------------
def test_two_daemons_sharing_a_state_file_never_sync_at_once(tmp_path):
    """Two processes' worth of daemons (own connections, one file) fire at the same moment."""
    path = tmp_path / "state.sqlite"
    first_crm, second_crm = MemoryAdapter(contacts(6), batch_size=2), MemoryAdapter(contacts(6))
    first, second = daemon(path, first_crm), daemon(path, second_crm)
    in_run = threading.Event()
    release = threading.Event()

    def hold_the_lease(report):
        in_run.set()
        release.wait(10)

    first._forward = hold_the_lease
    results = {}
    runner = threading.Thread(target=lambda: results.update(first=first.sync_once()))
    runner.start()
    assert in_run.wait(10)
    results["second"] = second.sync_once()
    release.set()
    runner.join(10)
    assert results["second"] is None and second.health.last_status == "skipped"
    assert second_crm.calls == {}, "the skipped daemon made no API call"
    assert results["first"].status == "ok"
    assert second.sync_once().status == "ok", "the lease is free once the first run ended"
    for one in (first, second):
        one.engine.store.close()


def test_start_without_a_run_now_still_schedules(tmp_path):
    runner = daemon(tmp_path / "state.sqlite", MemoryAdapter(contacts(1)))
    runner.start(run_now=False)
    try:
        job = runner.scheduler.get_job("sync")
        assert job.next_run_time is not None, "scheduled, not paused"
        assert job.max_instances == 1 and job.coalesce
    finally:
        assert runner.stop(timeout=5)
        runner.engine.store.close()


# ----- crashes ----------------------------------------------------------------------------------
class CrashingAdapter(MemoryAdapter):
    crash = True

    def read_changed(self, cursor, *, until, known=None):
        if self.crash:
            self.crash = False
            raise RuntimeError("disk full (access_token=pat-canary-0042)")
        return super().read_changed(cursor, until=until, known=known)


def test_a_crashed_run_is_recorded_failed_and_the_next_one_resumes(tmp_path, caplog):
    adapter = CrashingAdapter(contacts(4))
    runner = daemon(tmp_path / "state.sqlite", adapter)
    store = runner.engine.store
    assert runner.sync_once().status == "failed"
    (crashed,) = store.runs()
    assert crashed.status == "failed" and "RuntimeError: disk full" in crashed.errors[0]
    assert "pat-canary-0042" not in crashed.errors[0]
    assert runner.health.report()[0] == 503
    assert runner.metrics.errors.labels("run")._value.get() == 1
    assert store.acquire_lock(runner.lock_name, "someone-else", 60, time.time()), "released"
    store.release_lock(runner.lock_name, "someone-else")
    assert runner.sync_once().status == "ok"
    assert runner.health.report()[0] == 200
    store.close()


def test_a_run_the_state_store_cannot_start_is_a_crash_and_the_schedule_goes_on(
    tmp_path, monkeypatch, caplog
):
    """The state store fails as a run starts (a full disk, a locked file): the engine has no
    run to record it in, so the daemon logs the crash (without the secret), counts it and
    turns /healthz 503, is idle again, and the next scheduled run goes on."""
    runner = daemon(tmp_path / "state.sqlite", MemoryAdapter(contacts(4)))
    store = runner.engine.store
    start_run, failures = store.start_run, []

    def full_disk_once(*args, **kwargs):
        if not failures:
            failures.append(args)
            raise StateStoreError("state store: cannot write: disk full (access_token=pat-x42)")
        return start_run(*args, **kwargs)

    monkeypatch.setattr(store, "start_run", full_disk_once)
    assert runner.sync_once() is None
    assert "run crashed" in caplog.text and "disk full" in caplog.text
    assert "pat-x42" not in caplog.text
    assert store.runs() == []
    assert runner.health.report()[0] == 503
    assert runner.metrics.errors.labels("crash")._value.get() == 1
    assert runner.idle.is_set(), "idle again: a stop need not wait"
    assert store.acquire_lock(runner.lock_name, "someone-else", 60, time.time()), "released"
    store.release_lock(runner.lock_name, "someone-else")
    assert runner.sync_once().status == "ok"
    assert runner.health.report()[0] == 200
    store.close()


# ----- stopping ---------------------------------------------------------------------------------
def start_daemon(config: Path, env: dict[str, str], args: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PATCHED_CLI, "run", "--config", str(config), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(process: subprocess.Popen, pattern: str, lines: list[str]) -> None:
    while True:
        line = process.stderr.readline()
        assert line, "the daemon ended early:\n" + "".join(lines)
        lines.append(line)
        if re.search(pattern, line):
            return


def hubspot_config(tmp_path: Path, base_url: str) -> Path:
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{base_url}'\n"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
        "[schedule]\ninterval_minutes = 60\njitter_seconds = 0\n"
        "[server]\nenabled = false\n[logging]\nformat = 'json'\n"
    )
    return config


def task_keys(sim: HubSpotSimulator) -> list[str]:
    tasks = sim.store.objects["tasks"].values()
    return [t["properties"]["crmq_task_key"] for t in tasks if t["properties"].get("crmq_task_key")]


TOTAL = 2_200


def test_sigterm_mid_run_checkpoints_and_the_restart_duplicates_no_task(tmp_path):
    """Two daemon processes in turn against one simulated portal: the first is stopped after
    its first batch, the second picks up from the checkpoint and finishes."""
    # No seeded activities: this is about the checkpoint. 2,200 contacts are read in batches
    # of 200, 800, 1,000 and 200: the stop after the batch in flight (1,000 read) still
    # leaves the restart work to do when the SIGTERM lands a whole batch late.
    with HubSpotSimulator(
        contacts=TOTAL, seed=7, custom_properties=True, latency_ms=15, engagement=0
    ) as sim:
        config = hubspot_config(tmp_path, sim.base_url)
        env = {**os.environ, "CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN": sim.token}
        first, lines = start_daemon(config, env), []
        read_until(first, r"progress: read", lines)
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err[-2000:]

        store = StateStore(tmp_path / "state.sqlite")
        (stopped,) = store.runs()
        assert stopped.status == "interrupted", stopped
        assert 0 < stopped.counts["read"] < TOTAL, "stopped after a batch, not at the end"
        assert store.get_cursor("default", "contacts"), "checkpoint saved"
        tasks_before = len(task_keys(sim))

        second, lines = start_daemon(config, env), []
        read_until(second, r'"run (ok|partial)', lines)
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
        assert second.returncode == 0
        finished = store.runs()[0]
        assert finished.status in ("ok", "partial")
        assert stopped.counts["read"] + finished.counts["read"] >= TOTAL
        keys = task_keys(sim)
        assert len(keys) > tasks_before, "the restart created the tasks of the unread contacts"
        assert len(keys) == len(set(keys)), "no task created twice"
        store.close()


# `crm-qualify` with an adapter `memory` installed: `$CRMQ_TEST_ADAPTER`, a MemoryAdapter.
PATCHED_CLI = """
import os, sys
from importlib.metadata import EntryPoint
import crm_qualify.connector.plugins as plugins
known = plugins.available_adapters()
where = os.environ.get("CRMQ_TEST_ADAPTER", "tests.test_scheduler:SeededAdapter")
plugins.available_adapters = lambda: {**known, "memory": EntryPoint("memory", where, "x")}
from crm_qualify.connector.cli import main
sys.exit(main(sys.argv[1:]))
"""


class SeededAdapter(MemoryAdapter):
    """The in-memory CRM, as an installed adapter would be built, with six contacts."""

    @classmethod
    def from_config(cls, settings, mapping):
        return cls(contacts(6), batch_size=3)


class StuckAdapter(SeededAdapter):
    """A CRM that never answers the first write: the batch in flight cannot finish."""

    def write_updates(self, updates):
        print("stuck in a write", file=sys.stderr, flush=True)
        time.sleep(120)
        return super().write_updates(updates)


def test_a_batch_that_cannot_finish_still_ends_the_process_within_the_stop_timeout(tmp_path):
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = 'memory'\nmapping_file = '{ROOT / 'mappings' / 'hubspot.toml'}'\n"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
        "[server]\nenabled = false\n[logging]\nformat = 'json'\n"
    )
    env = {**os.environ, "CRMQ_TEST_ADAPTER": "tests.test_scheduler:StuckAdapter"}
    process, lines = start_daemon(config, env, ("--stop-timeout", "0.5")), []
    read_until(process, "stuck in a write", lines)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "did not finish within 0.5 s" in err


def test_run_refuses_a_bad_schedule_or_a_busy_port_before_any_sync(tmp_path):
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = 'memory'\nmapping_file = '{ROOT / 'mappings' / 'hubspot.toml'}'\n"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
    )
    command = [sys.executable, "-c", PATCHED_CLI, "run", "--config", str(config)]
    env = {**os.environ, "CRMQ_SCHEDULE__CRON": "0 9 * * 1-8"}
    bad = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "schedule.cron" in bad.stderr and "0-7" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {**os.environ, "CRMQ_SERVER__HOST": "127.0.0.1", "CRMQ_SERVER__PORT": port}
        busy = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert busy.returncode == 2 and f"server.port: cannot listen on 127.0.0.1:{port}" in busy.stderr
    store = StateStore(tmp_path / "state.sqlite")
    assert not store.runs(), "no run was started"
    store.close()


TGKILL = {"x86_64": 234, "aarch64": 131}
"""tgkill's system call number: a signal to one thread of a process, as the kernel may
deliver SIGTERM to whichever thread does not block it."""


@pytest.mark.skipif(platform.machine() not in TGKILL, reason="tgkill's number is not known here")
def test_sigterm_delivered_to_another_thread_still_stops_the_daemon(tmp_path):
    """Python runs handlers on the main thread only: an untimed wait there never woke for a
    SIGTERM the kernel gave to a worker thread (the daemon ignored it)."""
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = 'memory'\nmapping_file = '{ROOT / 'mappings' / 'hubspot.toml'}'\n"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
        "[server]\nenabled = false\n[logging]\nformat = 'json'\n"
    )
    process, lines = start_daemon(config, dict(os.environ)), []
    read_until(process, '"run ok', lines)
    threads = [int(tid) for tid in os.listdir(f"/proc/{process.pid}/task")]
    workers = [tid for tid in threads if tid != process.pid]
    assert workers, "the daemon runs its scheduler on threads of its own"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(TGKILL[platform.machine()], process.pid, workers[0], signal.SIGTERM) == 0
    try:
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0 and "SIGTERM received" in err
