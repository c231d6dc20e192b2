"""Who is who across records: the identity index beside the mirror, and each record's person.

A run reads a few changed records, but a changed record's duplicates may be anywhere in the
mirror. The `people` table keeps every mirrored record's matching keys (mailbox, phone,
organisation, name), indexed, so a record's group is found by a few indexed look-ups instead
of a scan.

Each record belongs to a *person*, named by the key of a record (`Lead:00Q...`). Task keys
carry the person, not the record, so:
- the records of one person share their follow-ups (one call, not one per record);
- a merge in the CRM creates nothing new: the surviving record inherits the person of the
  records merged into it, known from the crm-qualify task keys it now carries (both CRMs move
  activities to the survivor) and from the CRM's own merge trail (`merged_ids`).
A person, once given, is kept: when two people turn out to be one, the older person wins (the
one whose tasks exist), so no key that was used is ever replaced by a new one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from crm_qualify.connector.decision.duplicates import (
    Candidate,
    DisjointSets,
    DuplicateGroup,
    find_matches,
    group_candidates,
)
from crm_qualify.connector.decision.identity_keys import IdentityKeys
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.decision.planning import KEY_PREFIX
from crm_qualify.connector.model import Contact
from crm_qualify.connector.sync.mirror import by_type

if TYPE_CHECKING:
    from crm_qualify.connector.sync.state import StateStore

Key = tuple[str, str]

SCHEMA = """
CREATE TABLE IF NOT EXISTS people (
    instance TEXT NOT NULL, object_type TEXT NOT NULL, contact_id TEXT NOT NULL,
    email TEXT, phone TEXT, name TEXT, organisation TEXT, company TEXT, created_at TEXT,
    completeness INTEGER NOT NULL DEFAULT 0, inherited TEXT, person TEXT NOT NULL,
    PRIMARY KEY (instance, object_type, contact_id));
CREATE INDEX IF NOT EXISTS people_by_email ON people (instance, email) WHERE email IS NOT NULL;
CREATE INDEX IF NOT EXISTS people_by_phone ON people (instance, phone) WHERE phone IS NOT NULL;
CREATE INDEX IF NOT EXISTS people_by_organisation
    ON people (instance, organisation) WHERE organisation IS NOT NULL;
CREATE INDEX IF NOT EXISTS people_by_name ON people (instance, name) WHERE name IS NOT NULL;
CREATE INDEX IF NOT EXISTS people_by_person ON people (instance, person);
"""

MAX_BLOCK = 200
"""Records sharing one organisation or name considered at most: a block larger than this (a
big employer's domain) is compared by mailbox and phone only, which keeps a run's cost
bounded; the `duplicates` report compares every record."""

REGROUP_ROWS = 2000
"""Rows `regroup` compares at a time: whole blocks, so memory stays flat at any size."""

_COLUMNS = (
    "object_type, contact_id, email, phone, name, organisation, company, created_at,"
    " completeness, inherited, person"
)
_BLOCKS = (
    ("email", 2, None),
    ("phone", 3, None),
    ("organisation", 5, MAX_BLOCK),
    ("name", 4, MAX_BLOCK),
)
_INHERITED, _PERSON = 9, 10


@dataclass(frozen=True)
class Person:
    """The person a record belongs to, and the records that are that person."""

    key: str
    members: tuple[Key, ...]
    survivor: Key
    group: DuplicateGroup | None = None
    review: bool = False
    """`[identity] review_task`: a person of several records gets a review task."""


def person_key(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def task_person(task_key: str | None) -> str | None:
    """The person a crm-qualify task key names (`crmq:Lead:00Q1:hot_call:...` -> `Lead:00Q1`)."""
    if not task_key or not task_key.startswith(KEY_PREFIX):
        return None
    parts = task_key.removeprefix(KEY_PREFIX).split(":")
    return f"{parts[0]}:{parts[1]}" if len(parts) >= 3 else None


class People:
    """The `people` table of one state store (`StateStore.people`)."""

    def __init__(self, store: StateStore, rules: IdentityRules | None = None) -> None:
        self._store = store
        self.rules = rules or IdentityRules()
        self.hidden: frozenset[Key] = frozenset()
        """Records a dry full read found gone: in no group while it decides, as after the real
        run's `forget`, the index itself untouched."""

    def index(self, instance: str, contacts: Sequence[Contact]) -> None:
        """Record each contact's matching keys; a record seen for the first time is its own
        person until a group says otherwise."""
        trail = [(c.object_type, merged) for c in contacts for merged in c.merged_ids]
        trail += [(c.object_type, c.id) for c in contacts if c.merged_ids]
        known = dict(self._rows(instance, trail)) if trail else {}
        rows = []
        for contact in contacts:
            candidate = Candidate.of(contact, self.rules)
            keys = candidate.keys
            rows.append(
                (
                    instance,
                    contact.object_type,
                    contact.id,
                    keys.email,
                    keys.phone,
                    keys.name,
                    keys.organisation,
                    candidate.company,
                    contact.created_at.isoformat() if contact.created_at else None,
                    candidate.completeness,
                    inherited := _inherited(contact, known),
                    inherited or person_key((contact.object_type, contact.id)),
                )
            )
        with self._store._tx() as conn:
            conn.executemany(
                "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (instance, object_type, contact_id) DO UPDATE SET"
                " email = excluded.email, phone = excluded.phone, name = excluded.name,"
                " organisation = excluded.organisation, company = excluded.company,"
                " created_at = excluded.created_at, completeness = excluded.completeness,"
                " inherited = excluded.inherited",
                rows,
            )

    def resolve(
        self,
        instance: str,
        contacts: Sequence[Contact],
        *,
        persist: bool = True,
        also: Sequence[Key] = (),
    ) -> dict[Key, Person]:
        """Each contact's person, with every record of it the mirror knows; and the person of
        each record left behind, that was one person with a contact and is no longer (the
        contact changed), or whose group a contact split (its nameless record matches the
        contact's switchboard number too: it is now a guess): it is to be decided again now,
        alone or with its new group. Every record of the blocks looked at is regrouped and
        its person stored, so a record that left a group leaves its person too, and `stored`
        gives the next run the same answer without comparing anything. `persist` False (a
        dry run) changes nothing stored. `also`: mirrored records resolved with them (those
        a record gone from the CRM left, `forget`)."""
        keys = dict.fromkeys([*((c.object_type, c.id) for c in contacts), *also])
        return self._resolve(instance, list(keys), persist)

    def regroup(self, instance: str) -> dict[str, DuplicateGroup]:
        """After a full read: every record of the index grouped again, each person's stored,
        and the group of each person of several records. A full read indexes batch by batch
        and groups only here, at its end: a batch's records are scattered over the blocks,
        so grouping each batch (`resolve`) compared every block it touched again, and each
        block got touched by ever more batches as the read grew. Here each block (records
        sharing a mailbox, phone, organisation or name; see `MAX_BLOCK`) is compared once,
        whole; the records its matches connect, across blocks, are then grouped together.
        The matches, not a block's groups, connect them: whether a record joins a group
        (or, matching two people told apart, neither) depends on every record it matches."""
        if not self.rules.enabled:
            return {}
        joined = DisjointSets[Key]()
        for column, _, limit in _BLOCKS:
            for rows in self._blocks_of(instance, column, limit):
                for match in find_matches([_candidate(row) for row in rows], self.rules):
                    joined.join(match.a, match.b)
        components = joined.groups()
        rows = dict(self._rows(instance, [key for keys in components for key in keys]))
        rows.update(
            ((row[0], row[1]), row)
            for row in self._store._query(
                f"SELECT {_COLUMNS} FROM people WHERE instance = ? AND"
                " (inherited IS NOT NULL OR person != object_type || ':' || contact_id)",
                [instance],
            )
        )
        named = {row[_PERSON] for row in rows.values()}
        indexed = {person_key(key) for key, _ in self._rows(instance, _keys_named(named))}
        found: dict[str, DuplicateGroup] = {}
        people: list[tuple[list[tuple], DuplicateGroup | None]] = []
        grouped: set[Key] = set()
        for keys in components:
            candidates = [_candidate(rows[key]) for key in sorted(keys)]
            for group in group_candidates(candidates, self.rules):
                people.append(([rows[m] for m in group.members], group))
                grouped.update(group.members)
        people += [([row], None) for key, row in rows.items() if key not in grouped]
        changes: list[tuple[str, str, str, str]] = []
        for members, group in people:
            person = _person_of(members, indexed)
            if group is not None:
                found[person] = group
            changes += [(person, instance, r[0], r[1]) for r in members if r[_PERSON] != person]
        if changes:
            with self._store._tx() as conn:
                conn.executemany(
                    "UPDATE people SET person = ?"
                    " WHERE instance = ? AND object_type = ? AND contact_id = ?",
                    changes,
                )
        return found

    def _blocks_of(self, instance: str, column: str, limit: int | None) -> Iterable[list[tuple]]:
        """The rows of every block of `column` with two records or more (and at most `limit`),
        whole blocks at a time, about `REGROUP_ROWS` rows a time."""
        capped = "" if limit is None else f" AND COUNT(*) <= {int(limit)}"
        sizes = self._store._query(
            f"SELECT {column}, COUNT(*) FROM people WHERE instance = ? AND {column} IS NOT NULL"
            f" GROUP BY {column} HAVING COUNT(*) > 1{capped}",
            [instance],
        )
        values: list[str] = []
        count = 0
        for number, (value, size) in enumerate(sizes, 1):
            values.append(value)
            count += size
            if count >= REGROUP_ROWS or number == len(sizes):
                yield self._store._query(
                    f"SELECT {_COLUMNS} FROM people WHERE instance = ?"
                    f" AND {column} IN ({','.join('?' * len(values))})",
                    [instance, *values],
                )
                values, count = [], 0

    def _resolve(self, instance: str, keys: Sequence[Key], persist: bool) -> dict[Key, Person]:
        if not self.rules.enabled:
            return {key: Person(_own(row), (key,), key) for key, row in self._rows(instance, keys)}
        rows = self._block(instance, keys)
        if self.hidden:
            rows = {key: row for key, row in rows.items() if key not in self.hidden}
        groups = group_candidates([_candidate(row) for row in rows.values()], self.rules)
        grouped = {member for group in groups for member in group.members}
        people = [(tuple(g.members), g.survivor, g) for g in groups] + [
            ((key,), key, None) for key in rows if key not in grouped
        ]
        resolved: dict[Key, Person] = {}
        changes: list[tuple[str, str, str, str]] = []
        block_persons = {person_key(key) for key in rows}
        for members, survivor, group in people:
            person = _person_of([rows[m] for m in members], block_persons)
            for member in members:
                resolved[member] = Person(person, members, survivor, group, self.rules.review_task)
                if rows[member][_PERSON] != person:
                    changes.append((person, instance, *member))
        if changes and persist:
            with self._store._tx() as conn:
                conn.executemany(
                    "UPDATE people SET person = ?"
                    " WHERE instance = ? AND object_type = ? AND contact_id = ?",
                    changes,
                )
        asked = {key: resolved[key] for key in keys if key in resolved}
        before = {rows[key][_PERSON] for key in asked}
        now = {person.key for person in asked.values()}
        moved = {
            rows[key][_PERSON]
            for key, person in resolved.items()
            if rows[key][_PERSON] != person.key
        }
        lost = before | moved  # persons a record left: what stays of them is decided again
        left = {
            key: person
            for key, person in resolved.items()
            if key not in asked and rows[key][_PERSON] in lost and person.key not in now
        }
        return asked | left

    def stored(self, instance: str, keys: Sequence[Key]) -> dict[Key, Person]:
        """The persons `resolve` last gave these records, with their other records: for
        records nobody changed, whose groups cannot have changed either. The mirror is
        re-decided through here, chunk by chunk: one query per 500 records gives each its
        person and whether it is that person's only record (most are), and only the persons
        of several records are read in full (`_shared`), one `Person` per person."""
        review = self.rules.review_task
        result: dict[Key, Person] = {}
        shared: list[Key] = []
        for object_type, ids in by_type(keys).items():
            for chunk in _chunks(ids):
                for contact_id, name, alone in self._store._query(
                    "SELECT p.contact_id, p.person, (SELECT COUNT(*) FROM people q"
                    " WHERE q.instance = p.instance AND q.person = p.person) = 1"
                    " FROM people p WHERE p.instance = ?"
                    f" AND p.object_type = ? AND p.contact_id IN ({','.join('?' * len(chunk))})",
                    [instance, object_type, *chunk],
                ):
                    key = (object_type, contact_id)
                    if alone:
                        result[key] = Person(name, (key,), key, None, review)
                    else:
                        shared.append(key)
        if shared:
            result.update(self._shared(instance, shared))
        return result

    def _shared(self, instance: str, keys: Sequence[Key]) -> dict[Key, Person]:
        """`stored` for records whose person has other records: the rows of every person
        they belong to, one query per 500 records."""
        wanted = set(keys)
        persons: dict[str, dict[Key, tuple]] = {}
        for object_type, ids in by_type(keys).items():
            for chunk in _chunks(ids):
                for row in self._store._query(
                    f"SELECT {_COLUMNS} FROM people WHERE instance = ? AND person IN"
                    " (SELECT person FROM people WHERE instance = ? AND object_type = ?"
                    f" AND contact_id IN ({','.join('?' * len(chunk))}))",
                    [instance, instance, object_type, *chunk],
                ):
                    persons.setdefault(row[_PERSON], {})[(row[0], row[1])] = row
        review = self.rules.review_task
        result = {}
        for name, rows in persons.items():
            if len(rows) == 1:
                (key,) = rows
                result[key] = Person(name, (key,), key, None, review)
                continue
            ordered = sorted(rows.values(), key=_oldest_first)
            members = tuple((row[0], row[1]) for row in ordered)
            person = Person(name, members, _survivor(ordered, self.rules), None, review)
            result.update((key, person) for key in members if key in wanted)
        return result

    def _block(self, instance: str, keys: Sequence[Key]) -> dict[Key, tuple]:
        """The rows of `keys` and of every record sharing a mailbox, phone, person,
        organisation or name with them: all a duplicate group of theirs can contain."""
        found = dict(self._rows(instance, keys))
        seeds = list(found.values())
        for column, position, limit in (*_BLOCKS, ("person", _PERSON, None)):
            values = sorted({row[position] for row in seeds if row[position] is not None})
            for chunk in _chunks(values):
                marks = ",".join("?" * len(chunk))
                if limit is not None:
                    chunk = [
                        value
                        for value, size in self._store._query(
                            f"SELECT {column}, COUNT(*) FROM people WHERE instance = ?"
                            f" AND {column} IN ({marks}) GROUP BY {column}",
                            [instance, *chunk],
                        )
                        if size <= limit  # too big to compare in a run (see MAX_BLOCK)
                    ]
                    marks = ",".join("?" * len(chunk))
                if not chunk:
                    continue
                for row in self._store._query(
                    f"SELECT {_COLUMNS} FROM people WHERE instance = ? AND {column} IN ({marks})",
                    [instance, *chunk],
                ):
                    found.setdefault((row[0], row[1]), row)
        return found

    def _rows(self, instance: str, keys: Sequence[Key]) -> Iterable[tuple[Key, tuple]]:
        for object_type, ids in by_type(keys).items():
            for chunk in _chunks(ids):
                for row in self._store._query(
                    f"SELECT {_COLUMNS} FROM people WHERE instance = ? AND object_type = ?"
                    f" AND contact_id IN ({','.join('?' * len(chunk))})",
                    [instance, object_type, *chunk],
                ):
                    yield (row[0], row[1]), row

    def prune(self, instance: str) -> None:
        """After a full read: records that left the mirror (deleted or merged in the CRM)
        leave the index, so no group counts them."""
        with self._store._tx() as conn:
            conn.execute(
                "DELETE FROM people WHERE instance = ? AND NOT EXISTS (SELECT 1 FROM mirror m"
                " WHERE m.instance = people.instance AND m.object_type = people.object_type"
                " AND m.contact_id = people.contact_id)",
                (instance,),
            )

    def members(self, instance: str, persons: Iterable[str]) -> list[Key]:
        """The records the index gives these persons."""
        names = sorted(set(persons))
        found: list[Key] = []
        for chunk in _chunks(names):
            found += self._store._query(
                "SELECT object_type, contact_id FROM people WHERE instance = ?"
                f" AND person IN ({','.join('?' * len(chunk))})",
                [instance, *chunk],
            )
        return [(row[0], row[1]) for row in found]

    def forget(self, instance: str, keys: Iterable[Key], *, persist: bool = True) -> list[Key]:
        """Records gone from the CRM (deleted, merged away) leave the index. Returns the other
        records of the persons they were: one person with them no more, to be grouped and
        decided again without them. `persist` False (a dry run): they are only `hidden`, so
        the real run after it still finds whose they were."""
        keys = list(keys)
        persons = {row[_PERSON] for _, row in self._rows(instance, keys)}
        if persist:
            with self._store._tx() as conn:
                conn.executemany(
                    "DELETE FROM people WHERE instance = ? AND object_type = ? AND contact_id = ?",
                    [(instance, *key) for key in keys],
                )
        else:
            self.hidden |= set(keys)
        left = self.members(instance, persons) if persons else []
        return [key for key in left if key not in self.hidden]


def _keys_named(persons: Iterable[str]) -> list[Key]:
    """The record each person is named after (`person_key`)."""
    return [(name[0], name[1]) for person in persons if len(name := person.split(":", 1)) == 2]


def _candidate(row: tuple) -> Candidate:
    return Candidate(
        key=(row[0], row[1]),
        keys=IdentityKeys(email=row[2], phone=row[3], name=row[4], organisation=row[5]),
        company=row[6],
        created_at=datetime.fromisoformat(row[7]) if row[7] else None,
        completeness=row[8],
    )


def _inherited(contact: Contact, known: dict[Key, tuple]) -> str | None:
    """The oldest person this record carries from a merge: named by the crm-qualify task keys
    moved onto it, or by the CRM's merge trail (`merged_ids`, same object type): the person
    the index gave each merged record (a Lead merged into another of its group brings the
    group's person, not its own name). A merged record the index no longer holds (a later
    read of the trail) names only a record new to the index: one it holds already has the
    merge in its stored person."""
    named = {person for task in contact.tasks if (person := task_person(task.key))}
    new = (contact.object_type, contact.id) not in known
    for merged in contact.merged_ids:
        key = (contact.object_type, merged)
        if key in known:
            named.add(known[key][_PERSON])
        elif new:
            named.add(person_key(key))
    named.discard(person_key((contact.object_type, contact.id)))
    return min(named) if named else None


def _person_of(members: list[tuple], block_persons: set[str]) -> str:
    """A group's person: inherited from a merge if any (its tasks exist), else the person
    most of its members already had (the oldest member's among equals), counting only
    persons named after a record of this group or after a record that is gone (merged
    away). A record joining a group takes the group's person, even an older record: the
    group keeps its id in the CRM. A record that left a group does not take the group's
    person with it."""
    inherited = sorted(row[_INHERITED] for row in members if row[_INHERITED])
    if inherited:
        return inherited[0]
    keys = {person_key((row[0], row[1])) for row in members}
    held = [
        row[_PERSON]
        for row in sorted(members, key=_oldest_first)
        if row[_PERSON] in keys or row[_PERSON] not in block_persons
    ]
    if not held:
        return person_key((members[0][0], members[0][1]))
    shares = Counter(held)
    return max(held, key=shares.__getitem__)


def _oldest_first(row: tuple) -> tuple[bool, str, str, str]:
    return (row[7] is None, row[7] or "", row[0], row[1])


def _survivor(rows: list[tuple], rules: IdentityRules) -> Key:
    row = max(rows, key=lambda r: r[8]) if rules.survivor == "most_complete" else rows[0]
    return (row[0], row[1])


def _own(row: tuple) -> str:
    return row[_INHERITED] or person_key((row[0], row[1]))


def _chunks(values: Sequence, size: int = 500) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
