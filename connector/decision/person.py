"""One person held by several CRM records: decided once, on everything the records know.

Scoring a Lead and the Contact it duplicates separately gives each half the engagement and
two follow-ups. Here the records of one person become one canonical contact (the union of
their engagement, deals, tasks and answers; the survivor's profile, filled in from the
others), the rules decide once, and the decision is shared: every record gets the person's
fields (each through its own write policies) and, where owned, the duplicate flag and group
id; the survivor alone gets the tasks, a review of the group among them when asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from crm_qualify.connector.decision.duplicates import PROFILE_FIELDS
from crm_qualify.connector.model import (
    Contact,
    CriterionStatus,
    Decision,
    DuplicateReview,
    EngagementEvent,
)

_ANSWER_RANK = {CriterionStatus.NOT_MET: 0, CriterionStatus.IN_PROGRESS: 1, CriterionStatus.MET: 2}


def merge_person(
    person: str,
    members: Sequence[Contact],
    survivor: tuple[str, str],
    review: DuplicateReview | None = None,
) -> Contact:
    """The person as one contact, keyed by `person` (`Lead:00Q...`), so the task keys its
    decision plans name the person, not one of its records. `review`: the group its owner
    is asked to review (planning gives it one task)."""
    ordered = sorted(members, key=lambda c: (c.object_type, c.id) != survivor)
    first = ordered[0]
    object_type, _, person_id = person.partition(":")
    profile = {
        name: next((value for c in ordered if (value := getattr(c, name)) not in (None, "")), None)
        for name in PROFILE_FIELDS
    }
    answers: dict[str, CriterionStatus] = {}
    for contact in ordered:
        for criterion, status in contact.qualification.items():
            if criterion not in answers or _ANSWER_RANK[status] > _ANSWER_RANK[answers[criterion]]:
                answers[criterion] = status
    stages = [c.stage for c in ordered if c.stage is not None]
    created = [c.created_at for c in ordered if c.created_at is not None]
    return first.model_copy(
        update={
            **profile,
            "id": person_id,
            "object_type": object_type,
            "created_at": min(created) if created else None,
            "stage": max(stages, key=lambda stage: stage.rank) if stages else None,
            "unsubscribed": any(c.unsubscribed for c in ordered),
            "qualification": answers,
            "events": _events(ordered),
            "deals": _union(ordered, "deals", lambda d: d.id),
            "tasks": _union(ordered, "tasks", lambda t: t.id),
            "merged_ids": [],
            "duplicate_review": review,
        }
    )


def share_decision(
    decision: Decision, member: Contact, survivor: tuple[str, str], group: str | None = None
) -> Decision:
    """The person's decision for one of its records: same fields; tasks on the survivor only,
    addressed to it (their keys keep naming the person). `group`: the id of the duplicate
    group the record is in (the person's key), None for a record alone."""
    is_survivor = (member.object_type, member.id) == survivor
    return replace(
        decision,
        contact_id=member.id,
        object_type=member.object_type,
        duplicate=group is not None,
        duplicate_group=group,
        tasks=[
            replace(task, contact_id=member.id, object_type=member.object_type)
            for task in decision.tasks
        ]
        if is_survivor
        else [],
    )


def _events(contacts: Sequence[Contact]) -> list[EngagementEvent]:
    """Each activity of the person once, however many of its records carry it: by the CRM's
    id where it names one (an engagement associated with two records, one moved onto a
    merged record; a campaign its records responded to alike, dated by the latest response).
    An event it does not name (a counter, a conversion the record's own properties show) may
    be one thing two records both show: it counts as often as the record that has it most, so
    two calls at one second on one record stay two."""
    named: dict[str, int] = {}
    most: Counter = Counter()
    kept: list[EngagementEvent] = []
    for contact in contacts:
        here: Counter = Counter()
        for event in contact.events:
            if event.source_id is not None:
                index = named.get(event.source_id)
                if index is not None:
                    if event.at > kept[index].at:
                        kept[index] = event
                    continue
                named[event.source_id] = len(kept)
            else:
                key = (event.type, event.at, event.detail, event.count)
                here[key] += 1
                if here[key] <= most[key]:
                    continue
                most[key] = here[key]
            kept.append(event)
    return kept


def _union(contacts: Sequence[Contact], attribute: str, identity) -> list:
    seen: dict = {}
    for contact in contacts:
        for item in getattr(contact, attribute):
            seen.setdefault(identity(item), item)
    return list(seen.values())
