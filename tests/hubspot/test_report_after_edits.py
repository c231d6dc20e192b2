"""The default report after a person changed the temperature of a hot lead in HubSpot: the
temperature is kept under `unless_edited`, so the lead is no longer one to call, in the report
(from the audit trail and the mirror) as in what the engine plans."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.cli import main
from crm_qualify.connector.ops.report import build_report, hot_notes
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.hubspot.conftest import FAST, make_adapter


@pytest.fixture
def sim():
    """Small: a few hot leads are all the test needs."""
    with HubSpotSimulator(contacts=80, seed=3, custom_properties=True, **FAST) as simulator:
        yield simulator


@pytest.mark.parametrize("temperature", ["", "cold"], ids=["cleared", "cooled"])
def test_a_hot_lead_whose_temperature_a_person_changed_is_not_one_to_call(
    sim, store, settings, temperature, tmp_path, capsys
):
    """A cleared temperature is a person's value as much as "cold" is: the report listed the
    lead still, as if the CRM held no temperature it could judge by."""
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    before = build_report(store, "default")
    lead = next(lead for lead in before.hot if lead.call_due is not None)
    contact = lead.record.split("/")[1]
    sim.touch(contact, {"crmq_temperature": temperature})

    again = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())
    assert again.status == "ok", again.errors
    held = sim.store.objects["contacts"][contact]["properties"].get("crmq_temperature")
    assert (held or "") == temperature, "kept under unless_edited"

    report = build_report(store, "default")
    assert lead.record not in {hot.record for hot in report.hot}
    assert report.hot_total == before.hot_total - 1
    assert report.hot_changed == before.hot_changed + 1
    assert any("a person changed their temperature" in note for note in hot_notes(report))
    config = tmp_path / "c.toml"
    config.write_text(f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n")
    assert main(["report", "--config", str(config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert lead.record not in {hot["record"] for hot in shown["hot_leads_to_call"]}
    assert shown["hot_changed_since_written"] == report.hot_changed


@pytest.mark.parametrize("temperature", ["", "cold"], ids=["cleared", "cooled"])
def test_no_call_is_planned_again_for_a_lead_whose_temperature_a_person_changed(
    sim, store, settings, temperature
):
    """The episode's call is done and, the re-contact interval later, its next one is due;
    but the temperature the person left (kept) says the lead is not hot: no call."""
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    lead = next(lead for lead in build_report(store, "default").hot if lead.call_due)
    contact = lead.record.split("/")[1]
    sim.touch(contact, {"crmq_temperature": temperature})
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    tasks = [t for t in store.all_tasks("default") if t.contact_id == contact]
    for task in tasks:
        if task.kind == "hot_call" and task.crm_id:
            sim.complete_task(task.crm_id)

    later = datetime.now(UTC) + timedelta(days=8)
    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions(now=later, full=True))
    assert run.status == "ok", run.errors
    assert [t for t in store.all_tasks("default") if t.contact_id == contact] == tasks
