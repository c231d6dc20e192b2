"""A 10% random fault mix (every kind) over a full and an incremental sync, on each CRM.

    python bench/faults.py [--contacts 2000] [--rate 0.10] [--crm hubspot salesforce]

For each CRM, two simulated portals are built from the same seed: one is synced cleanly, the
other under random faults (throttles, 5xx, gateway HTML, resets, answers lost after the write,
timeouts after the write, expired sessions...). Both get the same day of engagement between
the full and the incremental sync. The faulty one is re-run until settled (a run ends ok with
no task owed or unknown and no record waiting for a re-read), then compared. Printed per CRM:
faults injected by kind, runs needed to settle, duplicate tasks (must be 0), lost updates
(contacts whose owned values differ from the clean portal's; must be 0), missing tasks, and
the records left needing attention with their reasons.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_qualify.connector.contract import Adapter  # noqa: E402
from crm_qualify.connector.settings import CrmSettings, Settings, SyncSettings  # noqa: E402
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine  # noqa: E402
from crm_qualify.connector.sync.state import TASK_OWED, TASK_PENDING, StateStore  # noqa: E402

from tests.kill_harness import portal_state  # noqa: E402

ANCHOR = date(2026, 3, 2)
FULL_AT = datetime(2026, 3, 2, 12, tzinfo=UTC)
MAX_RUNS = 12


@dataclass
class Portal:
    """One simulated CRM, and what the bench needs to know of it."""

    name: str
    sim: Any
    adapter: Callable[[], Adapter]
    engagement: Callable[[int], None]
    snapshot: Callable[[], tuple[dict[str, tuple], Counter[str]]]
    faults_injected: Callable[[], Counter[str]]
    set_faults: Callable[[float], None]


def hubspot(contacts: int, seed: int) -> Portal:
    from crm_qualify.adapters.hubspot import HubSpotAdapter
    from crm_qualify.adapters.hubspot.settings import HubSpotSettings
    from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
    from crm_qualify.adapters.hubspot.simulator.faults import KINDS
    from crm_qualify.connector.mapping import load_mapping

    sim = HubSpotSimulator(
        contacts=contacts,
        seed=seed,
        anchor=ANCHOR,
        custom_properties=True,
        rate_limit=100_000,
        search_rate=10_000,
    )
    sim.start()

    def adapter() -> Adapter:
        settings = HubSpotSettings(
            access_token=sim.token, base_url=sim.base_url, timeout_seconds=1.0, max_attempts=4
        )
        return HubSpotAdapter.from_config(settings, load_mapping("hubspot"))

    kinds = sorted(KINDS - {"207", "slow", "expire_token"})
    return Portal(
        "hubspot",
        sim,
        adapter,
        lambda n: sim.simulate_engagement(n, seed=seed),
        lambda: portal_state(sim),
        lambda: Counter(sim.faults.injected),
        lambda rate: sim.faults.set_random(rate, kinds, delay=1.5),
    )


def salesforce(contacts: int, seed: int) -> Portal:
    from crm_qualify.adapters.salesforce import SalesforceAdapter
    from crm_qualify.adapters.salesforce.settings import SalesforceSettings
    from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
    from crm_qualify.adapters.salesforce.simulator.faults import RANDOM_KINDS
    from crm_qualify.connector.mapping import load_mapping

    mapping = load_mapping("salesforce")
    sim = SalesforceSimulator(records=contacts, seed=seed, anchor=ANCHOR)
    sim.start()

    def adapter() -> Adapter:
        options = {**sim.adapter_options(), "timeout_seconds": 1.0, "max_attempts": 4}
        return SalesforceAdapter.from_config(SalesforceSettings(**options), mapping)

    return Portal(
        "salesforce",
        sim,
        adapter,
        sim.simulate_engagement,
        lambda: portal_state(sim),
        lambda: Counter(sim.faults.injected),
        lambda rate: sim.faults.set_random(rate, RANDOM_KINDS, delay=1.5),
    )


def settled(store: StateStore) -> bool:
    """Nothing in flight: no task owed or of unknown outcome, no record waiting for a
    transient re-read (records needing attention are reported, not waited for)."""
    attention = {(a.object_type, a.contact_id) for a in store.attention("default")}
    waiting = set(store.retries("default")) - attention
    return not (
        store.tasks_in("default", TASK_PENDING) or store.tasks_in("default", TASK_OWED) or waiting
    )


def sync_until_settled(portal: Portal, state: Path, now: datetime) -> tuple[list[str], list[str]]:
    """Runs until one ends ok with nothing in flight: the statuses, and what needs attention."""
    store = StateStore(state)
    settings = Settings(
        crm=CrmSettings(adapter=portal.name), sync=SyncSettings(lookup_delay_seconds=0)
    )
    statuses: list[str] = []
    try:
        while len(statuses) < MAX_RUNS:
            engine = SyncEngine(portal.adapter(), settings, store)
            statuses.append(engine.run(RunOptions(now=now)).status)
            if statuses[-1] == "ok" and settled(store):
                break
        attention = [
            f"{a.object_type}/{a.contact_id} {a.field or 'record'}: {a.reason}"
            for a in store.attention("default")
        ]
    finally:
        store.close()
    return statuses, attention


def phases(portal: Portal, folder: Path, rate: float, touched: int, later: datetime) -> dict:
    state = folder / f"{portal.name}-{rate}.sqlite"
    portal.set_faults(rate)
    started = time.monotonic()
    full, _ = sync_until_settled(portal, state, FULL_AT)
    portal.set_faults(0.0)
    portal.engagement(touched)
    portal.set_faults(rate)
    incremental, attention = sync_until_settled(portal, state, later)
    portal.set_faults(0.0)
    return {
        "full": full,
        "incremental": incremental,
        "seconds": time.monotonic() - started,
        "attention": attention,
    }


def bench(make: Callable[[int, int], Portal], contacts: int, rate: float, seed: int) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    touched = max(1, contacts // 10)
    with tempfile.TemporaryDirectory() as folder:
        clean, faulty = make(contacts, seed), make(contacts, seed)
        try:
            reference = phases(clean, Path(folder), 0.0, touched, later)
            result = phases(faulty, Path(folder), rate, touched, later)
            want_values, want_tasks = clean.snapshot()
            got_values, got_tasks = faulty.snapshot()
            injected = faulty.faults_injected()
        finally:
            clean.sim.stop()
            faulty.sim.stop()
    lost = sum(1 for oid, values in want_values.items() if got_values.get(oid) != values)
    print(f"== {clean.name}: {contacts} records, {rate:.0%} random faults ==")
    print(f"faults injected: {sum(injected.values())} ({dict(sorted(injected.items()))})")
    print(
        f"runs to settle: full {len(result['full'])} {result['full']},"
        f" incremental {len(result['incremental'])} {result['incremental']}"
        f" (clean: {len(reference['full'])} + {len(reference['incremental'])})"
    )
    print(f"duplicate tasks: {sum(n - 1 for n in got_tasks.values())}")
    print(f"lost updates: {lost}")
    print(
        f"tasks: {sum(got_tasks.values())} vs {sum(want_tasks.values())} clean;"
        f" missing {len(set(want_tasks) - set(got_tasks))},"
        f" extra {len(set(got_tasks) - set(want_tasks))}"
    )
    print(f"records needing attention: {len(result['attention'])}")
    for line in result["attention"][:20]:
        print(f"  {line}")
    print(f"time under faults: {result['seconds']:.1f} s (clean {reference['seconds']:.1f} s)")
    print(flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--crm", nargs="+", default=["hubspot", "salesforce"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="  %(message)s")
    makers = {"hubspot": hubspot, "salesforce": salesforce}
    for name in args.crm:
        bench(makers[name], args.contacts, args.rate, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
