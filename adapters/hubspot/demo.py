"""`crm-qualify demo` against a seeded local HubSpot portal: no credentials, loopback only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.contract import DemoEnvironment


@contextmanager
def demo_environment(contacts: int = 3000, seed: int = 7) -> Iterator[DemoEnvironment]:
    """A portal with the crm-qualify properties already created, as after `crm-qualify setup`."""
    with HubSpotSimulator(contacts=contacts, seed=seed, custom_properties=True) as sim:

        def simulate_day() -> int:
            return len(sim.simulate_engagement(max(1, contacts // 10)))

        def api_usage() -> dict[str, Any]:
            return {
                "requests": sum(sim.stats.by_endpoint.values()),
                "throttled (429)": sim.stats.throttled,
                "burst limit": f"{sim.limits.burst} per 10 s",
                "search limit": f"{sim.limits.search_rate} per s",
                "daily limit": sim.limits.daily,
            }

        yield DemoEnvironment(
            adapter="hubspot",
            options={"access_token": sim.token, "base_url": sim.base_url},
            simulate_day=simulate_day,
            api_usage=api_usage,
        )
