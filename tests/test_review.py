"""`next_review`: the earliest moment a decision can change with the clock alone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.review import SAFETY_NET, next_review
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import (
    Contact,
    EngagementEvent,
    EventType,
    ExistingTask,
    Origin,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def review(contact: Contact, rules: Rules | None = None, now: datetime = NOW) -> datetime:
    rules = rules or Rules()
    return next_review(contact, decide(contact, rules, now), rules, now)


def person(*events: EngagementEvent, tasks: list[ExistingTask] | None = None) -> Contact:
    return Contact(id="7", origin=Origin.INBOUND, events=list(events), tasks=tasks or [])


def test_a_contact_without_anything_timed_is_looked_at_again_within_the_safety_net():
    assert review(person()) == NOW + SAFETY_NET


def test_an_occurrence_leaving_the_fresh_window_is_the_next_moment():
    opened = EngagementEvent(type=EventType.EMAIL_OPEN, at=NOW - 13 * DAY - 5 * HOUR)
    assert review(person(opened)) == opened.at + 15 * DAY  # 14 fresh days, then it decays


def test_a_decaying_signal_is_looked_at_again_the_day_its_points_can_round_otherwise():
    """A demo request 100 days old shows round(40 * 0.5 ** (86 / 90)) = 21 points; it shows
    20 once 40 * 0.5 ** ((days - 14) / 90) < 20.5, on day 101 of its age: not tomorrow."""
    demo = EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - 100 * DAY - 5 * HOUR)
    moment = review(person(demo))
    assert moment == demo.at + 101 * DAY
    rules = Rules()
    assert decide(person(demo), rules, NOW).score.intent == 21
    assert decide(person(demo), rules, moment - timedelta(seconds=1)).score.intent == 21
    assert decide(person(demo), rules, moment).score.intent == 20


def test_a_slow_signal_far_from_a_rounding_boundary_waits_for_the_safety_net():
    opened = EngagementEvent(type=EventType.EMAIL_OPEN, at=NOW - 200 * DAY - 5 * HOUR)
    assert review(person(opened)) == NOW + SAFETY_NET


def test_a_decision_from_other_events_or_another_moment_is_reviewed_on_the_contact_now():
    """A person's decision is shared with each of its records, and each record is reviewed
    on its own events; a decision from another moment is reviewed at this one. What scoring
    gathered for the decision must not stand in for either."""
    rules = Rules()
    demo = person(EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - 100 * DAY - 5 * HOUR))
    opened = person(EngagementEvent(type=EventType.EMAIL_OPEN, at=NOW - 200 * DAY - 5 * HOUR))
    demo_moment = demo.events[0].at + 101 * DAY
    assert next_review(demo, decide(opened, rules, NOW), rules, NOW) == demo_moment
    assert next_review(opened, decide(demo, rules, NOW), rules, NOW) == NOW + SAFETY_NET
    assert next_review(demo, decide(demo, rules, NOW - 30 * DAY), rules, NOW) == demo_moment


def test_a_fractional_trigger_window_ending_before_the_day_boundary_counts():
    demo = EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - 2 * HOUR)
    rules = Rules.model_validate({"temperature": {"hot_within_days": 0.25}})
    moment = review(person(demo), rules)
    assert demo.at + 6 * HOUR < moment <= demo.at + 6 * HOUR + timedelta(milliseconds=1)
    assert decide(person(demo), rules, demo.at + 6 * HOUR).temperature == "hot"
    assert decide(person(demo), rules, moment).temperature != "hot", "left the window"


def test_an_open_follow_up_is_reviewed_just_after_it_becomes_overdue():
    due = NOW + 3 * HOUR
    task = ExistingTask(id="T1", key="crmq:contact:7:mql_handoff", due=due)
    moment = review(person(tasks=[task]))
    assert due < moment <= due + timedelta(seconds=1)
    done = task.model_copy(update={"completed": True})
    assert review(person(tasks=[done])) == NOW + SAFETY_NET, "a completed one never escalates"


def test_a_follow_up_the_decision_plans_is_reviewed_when_it_can_become_overdue():
    """The call is created after this review is computed: its escalation is still on time."""
    demo = EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - 2 * HOUR)
    rules = Rules.model_validate({"followup": {"hot_recall_days": 0}})
    decision = decide(person(demo), rules, NOW)
    (call,) = [task for task in decision.tasks if task.kind == "hot_call"]
    grace = timedelta(hours=rules.followup.escalate_after_hours)
    moment = next_review(person(demo), decision, rules, NOW)
    assert call.due + grace < moment <= call.due + grace + timedelta(seconds=1)


def test_the_next_re_contact_slot_of_a_hot_episode():
    demo = EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - 20 * HOUR)
    rules = Rules.model_validate({"followup": {"hot_recall_days": 0.5}})
    contact = person(demo)
    decision = decide(contact, rules, NOW, hot_since=NOW - 10 * HOUR)
    assert next_review(contact, decision, rules, NOW) == NOW + 2 * HOUR


def test_deciding_at_the_review_moment_is_needed_and_before_it_is_not():
    """Between now and the review moment the decision does not move; at it, it may."""
    rules = Rules()
    events = [
        EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - 13 * DAY - 20 * HOUR),
        EngagementEvent(type=EventType.EMAIL_OPEN, at=NOW - 40 * DAY - 1 * HOUR, count=3),
    ]
    contact = person(*events)
    moment = review(contact, rules)
    before = decide(contact, rules, NOW).field_values()
    just_before = decide(contact, rules, moment - timedelta(seconds=1)).field_values()
    for values in (before, just_before):
        values.pop("scored_at")
    assert before == just_before


def test_no_decision_moves_before_its_review_moment_on_random_contacts():
    """Ages from the future to past the decay table, capped and fresh signals, a signal with
    its own half-life: deciding anywhere before the review moment, and just before it, gives
    the same fields and tasks."""
    rng = random.Random(5)
    rules = Rules.model_validate(
        {
            "followup": {"hot_recall_days": 2, "escalate_after_hours": 3},
            "decay": {"fresh_days": 10.5, "half_life_days_by_signal": {"email_open": 9}},
        }
    )
    kinds = list(EventType)
    for number in range(1500):
        events = [
            EngagementEvent(
                type=rng.choice(kinds),
                at=NOW - timedelta(hours=rng.choice((rng.uniform(-30, 24 * 400), 24 * 4000))),
                count=rng.choice((1, 2, 5, 40)),
            )
            for _ in range(rng.randint(0, 6))
        ]
        tasks = [
            ExistingTask(
                id="T1",
                key=f"crmq:contact:{number}:mql_handoff",
                due=NOW + timedelta(hours=rng.uniform(-30, 30)),
            )
        ]
        contact = Contact(id=str(number), origin=Origin.INBOUND, events=events, tasks=tasks)
        hot_since = NOW - timedelta(hours=rng.uniform(0, 100)) if rng.random() < 0.5 else None
        decision = decide(contact, rules, NOW, hot_since=hot_since)
        moment = next_review(contact, decision, rules, NOW)
        assert NOW < moment <= NOW + SAFETY_NET
        first = decision.field_values()
        first.pop("scored_at")
        for later in (NOW + (moment - NOW) * rng.uniform(0, 1), moment - timedelta(seconds=1)):
            again = decide(contact, rules, later, hot_since=decision.hot_since)
            second = again.field_values()
            second.pop("scored_at")
            assert first == second, (number, later)
            assert [t.key for t in again.tasks] == [t.key for t in decision.tasks], number


def test_a_date_at_the_end_of_the_calendar_makes_the_record_due_instead_of_failing():
    """Mirrored before adapters refused such dates (9999-12-31 in a CRM field): the window
    arithmetic cannot add to it, so the record is decided again at every run."""
    end = datetime(9999, 12, 31, tzinfo=UTC)
    assert review(person(EngagementEvent(type=EventType.DEMO_REQUEST, at=end))) == NOW
