"""Our Tasks as Salesforce holds them: closed or open, when created and when completed
(`CompletedDateTime`, set by the org when a task is closed), against the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.adapters.salesforce.soql import task_query
from crm_qualify.adapters.salesforce.translate import Related, to_contact
from crm_qualify.connector.model import PlannedTask

from tests.salesforce.conftest import make_adapter


def open_lead(sim) -> str:
    return sorted(r["Id"] for r in sim.org.records["Lead"].values() if not r["IsConverted"])[0]


def our_task(adapter, lead: str):
    (contact,) = [raw.translate() for b in adapter.read_contacts([("Lead", lead)]) for raw in b.raw]
    (task,) = [t for t in contact.tasks if t.key == f"crmq:Lead:{lead}:hot_call"]
    return task


def test_a_task_is_read_with_its_status_creation_and_completion_times(sim, adapter):
    lead = open_lead(sim)
    planned = PlannedTask(
        key=f"crmq:Lead:{lead}:hot_call", contact_id=lead, object_type="Lead", kind="hot_call",
        subject="Call", due=datetime.now(UTC) + timedelta(hours=24), task_type="call",
    )  # fmt: skip
    (made,) = adapter.create_tasks([planned])
    assert made.ok
    record = sim.org.records["Task"][made.crm_id]
    assert record["IsClosed"] is False and record["CompletedDateTime"] is None

    task = our_task(adapter, lead)
    assert task.created_at is not None and abs(task.created_at - datetime.now(UTC)).seconds < 60
    assert (task.completed, task.completed_at, task.is_open) == (False, None, True)
    assert not task.changed_since_created, "as created: a rollback may remove it"

    done = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=90)
    sim.org.update("Task", made.crm_id, {"Status": "Completed"}, done)
    assert record["IsClosed"] is True, "closing is the org's doing, from the status"
    task = our_task(adapter, lead)
    assert task.completed and task.completed_at == done and not task.is_open

    later = done + timedelta(hours=1)
    sim.org.update("Task", made.crm_id, {"Subject": "Call back"}, later)
    assert our_task(adapter, lead).completed_at == done, "kept while it stays closed"
    assert our_task(adapter, lead).modified_at == later and task.changed_since_created

    sim.org.update("Task", made.crm_id, {"Status": "In Progress"}, later)
    task = our_task(adapter, lead)
    assert (task.completed, task.completed_at) == (False, None), "reopened: open again"
    assert record["CompletedDateTime"] is None


def test_completed_date_time_cannot_be_written(sim, adapter):
    lead = open_lead(sim)
    answer = adapter.client.call(
        "PATCH composite/sobjects/Task",
        lambda sf: sf.restful(
            "composite/sobjects",
            method="POST",
            json={
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Task"},
                        "WhoId": lead,
                        "Subject": "x",
                        "CompletedDateTime": "2026-01-01T00:00:00Z",
                    }
                ],
            },
        ),
    )
    (row,) = answer
    assert row["success"] is False
    assert row["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE", "a system field"


def test_seeded_closed_tasks_carry_their_completion_time(sim):
    closed = [t for t in sim.org.records["Task"].values() if t["IsClosed"]]
    assert closed and all(t["CompletedDateTime"] for t in closed)


def test_the_task_query_asks_for_completion_times_where_the_api_has_them():
    assert "CompletedDateTime" in task_query("Key__c", "59.0")
    assert "CompletedDateTime" not in task_query("Key__c", "48.0")
    assert "CreatedDate" in task_query("Key__c", "48.0")


def test_an_unreadable_task_time_leaves_the_time_unknown_not_the_person(sim):
    adapter = make_adapter(sim)
    lead = open_lead(sim)
    record = dict(sim.org.records["Lead"][lead])
    task = {
        "Id": "00T000000000001AAA", "WhoId": lead, "Subject": "Call", "IsClosed": True,
        "ActivityDate": "2026-11-22", "CreatedDate": "soon", "CompletedDateTime": 17,
        adapter.people.task_key: f"crmq:Lead:{lead}:hot_call",
    }  # fmt: skip
    related = Related(tasks={lead: [task]}, events={}, members={}, campaigns={}, deals={})
    contact = to_contact(adapter.objects["Lead"], adapter.people, record, related)
    (mine,) = contact.tasks
    assert mine.completed and mine.created_at is None and mine.completed_at is None
