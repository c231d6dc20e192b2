"""The daemon: scheduling under a lease, health and metrics, and a clean SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.model import (
    Contact,
    EngagementEvent,
    EventType,
    FieldUpdate,
    Origin,
    RecordUpdate,
)
from crm_qualify.connector.ops.observability import Health, Metrics, serve
from crm_qualify.connector.ops.scheduler import Daemon
from crm_qualify.connector.settings import ScheduleSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.fake_clock import set_state_clock
from tests.memory_adapter import MemoryAdapter

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


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


@pytest.fixture
def store(tmp_path):
    state = StateStore(tmp_path / "state.sqlite")
    yield state
    state.close()


def daemon(store: StateStore, adapter: MemoryAdapter) -> Daemon:
    engine = SyncEngine(adapter, Settings(), store)
    return Daemon(
        engine,
        ScheduleSettings(interval_minutes=60, jitter_seconds=0),
        Metrics("memory"),
        Health(max_age_seconds=3600),
    )


def test_a_run_is_skipped_while_another_process_holds_the_lease(store):
    adapter = MemoryAdapter(contacts(3))
    first = daemon(store, adapter)
    assert store.acquire_lock(first.lock_name, "other-host:1:abc", 600, time.time())
    assert first.sync_once() is None
    assert adapter.write_calls() == 0
    assert first.health.last_status == "skipped"
    store.release_lock(first.lock_name, "other-host:1:abc")
    summary = first.sync_once()
    assert summary is not None and summary.status == "ok"
    assert store.acquire_lock(first.lock_name, "other-host:1:abc", 600, time.time()), "released"


def test_the_daemon_waits_when_another_process_applied_other_rules(store, caplog):
    """The daemon read its configuration at start; an admin changed the rules and ran
    `sync --once`, and the daemon's next run put its own rules back: stages and hand-offs of
    the one run stayed under rules the daemon no longer applied."""
    adapter = MemoryAdapter(contacts(3))
    runner = daemon(store, adapter)
    assert runner.sync_once().status == "ok"
    other = Settings(rules={"thresholds": {"mql": 45}})
    assert SyncEngine(adapter, other, store).run(RunOptions(now=NOW)).status == "ok"
    writes = adapter.write_calls()

    assert runner.sync_once() is None
    assert adapter.write_calls() == writes, "nothing undone"
    assert runner.health.last_status == "paused" and runner.health.report()[0] == 503
    assert runner.metrics.registry.get_sample_value("crmq_errors_total", {"kind": "paused"}) == 1
    assert "restart the daemon with the configuration that should hold" in caplog.text
    restarted = Daemon(
        SyncEngine(adapter, other, store), ScheduleSettings(interval_minutes=60, jitter_seconds=0)
    )
    assert restarted.sync_once().status == "ok", "started with the rules that hold"


def test_an_expired_lease_of_a_dead_process_is_taken_over(store):
    adapter = MemoryAdapter(contacts(2))
    runner = daemon(store, adapter)
    store.acquire_lock(runner.lock_name, "dead-host:9:xyz", 1, time.time() - 10)
    assert runner.sync_once().status == "ok"


def test_stop_mid_run_checkpoints_and_a_restart_duplicates_no_task(store):
    adapter = MemoryAdapter(contacts(9), batch_size=3)
    runner = daemon(store, adapter)
    runner._forward = lambda report: runner.engine.stop.set()  # SIGTERM during the 1st batch
    summary = runner.sync_once()
    assert summary.status == "interrupted"
    assert summary.counts["read"] == 3
    tasks_after_stop = len(adapter.tasks)

    restarted = daemon(store, adapter)
    assert restarted.sync_once().status == "ok"
    keys = [task.key for task in adapter.tasks.values()]
    assert len(keys) == len(set(keys)), "no task twice"
    assert len(adapter.tasks) > tasks_after_stop
    assert restarted.sync_once().counts["tasks_created"] == 0


def test_scheduled_runs_never_overlap(store):
    adapter = MemoryAdapter(contacts(6), batch_size=2)
    active, overlaps = [0], []

    def slow_batch(report):
        active[0] += 1
        overlaps.append(active[0])
        time.sleep(0.05)
        active[0] -= 1

    runner = daemon(store, adapter)
    runner._forward = slow_batch
    runner.schedule = ScheduleSettings(interval_minutes=0.001, jitter_seconds=0)
    runner.start()
    time.sleep(1.0)
    assert runner.stop(timeout=10)
    assert overlaps and max(overlaps) == 1


def test_health_and_metrics_endpoints(store):
    adapter = MemoryAdapter(contacts(4))
    runner = daemon(store, adapter)
    server = serve("127.0.0.1", 0, runner.metrics, runner.health)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        runner.sync_once()
        with urllib.request.urlopen(base + "/healthz") as answer:
            health = json.load(answer)
        assert health["healthy"] and health["last_run_status"] == "ok"
        with urllib.request.urlopen(base + "/metrics") as answer:
            text = answer.read().decode()
        assert 'crmq_runs_total{status="ok"} 1.0' in text
        assert "crmq_contacts_processed_total 4.0" in text
        assert "crmq_tasks_created_total" in text
        assert "crmq_last_success_timestamp_seconds" in text
        runner.health.record("failed")
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(base + "/healthz")
        assert failed.value.code == 503
    finally:
        server.shutdown()


def test_the_daemon_process_serves_health_and_exits_0_on_sigterm(tmp_path):
    """`crm-qualify run` as the container runs it, against the simulator, canary token."""
    canary = "pat-canary-7c1f3e9d"
    with HubSpotSimulator(contacts=300, seed=4, custom_properties=True, token=canary) as sim:
        config = tmp_path / "crm-qualify.toml"
        config.write_text(
            f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
            f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
            "[schedule]\ninterval_minutes = 60\njitter_seconds = 0\n"
            "[server]\nhost = '127.0.0.1'\nport = 0\n[logging]\nlevel = 'DEBUG'\nformat = 'json'\n"
        )
        env = {**os.environ, "CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN": canary}
        process = subprocess.Popen(
            [sys.executable, "-m", "crm_qualify.connector.cli", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines, port = [], None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = process.stderr.readline()
            lines.append(line)
            found = re.search(r"http://127\.0\.0\.1:(\d+)/healthz", line)
            port = port or (found and found.group(1))
            if '"run ok' in line or "run ok" in line:
                break
        assert port, "".join(lines)
        status = None
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as answer:
                status = json.load(answer)["last_run_status"]
            if status:
                break
            time.sleep(0.1)
        assert status == "ok"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err[-2000:]
        everything = "".join(lines) + out + err
        assert canary not in everything
        records = [json.loads(line) for line in everything.splitlines() if line.startswith("{")]
        assert records and all("run_id" in record for record in records)
        assert any(record["run_id"] != "-" for record in records)


def test_sighup_during_a_run_stops_the_daemon_cleanly(tmp_path):
    """A closed terminal or a service manager's reload sends SIGHUP: it killed the daemon
    mid-run (exit 129, the run left `crashed`). It stops as SIGTERM does."""
    with HubSpotSimulator(contacts=300, seed=4, custom_properties=True) as sim:
        config = tmp_path / "crm-qualify.toml"
        config.write_text(
            f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
            f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
            "[schedule]\ninterval_minutes = 60\njitter_seconds = 0\n[server]\nenabled = false\n"
        )
        env = {**os.environ, "CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN": sim.token}
        process = subprocess.Popen(
            [sys.executable, "-m", "crm_qualify.connector.cli", "run", "--config", str(config)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = []
        while line := process.stderr.readline():
            lines.append(line)
            if "run started" in line:
                break
        process.send_signal(signal.SIGHUP)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, "".join(lines) + err[-2000:]
        assert "SIGHUP received: finishing the batch in flight" in err
    store = StateStore(tmp_path / "state.sqlite")
    statuses = [run.status for run in store.runs("default")]
    store.close()
    assert statuses and "crashed" not in statuses and "running" not in statuses, statuses


def test_the_success_gauge_starts_from_the_last_success_the_state_store_records(store):
    """A restarted daemon's `crmq_last_success_timestamp_seconds` started at 0, so an alert on
    `time() - gauge` fired at every start until a run ended."""
    assert store.last_success("default") is None
    ended = {}
    for mode, dry_run, status in [
        ("once", False, "ok"),
        ("scheduled", False, "partial"),
        ("once", True, "ok"),
        ("rollback of x", False, "ok"),
        ("scheduled", False, "failed"),
    ]:
        run_id = store.start_run("default", mode=mode, dry_run=dry_run)
        store.finish_run(run_id, status, {}, [])
        ended[(mode, dry_run, status)] = store.run(run_id).ended_at
    last = store.last_success("default")
    assert last is not None and last.isoformat() == ended[("scheduled", False, "partial")]


def test_the_last_success_is_the_latest_recorded_though_the_clock_was_set_back(store, monkeypatch):
    """The latest end time was a run's made while the clock was 100 days ahead: the daemon
    took it for its last success, and an alert on it stayed quiet for 100 days."""
    ended = []
    for ahead in (100, 0):
        set_state_clock(monkeypatch, timedelta(days=ahead))
        run_id = store.start_run("default", mode="scheduled", dry_run=False)
        store.finish_run(run_id, "ok", {}, [])
        ended.append(store.run(run_id).ended_at)
    last = store.last_success("default")
    assert last is not None and last.isoformat() == ended[-1]


def test_a_crashed_run_shows_what_it_had_written(store):
    """A killed run writes no counts of its own: `runs` showed it '0 written' while its
    acknowledged writes sat in the audit trail, ready for a rollback."""
    dead = store.start_run("default", mode="scheduled", dry_run=False)
    updates = [
        RecordUpdate(
            contact_id=cid,
            changes=[
                FieldUpdate(field="score", old=None, new=50),
                FieldUpdate(field="grade", old=None, new="B1"),
            ],
        )
        for cid in ("1", "2")
    ]
    store.record_writes(dead, "default", updates, "acked")
    store.record_writes(dead, "default", updates[:1], "intended")
    (listed,) = store.runs("default")
    assert listed.status == "running" and listed.counts["fields_written"] == 4, "so far"
    current = store.start_run("default", mode="scheduled", dry_run=False)
    assert store.mark_crashed_runs("default", except_run=current) == [dead]
    crashed = store.run(dead)
    counts = crashed.counts
    assert (counts["records_written"], counts["fields_written"], counts["tasks_created"]) == (
        2,
        4,
        0,
    )
    last_write = max(w.at for w in store.writes_for_run(dead))
    assert crashed.ended_at == last_write, "ended when it last wrote, not when found dead"
    # the next run settles the dead run's write in flight: the crashed run shows it landed
    store.settle_writes(dead, "default", [(updates[0], "acked")], remember=False)
    assert store.runs("default")[1].counts["fields_written"] == 6


def test_a_transient_failure_keeps_the_refusal_a_record_needs_attention_for(store):
    """`errors` showed the old refusal's field with the new transient message (an HTTP 503),
    losing the text the admin acts on."""
    now = datetime.now(UTC)
    refusal = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: bad value"
    store.add_attention("default", [("contact", "8", "cq_score", refusal)], {}, now)
    store.add_retries("default", [("contact", "8", "PATCH contacts: HTTP 503")])
    (record,) = store.attention("default")
    assert (record.field, record.reason) == ("cq_score", refusal)
