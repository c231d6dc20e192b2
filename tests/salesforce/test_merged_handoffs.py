"""Two people, each handed over on its own record, merged in Salesforce: the master carries
both hand-offs (the merge moves the victim's tasks to it). The next sync removes the one
nobody touched, through the write protocol, and creates none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.salesforce.simulator.org import iso
from crm_qualify.connector.contract import OutcomeUnknown
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import TASK_CLOSED, TASK_CLOSING, StateStore

from tests.salesforce.conftest import make_adapter

TASK_KEY = "CRMQ_Task_Key__c"


def handoffs(sim: SalesforceSimulator) -> dict[str, list[dict]]:
    """Our open hand-off tasks, by the Lead or Contact each is about."""
    found: dict[str, list[dict]] = {}
    with sim.org.lock:
        for task in sim.org.live("Task"):
            if (task.get(TASK_KEY) or "").endswith(":mql_handoff") and not task.get("IsClosed"):
                found.setdefault(task["WhoId"], []).append(task)
    return found


def handed_over_pair(sim: SalesforceSimulator, store: StateStore, settings) -> tuple[str, str]:
    """A first sync, and two Leads it handed over each with its own hand-off."""
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    leads = sorted(
        who
        for who, tasks in handoffs(sim).items()
        if len(tasks) == 1
        and who in sim.org.records["Lead"]
        and not sim.org.records["Lead"][who]["IsConverted"]
    )
    assert len(leads) >= 2
    return leads[0], leads[1]


def test_a_merge_of_two_handed_over_leads_leaves_one_open_hand_off(sim, store, settings):
    master, victim = handed_over_pair(sim, store, settings)
    sim.merge(master, [victim])
    assert len(handoffs(sim)[master]) == 2, "the merge moved the victim's hand-off"

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert len(handoffs(sim)[master]) == 1, "one hand-off left on the master"
    assert run.counts["tasks_created"] == 0
    again = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())
    assert again.status == "ok", again.errors
    assert len(handoffs(sim)[master]) == 1
    assert again.counts["tasks_created"] == 0 and again.counts["tasks_closed"] == 0


def reschedule(sim: SalesforceSimulator, task: dict) -> None:
    """A salesperson moves a hand-off's due date in the UI."""
    with sim.org.lock:
        sim.org.update("Task", task["Id"], {"ActivityDate": "2031-01-15"}, datetime.now(UTC))


def test_a_hand_off_a_person_touched_stays_and_the_untouched_one_goes(sim, store, settings):
    master, victim = handed_over_pair(sim, store, settings)
    [moved] = handoffs(sim)[victim]
    reschedule(sim, moved)
    sim.merge(master, [victim])

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert [task["Id"] for task in handoffs(sim)[master]] == [moved["Id"]]
    assert run.counts["tasks_created"] == 0


def test_two_touched_hand_offs_both_stay_and_no_third_is_made(sim, store, settings):
    master, victim = handed_over_pair(sim, store, settings)
    for who in (master, victim):
        reschedule(sim, handoffs(sim)[who][0])
    sim.merge(master, [victim])

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert len(handoffs(sim)[master]) == 2, "a person's tasks are left alone"
    assert run.counts["tasks_created"] == 0 and run.counts["tasks_closed"] == 0


def test_a_removal_whose_answer_is_lost_is_sent_again_by_the_next_run(sim, store, settings):
    master, victim = handed_over_pair(sim, store, settings)
    sim.merge(master, [victim])
    adapter = make_adapter(sim)
    real = adapter.close_tasks

    def lost(crm_ids):
        real(crm_ids)
        raise OutcomeUnknown("connection reset after the request was sent")

    adapter.close_tasks = lost
    first = SyncEngine(adapter, settings, store).run(RunOptions())
    assert first.status == "partial", "the rest of the run goes on"
    assert any("not removed, sent again next run" in error for error in first.errors)
    assert len(handoffs(sim)[master]) == 1, "the CRM removed it"
    [left] = store.task_records_in("default", TASK_CLOSING)
    assert (left.object_type, left.contact_id) == ("Lead", master), "intended on its holder"

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert run.counts["tasks_closed"] == 1 and run.counts["tasks_created"] == 0
    assert store.tasks_by_key("default", [left.key])[left.key].status == TASK_CLOSED
    assert len(handoffs(sim)[master]) == 1
    mirrored = store.mirror.by_keys("default", [("Lead", master)])[("Lead", master)].contact
    assert [t.key for t in mirrored.tasks if t.key == left.key] == [], "gone from the mirror"


def test_a_hand_off_the_merge_restamped_is_kept_and_the_masters_own_goes(sim, store, settings):
    """Salesforce stamps each task a merge reparents: an older hand-off moved from the victim
    reads as changed since its creation, as a person's would, so it is the one kept."""
    master, victim = handed_over_pair(sim, store, settings)
    [moved] = handoffs(sim)[victim]
    with sim.org.lock:  # created an hour before the merge
        moved["CreatedDate"] = iso(datetime.now(UTC) - timedelta(hours=1))
    sim.merge(master, [victim])

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert [task["Id"] for task in handoffs(sim)[master]] == [moved["Id"]]
    assert run.counts["tasks_closed"] == 1 and run.counts["tasks_created"] == 0


def test_removals_failing_in_two_runs_running_never_take_the_follow_up_kept(sim, store, settings):
    """An outage longer than the schedule's gap: the removal fails in two runs. The task it
    left `closing` is on its way out, not the one its record keeps: the master's own hand-off
    stays (it was removed too, and the MQL was left with none), and the follow-up being
    removed gets no escalation once it is overdue."""
    master, victim = handed_over_pair(sim, store, settings)
    sim.merge(master, [victim])
    sim.faults.add("503", times=10_000, request="delete")
    later = datetime.now(UTC) + timedelta(days=3)  # every hand-off overdue: escalations due
    for now in (datetime.now(UTC), later):
        run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions(now=now))
        assert run.status == "partial", run.errors
    closing = {t.key for t in store.task_records_in("default", TASK_CLOSING)}
    assert len(closing) == 1 and len(handoffs(sim)[master]) == 2
    sim.faults.queue.clear()
    listed = []
    engine = SyncEngine(make_adapter(sim), settings, store, on_batch=listed.append)
    dry = engine.run(RunOptions(now=later, dry_run=True))
    assert dry.counts["tasks_to_close"] == 1, "the dry run lists what the real run resends"
    assert [c.key for report in listed for c in report.closing] == sorted(closing)

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions(now=later))

    assert run.status == "ok", run.errors
    [kept] = handoffs(sim)[master]
    assert kept[TASK_KEY] not in closing, "the one kept is the master's own"
    with sim.org.lock:
        escalated = {
            task[TASK_KEY].removesuffix(":escalation")
            for task in sim.org.live("Task")
            if (task.get(TASK_KEY) or "").endswith(":escalation")
        }
    assert not escalated & closing, "no escalation of a follow-up removed"


def complete(sim: SalesforceSimulator, task: dict) -> None:
    """A salesperson marks a hand-off Completed in the UI."""
    with sim.org.lock:
        sim.org.update("Task", task["Id"], {"Status": "Completed"}, datetime.now(UTC))


def test_a_hand_off_merged_beside_one_a_person_completed_goes(sim, store, settings):
    """The master's hand-off done before the merge: the person is handed over, and the open
    hand-off the merge brought along (nobody touched it) is one too many."""
    master, victim = handed_over_pair(sim, store, settings)
    [done] = handoffs(sim)[master]
    [moved] = handoffs(sim)[victim]
    complete(sim, done)
    sim.merge(master, [victim])

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert master not in handoffs(sim), "no open hand-off left beside the completed one"
    with sim.org.lock:
        assert sim.org.records["Task"][done["Id"]]["IsDeleted"] is False, "a person's stays"
        assert sim.org.records["Task"][moved["Id"]]["IsDeleted"] is True
    assert run.counts["tasks_created"] == 0
    again = SyncEngine(make_adapter(sim), settings, store).run(RunOptions(full=True))
    assert again.status == "ok", again.errors
    assert master not in handoffs(sim)
    assert again.counts["tasks_created"] == 0 and again.counts["tasks_closed"] == 0
