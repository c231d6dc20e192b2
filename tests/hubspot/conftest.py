"""A fresh simulated portal per test, and the adapter pointed at it over a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.state import StateStore


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=400, seed=3, custom_properties=True) as simulator:
        yield simulator


def make_adapter(sim: HubSpotSimulator, **options) -> HubSpotAdapter:
    settings = HubSpotSettings(access_token=sim.token, base_url=sim.base_url, **options)
    return HubSpotAdapter.from_config(settings, load_mapping("hubspot"))


@pytest.fixture
def adapter(sim: HubSpotSimulator) -> HubSpotAdapter:
    return make_adapter(sim, max_attempts=4)


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state.sqlite")
    yield state
    state.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(crm=CrmSettings(adapter="hubspot"))
