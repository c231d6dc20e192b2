"""The CRM's clock from its answers' Date headers (connector/crm_clock.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.crm_clock import ClockOffsetError, CrmClock, check_offset

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


def test_an_offset_over_a_minute_is_said_and_one_over_the_limit_stops_the_run():
    assert check_offset(None, 60) is None
    assert check_offset(-45.0, 60) is None
    assert check_offset(-360.0, 60) == (
        "our clock is 6 minutes ahead of the CRM's (its Date header): decisions are that far"
        " off the CRM's time; set the host's time right (NTP)"
    )
    assert "2.0 hours behind the CRM's" in (check_offset(7200.0, 180) or "")
    with pytest.raises(ClockOffsetError, match=r"2\.0 hours behind .*max_clock_offset_minutes"):
        check_offset(7200.0, 60)
    assert check_offset(-86400.0 * 100, 0), "0: no limit, still said"
