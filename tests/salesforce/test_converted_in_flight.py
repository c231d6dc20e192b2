"""A Lead converted between our read of it and our task create for it: Salesforce refuses a
task on a converted Lead (CANNOT_UPDATE_CONVERTED_LEAD: after conversion only the Contact
and Account it was converted into can be referenced), so the create comes back `gone`. The
follow-up is owed to the person's record that is left, the Contact, which gets it exactly
once; no run fails on it and none retries it against the Lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.model import PlannedTask
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.engine import RunOptions, RunSummary, SyncEngine

from tests.salesforce.conftest import crmq_tasks, make_adapter


def alone(sim: SalesforceSimulator, lead: str) -> bool:
    """No other record of the org has the lead's name: it is a person by itself, and once
    converted its Contact is the person's only record."""
    people = [r for s in ("Lead", "Contact") for r in sim.org.live(s)]
    name = (
        sim.org.records["Lead"][lead].get("FirstName"),
        sim.org.records["Lead"][lead]["LastName"],
    )
    return sum((r.get("FirstName"), r.get("LastName")) == name for r in people) == 1


def converted_in_flight(sim, store, run_with: Settings, kind: str) -> tuple[RunSummary, str, str]:
    """A first sync during which a salesperson converts the first Lead alone that gets a
    follow-up of `kind`, just before our create: (that run, the lead, its Contact)."""
    adapter = make_adapter(sim)
    real = adapter.create_tasks
    converted: list[str] = []

    def convert_first(tasks):
        if not converted:
            lead = next(t.contact_id for t in tasks if t.object_type == "Lead"
                        and t.kind == kind and alone(sim, t.contact_id))  # fmt: skip
            sim.convert_lead(lead)
            converted.append(lead)
        return real(tasks)

    adapter.create_tasks = convert_first
    first = SyncEngine(adapter, run_with, store).run(RunOptions())
    [lead] = converted
    return first, lead, sim.org.records["Lead"][lead]["ConvertedContactId"]


def without_lookup_delay(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"sync": settings.sync.model_copy(update={"lookup_delay_seconds": 0})}
    )


def test_a_task_for_a_lead_converted_in_flight_goes_to_its_contact_once(sim, store, settings):
    first, lead, contact = converted_in_flight(sim, store, settings, "mql_handoff")

    assert first.status == "ok" and first.errors == [], first.errors
    assert lead not in crmq_tasks(sim), "no task on the converted Lead"
    assert first.counts["tasks_planned_again"] == 1, "owed to the Contact, not failed"
    assert store.retry_keys("default") == set(), "the Lead is not retried"
    runs = [SyncEngine(make_adapter(sim), settings, store).run(RunOptions()) for _ in range(3)]
    assert [run.errors for run in runs] == [[], [], []]
    assert [run.counts["tasks_created"] for run in runs] == [1, 0, 0]
    assert crmq_tasks(sim).get(contact) == [f"crmq:Lead:{lead}:mql_handoff"]
    assert lead not in crmq_tasks(sim)


def test_salesforce_refuses_a_task_on_a_converted_lead_and_names_its_contact(sim):
    """The simulator answers as Salesforce does (help article 000384333); the adapter hands
    the refusal on as gone, with the Contact the lead became."""
    lead = next(i for i, r in sim.org.records["Lead"].items() if not r["IsConverted"])
    contact = sim.convert_lead(lead)["ConvertedContactId"]
    task = PlannedTask(
        contact_id=lead,
        object_type="Lead",
        key=f"crmq:Lead:{lead}:mql_handoff",
        kind="mql_handoff",
        subject="New MQL: take over",
        body="",
        due=datetime.now(UTC) + timedelta(hours=24),
    )

    [result] = make_adapter(sim).create_tasks([task])

    assert not result.ok and result.gone
    assert (result.error or "").startswith("CANNOT_UPDATE_CONVERTED_LEAD")
    assert result.field == "WhoId"
    assert result.moved_to == ("Contact", contact)
    assert lead not in crmq_tasks(sim) and contact not in crmq_tasks(sim)


def hot_calls(sim: SalesforceSimulator, record: str) -> list[str]:
    return [key for key in crmq_tasks(sim).get(record, []) if ":hot_call:" in key]


def test_a_follow_up_owed_to_the_contact_is_not_doubled_when_its_create_is_lost(
    sim, store, settings
):
    """The next run's create of the owed hot call fails: the Contact, read in that run
    without it, must not plan one of its own under its own key (the person got two calls
    once the look-ups settled)."""
    quick = without_lookup_delay(settings)
    first, lead, contact = converted_in_flight(sim, store, quick, "hot_call")
    assert first.status == "ok", first.errors
    sim.faults.add("503", times=2, request="upsert")  # the next runs' creates

    for _ in range(5):  # the faults spent (one a run), then the look-ups settled
        SyncEngine(make_adapter(sim), quick, store).run(RunOptions())
    assert sim.faults.injected["503"] == 2

    calls = hot_calls(sim, contact)
    assert len(calls) == 1 and calls[0].startswith(f"crmq:Lead:{lead}:"), "one call, the one owed"


def test_a_follow_up_owed_through_a_long_outage_is_sent_once_it_ends(sim, store, settings):
    """Creates failing for more runs than an owed task is resent after refusals: an outage
    refuses nothing, so once it ends the owed hot call lands on the Contact, once (it stayed
    owed and unsent, and the person got no call until the Contact was decided again)."""
    quick = without_lookup_delay(settings)
    first, lead, contact = converted_in_flight(sim, store, quick, "hot_call")
    assert first.status == "ok", first.errors
    sim.faults.add("503", times=1_000, request="upsert")
    for _ in range(7):  # more runs than OWED_RETRY_ATTEMPTS
        SyncEngine(make_adapter(sim), quick, store).run(RunOptions())
    sim.faults.queue.clear()

    run = SyncEngine(make_adapter(sim), quick, store).run(RunOptions())

    assert run.counts["tasks_created"] >= 1, run.counts
    calls = hot_calls(sim, contact)
    assert len(calls) == 1 and calls[0].startswith(f"crmq:Lead:{lead}:")
