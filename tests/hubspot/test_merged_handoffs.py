"""Two people, each handed over on its own contact, merged in HubSpot: the merged contact
carries both hand-offs (the merge moves every association to it). The next sync removes the
one nobody touched, through the write protocol, and creates none."""

from __future__ import annotations

from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.commands.sync import diff_rows
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.hubspot.conftest import make_adapter


def handoffs(sim: HubSpotSimulator) -> dict[str, list[str]]:
    """Our open hand-off tasks' ids, by the contact each is associated with."""
    found: dict[str, list[str]] = {}
    with sim.store.lock:
        for task in sim.store.objects["tasks"].values():
            props = task["properties"]
            key = props.get("crmq_task_key") or ""
            if task["archived"] or not key.endswith(":mql_handoff"):
                continue
            if props.get("hs_task_status") == "COMPLETED":
                continue
            for contact in sim.store.associations("tasks", task["id"], "contacts"):
                found.setdefault(contact, []).append(task["id"])
    return found


def test_a_merge_of_two_handed_over_contacts_leaves_one_open_hand_off(sim, store, settings):
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    first, second = sorted(c for c, tasks in handoffs(sim).items() if len(tasks) == 1)[:2]
    merged = sim.merge_contacts(first, second)
    assert len(handoffs(sim)[merged]) == 2, "the merge moved both hand-offs"
    listed: list[dict] = []
    dry = SyncEngine(
        make_adapter(sim), settings, store, on_batch=lambda r: listed.extend(diff_rows(r))
    )
    dry_run = dry.run(RunOptions(dry_run=True))
    removals = [row for row in listed if row["kind"] == "task_removed"]
    assert dry_run.counts["tasks_to_close"] == len(removals)
    [removal] = [row for row in removals if row["key"].endswith(":mql_handoff")]
    assert removal["record"] == f"contacts/{merged}" and removal["crm_id"] in handoffs(sim)[merged]
    assert len(handoffs(sim)[merged]) == 2, "a dry run removes nothing"

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert len(handoffs(sim)[merged]) == 1, "one hand-off left on the merged contact"
    assert removal["crm_id"] not in handoffs(sim)[merged], "the one the dry run listed"
    assert run.counts["tasks_closed"] == len(removals), "its hot-lead calls too"
    assert run.counts["tasks_created"] == 0
    again = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())
    assert again.status == "ok", again.errors
    assert len(handoffs(sim)[merged]) == 1
    assert again.counts["tasks_created"] == 0 and again.counts["tasks_closed"] == 0


def test_a_hand_off_merged_beside_one_a_person_completed_goes(sim, store, settings):
    """The first contact's hand-off done before the merge: the person is handed over, and
    the open hand-off the merge brought along (nobody touched it) is one too many."""
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    first, second = sorted(c for c, tasks in handoffs(sim).items() if len(tasks) == 1)[:2]
    [done], [moved] = handoffs(sim)[first], handoffs(sim)[second]
    sim.complete_task(done)
    merged = sim.merge_contacts(first, second)

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert merged not in handoffs(sim), "no open hand-off left beside the completed one"
    with sim.store.lock:
        tasks = sim.store.objects["tasks"]
        assert not tasks[done]["archived"], "a person's stays"
        assert tasks[moved]["archived"]
    assert run.counts["tasks_created"] == 0
    again = SyncEngine(make_adapter(sim), settings, store).run(RunOptions(full=True))
    assert again.status == "ok", again.errors
    assert merged not in handoffs(sim)
    assert again.counts["tasks_created"] == 0 and again.counts["tasks_closed"] == 0
