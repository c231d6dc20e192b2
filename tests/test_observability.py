"""/healthz and /metrics: what monitoring sees, over a real socket."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.contract import ApiUsage
from crm_qualify.connector.model import Contact, EngagementEvent, EventType, Origin
from crm_qualify.connector.ops.observability import Health, Metrics, serve
from crm_qualify.connector.ops.scheduler import Daemon
from crm_qualify.connector.settings import ScheduleSettings, Settings
from crm_qualify.connector.sync.engine import RunSummary, SyncEngine
from crm_qualify.connector.sync.state import StateStore
from prometheus_client.parser import text_string_to_metric_families

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
def endpoint():
    metrics, health = Metrics("memory"), Health(max_age_seconds=3600)
    server = serve("127.0.0.1", 0, metrics, health)
    yield f"http://127.0.0.1:{server.server_address[1]}", metrics, health
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_a_run_its_errors_and_the_crm_api_use(endpoint, tmp_path):
    base, metrics, health = endpoint
    adapter = MemoryAdapter(contacts(5), batch_size=2)
    adapter.fail_write_ids = {"c1"}
    store = StateStore(tmp_path / "state.sqlite")
    engine = SyncEngine(adapter, Settings(), store)
    daemon = Daemon(engine, ScheduleSettings(jitter_seconds=0), metrics, health)
    summary = daemon.sync_once()
    store.close()
    assert summary.status == "partial"

    status, content_type, text = get(base + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    found = samples(text)
    assert found[("crmq_runs_total", (("status", "partial"),))] == 1
    assert found[("crmq_contacts_processed_total", ())] == 5
    assert found[("crmq_fields_written_total", ())] == summary.counts["fields_written"] > 0
    assert found[("crmq_tasks_created_total", ())] == summary.counts["tasks_created"] > 0
    assert found[("crmq_errors_total", (("kind", "write"),))] == 1
    requests = {
        labels: value
        for (name, labels), value in found.items()
        if name == "crmq_api_requests_total"
    }
    assert requests[(("crm", "memory"), ("endpoint", "read_changed"))] == 1
    # a first sync decides from the mirror once all is read: 5 records, one request
    assert requests[(("crm", "memory"), ("endpoint", "write_updates"))] == 1
    assert found[("crmq_api_throttled_total", (("crm", "memory"),))] == 0
    assert not any(name == "crmq_api_daily_remaining" for name, _ in found), "unknown: absent"
    assert found[("crmq_last_success_timestamp_seconds", ())] > 0
    assert found[("crmq_last_run_duration_seconds", ())] >= 0


def test_tasks_found_after_an_unknown_outcome_count_as_created(endpoint):
    """A creation whose answer was lost is created once the next run finds it in the CRM:
    `crmq_tasks_created_total` stayed at 0 through a portal's 39 such tasks."""
    base, metrics, _ = endpoint
    counts = {"tasks_created": 1, "tasks_uncertain": 2}
    metrics.observe(RunSummary("r1", "ok", False, Counter(counts)), ApiUsage(), 1.0)
    settled = RunSummary("r2", "ok", False, Counter({"tasks_recovered": 2}))
    metrics.observe(settled, ApiUsage(), 1.0)
    assert samples(get(base + "/metrics")[2])[("crmq_tasks_created_total", ())] == 3


def test_api_usage_and_budget_show_while_a_run_is_still_going(endpoint):
    base, metrics, _ = endpoint
    metrics.observe_usage(ApiUsage({"POST search": 40}, throttled=2, daily_remaining=1234))
    found = samples(get(base + "/metrics")[2])
    assert (
        found[("crmq_api_requests_total", (("crm", "memory"), ("endpoint", "POST search")))] == 40
    )
    assert found[("crmq_api_throttled_total", (("crm", "memory"),))] == 2
    assert found[("crmq_api_daily_remaining", (("crm", "memory"),))] == 1234
    assert ("crmq_last_success_timestamp_seconds", ()) in found
    assert found[("crmq_last_success_timestamp_seconds", ())] == 0, "no run succeeded yet"


def test_a_crash_counts_as_a_failed_run(endpoint):
    base, metrics, _ = endpoint
    metrics.crashed(ApiUsage())
    found = samples(get(base + "/metrics")[2])
    assert found[("crmq_runs_total", (("status", "failed"),))] == 1
    assert found[("crmq_errors_total", (("kind", "crash"),))] == 1


def test_healthz_follows_the_last_run(endpoint):
    base, _, health = endpoint
    status, content_type, body = get(base + "/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {
        "alive": True,
        "healthy": True,
        "last_run_status": None,
        "last_run_age_seconds": None,
        "seconds_since_success": None,
    }
    for status_name, code in [("ok", 200), ("failed", 503), ("skipped", 200), ("stopped", 503)]:
        health.record(status_name)
        status, _, body = get(base + "/healthz")
        assert status == code, status_name
        assert json.loads(body)["last_run_status"] == status_name
        assert json.loads(body)["alive"] is True


def test_health_turns_503_when_no_run_succeeded_for_too_long():
    health = Health(max_age_seconds=600, started=1_000.0)
    assert health.report(now=1_500.0)[0] == 200, "a fresh daemon is given time"
    code, body = health.report(now=1_700.0)
    assert code == 503, "nothing succeeded since the start"
    assert body["seconds_since_success"] is None, "no success to count from, not the uptime"
    health.record("ok", now=1_650.0)
    code, body = health.report(now=1_700.0)
    assert code == 200 and body["last_run_age_seconds"] == 50
    code, body = health.report(now=2_300.0)
    assert code == 503 and body["seconds_since_success"] == 650 and body["healthy"] is False


def test_other_paths_are_404_with_a_hint(endpoint):
    base, _, _ = endpoint
    status, _, body = get(base + "/")
    assert status == 404 and "/healthz" in body
    assert get(base + "/healthz?verbose=1")[0] == 200


def test_health_counts_from_the_stored_success_across_a_restart():
    """A restarted daemon said `seconds_since_success: 10.8` (its uptime) though the last
    success was minutes before; a daemon killed mid-run over and over never turned 503."""
    health = Health(max_age_seconds=600, started=10_000.0, last_success=9_000.0)
    code, body = health.report(now=10_010.0)
    assert body["seconds_since_success"] == 1_010
    assert code == 200, "up for 10 s after a long stop: given time for its first run"
    code, body = health.report(now=10_700.0)
    assert (code, body["seconds_since_success"]) == (503, 1_700), "up for longer: judged"
