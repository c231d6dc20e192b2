"""Two people, each handed over on its own contact, merged in HubSpot: the merged contact
carries both hand-offs (the merge moves every association to it). The next sync removes the
one nobody touched, through the write protocol, and creates none."""

from __future__ import annotations

from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
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

    run = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert run.status == "ok", run.errors
    assert len(handoffs(sim)[merged]) == 1, "one hand-off left on the merged contact"
    assert run.counts["tasks_created"] == 0
    again = SyncEngine(make_adapter(sim), settings, store).run(RunOptions())
    assert again.status == "ok", again.errors
    assert len(handoffs(sim)[merged]) == 1
    assert again.counts["tasks_created"] == 0 and again.counts["tasks_closed"] == 0
