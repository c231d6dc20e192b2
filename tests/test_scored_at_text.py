"""What the decision path remembers to save work (issue 9) gives what computing it afresh
gives: `scored_at`, written once per moment, in that moment's own offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import Contact, EngagementEvent, EventType, Origin

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def demo_requests(count: int, days_ago: float) -> Contact:
    at = NOW - timedelta(days=days_ago)
    events = [EngagementEvent(type=EventType.DEMO_REQUEST, at=at, count=count)]
    return Contact(id="c1", origin=Origin.INBOUND, events=events)


def test_scored_at_is_written_for_each_moment_in_its_own_offset() -> None:
    contact, rules = demo_requests(1, days_ago=1), Rules()
    same_instant = NOW.astimezone(timezone(timedelta(hours=1)))
    later = NOW + timedelta(microseconds=5)
    for moment, text in [
        (NOW, "2026-11-22T12:00:00Z"),
        (same_instant, "2026-11-22T13:00:00+01:00"),
        (NOW, "2026-11-22T12:00:00Z"),
        (later, "2026-11-22T12:00:00.000005Z"),
    ]:
        assert decide(contact, rules, moment).field_values()["scored_at"] == text
