"""A full read groups people once, at its end (`People.regroup`): the same persons and groups
as grouping everyone at once, each block compared about once however many batches the read
took (grouping per batch compared every block a batch touched again, ever larger)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.model import Contact, ExistingTask
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync import people as people_module
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.people import People
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
FIRST = ["kim", "ann", "bo", "lee", "sam", "ada", "max", "eve"]
LAST = ["lee", "ng", "roy", "park", "cole", "shaw"]


def corpus(
    count: int, orgs: int, seed: int, first_names: list[str] = FIRST, nameless: float = 0.0
) -> list[Contact]:
    """Records at a few organisations with shared names, mailboxes and phones: groups by
    each rule, chains across rules, and records read in batches that split them; a share of
    them `nameless` (a phone or mailbox match with anyone)."""
    rng = random.Random(seed)
    records = []
    for n in range(count):
        first, last = rng.choice(first_names), rng.choice(LAST)
        domain = f"org{n % orgs}.com" if rng.random() < 0.8 else "gmail.com"
        named = not nameless or rng.random() >= nameless
        records.append(
            Contact(
                id=f"C{n:04d}",
                object_type="Contact" if n % 3 else "Lead",
                created_at=T0 - timedelta(days=rng.randint(0, 400)),
                updated_at=T0 + timedelta(seconds=n),
                first_name=first if named else None,
                last_name=last if named else None,
                email=f"{first.replace(' ', '')}.{last}{rng.randint(0, 3)}@{domain}",
                phone=f"+1415555{rng.randint(0, 60):04d}" if rng.random() < 0.3 else None,
                company=None if domain != "gmail.com" else rng.choice([None, "Org 1 Inc"]),
            )
        )
    return records


def stored_persons(store: StateStore) -> list[tuple]:
    return store._query("SELECT object_type, contact_id, person FROM people ORDER BY 1, 2")


def test_regroup_gives_the_persons_and_groups_of_grouping_everyone_at_once(tmp_path):
    contacts = corpus(240, orgs=6, seed=5)
    merged = contacts[7].model_copy(  # a CRM merge: its person is inherited
        update={"tasks": [ExistingTask(id="t", key="crmq:Lead:GONE:hot_call:20260301T0900")]}
    )
    contacts[7] = merged
    (persons, groups), (expected_persons, expected_groups) = regrouped_and_at_once(
        tmp_path, contacts
    )
    assert persons == expected_persons
    assert groups == expected_groups
    assert len(groups) >= 5, "the corpus has groups to compare"
    assert ("Lead" if 7 % 3 == 0 else "Contact", "C0007", "Lead:GONE") in persons


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_regroup_keeps_apart_what_grouping_everyone_at_once_keeps_apart(tmp_path, seed):
    """Nameless records on shared numbers and names one letter apart (Dan / Dana, Mary /
    Mary Ann): a record that matches two people told apart joins neither, which depends on
    every record it matches. Regrouping joined a block's groups, formed without the records
    of the other blocks, and grouped records grouping everyone at once kept apart."""
    names = [*FIRST, "dana", "dan", "paula", "paul", "mary ann", "mary"]
    contacts = corpus(240, orgs=6, seed=seed, first_names=names, nameless=0.15)
    (persons, groups), (expected_persons, expected_groups) = regrouped_and_at_once(
        tmp_path, contacts
    )
    assert persons == expected_persons
    assert groups == expected_groups


def regrouped_and_at_once(tmp_path, contacts: list[Contact]) -> list[tuple[list, dict]]:
    """The stored persons and the groups after a full read's `regroup`, then after resolving
    every record at once."""
    results = []
    for name in ("batches", "once"):
        store = StateStore(tmp_path / f"{name}.sqlite")
        people = People(store, IdentityRules())
        for start in range(0, len(contacts), 20):
            people.index("i", contacts[start : start + 20])
        if name == "batches":
            groups = people.regroup("i")
        else:
            persons = people.resolve("i", contacts)
            groups = {p.key: p.group for p in persons.values() if p.group}
        shape = {k: (g.members, g.survivor, g.rules, g.confidence) for k, g in groups.items()}
        results.append((stored_persons(store), shape))
        store.close()
    return results


def test_a_record_that_left_its_group_gets_its_own_person_back(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    people = People(store, IdentityRules())
    a = Contact(id="A", created_at=T0, email="kim@acme.com", first_name="Kim", last_name="Lee")
    b = Contact(id="B", created_at=T0 + timedelta(days=1), email="kim@acme.com")
    people.index("i", [a, b])
    people.regroup("i")
    assert {row[2] for row in stored_persons(store)} == {"contact:A"}
    people.index("i", [b.model_copy(update={"email": "bo@initech.com"})])
    assert people.regroup("i") == {}
    assert stored_persons(store) == [("contact", "A", "contact:A"), ("contact", "B", "contact:B")]
    store.close()


def test_a_full_read_in_many_batches_compares_each_block_about_once(tmp_path, monkeypatch):
    """600 records at 12 organisations, read 25 at a time in an order that spreads every
    organisation over every batch: duplicate detection is given each record at most once
    per kind of block (mailbox, phone, organisation, name) and once with its group, however
    many batches (grouping per batch gave it each record about 12 times)."""
    contacts = corpus(600, orgs=12, seed=9)
    compared = [0]
    original = people_module.group_candidates

    def counted(candidates, rules):
        compared[0] += len(candidates)
        return original(candidates, rules)

    monkeypatch.setattr(people_module, "group_candidates", counted)
    store = StateStore(tmp_path / "state.sqlite")
    engine = SyncEngine(MemoryAdapter(contacts, batch_size=25), Settings(), store)
    summary = engine.run(RunOptions(now=T0))
    assert summary.status == "ok", summary.errors
    assert summary.counts["read"] == 600
    assert compared[0] <= 5 * 600, compared[0]
    grouped = store._query("SELECT COUNT(*) FROM people GROUP BY person HAVING COUNT(*) > 1")
    assert len(grouped) == len(engine._groups) > 0
    store.close()
