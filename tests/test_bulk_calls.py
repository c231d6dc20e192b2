"""The calls held updates leave in with a bulk write API: full calls per object as the phase
goes on, and at its end the remainders packed, a remainder too short for a job of its own
riding along past the bound."""

from __future__ import annotations

from crm_qualify.connector.sync.bulk_calls import bulk_calls


def keys(sobject: str, count: int) -> list[tuple[str, str]]:
    return [(sobject, f"{sobject}-{n}") for n in range(count)]


def test_each_objects_full_calls_leave_while_the_phase_goes_on():
    held = keys("Contact", 23) + keys("Lead", 9)
    calls = bulk_calls(held, 10, 4, rest=False)
    assert [(call[0][0], len(call)) for call in calls] == [("Contact", 10), ("Contact", 10)]


def test_at_the_end_the_remainders_share_calls_where_they_fit():
    held = keys("Contact", 23) + keys("Lead", 6)
    calls = bulk_calls(held, 10, 4, rest=True)
    assert [len(call) for call in calls] == [10, 10, 9]
    assert sorted(key for call in calls for key in call) == sorted(held)


def test_a_remainder_too_short_for_a_job_rides_along_past_the_bound():
    """Alone, 3 Leads (under `bulk_from`, 4) would not be worth a job: they join the 9
    Contacts' call, 12 records against a bound of 10; no object's part passes 10."""
    held = keys("Contact", 19) + keys("Lead", 3)
    calls = bulk_calls(held, 10, 4, rest=True)
    assert [len(call) for call in calls] == [10, 12]
    assert {key[0] for key in calls[1]} == {"Contact", "Lead"}


def test_a_remainder_worth_a_job_of_its_own_does_not_ride_along():
    held = keys("Contact", 19) + keys("Lead", 5)
    assert [len(call) for call in bulk_calls(held, 10, 4, rest=True)] == [10, 9, 5]
