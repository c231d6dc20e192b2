"""The CRM's clock from its answers' Date headers (connector/crm_clock.py)."""

from datetime import UTC, datetime, timedelta

from crm_qualify.connector.crm_clock import CrmClock

OURS = datetime(2026, 12, 1, 18, 6, 50, tzinfo=UTC)


def clock_at(offset: timedelta | None) -> CrmClock:
    clock = CrmClock(ours=OURS.timestamp)
    if offset is not None:
        theirs = OURS + offset
        clock.observe(theirs.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    return clock


def test_a_crm_clock_behind_ours_bounds_a_position_to_its_now():
    assert clock_at(timedelta(minutes=-6)).bound(OURS) == OURS - timedelta(minutes=6)


def test_what_a_date_header_cannot_tell_changes_nothing():
    assert clock_at(None).bound(OURS) == OURS, "no answer yet"
    assert clock_at(timedelta(seconds=-1)).bound(OURS) == OURS, "within a header's precision"
    assert clock_at(timedelta(minutes=6)).bound(OURS) == OURS, "a CRM ahead: early is safe"
    earlier = OURS - timedelta(hours=1)
    assert clock_at(timedelta(minutes=-6)).bound(earlier) == earlier, "never later than asked"


def test_an_unreadable_date_is_ignored():
    clock = clock_at(timedelta(minutes=-6))
    for header in ("", "yesterday", "Tue, 01 Dec 2026 18:00:50"):
        clock.observe(header)
    assert clock.bound(OURS) == OURS - timedelta(minutes=6), "the last readable answer holds"
