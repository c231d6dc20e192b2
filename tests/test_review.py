"""`next_review`: the earliest moment a decision can change with the clock alone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.review import next_review
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


def test_a_contact_without_anything_timed_is_looked_at_again_within_a_day():
    assert review(person()) == NOW + DAY


def test_an_event_turning_a_day_older_is_the_next_moment():
    opened = EngagementEvent(type=EventType.EMAIL_OPEN, at=NOW - 3 * DAY - 5 * HOUR)
    assert review(person(opened)) == opened.at + 4 * DAY


def test_a_fractional_trigger_window_ending_before_the_day_boundary_counts():
    demo = EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - 2 * HOUR)
    rules = Rules.model_validate({"temperature": {"hot_within_days": 0.25}})
    assert review(person(demo), rules) == demo.at + 6 * HOUR


def test_an_open_follow_up_is_reviewed_just_after_it_becomes_overdue():
    due = NOW + 3 * HOUR
    task = ExistingTask(id="T1", key="crmq:contact:7:mql_handoff", due=due)
    moment = review(person(tasks=[task]))
    assert due < moment <= due + timedelta(seconds=1)
    done = task.model_copy(update={"completed": True})
    assert review(person(tasks=[done])) == NOW + DAY, "a completed follow-up never escalates"


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
    rng = random.Random(5)
    rules = Rules.model_validate({"followup": {"hot_recall_days": 2, "escalate_after_hours": 3}})
    kinds = list(EventType)
    for number in range(300):
        events = [
            EngagementEvent(
                type=rng.choice(kinds),
                at=NOW - timedelta(hours=rng.uniform(0, 24 * 120)),
                count=rng.choice((1, 2, 5)),
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
        assert moment > NOW
        later = NOW + (moment - NOW) * rng.uniform(0, 0.999)
        again = decide(contact, rules, later, hot_since=decision.hot_since)
        first, second = decision.field_values(), again.field_values()
        first.pop("scored_at"), second.pop("scored_at")
        assert first == second, (number, later)
        assert [t.key for t in again.tasks] == [t.key for t in decision.tasks], number
