"""The report from the audit trail after a merge in HubSpot: the merged contact carries the
hot-lead call of the contact merged into it (the merge moves every association to it), and the
report follows it there as the engine does, by the person its task key names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.ops.report import build_report, crm_snapshot
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.hubspot.conftest import FAST, make_adapter


@pytest.fixture
def sim():
    """Small: a few hot leads are all the test needs."""
    with HubSpotSimulator(contacts=80, seed=3, custom_properties=True, **FAST) as simulator:
        yield simulator


def test_a_merged_hot_lead_keeps_its_call_and_owner_in_the_report(sim, store, settings):
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    called = build_report(store, "default").hot
    hot = next(lead for lead in called if lead.call_due is not None).record.split("/")[1]
    listed = {lead.record.split("/")[1] for lead in called}
    other = next(c for c in sorted(sim.store.objects["contacts"]) if c not in listed)
    merged = sim.merge_contacts(other, hot)  # re-decided hot: its engagement moved with it
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"

    report = build_report(store, "default")

    crm = build_report(store, "default", crm=crm_snapshot(make_adapter(sim), datetime.now(UTC)))
    [in_crm] = [lead for lead in crm.hot if lead.record == f"contacts/{merged}"]
    assert in_crm.call == "call task open in the CRM"
    [lead] = [lead for lead in report.hot if lead.record == f"contacts/{merged}"]
    assert lead.call == "call task created"
    assert lead.call_due is not None and in_crm.call_due is not None
    assert abs((lead.call_due - in_crm.call_due).total_seconds()) < 5
    assert (lead.owner, lead.name) == (in_crm.owner, in_crm.name)
