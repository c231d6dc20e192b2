"""`crm-qualify demo --crm salesforce` against a seeded local org: no credentials needed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.contract import DemoEnvironment


@contextmanager
def demo_environment(contacts: int = 3000, seed: int = 7) -> Iterator[DemoEnvironment]:
    with SalesforceSimulator(records=contacts, seed=seed) as sim:

        def api_usage() -> dict[str, Any]:
            return {
                "requests": sum(sim.stats.by_endpoint.values()),
                "daily allocation used": f"{sim.used} of {sim.daily_limit}",
            }

        yield DemoEnvironment(
            adapter="salesforce",
            options=sim.adapter_options(),
            simulate_day=lambda: len(sim.simulate_engagement(max(1, contacts // 10))),
            api_usage=api_usage,
        )
