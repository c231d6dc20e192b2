"""A portal that lacks a property crm-qualify writes (never set up, or one deleted since):
HubSpot leaves it out of reads without a word and refuses every write carrying it. The run
stops at the first refusal, naming the properties and the fix; it split every batch down to
each record before (666 requests for 335 contacts, every record an error)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot.endpoints import IN_FLIGHT
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.contract import ConfigError
from crm_qualify.connector.mapping import load_mapping, owned_only
from crm_qualify.connector.model import PlannedTask
from crm_qualify.connector.settings import CrmSettings, FieldPolicy, Settings
from crm_qualify.connector.sync.described import FIT_CHECKED_KEY
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.fingerprints import decision_fingerprint

from tests.hubspot.conftest import FAST, make_adapter

UPDATES = "POST /crm/v3/objects/contacts/batch/update"
CREATES = "POST /crm/v3/objects/tasks/batch/create"


def test_a_portal_never_set_up_stops_the_run_before_it_reads_until_set_up(store, settings):
    """The owned fields' check, before the run reads, finds our properties missing: one
    error naming each mapping key and the fix, nothing read or written."""
    with HubSpotSimulator(contacts=300, seed=3, **FAST) as bare:
        adapter = make_adapter(bare, owned_only(load_mapping("hubspot"), settings.fields))
        engine = SyncEngine(adapter, settings, store)
        run = engine.run(RunOptions())
        assert run.status == "failed"
        (reason,) = run.errors
        missing = reason.split("no such field: ", 1)[1].split(" (fix: ", 1)[0].split(", ")
        assert "objects.contacts.fields.score = crmq_score" in missing
        ours = adapter.owned_fields["contacts"].fields
        lacking = {
            f"objects.contacts.fields.{n} = {f}" for n, f in ours.items() if f != "lifecyclestage"
        }
        assert set(missing) == lacking, "every one the portal lacks, HubSpot's own stage not"
        assert reason.count("crm-qualify setup hubspot") == 1, "one fix for them all"
        sent = bare.stats.by_endpoint[UPDATES] + bare.stats.by_endpoint[CREATES]
        assert sent == 0 and run.counts["read"] == 0, "stopped before reading"
        assert not store.attention("default"), "no record is at fault"

        assert all(r.ok for r in adapter.setup())
        fixed = engine.run(RunOptions())
        assert fixed.status == "ok", fixed.errors
        assert fixed.counts["fields_written"] > 0 and fixed.counts["tasks_created"] > 0


def test_an_owned_property_deleted_after_setup_stops_the_next_run_until_given_up(
    sim, adapter, store, settings
):
    assert SyncEngine(adapter, settings, store).run(RunOptions()).status == "ok"
    del sim.store.definitions["contacts"]["crmq_grade"]
    regraded = Settings(
        crm=CrmSettings(adapter="hubspot"), rules={"grades": {"fit_a": 0, "fit_b": 0}}
    )
    # as if a run had found this configuration's fields fit before the property went: the
    # check (before reading) is not asked again, and the first refused write says it
    store.set_meta("default", FIT_CHECKED_KEY, decision_fingerprint(regraded))
    sim.stats.reset()
    run = SyncEngine(adapter, regraded, store).run(RunOptions())  # grades move: written
    assert run.status == "failed"
    assert "HubSpot has no property crmq_grade (field grade)" in run.errors[0]
    assert run.errors[0].endswith(
        "Fix: run crm-qualify setup hubspot or set [fields.grade] owned = false"
    )
    assert sim.stats.by_endpoint[UPDATES] <= IN_FLIGHT
    assert not store.attention("default")

    fields = {**settings.fields, "grade": FieldPolicy(owned=False)}
    given_up = regraded.model_copy(update={"fields": fields})
    mapping = owned_only(load_mapping("hubspot"), given_up.fields)
    fixed = SyncEngine(make_adapter(sim, mapping), given_up, store).run(RunOptions())
    assert fixed.status == "ok", fixed.errors
    assert fixed.counts["fields_written"] > 0


def hot_calls(sim, count: int) -> list[PlannedTask]:
    """A hot call planned for each of the portal's first `count` contacts."""
    return [
        PlannedTask(
            key=f"crmq:contacts:{contact}:hot_call:2026-W49",
            contact_id=contact,
            kind="hot_call",
            subject="Call",
            due=datetime.now(UTC) + timedelta(days=1),
        )
        for contact in sorted(sim.store.objects["contacts"])[:count]
    ]


def test_a_missing_task_key_property_stops_task_creation_at_the_first_create(sim, adapter):
    del sim.store.definitions["tasks"]["crmq_task_key"]
    tasks = hot_calls(sim, 150)
    held = len(sim.store.objects["tasks"])
    with pytest.raises(ConfigError, match="no property crmq_task_key; .* setup hubspot"):
        adapter.create_tasks(tasks)
    assert sim.stats.by_endpoint[CREATES] == 1, "not split task by task"
    assert len(sim.store.objects["tasks"]) == held


def test_a_task_key_property_deleted_within_a_create_loses_no_acknowledgement(
    sim, adapter, monkeypatch
):
    """`ConfigError` tells the core that none of the call's tasks was created: once one was,
    the refused ones come back refused, each, and the created ones acknowledged."""
    tasks = hot_calls(sim, 150)
    writer, create = adapter.tasks, adapter.tasks._create

    def then_deleted(chunk: list[PlannedTask]) -> dict:
        try:
            return create(chunk)
        finally:
            sim.store.definitions["tasks"].pop("crmq_task_key", None)

    monkeypatch.setattr(writer, "_create", then_deleted)
    results = adapter.create_tasks(tasks)
    assert [r.ok for r in results] == [True] * 100 + [False] * 50
    assert not any(r.uncertain for r in results)
    assert "no property crmq_task_key" in (results[-1].error or "")


def test_tasks_refused_for_a_missing_task_key_property_are_created_right_after_setup(
    sim, adapter, store, settings
):
    """HubSpot created none of them: owed again, not left `pending` for the look-up delay."""
    definition = sim.store.definitions["tasks"].pop("crmq_task_key")
    held = set(sim.store.objects["tasks"])
    run = SyncEngine(adapter, settings, store).run(RunOptions())
    assert run.status == "failed"
    assert "HubSpot has no property crmq_task_key;" in run.errors[0]
    assert "Fix: run crm-qualify setup hubspot" in run.errors[0]
    assert set(sim.store.objects["tasks"]) == held
    assert store.count_tasks("default", "pending") == 0
    owed = store.tasks_in("default", "owed")
    assert owed and store.tasks_in("default", "owed", below_attempts=1) == owed, "no attempt"

    sim.store.definitions["tasks"]["crmq_task_key"] = definition  # what setup creates
    fixed = SyncEngine(adapter, settings, store).run(RunOptions())
    assert fixed.status == "ok", fixed.errors
    assert fixed.counts["tasks_created"] == len(owed)
    keys = [
        task["properties"].get("crmq_task_key")
        for tid, task in sim.store.objects["tasks"].items()
        if tid not in held
    ]
    assert sorted(keys) == sorted(task.key for task in owed), "each once, none left waiting"


def test_an_owned_property_deleted_before_a_configuration_change_stops_it_before_reading(
    sim, adapter, store, settings
):
    """A new configuration is checked before the run reads: a property deleted since is
    named by its mapping key at once, nothing read, nothing written."""
    assert SyncEngine(adapter, settings, store).run(RunOptions()).status == "ok"
    del sim.store.definitions["contacts"]["crmq_grade"]
    regraded = Settings(
        crm=CrmSettings(adapter="hubspot"), rules={"grades": {"fit_a": 0, "fit_b": 0}}
    )
    sim.stats.reset()
    run = SyncEngine(adapter, regraded, store).run(RunOptions())
    assert run.status == "failed" and run.counts["read"] == 0
    assert "objects.contacts.fields.grade = crmq_grade: no such field" in run.errors[0]
    assert "set [fields.grade] owned = false" in run.errors[0]
    assert "`crm-qualify setup hubspot` creates ours" in run.errors[0]
    assert sim.stats.by_endpoint[UPDATES] == 0
