"""A rollback on the Salesforce simulator: the hand-offs of the stages it leaves stay, a contact
whose call it removed is called again when found hot again, and a person's value it keeps
reaches the mirror although the next incremental query leaves the record out (the rollback's
own write made the integration user its last modifier)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.rollback import rollback

from tests.salesforce.conftest import make_adapter


def live_tasks(sim) -> dict[str, dict]:
    """Our tasks the org holds (not in the recycle bin), by key."""
    return {
        row["CRMQ_Task_Key__c"]: row
        for row in sim.org.records["Task"].values()
        if row.get("CRMQ_Task_Key__c") and not row["IsDeleted"]
    }


def test_a_rollback_keeps_hand_offs_and_the_mirror_takes_the_score_a_person_set(
    sim, store, settings
):
    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())
    assert run.status == "ok", run.errors
    trail = store.writes_for_run(run.run_id)
    fields_of: dict[str, set[str]] = {}
    for write in trail:
        fields_of.setdefault(write.contact_id, set()).add(write.field)
    edited = sorted(cid for cid, names in fields_of.items() if {"score", "reasons"} <= names)[0]
    sim.touch(edited, {"CRMQ_Score__c": 99})
    handoffs = {t.key for t in store.tasks_for_run(run.run_id) if t.kind == "mql_handoff"}
    assert handoffs

    report = rollback(make_adapter(sim), store, "default", run.run_id)
    assert report.status == "ok", report.errors
    assert handoffs <= set(live_tasks(sim)), "the hand-offs of the MQLs it leaves stay"
    assert not handoffs & set(report.tasks_closed)
    assert all(key not in live_tasks(sim) for key in report.tasks_closed)
    held = {(record, name): why for record, name, why in report.held}
    assert "a person's value is kept" in next(
        why for (record, name), why in held.items() if record.endswith(edited) and name == "score"
    )

    # a later minute: a hot episode's start is written to the minute in its call's key
    later = datetime.now(UTC) + timedelta(minutes=2)
    after = SyncEngine(make_adapter(sim), settings, store).run(RunOptions(now=later))
    assert after.status == "ok", after.errors
    (score,) = [
        w
        for w in store.writes_for_run(after.run_id)
        if (w.contact_id, w.field) == (edited, "score")
    ]
    assert score.old == 99
    assert handoffs <= set(live_tasks(sim))
    called = {key.split(":hot_call:")[0] for key in report.tasks_closed if ":hot_call:" in key}
    assert called, "the calls of contacts put back to not hot are removed"
    again = {key.split(":hot_call:")[0] for key in live_tasks(sim) if ":hot_call:" in key}
    assert called <= again, "found hot again, they are called again"
