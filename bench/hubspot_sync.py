"""Benchmark: a full then an incremental sync of a simulated HubSpot portal.

    python bench/hubspot_sync.py [--contacts 20000] [--touched 2000] [--seed 11]

Prints contacts per second, API requests per 1,000 contacts, 429s met and peak memory. The
simulator enforces HubSpot's limits (190 requests / 10 s, 5 searches / s); the adapter stays
under its own share (150 / 10 s by default), which bounds the speed as it would in production.
Portals of 20,000+ contacts include an import that stamps more than 10,000 contacts with one
`lastmodifieddate`, the case that makes naive search-based connectors loop.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.reader import Cursor
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore


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
            for name in ("full", "incremental", "rerun, nothing new"):
                if name == "incremental":
                    sim.simulate_engagement(args.touched)
                sim.stats.reset()
                began = time.perf_counter()
                summary = engine.run(RunOptions())
                seconds = time.perf_counter() - began
                read = summary.counts["read"]
                requests = sum(sim.stats.by_endpoint.values())
                print(
                    f"{name:>18}: {summary.status}, read {read:,} in {seconds:.1f} s"
                    f" ({read / seconds:,.0f} contacts/s), {requests:,} requests"
                    f" ({1000 * requests / max(read, 1):.1f} per 1,000 contacts),"
                    f" fields written {summary.counts['fields_written']:,},"
                    f" tasks {summary.counts['tasks_created']:,}, 429s {sim.stats.throttled}"
                )
            store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory (simulator included): {peak:,.0f} MB")


if __name__ == "__main__":
    main()
