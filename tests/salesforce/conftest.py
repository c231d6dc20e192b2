"""A fresh simulated org per test, and the adapter logged in to it over real TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.state import StateStore

from tests.fake_clock import backoff_clock  # noqa: F401  (autouse: backoff waits on a fake clock)


def settings_for(sim: SalesforceSimulator, **options) -> SalesforceSettings:
    return SalesforceSettings(**{**sim.adapter_options(), **options})


def make_adapter(sim: SalesforceSimulator, **options) -> SalesforceAdapter:
    return SalesforceAdapter.from_config(settings_for(sim, **options), load_mapping("salesforce"))


@pytest.fixture
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=300, seed=5) as simulator:
        yield simulator


@pytest.fixture
def adapter(sim) -> SalesforceAdapter:
    return make_adapter(sim, max_attempts=3)


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state.sqlite")
    yield state
    state.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(crm=CrmSettings(adapter="salesforce"))


TASK_KEY = "CRMQ_Task_Key__c"
"""The external id field our tasks carry in the simulated org."""


def crmq_tasks(sim: SalesforceSimulator) -> dict[str, list[str]]:
    """crm-qualify's live tasks (their keys) by the Lead or Contact each is about."""
    found: dict[str, list[str]] = {}
    with sim.org.lock:
        for task in sim.org.live("Task"):
            if task.get(TASK_KEY):
                found.setdefault(task["WhoId"], []).append(task[TASK_KEY])
    return found
