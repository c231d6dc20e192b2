"""Benchmark: a full then an incremental sync of a simulated HubSpot portal.

    python bench/hubspot_sync.py [--contacts 20000] [--touched 2000] [--seed 11]

Scenarios: full, incremental (--touched contacts get new engagement), a rerun, an idle rerun
(nothing changed outside) and a run 30 days later (nothing changed outside: only decay
moves). The last two print their requests against the floor and its formula.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.reader import Cursor
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.values import parse_ms
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

FORMULA = (
    "max(1, ceil(contact hits / 200)) searches + max(1, ceil(task hits / 200)) task searches"
    " + ceil(records written / 100) batch updates + ceil(tasks created / 100) creates"
)
"""The floor when no contact needs a batch read: the changed-record search pages (our own
writes of the last run are hits too, within the lookback), the task sweep's pages, and the
writes at HubSpot's batch size. Hits are counted in the simulator before the run."""


def window_hits(sim: HubSpotSimulator, store: StateStore, adapter: HubSpotAdapter) -> tuple:
    """(contact hits, task hits) the next incremental run's searches will meet."""
    cursor = Cursor.load(store.get_cursor("default", "contacts"))
    if cursor is None or cursor.since is None:
        return (0, 0)
    low = cursor.since - adapter.reader.lookback_ms
    key = adapter.task_key_property
    with sim.store.lock:
        contacts = sum(
            1
            for r in sim.store.objects["contacts"].values()
            if (parse_ms(r["properties"].get("lastmodifieddate")) or 0) >= low
        )
        tasks = sum(
            1
            for r in sim.store.objects["tasks"].values()
            if r["properties"].get(key)
            and (parse_ms(r["properties"].get("hs_lastmodifieddate")) or 0) >= low
        )
    return contacts, tasks


def minimum(hits: tuple, counts: Counter) -> int:
    contacts, tasks = hits
    return (
        max(1, math.ceil(contacts / 200))
        + max(1, math.ceil(tasks / 200))
        + math.ceil(counts["records_written"] / 100)
        + math.ceil(counts["tasks_created"] / 100)
    )


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
            f" {time.perf_counter() - began:.1f} s, {sum(sim.stats.by_endpoint.values())} searches;"
            f" largest group sharing one lastmodifieddate: {largest:,}"
        )
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
            for name, days in scenarios:
                if name == "incremental":
                    sim.simulate_engagement(args.touched)
                hits = window_hits(sim, store, adapter)
                sim.stats.reset()
                began = time.perf_counter()
                summary = engine.run(RunOptions(now=datetime.now(UTC) + timedelta(days=days)))
                seconds = time.perf_counter() - began
                counts = summary.counts
                read = counts["read"]
                requests = sum(sim.stats.by_endpoint.values())
                print(
                    f"{name:>18}: {summary.status}, read {read:,}, re-decided"
                    f" {counts['redecided']:,} in {seconds:.1f} s, {requests:,} requests,"
                    f" fields written {counts['fields_written']:,} on"
                    f" {counts['records_written']:,} records,"
                    f" tasks {counts['tasks_created']:,}, 429s {sim.stats.throttled}"
                )
                if name in ("idle rerun", "30 days later"):
                    floor = minimum(hits, counts)
                    print(
                        f"{'':>18}  minimum {floor:,} = {FORMULA}; ratio {requests / floor:.2f};"
                        f" by endpoint: {dict(sim.stats.by_endpoint)}"
                    )
            store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory (simulator included): {peak:,.0f} MB")


if __name__ == "__main__":
    main()
