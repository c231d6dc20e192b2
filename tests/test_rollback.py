"""Rollback restores exactly the prior values in the simulator, and leaves a person's edits."""

from __future__ import annotations

import pytest

from adapters.hubspot.simulator import HubSpotSimulator
from connector.cli import main
from connector.engine import RunOptions, SyncEngine
from connector.rollback import RollbackError, rollback
from connector.settings import CrmSettings, Settings
from tests.hubspot.conftest import make_adapter

OWNED = ("crmq_score", "crmq_temperature", "crmq_reasons", "crmq_grade", "lifecyclestage")


def snapshot(sim) -> dict[str, dict[str, str | None]]:
    return {
        oid: {p: record["properties"].get(p) or None for p in OWNED}
        for oid, record in sim.store.objects["contacts"].items()
    }


@pytest.fixture
def synced(tmp_path):
    from connector.state import StateStore

    with HubSpotSimulator(contacts=120, seed=9, custom_properties=True) as sim:
        before = snapshot(sim)
        adapter = make_adapter(sim)
        store = StateStore(tmp_path / "state.sqlite")
        summary = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="hubspot")), store).run(
            RunOptions()
        )
        assert summary.status == "ok" and summary.counts["tasks_created"] > 0
        yield sim, adapter, store, summary.run_id, before
        store.close()


def test_rollback_restores_prior_values_and_closes_tasks(synced):
    sim, adapter, store, run_id, before = synced
    edited = sorted(sim.store.objects["contacts"])[0]
    sim.touch(edited, {"crmq_grade": "Z9"})
    live_tasks = sum(1 for t in sim.store.objects["tasks"].values() if not t["archived"])

    preview = rollback(adapter, store, "default", run_id, dry_run=True)
    assert preview.restored and sim.stats.writes > 0
    writes_before = sim.stats.writes
    report = rollback(adapter, store, "default", run_id)

    assert not report.errors
    after = snapshot(sim)
    for oid, values in after.items():
        for prop in ("crmq_score", "crmq_temperature", "crmq_reasons"):
            assert values[prop] == before[oid][prop], (oid, prop)
    assert after[edited]["crmq_grade"] == "Z9", "a person's edit is kept"
    assert (f"contacts/{edited}", "grade") in {(r, f) for r, f, _ in report.held}
    stage_held = [why for _, f, why in report.held if f == "stage"]
    assert stage_held and all("never moved backwards" in why for why in stage_held)
    still_live = sum(1 for t in sim.store.objects["tasks"].values() if not t["archived"])
    assert live_tasks - still_live == len(report.tasks_closed) > 0
    assert store.run(report.rollback_run_id).status == "ok"
    assert sim.stats.writes > writes_before

    again = rollback(adapter, store, "default", run_id)
    assert again.restored == [] and again.tasks_closed == []


def test_rollback_of_an_unknown_or_dry_run_is_refused(synced):
    sim, adapter, store, _, _ = synced
    with pytest.raises(RollbackError, match="no run nope"):
        rollback(adapter, store, "default", "nope")
    dry = SyncEngine(adapter, Settings(), store).run(RunOptions(dry_run=True))
    with pytest.raises(RollbackError, match="dry run"):
        rollback(adapter, store, "default", dry.run_id)


def test_runs_and_rollback_commands(tmp_path, capsys, monkeypatch):
    with HubSpotSimulator(contacts=40, seed=9, custom_properties=True) as sim:
        monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", sim.token)
        config = tmp_path / "c.toml"
        config.write_text(
            f"[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
            f"[sync]\nstate_path = '{tmp_path / 's.sqlite'}'\n"
        )
        assert main(["sync", "--once", "--config", str(config)]) == 0
        capsys.readouterr()
        assert main(["runs", "--json", "--config", str(config)]) == 0
        import json

        (run,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert run["status"] == "ok"
        writes = sim.stats.writes
        assert main(["rollback", run["id"], "--dry-run", "--config", str(config)]) == 0
        out = capsys.readouterr()
        assert "would restore" in out.out and sim.stats.writes == writes
        assert main(["rollback", run["id"], "--config", str(config)]) == 0
        assert "recorded as run" in capsys.readouterr().err
        assert main(["runs", "--config", str(config)]) == 0
        assert "rollback of" in capsys.readouterr().out
