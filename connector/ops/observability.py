"""`/healthz` and `/metrics` for the daemon: what an admin's monitoring scrapes.

Metrics live in their own `CollectorRegistry` (no global state between daemons or tests) and
are fed once per run from the run summary and the adapter's API usage.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from crm_qualify.connector.contract import ApiUsage
from crm_qualify.connector.sync.engine import RunSummary
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

ERROR_COUNTS = {"read_errors": "read", "write_errors": "write", "task_errors": "task"}


class ApiUsageCollector(Collector):
    """The adapter's cumulative API usage, exposed as counters at scrape time (the adapter
    counts; we only publish its latest snapshot)."""

    def __init__(self, crm: str) -> None:
        self.crm = crm
        self.usage = ApiUsage()
        self.lock = threading.Lock()

    def update(self, usage: ApiUsage) -> None:
        with self.lock:
            self.usage = usage

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            usage = self.usage
        requests = CounterMetricFamily(
            "crmq_api_requests", "API requests made by this process.", labels=["crm", "endpoint"]
        )
        for endpoint, count in sorted(usage.requests.items()):
            requests.add_metric([self.crm, endpoint], count)
        yield requests
        throttled = CounterMetricFamily(
            "crmq_api_throttled", "429 answers met by this process.", labels=["crm"]
        )
        throttled.add_metric([self.crm], usage.throttled)
        yield throttled
        if usage.daily_remaining is not None:
            remaining = GaugeMetricFamily(
                "crmq_api_daily_remaining",
                "The CRM's remaining daily API allocation.",
                labels=["crm"],
            )
            remaining.add_metric([self.crm], usage.daily_remaining)
            yield remaining


class Metrics:
    def __init__(self, crm: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("crmq_runs", "Sync runs by final status.", ["status"], registry=r)
        self.contacts = Counter("crmq_contacts_processed", "Contacts scored.", registry=r)
        self.fields = Counter("crmq_fields_written", "CRM fields written.", registry=r)
        self.tasks = Counter("crmq_tasks_created", "Follow-up tasks created.", registry=r)
        self.errors = Counter("crmq_errors", "Errors by kind.", ["kind"], registry=r)
        self.usage = ApiUsageCollector(crm)
        r.register(self.usage)
        self.last_success = Gauge(
            "crmq_last_success_timestamp_seconds", "End of the last successful run.", registry=r
        )
        self.duration = Gauge(
            "crmq_last_run_duration_seconds", "How long the last run took.", registry=r
        )
        self.attention = Gauge(
            "crmq_records_needing_attention",
            "Records whose last error was not transient (crm-qualify errors lists them).",
            registry=r,
        )
        self.owed = Gauge(
            "crmq_tasks_owed",
            "Follow-up tasks a decision owes that the CRM does not have yet.",
            ["state"],
            registry=r,
        )

    def observe(self, summary: RunSummary, usage: ApiUsage, seconds: float) -> None:
        counts = summary.counts
        self.runs.labels(summary.status).inc()
        self.contacts.inc(counts["scored"])
        self.fields.inc(counts["fields_written"])
        # a creation whose answer was lost counts once a later run finds it in the CRM
        self.tasks.inc(counts["tasks_created"] + counts["tasks_recovered"])
        for key, kind in ERROR_COUNTS.items():
            if counts[key]:
                self.errors.labels(kind).inc(counts[key])
        if summary.status in ("failed", "stopped"):
            self.errors.labels("run").inc()
        self.usage.update(usage)
        if summary.status in ("ok", "partial"):
            self.last_success.set_to_current_time()
        self.duration.set(seconds)

    def observe_backlog(self, attention: int, owed: int, pending: int) -> None:
        """After each run: what is still to be settled."""
        self.attention.set(attention)
        self.owed.labels("owed").set(owed)
        self.owed.labels("unknown_outcome").set(pending)

    def observe_usage(self, usage: ApiUsage) -> None:
        """Between batches, so a long first read shows its API use as it goes."""
        self.usage.update(usage)

    def crashed(self, usage: ApiUsage) -> None:
        self.runs.labels("failed").inc()
        self.errors.labels("crash").inc()
        self.usage.update(usage)


UNHEALTHY = frozenset({"failed", "stopped", "paused"})
"""Last statuses that make /healthz answer 503 (`paused`: runs wait for a restart, as
another process decided the contacts with another configuration)."""


@dataclass
class Health:
    """Alive, and how the last run went. Unhealthy when the last run failed or when no run
    succeeded for `max_age_seconds` (a stuck scheduler is as bad as a crash). `last_success`
    starts from the state store's, so `seconds_since_success` stays true across restarts;
    a process up for less than `max_age_seconds` is not judged by it yet (a daemon restarted
    after a long stop would otherwise be unhealthy, and restarted by its orchestrator, before
    its first run could end). With no success in the state store it is None: the time since
    the start would read as a recent success to whoever watches it."""

    max_age_seconds: float
    started: float = field(default_factory=time.time)
    last_status: str | None = None
    last_finished: float | None = None
    last_success: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: str, now: float | None = None) -> None:
        with self.lock:
            self.last_status, self.last_finished = status, now or time.time()
            if status in ("ok", "partial", "interrupted", "skipped"):
                self.last_success = self.last_finished

    def report(self, now: float | None = None) -> tuple[int, dict[str, Any]]:
        now = now or time.time()
        with self.lock:
            age = now - (self.last_success or self.started)
            fresh = now - self.started <= self.max_age_seconds
            on_time = age <= self.max_age_seconds or fresh
            healthy = self.last_status not in UNHEALTHY and on_time
            return (200 if healthy else 503), {
                "alive": True,
                "healthy": healthy,
                "last_run_status": self.last_status,
                "last_run_age_seconds": (
                    None if self.last_finished is None else round(now - self.last_finished, 1)
                ),
                "seconds_since_success": (
                    None if self.last_success is None else round(now - self.last_success, 1)
                ),
            }


def serve(host: str, port: int, metrics: Metrics, health: Health) -> ThreadingHTTPServer:
    """Serve both endpoints on a daemon thread; `server.server_address` has the real port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                code, body = health.report()
                self._send(code, "application/json", json.dumps(body).encode())
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            else:
                self._send(404, "text/plain", b"not found: try /healthz or /metrics\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="crmq-http", daemon=True).start()
    return server
