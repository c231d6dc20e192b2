"""Salesforce: time reaches contacts nobody touched, with no read of them (tests/mirror_checks)."""

from datetime import UTC, datetime, timedelta
from functools import partial

from crm_qualify.adapters.salesforce.http import make_session
from simple_salesforce import Salesforce

from tests.mirror_checks import (
    OLD_ESCALATION_SUBJECT,
    TITLE,
    check_a_clock_ahead_of_the_crm_misses_no_edit,
    check_a_clock_far_from_the_crm_s_decides_nothing,
    check_a_deleted_follow_up_is_not_escalated,
    check_a_follow_up_a_person_rescheduled_is_not_escalated,
    check_a_follow_up_read_back_escalates_at_its_sla_time,
    check_a_late_follow_up_of_a_deleted_record_goes_with_it,
    check_a_record_deleted_in_the_crm_leaves_the_mirror_when_written,
    check_escalations_are_found_by_key_whatever_their_subject,
    check_every_follow_up_is_reviewed_by_its_due_time,
    check_time_reaches_untouched_contacts,
)


def test_untouched_contacts_cool_and_overdue_follow_ups_escalate_without_reads(
    adapter, store, settings
):
    check_time_reaches_untouched_contacts(adapter, store, settings)


def to_the_bin(sim, object_type: str, record_id: str) -> None:
    """As a person in Salesforce: the record goes to the recycle bin (a Lead or Contact with
    its tasks); queries no longer return it."""
    session = make_session(sim.ca_bundle_path)
    person = Salesforce(instance_url=sim.instance_url, session_id=sim.session_id, session=session)
    assert getattr(person, object_type).delete(record_id) == 204


def test_a_follow_up_deleted_in_salesforce_is_not_escalated(sim, adapter, store, settings):
    check_a_deleted_follow_up_is_not_escalated(
        adapter, store, settings, lambda task_id: to_the_bin(sim, "Task", task_id)
    )


def test_a_person_deleted_in_salesforce_leaves_the_mirror_when_written(
    sim, adapter, store, settings
):
    check_a_record_deleted_in_the_crm_leaves_the_mirror_when_written(
        adapter, store, settings, partial(to_the_bin, sim)
    )


def test_a_late_follow_up_of_a_person_deleted_in_salesforce_goes_with_it(
    sim, adapter, store, settings
):
    check_a_late_follow_up_of_a_deleted_record_goes_with_it(
        adapter, store, settings, partial(to_the_bin, sim)
    )


def test_our_clock_ahead_of_the_org_s_misses_no_person_edit(sim, adapter, store, settings):
    check_a_clock_ahead_of_the_crm_misses_no_edit(
        adapter, store, settings, lambda record: sim.touch(record, {"Title": TITLE})
    )


def test_a_follow_up_a_person_rescheduled_in_salesforce_is_not_escalated(
    sim, adapter, store, settings
):
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    check_a_follow_up_a_person_rescheduled_is_not_escalated(
        adapter, store, settings, lambda task: sim.touch(task, {"ActivityDate": in_a_month})
    )


def test_every_follow_up_is_reviewed_by_its_due_time(adapter, store, settings):
    check_every_follow_up_is_reviewed_by_its_due_time(adapter, store, settings)


def test_a_follow_up_read_back_escalates_at_its_sla_time(sim, adapter, store, settings):
    check_a_follow_up_read_back_escalates_at_its_sla_time(
        adapter, store, settings, lambda record: sim.touch(record, {"Title": TITLE})
    )


def test_escalations_are_found_by_key_whatever_their_subject(
    sim, adapter, store, settings, tmp_path
):
    check_escalations_are_found_by_key_whatever_their_subject(
        adapter,
        store,
        settings,
        lambda task_id: sim.touch(task_id, {"Subject": OLD_ESCALATION_SUBJECT}),
        tmp_path / "fresh.sqlite",
    )


def test_a_clock_days_from_the_org_s_decides_nothing(adapter, store, settings):
    check_a_clock_far_from_the_crm_s_decides_nothing(adapter, store, settings)
