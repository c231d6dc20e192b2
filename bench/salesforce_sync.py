"""Benchmark: full, incremental, idle and 30-days-later syncs of a simulated Salesforce org.

    python bench/salesforce_sync.py [--records 10000] [--touched 1000] [--latency-ms 0]

Scenarios: full (a new state store reads everyone), incremental (--touched people get new
engagement), an idle rerun (nothing changed outside) and a run 30 days later (nothing changed
outside: only decay moves). Each prints its requests against the documented minimum
(docs/performance.md, "Salesforce"; FORMULA below), the ratio, and both per kind of request
as the adapter names them. With --latency-ms 250 every request waits as long as a distant
org would make it.
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

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


def people(sim: SalesforceSimulator, since: str | None) -> dict[str, list[str]]:
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


def child_rows(sim: SalesforceSimulator, sobject: str, ids: list[str]) -> int:
    wanted = set(ids)
    return sum(
        1
        for child, link in CHILDREN[sobject]
        for row in sim.org.live(child)
        if row.get(link) in wanted
    )


def swept(sim: SalesforceSimulator, since: str) -> Counter[str]:
    """Rows each sweep query meets (our own open tasks left out, as the sweep leaves them)."""
    rows: Counter[str] = Counter()
    for sobject in SWEPT:
        for row in sim.org.live(sobject):
            ours = sobject == "Task" and row.get(KEY) and not row.get("IsClosed")
            if row["SystemModstamp"] > since and not ours:
                rows[sobject] += 1
    return rows


def minimum_reads(sim: SalesforceSimulator, since: str | None, *, first_run: bool) -> Counter[str]:
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


def breakdown(measured: Counter[str], floor: Counter[str]) -> str:
    names = sorted(set(measured) | set(floor), key=lambda n: (-measured[n], n))
    lines = [f"{'':>16}| {'request':<36}| {'requests':>8} | {'minimum':>7} |"]
    lines += [f"{'':>16}| {n:<36}| {measured[n]:>8,} | {floor[n]:>7,} |" for n in names]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--touched", type=int, default=1_000)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    with SalesforceSimulator(records=args.records, seed=args.seed, daily_limit=10**9) as sim:
        print(
            f"seeded {args.records:,} leads and contacts in {time.perf_counter() - started:.1f} s"
        )
        print(FORMULA)
        sim.latency_ms = args.latency_ms
        settings = SalesforceSettings(**sim.adapter_options())
        adapter = SalesforceAdapter.from_config(settings, load_mapping("salesforce"))
        scenarios = [("full", 0), ("incremental", 0), ("idle rerun", 0), ("30 days later", 30)]
        table = ["| scenario | requests | minimum | ratio | read | records written | tasks |"]
        table.append("|---|---:|---:|---:|---:|---:|---:|")
        with tempfile.TemporaryDirectory() as folder:
            store = StateStore(Path(folder) / "state.sqlite")
            engine = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="salesforce")), store)
            since: str | None = None
            for number, (name, days) in enumerate(scenarios):
                if name == "incremental":
                    sim.simulate_engagement(args.touched)
                before = Counter(adapter.usage().requests)
                with sim.org.lock:
                    reads = minimum_reads(sim, since, first_run=number == 0)
                sim.stats.reset()
                run_started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
                began = time.perf_counter()
                summary = engine.run(RunOptions(now=datetime.now(UTC) + timedelta(days=days)))
                seconds = time.perf_counter() - began
                counts = summary.counts
                floor = +(reads + minimum_writes(counts))
                since = run_started
                used = Counter(adapter.usage().requests)
                used.subtract(before)
                measured = Counter()
                for what, n in (+used).items():
                    measured[what.removesuffix(" (more)")] += n
                served = sum(sim.stats.by_endpoint.values())
                requests, least = sum(measured.values()), sum(floor.values())
                print(
                    f"{name:>14}: {summary.status}, read {counts['read']:,}, re-decided"
                    f" {counts['redecided']:,} in {seconds:.1f} s; {requests:,} requests"
                    f" ({served:,} served by the org), minimum {least:,},"
                    f" ratio {requests / max(least, 1):.2f}; fields written"
                    f" {counts['fields_written']:,} on {counts['records_written']:,} records,"
                    f" tasks {counts['tasks_created']:,}"
                )
                print(breakdown(measured, floor))
                table.append(
                    f"| {name} | {requests:,} | {least:,} | {requests / max(least, 1):.2f} |"
                    f" {counts['read']:,} | {counts['records_written']:,} |"
                    f" {counts['tasks_created']:,} |"
                )
            store.close()
    print("\n".join(table))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory (simulator included): {peak:,.0f} MB")


if __name__ == "__main__":
    main()
