"""A fresh simulated portal per test, and the adapter pointed at it over a real socket.

Backoffs and rate budgets run on a fake clock (`FakeClock`): time passes only when someone
waits, so retries cost no real time and the folder stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.contract import ContactBatch, RecordError, TranslationError
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import Contact
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.state import StateStore

from tests.fake_clock import FakeClock, backoff_clock  # noqa: F401  (autouse fixture)

FAST = {"rate_limit": 100_000, "search_rate": 10_000}
"""Simulator limits for tests on the fake clock: our budgets no longer pace real time, so
the portal's own limits are out of the way (throttling is tested with injected 429s)."""


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=400, seed=3, custom_properties=True, **FAST) as simulator:
        yield simulator


def make_adapter(sim: HubSpotSimulator, mapping: dict | None = None, **options) -> HubSpotAdapter:
    settings = HubSpotSettings(access_token=sim.token, base_url=sim.base_url, **options)
    clock = FakeClock()
    client = HubSpotClient(settings, clock=clock, sleep=clock.sleep)
    return HubSpotAdapter(settings, mapping or load_mapping("hubspot"), client)


def contact_properties_only() -> dict:
    """The bundled mapping without `[engagement]` and `[companies]`: a contact's facts from
    its own properties alone (its summaries stand in for the engagement objects)."""
    mapping = load_mapping("hubspot")
    del mapping["engagement"], mapping["companies"]
    return mapping


def translate_all(batches: Iterable[ContactBatch]) -> tuple[list[Contact], list[RecordError]]:
    """Contacts and errors of batches, each raw record translated in its own guard, as the
    engine does."""
    contacts: list[Contact] = []
    errors: list[RecordError] = []
    for batch in batches:
        errors += batch.errors
        contacts += batch.contacts
        for item in batch.raw:
            try:
                contacts.append(item.translate())
            except TranslationError as exc:
                errors.append(RecordError(item.record, exc.field, str(exc), key=item.key))
    return contacts, errors


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
