"""Benchmark: Salesforce syncs against a simulated org served by its own process.

    python bench/salesforce_sync.py [--records 10000 100000] [--latency-ms 0 250] [--seed 3]
                                    [--scenarios full "incremental 1%" ...] [--table FILE]

For each size and latency, a new org (the `crm-qualify simulate salesforce` options, in a
child process: bench/harness.py) and a new state store run the scenarios in order: full,
incremental 1% and 10% (that share of people gets new engagement), an idle rerun, a day later
and 30 days later (nothing changed outside: only time moves). Each prints its requests per
kind (as the adapter names them) against the documented minimum (docs/performance.md,
"Salesforce"; FORMULA below), the wall time (Salesforce sets no short-window rate limit, so
there is no rate floor to compare with), the connector's peak RSS and CPU apart from the
org's, and the state store's bytes per person. The closing table adds the naive integration
(one GET and one PATCH per person) as a computed row.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore
from harness import (
    Row,
    Simulator,
    bench_arguments,
    breakdown,
    mapping_for,
    measure,
    naive_line,
    report,
    scenarios,
    store_bytes,
)

PAGE, COLLECTION = 2000, 200
KEY = "CRMQ_Task_Key__c"
SWEPT = ("Task", "Event", "CampaignMember", "OpportunityContactRole", "Opportunity")
CHILDREN = {
    "Lead": (("Task", "WhoId"), ("Event", "WhoId"), ("CampaignMember", "LeadId")),
    "Contact": (
        ("Task", "WhoId"),
        ("Event", "WhoId"),
        ("CampaignMember", "ContactId"),
        ("OpportunityContactRole", "ContactId"),
    ),
}
"""What is read with each person (a child row counts toward the page like its parent)."""

FORMULA = """\
minimum = L + K + sum over Lead, Contact of max(1, ceil((P + C) / 2,000))
          + S + ceil(U / 200) + ceil(T / 200)
  L: 1 login per process; K: on a new state store, max(1, ceil(keyed tasks / 2,000)) ledger pages
  P: people of the object to read (all on a full read; those changed outside since the last
     run on an incremental one), C: their child rows (Tasks, Events, CampaignMembers, and for
     contacts OpportunityContactRoles), which count toward a 2,000-row page like the people
  S: activity sweep of an incremental run: Task, Event, CampaignMember,
     OpportunityContactRole, Opportunity changed since the last run, max(1, ceil(rows / 2,000))
     each
  U: records updated, T: tasks upserted (sObject Collections of 200)"""


def people(sim: Any, since: str | None) -> dict[str, list[str]]:
    """Ids per object of the people a run must read: everyone (`since` None), or those whose
    last change since `since` is not the integration user's."""
    wanted: dict[str, list[str]] = {}
    for sobject in CHILDREN:
        for record in sim.org.live(sobject):
            if record.get("IsConverted"):
                continue
            changed = since is None or (
                record["SystemModstamp"] > since
                and record["LastModifiedById"] != sim.org.integration_user
            )
            if changed:
                wanted.setdefault(sobject, []).append(record["Id"])
    return wanted


def child_rows(sim: Any, sobject: str, ids: list[str]) -> int:
    wanted = set(ids)
    return sum(
        1
        for child, link in CHILDREN[sobject]
        for row in sim.org.live(child)
        if row.get(link) in wanted
    )


def swept(sim: Any, since: str) -> Counter[str]:
    """Rows each sweep query meets (our own open tasks left out, as the sweep leaves them)."""
    rows: Counter[str] = Counter()
    for sobject in SWEPT:
        for row in sim.org.live(sobject):
            ours = sobject == "Task" and row.get(KEY) and not row.get("IsClosed")
            if row["SystemModstamp"] > since and not ours:
                rows[sobject] += 1
    return rows


def minimum_reads(sim: Any, since: str | None, first_run: bool) -> Counter[str]:
    """The reads of one run's documented minimum (FORMULA), by the adapter's name for each
    request, as the org stands before the run; `since`: when the previous run started (None:
    a full read)."""
    floor: Counter[str] = Counter()
    if first_run:
        floor["POST oauth2/token"] = 1
        keyed = sum(1 for task in sim.org.live("Task") if task.get(KEY))
        floor["GET query Task"] += max(1, math.ceil(keyed / PAGE))
    wanted = people(sim, since)
    for sobject in CHILDREN:
        ids = wanted.get(sobject, [])
        rows = len(ids) + child_rows(sim, sobject, ids)
        floor[f"GET query {sobject}"] = max(1, math.ceil(rows / PAGE))
    if since is not None:
        rows = swept(sim, since)
        for sobject in SWEPT:
            floor[f"GET query {sobject}"] += max(1, math.ceil(rows[sobject] / PAGE))
    return floor


def minimum_writes(counts: Counter) -> Counter[str]:
    """The writes of one run's documented minimum: collections of 200 record updates and of
    200 task upserts."""
    floor: Counter[str] = Counter()
    floor["PATCH composite/sobjects"] = math.ceil(counts["records_written"] / COLLECTION)
    floor["PATCH composite/sobjects/Task"] = math.ceil(counts["tasks_created"] / COLLECTION)
    return floor


def minimum(sim: Any, since: str | None, first_run: bool) -> dict[str, int]:
    """`minimum_reads` in the org's process, under its lock."""
    with sim.org.lock:
        return dict(minimum_reads(sim, since, first_run))


def run_size(records: int, latency: float, args: Any) -> list[Row]:
    options = ["--records", str(records), "--seed", str(args.seed), "--latency-ms",
               str(latency), "--daily-limit", str(10**9)]  # fmt: skip
    rows: list[Row] = []
    with Simulator("salesforce", options) as sim:
        settings = SalesforceSettings(**sim.call("info"))
        adapter = SalesforceAdapter.from_config(settings, mapping_for("salesforce", args.core_only))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "state.sqlite"
            store = StateStore(path)
            engine = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="salesforce")), store)
            since: str | None = None
            for number, (name, days, share) in enumerate(scenarios(args.scenarios)):
                if share:
                    sim.call("engage", round(records * share))
                reads = Counter(sim.call("salesforce_sync:minimum", since, number == 0))
                before_usage = Counter(adapter.usage().requests)
                before = sim.call("stats", True)
                run_started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
                summary, wall, cpu, rss = measure(
                    lambda days=days: engine.run(
                        RunOptions(now=datetime.now(UTC) + timedelta(days=days))
                    )
                )
                after = sim.call("stats", True)
                since = run_started
                counts = summary.counts
                floor = +(reads + minimum_writes(counts))
                used = Counter(adapter.usage().requests)
                used.subtract(before_usage)
                measured: Counter[str] = Counter()
                for what, n in (+used).items():
                    measured[what.removesuffix(" (more)")] += n
                row = Row(
                    "Salesforce", records, latency, name, sum(measured.values()),
                    sum(floor.values()), wall, None, rss, cpu, after["cpu"] - before["cpu"],
                    adapter.usage().throttled, counts["records_written"], counts["tasks_created"],
                    store_bytes(path), records, measured, floor,
                )  # fmt: skip
                rows.append(row)
                served = sum(after["by_endpoint"].values())
                print(
                    f"{name} ({records:,} people, {latency:g} ms): {summary.status}, read"
                    f" {counts['read']:,}, re-decided {counts['redecided']:,}; {row.requests:,}"
                    f" requests ({served:,} served by the org), minimum {row.minimum:,}"
                    f" ({row.ratio:.2f}); {wall:.1f} s; fields written"
                    f" {counts['fields_written']:,} on {row.written:,} records, tasks"
                    f" {row.tasks:,}; connector peak RSS {rss:.0f} MB, CPU {cpu:.1f} s; org"
                    f" CPU {row.sim_cpu:.1f} s, peak RSS {after['peak_mb']:.0f} MB; in flight"
                    f" at most {adapter.traffic.peak_in_flight}",
                    flush=True,
                )
                print(breakdown(measured, floor), flush=True)
            store.close()
    return rows


def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0], "records")
    print(FORMULA)
    rows: list[Row] = []
    for records in args.records:
        for latency in args.latency_ms:
            rows += run_size(records, latency, args)
    report(rows, [naive_line("Salesforce", n, None) for n in args.records], args.table)


if __name__ == "__main__":
    main()
