"""Salesforce records <-> canonical model through the bundled mapping; no server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from crm_qualify.adapters.salesforce.translate import (
    ObjectMapping,
    PeopleMapping,
    Related,
    parse_time,
    task_record,
    to_contact,
    to_fields,
)
from crm_qualify.connector.contract import TranslationError
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import EventType, Origin, PlannedTask, Stage

DOCUMENT = load_mapping("salesforce")
LEAD = ObjectMapping.from_document(DOCUMENT, "Lead")
CONTACT = ObjectMapping.from_document(DOCUMENT, "Contact")
PEOPLE = PeopleMapping.from_document(DOCUMENT)


def related(**parts) -> Related:
    return Related(
        tasks=parts.get("tasks", {}),
        events=parts.get("events", {}),
        members=parts.get("members", {}),
        campaigns=parts.get("campaigns", {}),
        deals=parts.get("deals", {}),
    )


def lead(**fields) -> dict:
    return {"Id": "00Q1", "SystemModstamp": "2026-11-20T10:00:00.000+0000", **fields}


def test_profile_stage_rating_and_origin_are_read():
    contact = to_contact(
        LEAD,
        PEOPLE,
        lead(
            Email="a@acme.example", Company="Acme", NumberOfEmployees=250, LeadSource="Web",
            CRMQ_Stage__c="MQL", Rating="Hot", CRMQ_Score__c=71.0, HasOptedOutOfEmail=True,
        ),
        related(),
    )  # fmt: skip
    assert (contact.company, contact.employees, contact.origin) == ("Acme", 250, Origin.INBOUND)
    assert contact.stage == Stage.MQL and contact.unsubscribed and not contact.hard_bounced
    assert contact.owned["temperature"] == "hot" and contact.owned["score"] == 71.0
    assert contact.updated_at == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_campaign_responses_follow_the_first_matching_rule():
    members = {
        "00Q1": [
            {"CampaignId": "701A", "Status": "Attended", "CreatedDate": "2026-11-19T09:00:00Z"},
            {"CampaignId": "701B", "Status": "Registered", "CreatedDate": "2026-11-18T09:00:00Z"},
            {"CampaignId": "701C", "Status": "Responded", "FirstRespondedDate": "2026-11-17"},
            {"CampaignId": "701A", "Status": "Sent", "CreatedDate": "2026-11-16T09:00:00Z"},
        ]
    }
    campaigns = {
        "701A": {"Name": "Scaling webinar", "Type": "Webinar"},
        "701B": {"Name": "Spring webinar", "Type": "Webinar"},
        "701C": {"Name": "Request a demo", "Type": "Webinar"},
    }
    contact = to_contact(LEAD, PEOPLE, lead(), related(members=members, campaigns=campaigns))
    assert [e.type for e in contact.events] == [
        EventType.WEBINAR_ATTENDED,
        EventType.WEBINAR_REGISTERED,
        EventType.DEMO_REQUEST,
    ], "the name rule wins over the type rule; a 'Sent' member is no response"


def test_logged_calls_replies_and_meetings_but_not_our_own_tasks():
    tasks = {
        "00Q1": [
            {"Id": "00T1", "TaskSubtype": "Call", "ActivityDate": "2026-11-18"},
            {"Id": "00T2", "TaskSubtype": "Email", "Subject": "RE: pricing", "ActivityDate":
             "2026-11-19"},
            {"Id": "00T3", "TaskSubtype": "Email", "Subject": "Newsletter", "ActivityDate":
             "2026-11-19"},
            {"Id": "00T4", "TaskSubtype": "Call", "ActivityDate": "2026-11-21",
             "CRMQ_Task_Key__c": "crmq:1", "IsClosed": True},
        ]
    }  # fmt: skip
    events = {"00Q1": [{"Subject": "Demo", "ActivityDateTime": "2026-11-20T15:00:00Z"}]}
    contact = to_contact(LEAD, PEOPLE, lead(), related(tasks=tasks, events=events))
    assert [e.type for e in contact.events] == [
        EventType.CALL,
        EventType.EMAIL_REPLY,
        EventType.MEETING_BOOKED,
    ]
    (ours,) = contact.tasks
    assert (ours.id, ours.key, ours.completed) == ("00T4", "crmq:1", True)


def test_an_unknown_qualification_answer_names_the_field():
    with pytest.raises(TranslationError) as caught:
        to_contact(LEAD, PEOPLE, lead(Qualification_Budget__c="Maybe"), related())
    assert caught.value.field == "Qualification_Budget__c"


def test_a_bad_score_names_the_field():
    with pytest.raises(TranslationError) as caught:
        to_contact(CONTACT, PEOPLE, lead(Id="0031", CRMQ_Score__c="lots"), related())
    assert caught.value.field == "CRMQ_Score__c"


def test_canonical_values_become_salesforce_values():
    fields = to_fields(
        LEAD,
        {
            "stage": "sql",
            "temperature": "warm",
            "score": 64,
            "renurture": 0,
            "reasons": "x" * 40000,
        },
    )
    assert fields["CRMQ_Stage__c"] == "SQL" and fields["Rating"] == "Warm"
    assert fields["CRMQ_Score__c"] == 64.0 and fields["CRMQ_Renurture__c"] is False
    assert len(fields["CRMQ_Reasons__c"]) == 32_000 and fields["CRMQ_Reasons__c"].endswith("…")
    assert to_fields(CONTACT, {"temperature": "hot"}) == {"CRMQ_Temperature__c": "Hot"}
    assert to_fields(LEAD, {"grade": None}) == {"CRMQ_Grade__c": None}


def test_a_field_or_stage_the_mapping_lacks_is_refused():
    with pytest.raises(TranslationError, match="no value for stage"):
        to_fields(LEAD, {"stage": "evangelist"})
    partial = ObjectMapping.from_document(
        {"objects": {"Lead": {"fields": {"score": "CRMQ_Score__c"}}}}, "Lead"
    )
    with pytest.raises(TranslationError, match="no Lead field"):
        to_fields(partial, {"grade": "A1"})


def test_task_record_carries_key_due_day_priority_and_a_user_owner_only():
    task = PlannedTask(
        key="crmq:Lead:00Q1:hot_call", contact_id="00Q1", object_type="Lead", kind="hot_call",
        subject="Call " + "x" * 300, due=datetime(2026, 11, 22, 23, 30, tzinfo=UTC),
        priority="medium", task_type="call", owner_id="00G5g000000queue",
    )  # fmt: skip
    record = task_record(task, "CRMQ_Task_Key__c")
    assert record["CRMQ_Task_Key__c"] == task.key and record["WhoId"] == "00Q1"
    assert record["ActivityDate"] == "2026-11-22" and record["Priority"] == "Normal"
    assert len(record["Subject"]) == 255 and record["TaskSubtype"] == "Call"
    assert "OwnerId" not in record, "a queue cannot own a Task"
    user_owned = task_record(replace(task, owner_id="0055g0000000001"), "CRMQ_Task_Key__c")
    assert user_owned["OwnerId"] == "0055g0000000001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T10:05:07.000+0000", datetime(2026, 11, 22, 10, 5, 7, tzinfo=UTC)),
        ("2026-11-22T10:05:07Z", datetime(2026, 11, 22, 10, 5, 7, tzinfo=UTC)),
        ("2026-11-22", datetime(2026, 11, 22, tzinfo=UTC)),
        (None, None),
    ],
)
def test_salesforce_dates_parse(text, expected):
    assert parse_time(text, "CloseDate") == expected


def test_an_unreadable_date_names_the_field():
    with pytest.raises(TranslationError) as caught:
        parse_time("yesterday", "CloseDate")
    assert caught.value.field == "CloseDate"


def test_a_bad_headcount_names_the_field():
    with pytest.raises(TranslationError) as caught:
        to_contact(LEAD, PEOPLE, lead(NumberOfEmployees="many"), related())
    assert caught.value.field == "NumberOfEmployees"
