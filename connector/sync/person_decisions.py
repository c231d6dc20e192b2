"""Deciding a run's contacts person by person (see `decision/person.py`, `sync/people.py`).

A changed record can change its whole person: its duplicates, which this run may not have
read, take the new decision too. Their facts come from the mirror; the engine says which of
them it may write now (a record with a dead run's open intents waits for the read that
settles it, but its facts still count). Every record of a group carries the group's id (the
person's key, which a person keeps while records join, leave or are merged), so the
duplicate flag and group id are written to each and cleared from a record that leaves.

The person's tasks go on its survivor alone, so a person whose survivor may not be written
now is not decided now: all its records wait (`Waiting`) and are decided again together once
the survivor's write has landed. Writing the others without it would move the person (its
stage into MQL, say) with no record to carry the tasks that move owes, and the survivor's
later decision would find the person moved already: a hand-off lost for good.

Deciding from the mirror, a person whose records fall in different chunks is decided once
per pass (`decided`): its facts cannot change within the pass, and deciding it again while
the first decision's tasks still wait to be sent would plan them twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from crm_qualify.connector.decision.person import merge_person, share_decision
from crm_qualify.connector.model import Contact, Decision, DuplicateReview
from crm_qualify.connector.sync.people import Person, person_key

Key = tuple[str, str]


@dataclass(frozen=True)
class Member:
    """A record of a person that the run did not read, as the mirror holds it."""

    contact: Contact
    hot_since: datetime | None
    writable: bool


@dataclass(frozen=True)
class Waiting:
    """The record's person waits for its survivor's write: decided later, all together."""


Decide = Callable[[Contact, datetime | None], Decision]


def decide_persons(
    contacts: Sequence[Contact],
    persons: dict[Key, Person],
    episodes: dict[Key, datetime | None],
    load: Callable[[list[Key]], dict[Key, Member]],
    decide: Decide,
    decided: set[str] | None = None,
) -> Iterator[tuple[Contact, Decision | Exception | Waiting]]:
    """(record, its decision or the error deciding it) for every record to write: the
    contacts given, and the other records of their persons that may be written now; a
    contact given whose person's survivor may not be written now, `Waiting`. A record alone,
    under its own person, is decided as before. `decided`: the persons of several records
    this pass has decided (skipped, and added to)."""
    batch = {(c.object_type, c.id): c for c in contacts}
    wanted = [
        member
        for key, person in persons.items()
        if key in batch
        for member in person.members
        if member not in batch
    ]
    loaded = load(sorted(set(wanted))) if wanted else {}
    done: set[Key] = set()
    for key, contact in batch.items():
        if key in done:
            continue
        person = persons.get(key)
        if person is None or (len(person.members) == 1 and person.key == person_key(key)):
            done.add(key)
            yield contact, _attempt(decide, contact, episodes.get(key))
            continue
        if decided is not None and person.key in decided:
            done.update(m for m in person.members if m in batch)
            continue
        facts = {m: batch[m] for m in person.members if m in batch}
        facts.update(
            {m: loaded[m].contact for m in person.members if m in loaded and m not in facts}
        )
        targets = [m for m in person.members if m in batch or (m in loaded and loaded[m].writable)]
        survivor = person.survivor if person.survivor in facts else next(iter(facts))
        if survivor not in targets:
            waiting = [m for m in person.members if m in batch]
            done.update(waiting)
            yield from ((batch[m], Waiting()) for m in waiting)
            continue
        starts = [
            since
            for m in facts
            if (since := episodes.get(m) if m in batch else loaded[m].hot_since) is not None
        ]
        grouped = len(person.members) > 1
        review = review_of(person, survivor) if grouped and person.review else None
        merged = merge_person(person.key, list(facts.values()), survivor, review)
        decision = _attempt(decide, merged, min(starts) if starts else None)
        if decided is not None:
            decided.add(person.key)
        group = person.key if grouped else None
        for member in targets:
            done.add(member)
            if isinstance(decision, Exception):
                yield facts[member], decision
            else:
                yield facts[member], share_decision(decision, facts[member], survivor, group)


def review_of(person: Person, survivor: Key) -> DuplicateReview:
    """What the owner reviews: the person's records, the one to keep first, and how they
    matched when this run grouped them (a person from the index alone does not say)."""
    ordered = sorted(person.members, key=lambda member: member != survivor)
    group = person.group
    return DuplicateReview(
        records=[f"{object_type}/{record_id}" for object_type, record_id in ordered],
        rules=list(group.rules) if group else [],
        confidence=group.confidence if group else None,
    )


def _attempt(decide: Decide, contact: Contact, hot_since: datetime | None) -> Decision | Exception:
    try:
        return decide(contact, hot_since)
    except Exception as exc:  # one record's failure is reported for it; the run goes on
        return exc
