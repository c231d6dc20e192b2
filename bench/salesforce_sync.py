"""Benchmark: a full then an incremental sync of a simulated Salesforce org.

    python bench/salesforce_sync.py [--records 10000] [--touched 1000] [--latency-ms 0]

Prints API requests against the minimum the issue sets (ceil(N / 2000) query pages +
engagement queries + ceil(changed / 200) collections), wall time and records per second.
With --latency-ms 250 every request waits as long as a distant org would make it.
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from pathlib import Path

from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore


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
        sim.latency_ms = args.latency_ms
        settings = SalesforceSettings(**sim.adapter_options())
        adapter = SalesforceAdapter.from_config(settings, load_mapping("salesforce"))
        with tempfile.TemporaryDirectory() as folder:
            store = StateStore(Path(folder) / "state.sqlite")
            engine = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="salesforce")), store)
            for name in ("full", "incremental"):
                if name == "incremental":
                    sim.simulate_engagement(args.touched)
                sim.stats.reset()
                began = time.perf_counter()
                summary = engine.run(RunOptions())
                seconds = time.perf_counter() - began
                counts = summary.counts
                endpoints = sim.stats.by_endpoint
                pages = sum(v for k, v in endpoints.items() if k.startswith("GET query"))
                collections = sum(v for k, v in endpoints.items() if "composite" in k)
                minimum = math.ceil(counts["read"] / 2000) + math.ceil(
                    counts["records_written"] / 200
                )
                total = sum(endpoints.values())
                print(
                    f"{name:>12}: {summary.status}, read {counts['read']:,} in {seconds:.1f} s"
                    f" ({counts['read'] / seconds:,.0f} records/s); {total:,} requests ="
                    f" {pages:,} queries (pages + engagement IN-lists) + {collections:,}"
                    f" collections + {total - pages - collections} other"
                    f" ({1000 * total / max(1, counts['read']):.1f} per 1,000 records read);"
                    f" minimum without engagement queries {minimum:,};"
                    f" written {counts['records_written']:,}"
                    f" records, tasks {counts['tasks_created']:,}"
                )
            store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory (simulator included): {peak:,.0f} MB")


if __name__ == "__main__":
    main()
