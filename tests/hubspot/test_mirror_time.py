"""HubSpot: time reaches contacts nobody touched, with no read of them (tests/mirror_checks)."""

from tests.mirror_checks import check_time_reaches_untouched_contacts


def test_untouched_contacts_cool_and_overdue_follow_ups_escalate_without_reads(
    adapter, store, settings
):
    check_time_reaches_untouched_contacts(adapter, store, settings)
