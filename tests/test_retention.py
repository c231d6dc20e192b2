"""Retention: runs older than `sync.keep_runs_days` go with their audit rows, and exactly what
must stay stays (each field's latest acknowledged write, open intents, running runs, every task
key); a removed run cannot be rolled back; `crm-qualify compact` applies it and shrinks the
file; the daemon applies it at most once a day."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.cli import main
from crm_qualify.connector.model import (
    Contact,
    EngagementEvent,
    EventType,
    FieldUpdate,
    Origin,
    PlannedTask,
    RecordUpdate,
    Stage,
)
from crm_qualify.connector.ops.observability import Health, Metrics
from crm_qualify.connector.ops.scheduler import Daemon
from crm_qualify.connector.settings import ScheduleSettings, Settings
from crm_qualify.connector.sync import retention
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.rollback import RollbackError, rollback
from crm_qualify.connector.sync.state import (
    TASK_CREATED,
    TASK_OWED,
    TASK_PENDING,
    WRITE_ACKED,
    WRITE_FAILED,
    WRITE_NOT_LANDED,
    StateStore,
    sync_lock_name,
)

from tests.memory_adapter import MemoryAdapter

NOW = datetime.now(UTC)
P = "portal"


def update(contact_id: str, **values) -> RecordUpdate:
    changes = [FieldUpdate(field=name, old=None, new=value) for name, value in values.items()]
    return RecordUpdate(contact_id=contact_id, changes=changes)


def task(key: str, contact_id: str = "1") -> PlannedTask:
    return PlannedTask(
        key=key, contact_id=contact_id, kind="hot_call", subject="Call", due=NOW, body="x" * 200
    )


def backdate(store: StateStore, run_id: str, days: float) -> str:
    """Move a run, its audit rows and its tasks `days` into the past; returns its id, which
    names its start as `start_run` does."""
    moment = NOW - timedelta(days=days)
    when = moment.isoformat()
    new_id = moment.strftime("%Y%m%dT%H%M%S") + run_id[15:]
    with store._tx() as conn:
        conn.execute(
            "UPDATE runs SET id = ?, started_at = ?, ended_at = CASE WHEN ended_at IS NULL"
            " THEN NULL ELSE ? END WHERE id = ?",
            (new_id, when, when, run_id),
        )
        conn.execute(
            "UPDATE field_writes SET at = ?, run_id = ? WHERE run_id = ?", (when, new_id, run_id)
        )
        conn.execute(
            "UPDATE tasks SET created_at = ?, run_id = ? WHERE run_id = ?", (when, new_id, run_id)
        )
    return new_id


def write(store: StateStore, run_id: str, outcome: str, *updates: RecordUpdate) -> None:
    """Intend then settle, as the engine does."""
    store.record_intents(run_id, P, list(updates), [])
    if outcome != "intended":
        store.settle_writes(run_id, P, [(u, outcome) for u in updates])


def trail(store: StateStore) -> set[tuple[str, str, str, str, str]]:
    rows = store._query("SELECT run_id, contact_id, field, new, status FROM field_writes")
    return {tuple(row) for row in rows}


def contacts(n: int) -> list[Contact]:
    return [Contact(id=f"c{i}", updated_at=NOW - timedelta(minutes=i)) for i in range(n)]


KEYS = [("contact", str(n)) for n in range(1, 7)]


@pytest.fixture
def aged(tmp_path):
    """Runs of 200, 150 (still running), 120 and 10 days ago, and an old dry run."""
    store = StateStore(tmp_path / "state.sqlite")
    a = store.start_run(P, mode="once", dry_run=False)
    write(store, a, WRITE_ACKED, update("1", score=10, temperature="cold"), update("2", score=20))
    write(store, a, WRITE_FAILED, update("3", score=30))
    store.record_intents(a, P, [], [task("k-created"), task("k-owed"), task("k-pending")])
    store.mark_tasks_pending(P, a, [task("k-created"), task("k-pending")])
    store.mark_tasks_created(P, [("k-created", "T1")])
    store.mark_tasks_owed(P, [("k-owed", "refused")])
    store.finish_run(a, "ok", {}, [])
    c = store.start_run(P, mode="once", dry_run=False)  # its process died: still `running`
    write(store, c, WRITE_ACKED, update("5", score=50))
    b = store.start_run(P, mode="once", dry_run=False)
    write(store, b, WRITE_ACKED, update("1", score=11), update("2", temperature="warm"))
    write(store, b, "intended", update("4", score=40))
    write(store, b, WRITE_NOT_LANDED, update("6", grade="B"))
    store.finish_run(b, "crashed", {}, [])
    dry = store.start_run(P, mode="once", dry_run=True)
    store.finish_run(dry, "ok", {}, [])
    d = store.start_run(P, mode="once", dry_run=False)
    write(store, d, WRITE_ACKED, update("1", score=12), update("2", score=21))
    write(store, d, WRITE_ACKED, update("5", score=51))
    store.finish_run(d, "ok", {}, [])
    runs = {"a": (a, 200), "c": (c, 150), "b": (b, 120), "dry": (dry, 130), "d": (d, 10)}
    yield store, {name: backdate(store, run_id, days) for name, (run_id, days) in runs.items()}
    store.close()


def test_retention_keeps_exactly_what_must_stay(aged):
    store, runs = aged
    a, b, c, d = runs["a"], runs["b"], runs["c"], runs["d"]
    written_before = store.last_written(P, KEYS)
    pruned = retention.prune(store, P, 90, now=NOW)

    assert (pruned.runs, pruned.writes, pruned.task_payloads) == (3, 5, 1)
    assert {run.id for run in store.runs(P, limit=100)} == {c, d}, "old runs go, running stays"
    assert trail(store) == {
        (a, "1", "temperature", '"cold"', "acked"),  # latest acked write of its field
        (b, "2", "temperature", '"warm"', "acked"),  # latest acked write of its field
        (b, "4", "score", "40", "intended"),  # never settled
        (c, "5", "score", "50", "acked"),  # its run is still running
        (d, "1", "score", "12", "acked"),
        (d, "2", "score", "21", "acked"),
        (d, "5", "score", "51", "acked"),
    }
    assert store.last_written(P, KEYS) == written_before, "unless_edited sees the same values"
    assert list(store.open_intents(P)) == [("contact", "4")]
    ledger = {t.key: t.status for t in store.all_tasks(P)}
    assert ledger == {"k-created": TASK_CREATED, "k-owed": TASK_OWED, "k-pending": TASK_PENDING}
    assert [t.key for t in store.tasks_in(P, TASK_OWED)] == ["k-owed"], "owed keeps its payload"
    assert [t.key for t in store.tasks_in(P, TASK_PENDING)] == ["k-pending"]
    payloads = dict(store._query("SELECT key, payload IS NOT NULL FROM tasks"))
    assert payloads == {"k-created": 0, "k-owed": 1, "k-pending": 1}

    again = retention.prune(store, P, 90, now=NOW)
    assert (again.runs, again.writes, again.task_payloads) == (0, 0, 0), "idempotent"


def test_a_kept_write_goes_once_a_later_write_supersedes_it(aged):
    store, runs = aged
    retention.prune(store, P, 90, now=NOW)
    e = store.start_run(P, mode="once", dry_run=False)
    write(store, e, WRITE_ACKED, update("1", temperature="hot"))
    store.finish_run(e, "ok", {}, [])
    assert retention.prune(store, P, 90, now=NOW).writes == 1
    assert (runs["a"], "1", "temperature", '"cold"', "acked") not in trail(store)
    assert store.last_written(P, [("contact", "1")])[("contact", "1")]["temperature"] == "hot"


def test_a_dry_run_counts_what_the_real_one_removes_and_changes_nothing(aged):
    store, _ = aged
    before = trail(store), store.runs(P, limit=100)
    counted = retention.prune(store, P, 90, now=NOW, dry_run=True)
    assert (trail(store), store.runs(P, limit=100)) == before
    done = retention.prune(store, P, 90, now=NOW)
    assert (counted.runs, counted.writes, counted.task_payloads) == (
        done.runs,
        done.writes,
        done.task_payloads,
    )


def test_runs_within_the_window_and_a_zero_setting_keep_everything(aged):
    store, _ = aged
    before = trail(store)
    assert retention.prune(store, P, 0, now=NOW).runs == 0
    assert retention.prune(store, P, 365, now=NOW).writes == 0
    assert trail(store) == before and len(store.runs(P, limit=100)) == 5


def test_a_stopped_pass_says_so_and_the_daemon_pass_runs_again(aged):
    store, _ = aged
    stopped = retention.apply_if_due(store, P, 90, now=NOW, stop=lambda: True)
    assert stopped is not None and not stopped.complete
    finished = retention.apply_if_due(store, P, 90, now=NOW + timedelta(minutes=5))
    assert finished is not None and finished.complete and finished.writes == 5


def test_the_daemon_pass_runs_at_most_once_a_day(aged):
    store, _ = aged
    assert retention.apply_if_due(store, P, 90, now=NOW).runs == 3
    assert retention.apply_if_due(store, P, 90, now=NOW + timedelta(hours=23)) is None
    assert retention.apply_if_due(store, P, 90, now=NOW + timedelta(hours=25)) is not None
    assert retention.apply_if_due(store, P, 0, now=NOW + timedelta(days=9)) is None


def test_the_daemon_applies_retention_after_a_successful_run(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    old = store.start_run("default", mode="once", dry_run=False)
    store.finish_run(old, "ok", {}, [])
    backdate(store, old, 100)
    engine = SyncEngine(MemoryAdapter(contacts(2)), Settings(), store)
    runner = Daemon(
        engine, ScheduleSettings(jitter_seconds=0), Metrics("memory"), Health(max_age_seconds=3600)
    )
    summary = runner.sync_once()
    assert summary is not None and summary.status == "ok"
    assert store.run(old) is None and store.run(summary.run_id) is not None
    assert json.loads(store.get_meta("default", retention.RETENTION_KEY))["applied_at"]
    store.close()


def test_rollback_of_a_pruned_run_refuses_naming_the_setting(aged):
    store, runs = aged
    retention.prune(store, P, 90, now=NOW)
    adapter = MemoryAdapter()
    for name in ("a", "dry"):  # one left rows behind, the other none
        with pytest.raises(RollbackError, match=r"sync\.keep_runs_days = 90\).*cannot be rolled"):
            rollback(adapter, store, P, runs[name])
    assert adapter.calls == {}, "nothing was read or written"
    with pytest.raises(RollbackError, match="no run 20990101T000000-abcdef"):
        rollback(adapter, store, P, "20990101T000000-abcdef")


# ----- the command ------------------------------------------------------------------------------
def config(tmp_path, state, days: float = 90) -> str:
    path = tmp_path / "crm-qualify.toml"
    path.write_text(f"[sync]\nstate_path = '{state}'\nkeep_runs_days = {days}\n")
    return str(path)


def big_old_run(store: StateStore, contacts_count: int, days: float) -> str:
    run_id = store.start_run("default", mode="once", dry_run=False)
    for start in range(0, contacts_count, 500):
        updates = [
            update(str(n), score=n, reasons="because " * 20)
            for n in range(start, min(start + 500, contacts_count))
        ]
        store.record_intents(run_id, "default", updates, [])
        store.settle_writes(run_id, "default", [(u, WRITE_ACKED) for u in updates])
    store.finish_run(run_id, "ok", {}, [])
    backdate(store, run_id, days)
    return run_id


def test_compact_prunes_and_shrinks_a_real_state_file(tmp_path, capsys):
    state = tmp_path / "state.sqlite"
    store = StateStore(state)
    big_old_run(store, 3000, days=200)
    big_old_run(store, 3000, days=150)  # supersedes every write of the first
    keys = [("contact", str(n)) for n in range(3000)]
    written = store.last_written("default", keys)
    store.close()
    cfg = config(tmp_path, state)

    assert main(["compact", "--config", cfg, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 2 run(s)" in out and "6,000 audit row(s)" in out
    assert "nothing was changed" in out

    assert main(["compact", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "removed 2 run(s)" in out and "6,000 audit row(s)" in out
    sizes = out.split(": ")[-1].split(" -> ")
    before, after = (int(text.split("(")[1].split(" bytes")[0].replace(",", "")) for text in sizes)
    assert after < before / 2, out
    reopened = StateStore(state)
    assert reopened.last_written("default", keys) == written
    assert reopened.runs("default") == []
    reopened.close()


def test_compact_waits_for_no_sync_and_never_creates_a_state_file(tmp_path, capsys):
    state = tmp_path / "state.sqlite"
    cfg = config(tmp_path, state)
    assert main(["compact", "--config", cfg]) == 0
    assert not state.exists() and "no state file" in capsys.readouterr().out
    store = StateStore(state)
    holder = "elsewhere:4242:sync:abcd1234"  # a live sync on another host
    assert store.acquire_lock(sync_lock_name("default"), holder, 60, time.time())
    assert main(["compact", "--config", cfg]) == 1
    assert "sync (pid 4242 on elsewhere) holds the sync lease" in capsys.readouterr().err
    store.close()


# ----- query plans ------------------------------------------------------------------------------
BIG_TABLES = ("field_writes", "tasks", "mirror", "retries")


def plans(store: StateStore, work) -> dict[str, list[str]]:
    """Every statement `work` runs, with its query plan."""
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    try:
        work()
    finally:
        store._conn.set_trace_callback(None)
    found = {}
    for sql in seen:
        if sql.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK"):
            continue
        rows = store._conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
        found[sql] = [row[3] for row in rows]
    return found


def hot(contact_id: str) -> Contact:
    """A contact the rules make hot: its decision owes a call."""
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
        owned={"stage": "lead"},
    )


def test_every_query_a_sync_makes_per_batch_uses_an_index(tmp_path):
    """Two runs of the engine (a read batch with a dead run's intent to settle, a failed write,
    tasks, `unless_edited`; then a re-decision from the mirror), every statement explained."""
    store = StateStore(tmp_path / "state.sqlite")
    adapter = MemoryAdapter([hot(f"h{n}") for n in range(6)], batch_size=3)
    adapter.fail_write_ids = {"h1"}
    dead = store.start_run("default", mode="once", dry_run=False)
    store.record_intents(dead, "default", [update("h0", score=99)], [])
    backdate(store, dead, 1)
    policies = {"score": {"policy": "unless_edited"}, "temperature": {"policy": "unless_edited"}}
    engine = SyncEngine(adapter, Settings.model_validate({"fields": policies}), store)

    def runs() -> None:
        engine.run(RunOptions(now=NOW))
        engine.run(RunOptions(now=NOW + timedelta(days=3)))

    found = plans(store, runs)
    for sql, plan in found.items():
        for step in plan:
            table = step.split()[1] if step.startswith(("SCAN", "SEARCH")) else None
            assert not (step.startswith("SCAN") and table in BIG_TABLES), (sql, plan)
            # the instance alone is the whole audit trail
            assert "field_writes USING INDEX writes_by_contact (instance=?)" not in step, sql
    steps = {step for plan in found.values() for step in plan}
    for expected in (
        "SEARCH field_writes USING INDEX writes_open (instance=?)",  # open_intents
        # last_written, and settling a batch's intents / a dead run's
        "SEARCH field_writes USING INDEX writes_by_contact"
        " (instance=? AND object_type=? AND contact_id=?)",
        "SEARCH field_writes USING INDEX writes_open"
        " (instance=? AND object_type=? AND contact_id=?)",
        "SEARCH field_writes USING INDEX writes_open"
        " (instance=? AND object_type=? AND contact_id=? AND field=?)",
        "SEARCH tasks USING INDEX sqlite_autoindex_tasks_1 (instance=? AND key=?)",
    ):
        assert expected in steps, (expected, sorted(steps))
    store.close()
