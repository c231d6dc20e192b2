"""Rollback restores exactly the prior values (memory CRM and the HubSpot simulator), leaves a
person's edits, closes the run's tasks, is recorded as a run, and changes nothing when re-run."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import requests
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.cli import main
from crm_qualify.connector.contract import AdapterError, TaskResult
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.model import Contact, EngagementEvent, EventType, Origin, Stage
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.concurrency import Limits, Traffic
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.rollback import RollbackError, rollback
from crm_qualify.connector.sync.state import TASK_CLOSED, StateStore, sync_lock_name

from tests.fake_clock import set_state_clock
from tests.hubspot.conftest import FAST, make_adapter
from tests.memory_adapter import MemoryAdapter

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
OWNED = ("crmq_score", "crmq_temperature", "crmq_reasons", "crmq_grade", "lifecyclestage")


def hot(contact_id: str, **owned) -> Contact:
    events = [
        EngagementEvent(type=EventType.WEBINAR_ATTENDED, at=NOW - timedelta(days=2)),
        EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(days=1)),
    ]
    return Contact(
        id=contact_id,
        title="IT Director",
        owner_id="owner-7",
        origin=Origin.INBOUND,
        stage=Stage.LEAD,
        updated_at=NOW - timedelta(days=1),
        events=events,
        owned={"stage": "lead", **owned},
    )


@pytest.fixture
def memory(tmp_path):
    """Three contacts (one with values from an older scoring tool) synced once."""
    adapter = MemoryAdapter(
        [hot("a"), hot("b", score=12, grade="D4", temperature="cold"), hot("c", reasons="old")]
    )
    before = {cid: dict(record.owned) for cid, record in adapter.records.items()}
    store = StateStore(tmp_path / "state.sqlite")
    summary = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
    assert summary.status == "ok" and summary.counts["tasks_created"] > 0
    yield adapter, store, summary.run_id, before
    store.close()


def test_memory_rollback_restores_exactly_the_prior_values(memory):
    adapter, store, run_id, before = memory
    assert adapter.records["b"].owned["score"] != 12
    report = rollback(adapter, store, "default", run_id)
    assert report.status == "ok" and not report.errors
    for cid, values in before.items():
        owned = adapter.records[cid].owned
        for name in ("score", "grade", "temperature", "reasons", "fit_score", "rules_version"):
            assert owned.get(name) == values.get(name), (cid, name)
    stage_notes = {(record, why) for record, name, why in report.held if name == "stage"}
    assert {record for record, _ in stage_notes} == {"contact/a", "contact/b", "contact/c"}
    assert all("'mql' to 'lead'" in why for _, why in stage_notes)
    assert adapter.records["a"].owned["stage"] == "mql", "a stage never moves backwards"


def test_memory_rollback_keeps_a_persons_edit_and_removes_the_calls(memory):
    adapter, store, run_id, _ = memory
    adapter.human_edit("a", grade="Z9")
    adapter.human_edit("b", temperature="")
    calls = {t.crm_id for t in store.tasks_for_run(run_id) if t.kind == "hot_call"}
    report = rollback(adapter, store, "default", run_id)
    assert adapter.records["a"].owned["grade"] == "Z9"
    held = {(record, name): why for record, name, why in report.held}
    assert "a person's value is kept" in held[("contact/a", "grade")]
    assert "now empty" in held[("contact/b", "temperature")]
    assert adapter.records["b"].owned["score"] == 12, "the other fields are restored"
    assert adapter.records["a"].owned.get("score") is None
    assert adapter.closed_tasks == calls and len(report.tasks_closed) == len(calls) == 3
    statuses = {(t.kind, t.status) for t in store.tasks_for_run(run_id)}
    assert statuses == {("hot_call", TASK_CLOSED), ("mql_handoff", "created")}


def test_memory_rollback_never_lowers_the_highest_stage(memory):
    adapter, store, run_id, _ = memory
    report = rollback(adapter, store, "default", run_id)
    held = {(record, name): why for record, name, why in report.held}
    assert "the highest stage never goes down" in held[("contact/a", "highest_stage")]
    for record in adapter.records.values():
        assert record.owned["stage"] == record.owned["highest_stage"] == "mql"


def test_memory_rollback_keeps_a_task_a_person_completed_or_changed_since(memory):
    adapter, store, run_id, _ = memory
    created = sorted(t.crm_id for t in store.tasks_for_run(run_id) if t.kind == "hot_call")
    done, noted = created[:2]
    adapter.completed_tasks.add(done)
    adapter.edit_task(noted)
    report = rollback(adapter, store, "default", run_id)
    assert adapter.closed_tasks == set(created[2:])
    held = {name: why for _, name, why in report.held if name.startswith("task ")}
    assert held[f"task {done}"] == "completed since the run: kept"
    assert held[f"task {noted}"] == "changed in the CRM since the run: kept"


def test_memory_rollback_keeps_a_task_a_person_rescheduled_within_a_minute(memory):
    """Rescheduled 52 s after its creation, inside the minute a CRM's own stamps are allowed
    (`EDIT_GRACE`), the task was taken as untouched and removed."""
    adapter, store, run_id, _ = memory
    call = sorted(t.crm_id for t in store.tasks_for_run(run_id) if t.kind == "hot_call")[0]
    task = adapter.tasks[call]
    adapter.tasks[call] = replace(task, due=task.due + timedelta(days=2))
    report = rollback(adapter, store, "default", run_id)
    assert call not in adapter.closed_tasks
    held = {name: why for _, name, why in report.held if name.startswith("task ")}
    assert held[f"task {call}"] == "changed in the CRM since the run: kept"


def test_memory_rollback_leaves_a_task_a_person_deleted_uncounted(memory):
    """A task a salesperson had deleted was 'closed' and counted, in the rollback's output and
    as 'removed by crm-qualify' in the report."""
    adapter, store, run_id, _ = memory
    created = sorted(t.crm_id for t in store.tasks_for_run(run_id) if t.kind == "hot_call")
    deleted = created[0]
    del adapter.tasks[deleted]
    report = rollback(adapter, store, "default", run_id)
    assert deleted not in adapter.closed_tasks and report.counts["tasks"] == len(created) - 1
    held = {name: why for _, name, why in report.held if name.startswith("task ")}
    assert held[f"task {deleted}"] == (
        "no longer on its record (deleted or moved in the CRM): left alone"
    )
    closed = {t.crm_id for t in store.tasks_for_run(run_id) if t.status == TASK_CLOSED}
    assert closed == set(created[1:])


def test_memory_rollback_tells_a_later_runs_value_from_a_persons(memory):
    adapter, store, run_id, _ = memory
    later = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(days=60)))
    assert later.counts["fields_written"] > 0
    adapter.human_edit("c", grade="Z9")
    report = rollback(adapter, store, "default", run_id)
    held = {(record, name): why for record, name, why in report.held}
    assert f"a later run ({later.run_id}) decided this record again" in held[("contact/a", "score")]
    assert adapter.records["a"].owned["score"] is not None, "the later run's value stays"
    assert adapter.records["c"].owned["grade"] == "Z9", "a person's value stays"


def test_memory_rollback_never_mixes_a_later_runs_decision_with_the_one_before(memory):
    """A later run rewrote score and reasons of a record; the rollback kept those and put
    back the record's rules_version, engagement score and grade: score 34 with the new
    rules' reasons beside the old rules' version and engagement."""
    adapter, store, run_id, _ = memory
    adapter.records["a"].events.append(
        EngagementEvent(type=EventType.MEETING_BOOKED, at=NOW + timedelta(minutes=5))
    )
    adapter.records["a"].updated_at = NOW + timedelta(minutes=5)
    later = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(minutes=10)))
    assert {w.contact_id for w in store.writes_for_run(later.run_id)} == {"a"}
    decided = dict(adapter.records["a"].owned)
    report = rollback(adapter, store, "default", run_id)
    assert adapter.records["a"].owned == decided, "the later run's decision stays whole"
    held = {name: why for record, name, why in report.held if record == "contact/a"}
    fields = {name: why for name, why in held.items() if not name.startswith("task ")}
    assert fields and all(f"a later run ({later.run_id}) decided" in w for w in fields.values())
    assert {u.contact_id for u in report.written} == {"b", "c"}


def test_memory_after_the_later_run_is_rolled_back_the_earlier_one_can_be(memory):
    """ "Roll that run back first" could not be satisfied: the rolled-back later run's writes
    still counted, and the earlier run's rollback restored nothing."""
    adapter, store, run_id, before = memory
    adapter.records["a"].events.append(
        EngagementEvent(type=EventType.MEETING_BOOKED, at=NOW + timedelta(minutes=5))
    )
    adapter.records["a"].updated_at = NOW + timedelta(minutes=5)
    later = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(minutes=10)))
    assert rollback(adapter, store, "default", later.run_id).status == "ok"
    report = rollback(adapter, store, "default", run_id)
    assert "a" in {u.contact_id for u in report.written}
    assert adapter.records["a"].owned.get("score") == before["a"].get("score")


def test_memory_rollback_keeps_the_same_value_a_later_run_wrote_again(memory):
    """A person cleared a score; the next run wrote it again, the very value the rolled-back
    run had written. The value alone looked like that run's, and the rollback emptied it."""
    adapter, store, run_id, _ = memory
    written = adapter.records["a"].owned["score"]
    adapter.human_edit("a", score=None)
    later = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(minutes=10)))
    assert later.counts["fields_written"] > 0 and adapter.records["a"].owned["score"] == written
    report = rollback(adapter, store, "default", run_id)
    held = {(record, name): why for record, name, why in report.held}
    assert f"a later run ({later.run_id}) decided this record again" in held[("contact/a", "score")]
    assert adapter.records["a"].owned["score"] == written, "the later run's value stays"


def test_memory_rollback_is_a_run_in_the_audit_trail_and_rerunning_changes_nothing(memory):
    adapter, store, run_id, _ = memory
    preview = rollback(adapter, store, "default", run_id, dry_run=True)
    assert adapter.calls.get("write_updates") == 1 and "close_tasks" not in adapter.calls
    assert preview.rollback_run_id is None and preview.counts["fields"] > 0

    report = rollback(adapter, store, "default", run_id)
    assert report.counts == preview.counts
    recorded = store.run(report.rollback_run_id)
    assert recorded.mode == f"rollback of {run_id}" and recorded.status == "ok"
    assert recorded.counts["fields_written"] == report.counts["fields"]
    trail = store.writes_for_run(report.rollback_run_id)
    assert len(trail) == report.counts["fields"]
    assert {(w.contact_id, w.field, w.new) for w in trail} >= {("b", "score", 12)}

    writes, closes = adapter.calls["write_updates"], adapter.calls["close_tasks"]
    again = rollback(adapter, store, "default", run_id)
    assert again.restored == [] and again.tasks_to_close == []
    assert again.earlier_rollbacks == [report.rollback_run_id]
    assert adapter.calls["write_updates"] == writes and adapter.calls["close_tasks"] == closes


def test_earlier_rollbacks_are_named_as_recorded_though_the_clock_was_set_back(memory, monkeypatch):
    adapter, store, run_id, _ = memory
    set_state_clock(monkeypatch, timedelta(days=100))
    first = rollback(adapter, store, "default", run_id)
    set_state_clock(monkeypatch, timedelta(0))
    second = rollback(adapter, store, "default", run_id)
    third = rollback(adapter, store, "default", run_id, dry_run=True)
    assert third.earlier_rollbacks == [first.rollback_run_id, second.rollback_run_id]


def test_memory_rollback_waits_for_a_running_sync(memory):
    adapter, store, run_id, _ = memory
    assert store.acquire_lock(sync_lock_name("default"), "daemon", 600, 0.0)
    with pytest.raises(RollbackError, match="holds the sync lease of default"):
        rollback(adapter, store, "default", run_id, clock=lambda: 1.0)
    preview = rollback(adapter, store, "default", run_id, dry_run=True, clock=lambda: 1.0)
    assert preview.counts["fields"] > 0, "a dry run writes nothing, so it needs no lease"
    assert adapter.calls.get("write_updates") == 1
    store.release_lock(sync_lock_name("default"), "daemon")
    assert rollback(adapter, store, "default", run_id).status == "ok"
    assert store.acquire_lock(sync_lock_name("default"), "daemon", 600, 0.0), "lease released"


def test_memory_rollback_failing_part_way_is_recorded_and_resumes(memory, monkeypatch):
    adapter, store, run_id, before = memory
    adapter.fail_write_ids = {"b"}
    first = rollback(adapter, store, "default", run_id)
    assert first.status == "partial" and any(
        e.startswith("contact/b: write:") for e in first.errors
    )
    assert store.run(first.rollback_run_id).status == "partial"

    adapter.fail_write_ids = set()
    calls = adapter.calls["write_updates"]

    def unreachable(updates):
        raise AdapterError("HubSpot answered 503 three times")

    monkeypatch.setattr(adapter, "write_updates", unreachable)
    broken = rollback(adapter, store, "default", run_id)
    assert broken.status == "failed" and store.run(broken.rollback_run_id).status == "failed"
    assert "503" in store.run(broken.rollback_run_id).errors[0]

    monkeypatch.undo()
    resumed = rollback(adapter, store, "default", run_id)
    assert resumed.status == "ok" and [u.contact_id for u in resumed.restored] == ["b"]
    assert adapter.calls["write_updates"] == calls + 1
    assert adapter.records["b"].owned["score"] == before["b"]["score"]


@pytest.mark.parametrize("cursor_sees_our_writes", [True, False], ids=["hubspot", "salesforce"])
def test_memory_after_a_rollback_the_next_runs_decide_from_what_it_left(
    memory, cursor_sees_our_writes
):
    """The mirror holds what the rollback restored and removed. HubSpot's search returns the
    rollback's writes (known as ours by their stamps: no read); Salesforce's incremental
    query leaves out the integration user's changes (modelled here by stamps the cursor has
    passed). Either way the next run decides the restored records again and writes them as
    the rules say (the rollback's own note), calls the contacts it finds hot again in a new
    episode, and never escalates a removed call."""
    adapter, store, run_id, _ = memory
    report = rollback(adapter, store, "default", run_id)
    restored = sum(len(update.changes) for update in report.restored)
    assert restored and len(report.tasks_closed) == 3
    if not cursor_sees_our_writes:
        for record in adapter.records.values():
            record.updated_at = NOW - timedelta(days=1)

    engine = SyncEngine(adapter, Settings(), store)
    after = engine.run(RunOptions(now=NOW + timedelta(minutes=15)))
    assert after.counts["read"] == 0 and after.counts["redecided"] == 3
    assert after.counts["fields_written"] == restored
    calls = {t.key for t in adapter.tasks.values() if t.kind == "hot_call"}
    assert after.counts["tasks_created"] == 3 and not calls & set(report.tasks_closed)
    assert adapter.records["a"].owned["score"] is not None

    later = engine.run(RunOptions(now=NOW + timedelta(days=3)))
    assert later.status == "ok" and later.counts["tasks_created"] > 0
    escalated = {t.key.removesuffix(":escalation") for t in adapter.tasks.values()}
    assert not escalated & set(report.tasks_closed), "a removed call is never escalated"


def snapshot(sim) -> dict[str, dict[str, str | None]]:
    return {
        oid: {p: record["properties"].get(p) or None for p in OWNED}
        for oid, record in sim.store.objects["contacts"].items()
    }


@pytest.fixture
def synced(tmp_path):
    # FAST: make_adapter's budgets run on a fake clock, so the portal's own real-time limits
    # would throttle it (a 429 and a second's wait in the dry run)
    with HubSpotSimulator(contacts=120, seed=9, custom_properties=True, **FAST) as sim:
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
    assert stage_held and all("never moves backwards" in why for why in stage_held)
    still_live = sum(1 for t in sim.store.objects["tasks"].values() if not t["archived"])
    assert live_tasks - still_live == len(report.tasks_closed) > 0
    assert store.run(report.rollback_run_id).status == "ok"
    assert sim.stats.writes > writes_before

    again = rollback(adapter, store, "default", run_id)
    assert again.restored == [] and again.tasks_closed == []


def test_a_record_deleted_since_the_run_is_left_alone_not_an_error(synced):
    sim, adapter, store, run_id, _ = synced
    deleted = sorted(sim.store.objects["contacts"])[1]
    answer = requests.delete(
        f"{sim.base_url}/crm/v3/objects/contacts/{deleted}",
        headers={"Authorization": f"Bearer {sim.token}"},
        timeout=10,
    )
    assert answer.status_code == 204

    report = rollback(adapter, store, "default", run_id)
    assert report.status == "ok" and not report.errors
    held = {why for record, _, why in report.held if record == f"contacts/{deleted}"}
    assert held == {"no longer in the CRM (deleted or merged)"}
    assert all(update.contact_id != deleted for update in report.restored)


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


def test_the_rollback_prints_only_what_the_crm_acknowledged_and_how_to_finish(capsys):
    """Under lock faults a rollback printed 'restored:' for records Salesforce refused
    (UNABLE_TO_LOCK_ROW) and counted them in its tally; only `runs` said otherwise."""
    from crm_qualify.connector.commands.runs import print_rollback
    from crm_qualify.connector.model import FieldUpdate, RecordUpdate
    from crm_qualify.connector.sync.rollback import RollbackReport

    def update(cid: str) -> RecordUpdate:
        return RecordUpdate(contact_id=cid, changes=[FieldUpdate(field="score", old=70, new=12)])

    report = RollbackReport("run-1", rollback_run_id="run-2", status="partial")
    report.restored = [update("a"), update("b")]
    report.written = [update("a")]
    report.errors = ["contact/b: write: UNABLE_TO_LOCK_ROW: unable to obtain exclusive access"]
    print_rollback(report, dry_run=False)
    out, err = capsys.readouterr()
    assert out.splitlines() == ["restored: contact/a score: '70' -> '12'"]
    assert "1 fields on 1 records restored" in err
    assert "run `crm-qualify rollback run-1` again" in err


def open_follow_ups(adapter: MemoryAdapter) -> set[tuple[str, str]]:
    """(record, kind) of the open tasks of ours the CRM holds."""
    return {
        (task.contact_id, task.kind)
        for crm_id, task in adapter.tasks.items()
        if crm_id not in adapter.closed_tasks and crm_id not in adapter.completed_tasks
    }


def test_memory_rollback_keeps_the_hand_off_of_a_stage_it_leaves_in_place(memory):
    """A run moved contacts lead -> MQL and handed them over; its rollback removed the
    hand-offs but kept the stages (a stage never moves backwards), and no later run planned a
    hand-off for a record already at MQL: MQLs with no hand-off, for good."""
    adapter, store, run_id, _ = memory
    report = rollback(adapter, store, "default", run_id)
    held = {(record, name): why for record, name, why in report.held}
    handoffs = [t for t in store.tasks_for_run(run_id) if t.kind == "mql_handoff"]
    assert len(handoffs) == 3
    for task in handoffs:
        why = held[(f"contact/{task.contact_id}", f"task {task.crm_id}")]
        assert "hands over stage 'mql', which stays" in why
    assert {(cid, "mql_handoff") for cid in "abc"} <= open_follow_ups(adapter)
    for at in (NOW + timedelta(minutes=15), NOW + timedelta(days=1)):
        SyncEngine(adapter, Settings(), store).run(RunOptions(now=at))
        assert {(cid, "mql_handoff") for cid in "abc"} <= open_follow_ups(adapter)
    assert all(record.owned["stage"] == "mql" for record in adapter.records.values())


def test_memory_a_hot_call_the_rollback_removed_is_made_again_when_the_contact_is_hot_again(
    memory,
):
    """The rollback put the temperature back and removed the hot-lead calls; the next run,
    same rules, found the contacts hot again in the same episode, and the calls' keys were
    taken: hot leads with no call."""
    adapter, store, run_id, _ = memory
    report = rollback(adapter, store, "default", run_id)
    removed = {t.key for t in store.tasks_for_run(run_id) if t.kind == "hot_call"}
    assert set(report.tasks_closed) == removed and len(removed) == 3
    assert not any(kind == "hot_call" for _, kind in open_follow_ups(adapter))
    assert adapter.records["b"].owned["temperature"] == "cold"
    after = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(minutes=15)))
    assert after.counts["tasks_created"] == 3
    assert {(cid, "hot_call") for cid in "abc"} <= open_follow_ups(adapter)


@pytest.mark.parametrize("task_batch", [None, 100])
def test_memory_a_contact_hot_again_in_the_minute_of_its_removed_call_is_called(memory, task_batch):
    """A call key names its episode's start to the minute: a sync right after the rollback,
    in the same minute, started the new episode under the removed call's key, which was
    never planned again, and the hot leads got no call. `task_batch`: tasks held to fill a
    call (HubSpot's 100), as owed in the ledger first."""
    adapter, store, run_id, _ = memory
    if task_batch:
        adapter.traffic = Traffic(Limits(task_batch=task_batch))
    report = rollback(adapter, store, "default", run_id)
    removed = {t.key for t in store.tasks_for_run(run_id) if t.kind == "hot_call"}
    assert set(report.tasks_closed) == removed
    after = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(seconds=20)))
    assert after.counts["tasks_created"] == 3, after.counts
    assert {(cid, "hot_call") for cid in "abc"} <= open_follow_ups(adapter)
    again = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(seconds=40)))
    assert again.counts["tasks_created"] == 0, "created once"
    assert len([t for t in adapter.tasks.values() if t.kind == "hot_call"]) == 3


def test_memory_a_person_of_several_records_hot_again_after_a_rollback_gets_a_new_call(tmp_path):
    """One person held by two records (the same mailbox): the rollback removed its call and
    ended the episode on the record holding it only; the next run took the person's episode
    from the other record, still the old one, and created the removed key again."""
    kim = {"first_name": "Kim", "last_name": "Lee"}
    a = hot("a").model_copy(update={"email": "kim@acme.com", **kim})
    b = hot("b").model_copy(update={"email": "KIM@acme.com", **kim})
    adapter = MemoryAdapter([a, b])
    store = StateStore(tmp_path / "state.sqlite")
    run = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW))
    (call,) = [t for t in store.tasks_for_run(run.run_id) if t.kind == "hot_call"]
    report = rollback(adapter, store, "default", run.run_id)
    assert report.tasks_closed == [call.key]
    assert {record.owned.get("temperature") for record in adapter.records.values()} == {None}

    later = NOW + timedelta(minutes=7)
    after = SyncEngine(adapter, Settings(), store).run(RunOptions(now=later))
    calls = [t.key for t in adapter.tasks.values() if t.kind == "hot_call"]
    assert after.counts["tasks_created"] == 1
    assert calls == [f"crmq:contact:a:hot_call:{later:%Y%m%dT%H%M}"], "a new episode's call"
    store.close()


def test_memory_rollback_keeps_a_hot_call_while_the_contact_stays_hot(memory):
    """A later run wrote the temperature too, so the rollback leaves it hot: the call that
    serves it stays (removed, its key would never be planned again in this episode)."""
    adapter, store, run_id, _ = memory
    adapter.human_edit("a", temperature="warm")
    always = Settings.model_validate({"fields": {"temperature": {"policy": "always"}}})
    SyncEngine(adapter, always, store).run(RunOptions(now=NOW + timedelta(minutes=10)))
    assert adapter.records["a"].owned["temperature"] == "hot"
    report = rollback(adapter, store, "default", run_id)
    calls = store.tasks_for_run(run_id)
    call = next(t for t in calls if t.kind == "hot_call" and t.contact_id == "a")
    held = {(record, name): why for record, name, why in report.held}
    assert "the contact stays hot" in held[("contact/a", f"task {call.crm_id}")]
    assert ("a", "hot_call") in open_follow_ups(adapter)


@pytest.mark.parametrize("cursor_sees_our_writes", [True, False], ids=["hubspot", "salesforce"])
def test_memory_the_mirror_takes_the_persons_value_a_rollback_kept(memory, cursor_sees_our_writes):
    """A person set the score after the run; the rollback kept it and wrote the record's other
    fields, so the next incremental read skipped the record as our own change, and the mirror
    never took the person's value: the next run's audit said the score it replaced was the
    rolled-back run's, and a rollback of that run would have put that back."""
    adapter, store, run_id, _ = memory
    adapter.human_edit("b", score=99)
    report = rollback(adapter, store, "default", run_id)
    held = {(record, name): why for record, name, why in report.held}
    assert "a person's value is kept" in held[("contact/b", "score")]
    assert any(u.contact_id == "b" for u in report.written)
    mirrored = store.mirror.by_keys("default", [("contact", "b")])[("contact", "b")].contact
    assert mirrored.owned["score"] == 99
    if not cursor_sees_our_writes:
        for record in adapter.records.values():
            record.updated_at = NOW - timedelta(days=1)

    after = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(minutes=15)))
    assert after.counts["read"] == 0
    trail = store.writes_for_run(after.run_id)
    (score,) = [w for w in trail if (w.contact_id, w.field) == ("b", "score")]
    assert score.old == 99 and adapter.records["b"].owned["score"] == score.new
    again = rollback(adapter, store, "default", after.run_id)
    assert again.status == "ok" and adapter.records["b"].owned["score"] == 99


def test_the_rollback_says_it_removes_tasks_as_both_crms_do(memory, capsys):
    """`rollback --help` and its tally said the run's tasks were closed; HubSpot archives them,
    Salesforce deletes them: no CRM keeps them as closed tasks."""
    from crm_qualify.connector.commands.runs import print_rollback

    adapter, store, run_id, _ = memory
    preview = rollback(adapter, store, "default", run_id, dry_run=True)
    print_rollback(preview, dry_run=True)
    out, err = capsys.readouterr()
    assert "3 tasks to remove" in err
    calls = [t for t in preview.tasks_to_close if t.kind == "hot_call"]  # each named
    listed = [line for line in out.splitlines() if line.startswith("would remove: ")]
    assert len(listed) == 3 and all(f"task {t.crm_id} (hot_call" in out for t in calls)
    report = rollback(adapter, store, "default", run_id)
    print_rollback(report, dry_run=False)
    out, err = capsys.readouterr()
    assert "3 tasks removed" in err and "closed" not in err
    assert "kept: it hands over stage 'mql'" in out
    assert len([line for line in out.splitlines() if line.startswith("removed: ")]) == 3
    with pytest.raises(SystemExit):
        main(["rollback", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "Remove the tasks it created" in shown and "close" not in shown
    assert "HubSpot archives them, Salesforce deletes them" in shown


def test_memory_rollback_keeps_an_escalation_while_its_follow_up_is_open(memory):
    """Removed, the escalation of a follow-up still open and overdue would never be created
    again: its key is that follow-up's, created once."""
    adapter, store, _, _ = memory
    later = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW + timedelta(days=3)))
    escalations = [t for t in store.tasks_for_run(later.run_id) if t.kind == "escalation"]
    assert escalations
    report = rollback(adapter, store, "default", later.run_id)
    held = {name: why for _, name, why in report.held}
    for task in escalations:
        assert held[f"task {task.crm_id}"] == "kept: the follow-up it escalates is still open"
    assert not set(report.tasks_closed) & {t.key for t in escalations}


def test_memory_rollback_removes_the_tasks_of_creates_whose_answer_never_came(tmp_path):
    """A run killed in its task creation (or whose answer was lost) leaves them pending; a
    rollback before a sync settled them removed none. It waits for the look-up delay, then
    asks the CRM and removes those it finds, as it removes the run's other calls."""

    class LostAnswer(MemoryAdapter):
        def create_tasks(self, tasks):
            super().create_tasks(tasks)
            return [TaskResult(t.key, False, error="timeout", uncertain=True) for t in tasks]

    adapter = LostAnswer([hot("a"), hot("b")])
    store = StateStore(tmp_path / "state.sqlite")
    run_id = SyncEngine(adapter, Settings(), store).run(RunOptions(now=NOW)).run_id
    calls = {crm_id for crm_id, task in adapter.tasks.items() if task.kind == "hot_call"}
    assert len(calls) == 2 and {t.status for t in store.tasks_for_run(run_id)} == {"pending"}

    with pytest.raises(RollbackError, match="sent and never answered"):
        rollback(adapter, store, "default", run_id, lookup_delay=timedelta(minutes=2))
    assert adapter.records["a"].owned["temperature"] == "hot", "nothing restored meanwhile"

    report = rollback(adapter, store, "default", run_id, lookup_delay=timedelta(0))
    assert adapter.closed_tasks == calls and len(report.tasks_closed) == 2
    statuses = {(t.kind, t.status) for t in store.tasks_for_run(run_id)}
    assert statuses == {("hot_call", TASK_CLOSED), ("mql_handoff", "created")}
    store.close()


def test_runs_counts_a_dead_runs_creates_of_unknown_outcome(tmp_path):
    """A killed run's counts come from the ledger: its sent, never answered creations are
    shown as of unknown outcome, not as none."""
    store = StateStore(tmp_path / "state.sqlite")
    run_id = store.start_run("default", mode="once", dry_run=False)
    planned = decide(hot("a"), Settings().rules, NOW).tasks
    store.mark_tasks_pending("default", run_id, planned)
    record = store.run(run_id)
    assert record is not None and record.counts["tasks_uncertain"] == len(planned) > 0
    store.close()
