"""Benchmark: a full sync of a simulated Salesforce org through REST and through Bulk API 2.0.

    python bench/salesforce_bulk.py [--records 10000 100000] [--bulk-delay 0.5]

For each size and each path, a fresh org is served by `crm-qualify simulate salesforce` in
its own process (as a user would start it), and a full sync runs in another process of its
own (a new state store: everyone is read, scored and written), so the connector's peak
resident memory is its own. Prints, side by side: API calls (every request counts against
the org's daily allocation, Bulk ones included), Bulk jobs, wall time and the connector's
peak RSS, at the end and once half the records were read (the two close together: memory
flat in the org's size). REST is `bulk_threshold = 0`; Bulk is the default (2,000).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_simulator(records: int, bulk_delay: float) -> tuple[subprocess.Popen, dict]:
    """`crm-qualify simulate salesforce` on a free port; the options it prints."""
    command = [
        "crm-qualify", "simulate", "salesforce", "--port", str(free_port()),
        "--records", str(records), "--daily-limit", str(10**9),
        "--bulk-delay", str(bulk_delay),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    options: dict = {}
    assert process.stdout is not None
    for line in process.stdout:
        found = re.match(r'^(\w+) = (".*"|\[.*\])$', line.strip())
        if found:
            options[found.group(1)] = json.loads(found.group(2))
        if "security_token" in options:
            return process, options
    raise RuntimeError("the simulator stopped before printing its settings")


def peak_mb() -> int:
    """This process's resident memory high-water mark (MB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def sync(options: dict, threshold: int, records: int) -> dict:
    """One full sync in this process: calls, Bulk jobs, seconds, peak RSS (MB) in all and
    once `records` / 2 were read."""
    from crm_qualify.adapters.salesforce import SalesforceAdapter
    from crm_qualify.adapters.salesforce.settings import SalesforceSettings
    from crm_qualify.connector.mapping import load_mapping
    from crm_qualify.connector.settings import CrmSettings, Settings
    from crm_qualify.connector.sync.engine import BatchReport, RunOptions, SyncEngine
    from crm_qualify.connector.sync.state import StateStore

    settings = SalesforceSettings(**options, bulk_threshold=threshold)
    adapter = SalesforceAdapter.from_config(settings, load_mapping("salesforce"))
    with tempfile.TemporaryDirectory() as folder:
        store = StateStore(Path(folder) / "state.sqlite")
        read, half = [0], {}

        def on_batch(report: BatchReport) -> None:
            read[0] += report.read
            if read[0] >= records / 2:
                half.setdefault("rss_mb", peak_mb())

        core = Settings(crm=CrmSettings(adapter="salesforce"))
        engine = SyncEngine(adapter, core, store, on_batch=on_batch)
        began = time.perf_counter()
        summary = engine.run(RunOptions(full=True))
        seconds = time.perf_counter() - began
        store.close()
    requests = adapter.usage().requests
    return {
        "status": summary.status,
        "read": summary.counts["read"],
        "written": summary.counts["records_written"],
        "tasks": summary.counts["tasks_created"],
        "errors": summary.counts["write_errors"] + summary.counts["read_errors"],
        "calls": sum(requests.values()),
        "bulk_calls": sum(n for what, n in requests.items() if "jobs/" in what),
        "jobs": dict(adapter.bulk_api.jobs),
        "seconds": round(seconds, 1),
        "rss_mb": peak_mb(),
        "rss_half_mb": half.get("rss_mb"),
    }


def measure(records: int, path: str, bulk_delay: float) -> dict:
    simulator, options = start_simulator(records, bulk_delay)
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--child", path, json.dumps(options), str(records)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
    finally:
        simulator.terminate()
        simulator.wait()
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--bulk-delay", type=float, default=0.5)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from crm_qualify.connector.ops.allocator import tune_malloc

        tune_malloc()  # as `crm-qualify` does first
        path, options, records = args.child
        threshold = 0 if path == "rest" else 2000
        print(json.dumps(sync(json.loads(options), threshold, int(records))))
        return
    table = [
        "| records | path | calls | of which Bulk | jobs (query/ingest) | wall s | connector RSS MB"
        " | RSS MB at half read | read | written | tasks | errors |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for records in args.records:
        for path in ("rest", "bulk"):
            found = measure(records, path, args.bulk_delay)
            jobs = found["jobs"]
            print(f"{records:,} {path}: {found}", flush=True)
            table.append(
                f"| {records:,} | {path} | {found['calls']:,} | {found['bulk_calls']:,} |"
                f" {jobs.get('query', 0)}/{jobs.get('ingest', 0)} | {found['seconds']} |"
                f" {found['rss_mb']} | {found['rss_half_mb']} | {found['read']:,} |"
                f" {found['written']:,} |"
                f" {found['tasks']:,} | {found['errors']} |"
            )
    print("\n".join(table))


if __name__ == "__main__":
    main()
