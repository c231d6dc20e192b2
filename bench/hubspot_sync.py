"""Benchmark: a full then an incremental sync of a simulated HubSpot portal.

    python bench/hubspot_sync.py [--contacts 20000] [--touched 2000] [--seed 11]

Scenarios: full, incremental (--touched contacts get new engagement), a rerun, an idle rerun
(nothing changed outside) and a run 30 days later (nothing changed outside: only decay
moves). Each prints its requests against the documented minimum (docs/performance.md,
"HubSpot"), the ratio, and both per endpoint.

Prints contacts per second, API requests per 1,000 contacts, 429s met and peak memory. The
simulator enforces HubSpot's limits (190 requests / 10 s, 5 searches / s); the adapter stays
under its own share (150 / 10 s by default), which bounds the speed as it would in production.
Portals of 20,000+ contacts include an import that stamps more than 10,000 contacts with one
`lastmodifieddate`, the case that makes naive search-based connectors loop.
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.reader import Cursor, _worked_on
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.values import parse_ms
from crm_qualify.connector.contract import ContactBatch
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

BATCH, PAGE, SEARCH, LINKS, INLINE = 100, 100, 200, 1000, 100
"""HubSpot's sizes: batch read / update / create, list page, search page, v4 association
read; links a list-page row carries inline."""
READ_BATCH = 1000
"""Contacts one read batch holds (the engine keeps one batch in memory)."""

V3 = "/crm/v3/objects"
LIST, SEARCH_CONTACTS = f"GET {V3}/contacts", f"POST {V3}/contacts/search"
CONTACT_READ, DEAL_READ, TASK_READ = (
    f"POST {V3}/{t}/batch/read" for t in ("contacts", "deals", "tasks")
)
DEAL_LINKS, TASK_LINKS, SWEEP_LINKS = (
    f"POST /crm/v4/associations/{a}/{b}/batch/read"
    for a, b in (("contacts", "deals"), ("contacts", "tasks"), ("tasks", "contacts"))
)
TASK_SEARCH, PIPELINES = f"POST {V3}/tasks/search", "GET /crm/v3/pipelines/deals"
UPDATE, CREATE = f"POST {V3}/contacts/batch/update", f"POST {V3}/tasks/batch/create"

FORMULA = """\
full (walk of N contacts; D, K: distinct deals and tasks linked to them):
  ceil(N/100) list pages (properties and deal/task links inline)
  + ceil(D/100) deal reads + ceil(K/100) task reads
  + per read batch of <= 1,000 contacts: ceil(L/1,000) v4 link reads per type
    (L: its contacts with more than 100 links of the type)
  + ceil(W/100) batch updates + ceil(C/100) task creates (W records written, C tasks)
  + 1 pipelines read per process + task-ledger search pages on a new state store
incremental (H contact hits in the window, T task hits; R contacts to read, D and K their
distinct deals and tasks):
  max(1, ceil(H/200)) searches + max(1, ceil(T/200)) task searches
  + ceil(P/1,000) task->contact link reads (P: tasks people worked on)
  + per read batch of <= 1,000 of the R contacts: 2 v4 link reads (deals, tasks)
    + ceil(S/100) batch reads (S: its contacts found by the task sweep, not by search)
  + ceil(D/100) deal reads + ceil(K/100) task reads
  + ceil(W/100) batch updates + ceil(C/100) task creates"""


@dataclass
class Reads:
    """What one run's read batches held, noted as each batch is handed to the engine (before
    its writes link new tasks): per contact its deals, tasks and whether search found it."""

    contacts: list[tuple[list[str], list[str], bool]] = field(default_factory=list)

    def chunks(self) -> Iterator[list[tuple[list[str], list[str], bool]]]:
        for start in range(0, len(self.contacts), READ_BATCH):
            yield self.contacts[start : start + READ_BATCH]


def watch_reads(adapter: HubSpotAdapter, sim: HubSpotSimulator) -> list[Reads]:
    """Wraps `read_changed` so each run's reads are noted (one `Reads` per call)."""
    runs: list[Reads] = []
    original = adapter.read_changed

    def read_changed(cursor: str | None, **kwargs: Any) -> Iterator[ContactBatch]:
        reads = Reads()
        runs.append(reads)
        position = Cursor.load(cursor)
        low = None if position is None or position.since is None else position.since
        low = None if low is None else low - adapter.reader.lookback_ms
        for batch in original(cursor, **kwargs):
            keys = [r.key for r in batch.raw] + [e.key for e in batch.errors]
            with sim.store.lock:
                for key in filter(None, keys):
                    stamp = parse_ms(
                        sim.store.objects["contacts"][key[1]]["properties"].get("lastmodifieddate")
                    )
                    reads.contacts.append(
                        (
                            sim.store.associations("contacts", key[1], "deals"),
                            sim.store.associations("contacts", key[1], "tasks"),
                            low is not None and (stamp or 0) >= low,
                        )
                    )
            yield batch

    adapter.read_changed = read_changed  # type: ignore[method-assign]
    return runs


def window(sim: HubSpotSimulator, store: StateStore, adapter: HubSpotAdapter) -> tuple:
    """(contact hits, task hits, tasks people worked on) the next run's searches meet;
    None for a walk."""
    cursor = Cursor.load(store.get_cursor("default", "contacts"))
    if cursor is None or cursor.since is None:
        return None
    low = cursor.since - adapter.reader.lookback_ms
    swept = (cursor.activity if cursor.activity is not None else cursor.since) - (
        adapter.reader.lookback_ms
    )
    key = adapter.task_key_property
    with sim.store.lock:
        contacts = sum(
            1
            for r in sim.store.objects["contacts"].values()
            if not r["archived"] and (parse_ms(r["properties"].get("lastmodifieddate")) or 0) >= low
        )
        tasks = [
            r
            for r in sim.store.objects["tasks"].values()
            if not r["archived"]
            and r["properties"].get(key)
            and (parse_ms(r["properties"].get("hs_lastmodifieddate")) or 0) >= swept
        ]
    return contacts, len(tasks), sum(1 for r in tasks if _worked_on(r))


def minimum(
    sim: HubSpotSimulator,
    hits: tuple | None,
    reads: Reads,
    counts: Counter,
    *,
    first_run: bool,
    pipelines: bool,
) -> Counter[str]:
    """The documented minimum of one run, per endpoint (FORMULA)."""
    floor: Counter[str] = Counter()
    if hits is None:
        live = sum(1 for r in sim.store.objects["contacts"].values() if not r["archived"])
        floor[LIST] = math.ceil(live / PAGE)
    else:
        contact_hits, task_hits, worked = hits
        floor[SEARCH_CONTACTS] = max(1, math.ceil(contact_hits / SEARCH))
        floor[TASK_SEARCH] = max(1, math.ceil(task_hits / SEARCH))
        floor[SWEEP_LINKS] = math.ceil(worked / LINKS)
    deals = {d for linked, _, _ in reads.contacts for d in linked}
    tasks = {t for _, linked, _ in reads.contacts for t in linked}
    floor[DEAL_READ] = math.ceil(len(deals) / BATCH)
    floor[TASK_READ] = math.ceil(len(tasks) / BATCH)
    for chunk in reads.chunks():
        if hits is None:  # links come inline, up to 100 of a type
            floor[DEAL_LINKS] += math.ceil(sum(len(d) > INLINE for d, _, _ in chunk) / LINKS)
            floor[TASK_LINKS] += math.ceil(sum(len(t) > INLINE for _, t, _ in chunk) / LINKS)
        else:
            floor[DEAL_LINKS] += 1
            floor[TASK_LINKS] += 1
            floor[CONTACT_READ] += math.ceil(sum(not hit for _, _, hit in chunk) / BATCH)
    if pipelines and deals:
        floor[PIPELINES] = 1
    if first_run:
        key = "crmq_task_key"
        keyed = sum(1 for t in sim.store.objects["tasks"].values() if t["properties"].get(key))
        floor[TASK_SEARCH] += max(1, math.ceil((keyed - counts["tasks_created"]) / SEARCH))
    floor[UPDATE] = math.ceil(counts["records_written"] / BATCH)
    floor[CREATE] = math.ceil(counts["tasks_created"] / BATCH)
    return +floor


def breakdown(measured: Counter[str], floor: Counter[str]) -> str:
    names = sorted(set(measured) | set(floor), key=lambda n: (-measured[n], n))
    lines = [f"{'':>20}{'endpoint':<56}{'requests':>9}{'minimum':>9}"]
    lines += [f"{'':>20}{n:<56}{measured[n]:>9,}{floor[n]:>9,}" for n in names]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--touched", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    started = time.perf_counter()
    with HubSpotSimulator(contacts=args.contacts, seed=args.seed, custom_properties=True) as sim:
        print(f"seeded {args.contacts:,} contacts in {time.perf_counter() - started:.1f} s")
        settings = HubSpotSettings(access_token=sim.token, base_url=sim.base_url)
        adapter = HubSpotAdapter.from_config(settings, load_mapping("hubspot"))
        sim.stats.reset()
        began, seen = time.perf_counter(), []
        for ids, _ in adapter.reader.changed(Cursor(since=0), datetime.now(UTC)):
            seen += ids
        largest = Counter(
            r["properties"]["lastmodifieddate"] for r in sim.store.objects["contacts"].values()
        ).most_common(1)[0][1]
        print(
            f"search from the epoch: {len(seen):,} ids ({len(set(seen)):,} distinct) in"
            f" {time.perf_counter() - began:.1f} s, {sum(sim.stats.by_endpoint.values())} searches"
            f" (minimum {math.ceil(len(set(seen)) / SEARCH)});"
            f" largest group sharing one lastmodifieddate: {largest:,}"
        )
        print(FORMULA)
        runs = watch_reads(adapter, sim)
        with tempfile.TemporaryDirectory() as folder:
            store = StateStore(Path(folder) / "state.sqlite")
            engine = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="hubspot")), store)
            scenarios = [
                ("full", 0),
                ("incremental", 0),
                ("rerun, nothing new", 0),
                ("idle rerun", 0),
                ("30 days later", 30),
            ]
            pipelines = True
            for number, (name, days) in enumerate(scenarios):
                if name == "incremental":
                    sim.simulate_engagement(args.touched)
                hits = window(sim, store, adapter)
                sim.stats.reset()
                began = time.perf_counter()
                summary = engine.run(RunOptions(now=datetime.now(UTC) + timedelta(days=days)))
                seconds = time.perf_counter() - began
                counts = summary.counts
                measured = Counter(sim.stats.by_endpoint)
                requests = sum(measured.values())
                reads = runs[-1] if runs else Reads()
                floor = minimum(
                    sim, hits, reads, counts, first_run=number == 0, pipelines=pipelines
                )
                pipelines = pipelines and not measured[PIPELINES]
                least = sum(floor.values())
                print(
                    f"{name:>18}: {summary.status}, read {counts['read']:,}, re-decided"
                    f" {counts['redecided']:,} in {seconds:.1f} s, {requests:,} requests"
                    f" (minimum {least:,}, ratio {requests / max(least, 1):.2f}), fields written"
                    f" {counts['fields_written']:,} on {counts['records_written']:,} records,"
                    f" tasks {counts['tasks_created']:,}, 429s {sim.stats.throttled}"
                )
                print(breakdown(measured, floor))
            store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory (simulator included): {peak:,.0f} MB")


if __name__ == "__main__":
    main()
