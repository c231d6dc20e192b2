"""Follow-up planning over time: one call per hot episode, re-contact slots, a lost episode
start, and escalations only for follow-ups that are really overdue and open."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.planning import task_kind
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import (
    Contact,
    Decision,
    EngagementEvent,
    EventType,
    ExistingTask,
    Origin,
    PlannedTask,
    Stage,
    Temperature,
    format_reasons,
)

SUNDAY = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # ISO week 47; Monday 23 starts week 48
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def person(*demo_requests: datetime, tasks: list[ExistingTask] | None = None) -> Contact:
    return Contact(
        id="42",
        origin=Origin.INBOUND,
        email="ada@engines.example",
        stage=Stage.MQL,
        owner_id="rep",
        events=[EngagementEvent(type=EventType.DEMO_REQUEST, at=at) for at in demo_requests],
        tasks=tasks or [],
    )


def rules(**followup) -> Rules:
    return Rules.model_validate({"followup": followup})


def calls(decision: Decision) -> list[str]:
    return [t.key for t in decision.tasks if t.kind == "hot_call"]


def created(decision: Decision, at: datetime, **fields) -> ExistingTask:
    """The call task as the CRM then holds it (the engine adds it to the mirror)."""
    (key,) = calls(decision)
    return ExistingTask(id=f"T{at:%d%H}", key=key, due=at + 24 * HOUR, created_at=at, **fields)


def test_one_hot_episode_gets_one_call_across_a_monday():
    demo = SUNDAY - 2 * HOUR
    first = decide(person(demo), Rules(), SUNDAY)
    assert calls(first) == ["crmq:contact:42:hot_call:20261122T2000"]
    assert first.hot_since == SUNDAY
    call = created(first, SUNDAY)
    monday = SUNDAY + 30 * HOUR  # a new ISO week: the old keys made a second call here
    again = decide(person(demo, tasks=[call]), Rules(), monday, hot_since=first.hot_since)
    assert again.temperature is Temperature.HOT
    assert calls(again) == [] and again.hot_since == SUNDAY
    # Before the engine has added the task to the mirror, the same key comes back (the task
    # ledger makes it exist once), never a new one.
    unseen = decide(person(demo), Rules(), monday, hot_since=first.hot_since)
    assert calls(unseen) == calls(first)
    # Done or not, the episode's call is not repeated.
    done = call.model_copy(update={"completed": True, "completed_at": SUNDAY + 3 * HOUR})
    assert calls(decide(person(demo, tasks=[done]), Rules(), monday, hot_since=SUNDAY)) == []


def test_a_new_call_after_cooling_and_turning_hot_again():
    demo = SUNDAY - HOUR
    first = decide(person(demo), Rules(), SUNDAY)
    call = created(first, SUNDAY, completed=True, completed_at=SUNDAY + 2 * HOUR)
    cooled_at = demo + 15 * DAY  # past hot_within_days (14)
    cooled = decide(person(demo, tasks=[call]), Rules(), cooled_at, hot_since=first.hot_since)
    assert cooled.temperature is not Temperature.HOT
    assert cooled.hot_since is None and calls(cooled) == []
    reheated_at = cooled_at + 2 * DAY
    second_demo = reheated_at - HOUR
    reheated = decide(
        person(demo, second_demo, tasks=[call]), Rules(), reheated_at, hot_since=cooled.hot_since
    )
    assert reheated.hot_since == reheated_at
    (key,) = calls(reheated)
    assert key == f"crmq:contact:42:hot_call:{reheated_at:%Y%m%dT%H%M}" and key != call.key


def test_a_lead_that_stays_hot_is_called_again_every_recall_interval():
    long_hot = Rules.model_validate(
        {"temperature": {"hot_within_days": 60}, "followup": {"hot_recall_days": 3}}
    )
    demo = SUNDAY - HOUR
    first = decide(person(demo), long_hot, SUNDAY)
    done = created(first, SUNDAY, completed=True, completed_at=SUNDAY + HOUR)
    assert (
        calls(decide(person(demo, tasks=[done]), long_hot, SUNDAY + 2 * DAY, hot_since=SUNDAY))
        == []
    )
    slot_1 = decide(person(demo, tasks=[done]), long_hot, SUNDAY + 3 * DAY + HOUR, hot_since=SUNDAY)
    assert calls(slot_1) == ["crmq:contact:42:hot_call:20261122T2000:1"]
    assert slot_1.hot_since == SUNDAY
    # One open call at a time: while the first is open, the second slot adds none.
    still_open = done.model_copy(update={"completed": False, "completed_at": None})
    busy = decide(person(demo, tasks=[still_open]), long_hot, SUNDAY + 4 * DAY, hot_since=SUNDAY)
    assert calls(busy) == []
    # Once that slot has its call (done), the next comes with the next slot.
    second = created(slot_1, SUNDAY + 3 * DAY + HOUR, completed=True)
    tasks = [done, second]
    assert (
        calls(decide(person(demo, tasks=tasks), long_hot, SUNDAY + 5 * DAY, hot_since=SUNDAY)) == []
    )
    assert calls(
        decide(person(demo, tasks=tasks), long_hot, SUNDAY + 6 * DAY + HOUR, hot_since=SUNDAY)
    ) == ["crmq:contact:42:hot_call:20261122T2000:2"]
    # 0: one call per episode, however long it lasts.
    once = Rules.model_validate(
        {"temperature": {"hot_within_days": 60}, "followup": {"hot_recall_days": 0}}
    )
    assert (
        calls(decide(person(demo, tasks=[done]), once, SUNDAY + 20 * DAY, hot_since=SUNDAY)) == []
    )


def test_the_default_recall_interval_is_a_week():
    assert Rules().followup.hot_recall_days == 7
    demo = SUNDAY - HOUR
    first = decide(person(demo), Rules(), SUNDAY)
    done = created(first, SUNDAY, completed=True, completed_at=SUNDAY + HOUR)
    fresh = person(demo, SUNDAY + 6 * DAY, tasks=[done])  # a new demo request keeps it hot
    assert calls(decide(fresh, Rules(), SUNDAY + 6 * DAY + HOUR, hot_since=SUNDAY)) == []
    assert calls(decide(fresh, Rules(), SUNDAY + 7 * DAY + HOUR, hot_since=SUNDAY)) == [
        "crmq:contact:42:hot_call:20261122T2000:1"
    ]


def test_a_lost_episode_start_with_an_open_call_of_ours_is_an_ongoing_episode():
    demo = SUNDAY - HOUR
    first = decide(person(demo), Rules(), SUNDAY)
    open_call = created(first, SUNDAY + timedelta(seconds=10))  # created just after
    later = SUNDAY + 30 * HOUR
    lost = decide(person(demo, tasks=[open_call]), Rules(), later, hot_since=None)
    assert calls(lost) == []
    assert lost.hot_since == SUNDAY, "read back from the open task's key"
    # The run after keys the episode the same way: still no second call once it is done.
    done = open_call.model_copy(update={"completed": True, "completed_at": later})
    after = decide(person(demo, tasks=[done]), Rules(), later + HOUR, hot_since=lost.hot_since)
    assert calls(after) == []
    # A call keyed by the old ISO-week scheme, still open, also means an ongoing episode.
    weekly = ExistingTask(id="T9", key="crmq:contact:42:hot_call:2026-W47", created_at=SUNDAY - DAY)
    legacy = decide(person(demo, tasks=[weekly]), Rules(), later)
    assert calls(legacy) == [] and legacy.hot_since == SUNDAY - DAY
    done_weekly = weekly.model_copy(update={"completed": True})
    assert (
        calls(
            decide(person(demo, tasks=[done_weekly]), Rules(), later + HOUR, hot_since=SUNDAY - DAY)
        )
        == []
    ), "the episode's slot already has a call (created since it began)"
    # Somebody else's open task is not ours: a new episode starts.
    foreign = ExistingTask(id="T8", key=None, created_at=SUNDAY)
    assert calls(decide(person(demo, tasks=[foreign]), Rules(), later)) != []


def test_a_lost_episode_start_with_a_recent_completed_call_makes_no_second_call():
    """An upgrade or a new state file: this week's call is done, the lead is still hot."""
    demo = SUNDAY - HOUR
    weekly = ExistingTask(
        id="T7",
        key="crmq:contact:42:hot_call:2026-W47",
        created_at=SUNDAY - DAY,
        completed=True,
        completed_at=SUNDAY,
    )
    later = SUNDAY + 30 * HOUR
    lost = decide(person(demo, tasks=[weekly]), Rules(), later, hot_since=None)
    assert calls(lost) == []
    assert lost.hot_since == SUNDAY - DAY
    stale = weekly.model_copy(update={"created_at": later - 8 * DAY})
    assert calls(decide(person(demo, tasks=[stale]), Rules(), later)) != [], (
        "a call older than the re-contact interval does not hold a new episode back"
    )


def test_a_contact_that_cooled_and_is_hot_again_gets_a_new_call():
    """It cooled (written warm; the engine keeps no episode for it), and turned hot again
    within a week of its completed call: the call was taken for this episode's, and none was
    made."""
    demo = SUNDAY - HOUR
    done = ExistingTask(
        id="T7",
        key="crmq:contact:42:hot_call:20261120T0900",
        created_at=SUNDAY - 2 * DAY,
        completed=True,
        completed_at=SUNDAY - DAY,
    )
    cooled = person(demo, tasks=[done])
    cooled.owned["temperature"] = "warm"
    again = decide(cooled, Rules(), SUNDAY, hot_since=None)
    assert calls(again) == ["crmq:contact:42:hot_call:20261122T2000"]
    assert again.hot_since == SUNDAY
    cooled.tasks = [done.model_copy(update={"completed": False, "completed_at": None})]
    assert calls(decide(cooled, Rules(), SUNDAY)) == [], "never beside an open call"


def test_not_hot_means_no_episode():
    cold = Contact(id="7", origin=Origin.INBOUND, email="x@acme.example")
    assert decide(cold, Rules(), SUNDAY, hot_since=SUNDAY - DAY).hot_since is None


def test_escalation_only_for_a_follow_up_really_overdue_and_open():
    def escalations(*tasks: ExistingTask) -> list[str]:
        quiet = Contact(id="42", origin=Origin.INBOUND, email="a@b.example", tasks=list(tasks))
        decision = decide(quiet, Rules(), SUNDAY)
        return [t.key for t in decision.tasks if t.kind == "escalation"]

    handoff = "crmq:contact:42:mql_handoff"
    overdue = ExistingTask(id="1", key=handoff, due=SUNDAY - HOUR, created_at=SUNDAY - DAY)
    assert escalations(overdue) == [f"{handoff}:escalation"]
    closed = overdue.model_copy(update={"completed_at": SUNDAY - 2 * HOUR})
    assert escalations(closed) == [], "a completion time means it was done"
    assert escalations(overdue.model_copy(update={"completed": True})) == []
    assert escalations(overdue.model_copy(update={"due": SUNDAY + HOUR})) == [], "not yet due"
    # No due time from the CRM: due its SLA hours (48 for a hand-off) after its creation.
    undated = ExistingTask(id="2", key=handoff, created_at=SUNDAY - 47 * HOUR)
    assert escalations(undated) == []
    assert escalations(undated.model_copy(update={"created_at": SUNDAY - 49 * HOUR})) == [
        f"{handoff}:escalation"
    ]
    assert escalations(ExistingTask(id="3", key=handoff)) == [], "no time at all: not judged"


def test_a_record_carrying_two_calls_escalates_the_latest_only():
    """A merge in HubSpot moved two persons' hot calls onto one contact: both overdue, each
    got an escalation, two for one person."""
    first = "crmq:contacts:1:hot_call:20261118T0900"
    second = "crmq:contacts:2:hot_call:20261119T0900"
    calls = [
        ExistingTask(id="1", key=first, due=SUNDAY - 3 * DAY, created_at=SUNDAY - 4 * DAY),
        ExistingTask(id="2", key=second, due=SUNDAY - 2 * DAY, created_at=SUNDAY - 3 * DAY),
    ]
    merged = Contact(id="3", origin=Origin.INBOUND, email="a@b.example", tasks=calls)
    planned = [t.key for t in decide(merged, Rules(), SUNDAY).tasks if t.kind == "escalation"]
    assert planned == [f"{second}:escalation"]


def test_a_late_call_is_not_escalated_once_a_person_made_the_contact_an_opportunity():
    call = "crmq:contacts:1:hot_call:20261118T0900"
    late = ExistingTask(id="1", key=call, due=SUNDAY - 3 * DAY, created_at=SUNDAY - 4 * DAY)
    contact = Contact(id="1", origin=Origin.INBOUND, email="a@b.example", tasks=[late])
    assert [t.kind for t in decide(contact, Rules(), SUNDAY).tasks] == ["escalation"]
    moved_on = contact.model_copy(update={"stage": Stage.OPPORTUNITY})
    assert decide(moved_on, Rules(), SUNDAY).tasks == []


def test_task_kind_reads_our_keys_only():
    assert task_kind("crmq:contact:1:hot_call:20261122T2000:2") == "hot_call"
    assert task_kind("crmq:Lead:00Q1:hot_call") == "hot_call"
    assert task_kind("crmq:contacts:9:mql_handoff") == "mql_handoff"
    assert task_kind("crmq:contacts:9:mql_handoff:escalation") is None
    assert task_kind("other:contacts:9:hot_call") is None and task_kind(None) is None


def test_a_due_date_read_back_from_a_crm_without_times_keeps_the_sla_time():
    """Salesforce keeps a task's due date only: read back, a hot call created at 18:14 and
    due 24 h later became due at midnight, and escalated up to a day late once its record
    was read again."""
    call = "crmq:contact:42:hot_call:20261201T1814"
    created = datetime(2026, 12, 1, 18, 14, tzinfo=UTC)
    end_of_due_date = datetime(2026, 12, 3, tzinfo=UTC)
    read_back = ExistingTask(
        id="T1", key=call, due=end_of_due_date, due_is_day=True, created_at=created
    )
    contact = person(tasks=[read_back])
    at = created + 25 * HOUR
    assert [t.kind for t in decide(contact, Rules(), at).tasks] == ["escalation"]
    moved = read_back.model_copy(update={"due": end_of_due_date + 3 * DAY})
    assert decide(person(tasks=[moved]), Rules(), at).tasks == [], "a person moved the date"


def test_an_escalation_names_the_follow_up_that_is_overdue():
    """A Lead with a late hot call and a late hand-off got two open tasks both titled
    "Overdue follow-up on Ben Olsen (Company 273)": a salesperson took them for duplicates."""
    call = "crmq:Lead:00Q1:hot_call:20261118T0900"
    handoff = "crmq:Lead:00Q1:mql_handoff"
    late = [
        ExistingTask(id="T1", key=call, due=SUNDAY - 3 * DAY, created_at=SUNDAY - 4 * DAY),
        ExistingTask(id="T2", key=handoff, due=SUNDAY - 2 * DAY, created_at=SUNDAY - 4 * DAY),
    ]
    lead = Contact(
        id="00Q1",
        object_type="Lead",
        origin=Origin.INBOUND,
        email="b@o.example",
        first_name="Ben",
        last_name="Olsen",
        company="Company 273",
        tasks=late,
    )
    escalations = {t.key: t for t in decide(lead, Rules(), SUNDAY).tasks if t.kind == "escalation"}
    assert {key: t.subject for key, t in escalations.items()} == {
        f"{call}:escalation": "Overdue hot-lead call: Ben Olsen (Company 273)",
        f"{handoff}:escalation": "Overdue MQL hand-off: Ben Olsen (Company 273)",
    }
    assert escalations[f"{call}:escalation"].body == (
        "The hot-lead call task T1 was due 2026-11-19 20:00 UTC and is still open."
    )
    assert escalations[f"{handoff}:escalation"].body.startswith("The MQL hand-off task T2 was due")


def test_a_follow_ups_body_is_its_decisions_reasons_written_when_first_read():
    """Planning hands a call or hand-off its decision's reasons, written to text only when
    the body is read (most planned follow-ups exist already and are never sent); what is
    read, saved in the ledger and compared is that text."""
    decision = decide(person(SUNDAY - 2 * HOUR), Rules(), SUNDAY)
    assert [task.kind for task in decision.tasks] == ["hot_call"]
    text = format_reasons(decision.score.reasons)
    assert "demo request" in text
    for task in decision.tasks:
        assert task.body == text
        assert task.to_json()["body"] == text
        assert PlannedTask.from_json(task.to_json()) == task
        assert replace(task, contact_id="43").body == text
    assert PlannedTask(key="k", contact_id="1", kind="hot_call", subject="s", due=SUNDAY).body == ""
