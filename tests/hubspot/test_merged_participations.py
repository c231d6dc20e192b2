"""Marketing event participations of a merged contact: HubSpot's breakdown keeps a
participation under the contact id it was recorded for, and whether a merge moves it to the
merged contact's new id is not documented, so the adapter reads the participations of every
id in the contact's `hs_merged_object_ids` too (one participation per event, the latest)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.values import DAY_MS, now_ms
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.hubspot.conftest import FAST, make_adapter


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    """A small portal: each test syncs it in full."""
    with HubSpotSimulator(contacts=30, seed=3, custom_properties=True, **FAST) as simulator:
        yield simulator


def sync(sim: HubSpotSimulator, settings: Settings, store: StateStore) -> None:
    """A run a moment after the changes the test made (the portal stamps milliseconds)."""
    later = datetime.now(UTC) + timedelta(milliseconds=5)
    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions(now=later))
    assert run.status == "ok", run.errors


def person(sim: HubSpotSimulator, email: str) -> str:
    with sim.store.lock:
        props = {"email": email, "firstname": "Noor", "lifecyclestage": "lead"}
        return sim.store.create("contacts", props, now_ms())["id"]


def reasons(sim: HubSpotSimulator, contact_id: str) -> str:
    return sim.store.objects["contacts"][contact_id]["properties"].get("crmq_reasons") or ""


def test_a_merge_keeps_the_merged_away_records_webinar_attendance(sim, store, settings):
    primary = person(sim, "noor.haddad@fabrikam-labs.com")
    secondary = person(sim, "noor@haddad-consulting.com")
    now = now_ms()
    sim.record_participation("Spring Launch", primary, "REGISTERED", at=now - 3 * DAY_MS)
    sim.record_participation("Q4 Roadmap", secondary, "ATTENDED", at=now - 2 * DAY_MS)
    sync(sim, settings, store)
    assert "webinar attended" in reasons(sim, secondary)

    merged = sim.merge_contacts(primary, secondary)
    sync(sim, settings, store)

    found = reasons(sim, merged)
    assert "webinar registered" in found, "the primary's own participation"
    assert "webinar attended" in found, "the merged-away record's participation"


def test_an_event_both_records_took_part_in_counts_once_as_the_latest(sim, store, settings):
    primary = person(sim, "ines.moreau@contoso-analytics.com")
    secondary = person(sim, "ines@moreau-studio.fr")
    now = now_ms()
    sim.record_participation("Data Summit", primary, "REGISTERED", at=now - 3 * DAY_MS)
    sim.record_participation("Data Summit", secondary, "ATTENDED", at=now - 2 * DAY_MS)
    sync(sim, settings, store)

    merged = sim.merge_contacts(primary, secondary)
    sync(sim, settings, store)

    found = reasons(sim, merged)
    assert "webinar attended" in found
    assert "webinar registered" not in found, "one participation per event, as for one contact"
