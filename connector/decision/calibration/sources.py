"""Where the people come from: the mirror (no API call) or, without one, the CRM itself.

Through the adapter it costs a full read (every person, with engagement and deals) plus the
closed deals `fetch_outcomes` finds since the window opened; a person who cannot be read or
translated is counted and left out, never a reason to stop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from crm_qualify.connector.contract import Adapter
from crm_qualify.connector.decision.calibration.dataset import (
    Dataset,
    build_dataset,
    deals_from_outcomes,
)
from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.decision.person import merge_person
from crm_qualify.connector.model import Contact
from crm_qualify.connector.sync import boundary
from crm_qualify.connector.sync.people import People
from crm_qualify.connector.sync.records import translate_batch
from crm_qualify.connector.sync.state import StateStore


def mirrored(store: StateStore, instance: str) -> Iterator[Contact]:
    for chunk in store.mirrored_contacts(instance):
        yield from chunk


def mirrored_people(
    store: StateStore, instance: str, identity: IdentityRules
) -> Iterator[tuple[Contact, int]]:
    """Each mirrored person as a run decides it, with how many records take its decision: a
    record alone as it is, a person of several records merged (`decision/person.py`), with
    the groups the last run stored (`People.stored`)."""
    people = People(store, identity)
    done: set[str] = set()
    for chunk in store.mirrored_contacts(instance):
        records = {(c.object_type, c.id): c for c in chunk}
        persons = people.stored(instance, list(records))
        for key, contact in records.items():
            person = persons.get(key)
            if person is None or len(person.members) == 1:
                yield contact, 1
                continue
            if person.key in done:
                continue
            done.add(person.key)
            facts = {m: records[m] for m in person.members if m in records}
            missing = [m for m in person.members if m not in facts]
            facts |= {
                m: found.contact for m, found in store.mirror.by_keys(instance, missing).items()
            }
            survivor = person.survivor if person.survivor in facts else next(iter(facts))
            yield merge_person(person.key, list(facts.values()), survivor), len(facts)


def from_mirror(
    store: StateStore,
    instance: str,
    settings: CalibrateSettings,
    since: datetime,
    until: datetime,
) -> Dataset:
    return build_dataset(mirrored(store, instance), settings, since, until, "mirror")


def read_everyone(
    adapter: Adapter, until: datetime, progress: Callable[[int], None] | None = None
) -> tuple[list[Contact], int]:
    """Every person in the CRM (a full read), and how many could not be read."""
    contacts: list[Contact] = []
    unreadable = 0
    for batch in boundary.read_changed(adapter, None, until=until):
        found, errors = translate_batch(batch)
        contacts += found
        unreadable += len(errors)
        if progress:
            progress(len(found))
    return contacts, unreadable


def from_adapter(
    adapter: Adapter,
    settings: CalibrateSettings,
    since: datetime,
    until: datetime,
    progress: Callable[[int], None] | None = None,
) -> tuple[Dataset, list[Contact]]:
    """The dataset and the people read (the impact is measured on them). Deals closed up to a
    horizon before the window opened are fetched too: a person's first deal decides."""
    lookback = since - timedelta(days=settings.horizon_days)
    closed = deals_from_outcomes(adapter.fetch_outcomes(lookback))
    contacts, unreadable = read_everyone(adapter, until, progress)
    dataset = build_dataset(contacts, settings, since, until, "adapter", closed)
    if unreadable:
        dataset.skipped["could not be read"] = unreadable
    dataset.api_requests = sum(adapter.usage().requests.values())
    return dataset, contacts
