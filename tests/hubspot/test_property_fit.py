"""A mapping that points an owned field at an existing property that cannot hold what
crm-qualify writes (an enumeration without our values, a read-only property, a number
property for text): doctor and setup name each with its fix, and the sync stops before any
write with one configuration error, where every record's write was refused apart."""

from __future__ import annotations

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.cli import main
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

MISFITS = (
    "objects.contacts.fields.temperature = crmq_temperature: enumeration with options a, b, c;"
    " crm-qualify writes one of cold, warm, hot (cold, warm, hot: no option)",
    "objects.contacts.fields.grade = crmq_grade: string, read-only; crm-qualify writes one of A1",
    "objects.contacts.fields.reasons = crmq_reasons: number; crm-qualify writes text",
)
FIXES = (
    "fix: add the option(s) cold, warm, hot to crmq_temperature, change"
    " [objects.contacts.temperatures], map temperature to another field, or set"
    " [fields.temperature] owned = false",
    "fix: map grade to a field crm-qualify can write, or set [fields.grade] owned = false",
    "fix: map reasons to a text field, or set [fields.reasons] owned = false",
)


def misfit(sim: HubSpotSimulator) -> None:
    """Three properties of the portal's own, under the names the mapping points at."""
    contacts = sim.store.definitions["contacts"]
    contacts["crmq_temperature"]["options"] = [
        {"label": v.upper(), "value": v, "displayOrder": i, "hidden": False}
        for i, v in enumerate("abc")
    ]
    contacts["crmq_grade"]["modificationMetadata"]["readOnlyValue"] = True
    contacts["crmq_reasons"].update(type="number", fieldType="number")


@pytest.fixture
def config(tmp_path, monkeypatch, sim) -> str:
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", sim.token)
    path = tmp_path / "crm-qualify.toml"
    path.write_text(
        f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
    )
    return str(path)


def test_doctor_setup_and_sync_name_each_misfit_and_the_sync_writes_nothing(sim, config, capsys):
    misfit(sim)
    assert main(["doctor", "--config", config]) == 1
    out = capsys.readouterr().out
    for line, fix in zip(MISFITS, FIXES, strict=True):
        assert f"[FAIL] {line}" in out and fix in out

    assert main(["setup", "hubspot", "--config", config]) == 1
    out = capsys.readouterr().out
    assert all(f"[FAIL] {line}" in out for line in MISFITS)

    sim.stats.reset()
    assert main(["sync", "--once", "--config", config]) != 0
    err = capsys.readouterr().err
    assert (
        "ConfigError: mapped field(s) the CRM lacks or that cannot hold what crm-qualify writes"
        in err
    )
    assert all(line in err for line in MISFITS)
    assert sim.stats.writes == 0, "stopped before any write"
    assert main(["sync", "--once", "--dry-run", "--config", config]) != 0
    assert sim.stats.writes == 0


def test_a_misfit_the_configuration_gives_up_no_longer_stops_the_sync(sim, config, capsys):
    misfit(sim)
    with open(config, "a") as toml:
        toml.write("[fields.temperature]\nowned = false\n[fields.grade]\nowned = false\n")
        toml.write("[fields.reasons]\nowned = false\n")
    assert main(["doctor", "--config", config]) == 0, capsys.readouterr().out
    assert main(["sync", "--once", "--config", config]) == 0
    assert sim.stats.writes > 0


def test_each_record_is_no_longer_refused_apart(sim, adapter, store, settings):
    misfit(sim)
    run = SyncEngine(adapter, settings, store).run(RunOptions())
    assert run.status == "failed" and len(run.errors) == 1
    assert sim.stats.writes == 0 and not store.attention(settings.crm.instance)
