"""HubSpot: time reaches contacts nobody touched, with no read of them (tests/mirror_checks)."""

from functools import partial

import requests

from tests.mirror_checks import (
    OLD_ESCALATION_SUBJECT,
    TITLE,
    check_a_clock_ahead_of_the_crm_misses_no_edit,
    check_a_clock_far_from_the_crm_s_decides_nothing,
    check_a_deleted_follow_up_is_not_escalated,
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


def archive(sim, object_type: str, record_id: str) -> None:
    """As a person in HubSpot: the record goes to the archive."""
    answer = requests.delete(
        f"{sim.base_url}/crm/v3/objects/{object_type}/{record_id}",
        headers={"Authorization": f"Bearer {sim.token}"},
        timeout=10,
    )
    assert answer.status_code == 204


def test_a_follow_up_deleted_in_hubspot_is_not_escalated(sim, adapter, store, settings):
    check_a_deleted_follow_up_is_not_escalated(
        adapter, store, settings, lambda task_id: archive(sim, "tasks", task_id)
    )


def test_a_contact_deleted_in_hubspot_leaves_the_mirror_when_written(sim, adapter, store, settings):
    check_a_record_deleted_in_the_crm_leaves_the_mirror_when_written(
        adapter, store, settings, partial(archive, sim)
    )


def test_a_late_follow_up_of_a_contact_deleted_in_hubspot_goes_with_it(
    sim, adapter, store, settings
):
    check_a_late_follow_up_of_a_deleted_record_goes_with_it(
        adapter, store, settings, partial(archive, sim)
    )


def test_our_clock_ahead_of_the_portal_s_misses_no_person_edit(sim, adapter, store, settings):
    check_a_clock_ahead_of_the_crm_misses_no_edit(
        adapter, store, settings, lambda record: sim.touch(record, {"jobtitle": TITLE})
    )


def test_every_follow_up_is_reviewed_by_its_due_time(adapter, store, settings):
    check_every_follow_up_is_reviewed_by_its_due_time(adapter, store, settings)


def test_a_follow_up_read_back_escalates_at_its_sla_time(sim, adapter, store, settings):
    check_a_follow_up_read_back_escalates_at_its_sla_time(
        adapter, store, settings, lambda record: sim.touch(record, {"jobtitle": TITLE})
    )


def test_escalations_are_found_by_key_whatever_their_subject(
    sim, adapter, store, settings, tmp_path
):
    def retitle(task_id: str) -> None:
        answer = requests.patch(
            f"{sim.base_url}/crm/v3/objects/tasks/{task_id}",
            json={"properties": {"hs_task_subject": OLD_ESCALATION_SUBJECT}},
            headers={"Authorization": f"Bearer {sim.token}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text

    check_escalations_are_found_by_key_whatever_their_subject(
        adapter, store, settings, retitle, tmp_path / "fresh.sqlite"
    )


def test_a_clock_days_from_the_portal_s_decides_nothing(adapter, store, settings):
    check_a_clock_far_from_the_crm_s_decides_nothing(adapter, store, settings)
