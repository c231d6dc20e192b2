"""The README's main job (`crm-qualify demo`) and `sync --once` as a user runs them."""

from __future__ import annotations

import json

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.cli import main
from crm_qualify.connector.commands.sync import print_diff
from crm_qualify.connector.model import FieldUpdate, RecordUpdate
from crm_qualify.connector.sync.engine import BatchReport


def test_demo_runs_end_to_end_and_prints_a_summary(capsys):
    assert main(["demo", "--contacts", "300", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "full sync: ok" in out
    assert "incremental sync: ok" in out
    assert "hottest leads:" in out
    assert "API use: requests" in out


def _config(tmp_path, sim) -> str:
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
    )
    return str(config)


def test_sync_dry_run_prints_the_diff_as_json_and_writes_nothing(tmp_path, capsys, monkeypatch):
    with HubSpotSimulator(contacts=50, seed=2, custom_properties=True) as sim:
        monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", sim.token)
        config = _config(tmp_path, sim)
        assert main(["sync", "--once", "--dry-run", "--json", "--config", config]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert {row["kind"] for row in rows} >= {"field"}
        assert all(row["record"].startswith("contacts/") for row in rows)
        assert sim.stats.writes == 0

        assert main(["sync", "--once", "--config", config]) == 0
        assert sim.stats.writes > 0
        err = capsys.readouterr().err
        assert ": ok;" in err
        assert sim.token not in err
        assert "limited to" not in err

        assert main(["sync", "--once", "--limit", "5", "--config", config]) == 0
        assert "limited to 5 contacts: a sample" in capsys.readouterr().err


def test_sync_with_a_bad_config_stops_before_any_api_call(tmp_path, capsys):
    with HubSpotSimulator(contacts=5, seed=2) as sim:
        config = _config(tmp_path, sim)
        assert main(["sync", "--once", "--config", config]) == 2
        assert "adapters.hubspot.access_token" in capsys.readouterr().err
        assert sum(sim.stats.by_endpoint.values()) == 0


@pytest.mark.parametrize("command", [["sync", "--once"], ["runs"]])
@pytest.mark.parametrize(("limit", "why"), [("0", "must be 1 or more"), ("x", "not a whole")])
def test_a_limit_below_one_is_a_usage_error(command, limit, why, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--limit", limit])
    assert stopped.value.code == 2 and why in capsys.readouterr().err


def test_sync_waits_its_turn_while_the_daemon_or_a_rollback_holds_the_lease(
    tmp_path, capsys, monkeypatch
):
    import time

    from crm_qualify.connector.sync.state import LEASE_SECONDS, StateStore, sync_lock_name

    with HubSpotSimulator(contacts=20, seed=2, custom_properties=True) as sim:
        monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", sim.token)
        config = _config(tmp_path, sim)
        store = StateStore(tmp_path / "state.sqlite")
        assert store.acquire_lock(sync_lock_name("default"), "daemon-x", LEASE_SECONDS, time.time())
        assert main(["sync", "--once", "--config", config]) == 1
        assert "'daemon-x' holds the sync lease of default until" in capsys.readouterr().err
        assert sim.stats.writes == 0
        assert main(["sync", "--once", "--dry-run", "--config", config]) == 0, "dry runs may"
        store.release_lock(sync_lock_name("default"), "daemon-x")
        store.close()
        assert main(["sync", "--once", "--config", config]) == 0
        assert sim.stats.writes > 0


def test_the_dry_runs_diff_shows_where_two_long_values_differ(capsys):
    """A CRM's number field comes back as 66.0 for the 66 written, and two reasons that share
    their first lines are shown from a little before their first difference, not cut to look
    alike."""
    shared = "+40 demo request 2026-11-25\n+22 quote request 2026-11-20\n"
    report = BatchReport()
    report.updates.append(
        RecordUpdate(
            contact_id="00Q1",
            object_type="Lead",
            changes=[
                FieldUpdate(field="score", old=66.0, new=87),
                FieldUpdate(field="reasons", old=shared + "+14 email reply", new=shared + "+10 x"),
            ],
        )
    )
    print_diff(report, as_json=False)
    score, reasons = capsys.readouterr().out.splitlines()
    assert score.split()[-3:] == ["66", "->", "87"]
    old, new = reasons.split(" -> ")
    assert "+14 email reply" in old and "+10 x" in new


def _moves(err: str, field: str) -> dict[str, int]:
    """The moves a `sync` names under its impact line for `field` ('stages')."""
    line = next((line for line in err.splitlines() if line.startswith(f"  {field}: ")), "")
    moves = {}
    for item in line.removeprefix(f"  {field}: ").split(", ") if line else []:
        move, _, count = item.rpartition(" ")
        moves[move] = int(count.replace(",", ""))
    return moves


def test_a_rules_change_s_dry_run_names_where_stages_and_temperatures_move(
    tmp_path, capsys, monkeypatch
):
    """The impact line's totals (17 stages) do not say whether leads became MQLs or MQLs were
    held back: the moves from where to where are listed under it, the dry run's as planned
    and the real run's as the CRM took them."""
    import re

    with HubSpotSimulator(contacts=150, seed=4, custom_properties=True) as sim:
        monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", sim.token)
        config = _config(tmp_path, sim)
        assert main(["sync", "--once", "--config", config]) == 0
        first = capsys.readouterr().err
        moved = int(re.search(r"moved: ([\d,]+) stage", first)[1].replace(",", ""))
        assert sum(_moves(first, "stages").values()) == moved > 0
        with open(config, "a") as file:
            file.write("[rules.thresholds]\nmql = 25\n")

        assert main(["sync", "--once", "--dry-run", "--config", config]) == 0
        dry = capsys.readouterr().err
        would = int(re.search(r"would move: ([\d,]+) stage", dry)[1].replace(",", ""))
        planned = _moves(dry, "stages")
        assert sum(planned.values()) == would > 0
        assert planned.get("lead -> mql", 0) > 0, planned

        assert main(["sync", "--once", "--config", config]) == 0
        assert _moves(capsys.readouterr().err, "stages") == planned
