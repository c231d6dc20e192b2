"""The mirror: every contact the connector has read, as canonical facts, in the state store.

Decisions change with the clock (decay, cooling, re-nurture, overdue follow-ups) and with the
rules, not only with the contact. So every run re-decides every mirrored contact, streamed in
chunks, and diffs against the CRM values the mirror holds: a contact nobody touched still cools
on the day the rules say, with no read of it.

The mirror is kept true by three things:
- each read replaces the record's facts (`upsert`);
- each acknowledged write and task creation is applied to them (`record_batch`), so the next
  run's diff sees what the CRM now holds and an idle rerun writes nothing;
- a scheduled full read (`prune_unseen`) drops records deleted or merged in the CRM.

Own writes are recognised without a read (`known_versions`): a changed-record hit whose CRM
stamp is the version we last read, or the stamp of our own acknowledged write (exactly, when
the CRM returned it; else any stamp inside our write's round trip), needs no batch read. A
stamp alone cannot tell whether someone else changed the record between our read of it and
our write (a form submitted, a rep's edit, while the run was under way: our write's stamp is
the later one), so where the adapter gives a hit the digest of the fields our writes never
change (`Contact.source_digest`, kept in the `digest` column), the hit is ours only while
that digest is the one read; and where it gives the owned values the hit carries (as
`Contact.owned` holds them), a hit at our write's own version only while they are the ones
the mirror holds, our acknowledged writes applied, compared as the diff compares them
(`same`): a rep who set the stage or one of our fields meanwhile is read, so the diff and
the write policies see the rep's value. Without them (Salesforce, whose query leaves out
records we changed last; plugins), such a change waits for the next full read
(`sync.reconcile_every_days`).

What each decision leaves for the next run (its hot episode's start, when it can next change)
lives in a narrow table of its own, `mirror_review`, in key order: every run updates it for
every contact it decides whose values moved, which on the wide mirror row (its facts are about
a kilobyte) cost a page write per contact; here a page holds dozens. A run whose contacts are
mostly not due reads the narrow table and only the due contacts' facts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any

from crm_qualify.connector.contract import Hit
from crm_qualify.connector.decision.planning import task_kind
from crm_qualify.connector.model import Contact, PlannedTask, RecordUpdate
from crm_qualify.connector.sync.diff import PASSENGER_FIELDS, same

if TYPE_CHECKING:
    from crm_qualify.connector.sync.state import StateStore

Key = tuple[str, str]


@dataclass(frozen=True)
class Mirrored:
    """One mirrored contact and what the engine keeps beside it."""

    contact: Contact
    hot_since: datetime | None
    fresh: bool = False
    """Read in this run: a full read decides its records only once it has read them all."""
    alone: bool = False
    """The identity index holds it as its own person, of no other record (`chunks` says; most
    records are): its person needs no look-up. False: look it up (`People.stored`)."""
    recheck_at: datetime | None = None
    """The review moment its review row holds (`chunks` says; None: none, or due now): a
    decision that gives the same one and the same `hot_since` has nothing to record."""


@dataclass(frozen=True)
class AckedWrite:
    """A write the CRM acknowledged: its values, our round trip, and the CRM's own stamp of
    the new version when the adapter reported it."""

    update: RecordUpdate
    sent_at: datetime
    acked_at: datetime
    stamp: datetime | None = None


def encode(contact: Contact) -> str:
    """Defaults left out: half the bytes, and twice as fast to decode on every run. The
    source digest is kept in a column of its own (`known_versions` reads it per hit)."""
    return contact.model_dump_json(exclude_defaults=True, exclude=_BESIDE)


_BESIDE = {"source_digest"}


def _iso(moment: datetime | None) -> str | None:
    """In UTC with microseconds always: the mirror compares these as text (`recheck_at <=
    ?`), so one offset and one width only (`isoformat` drops a zero fraction, and
    "12:00:00+00:00" sorts after "12:00:00.5+00:00")."""
    if moment is None:
        return None
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return utc.isoformat(timespec="microseconds")


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def by_type(keys: Iterable[Key]) -> dict[str, list[str]]:
    """Record ids by object type: the state store's look-ups ask one type at a time."""
    grouped: dict[str, list[str]] = {}
    for object_type, contact_id in keys:
        grouped.setdefault(object_type, []).append(contact_id)
    return grouped


REVIEW_SCHEMA = """
CREATE TABLE mirror_review (
    instance TEXT NOT NULL, object_type TEXT NOT NULL, contact_id TEXT NOT NULL,
    hot_since TEXT, recheck_at TEXT,
    PRIMARY KEY (instance, object_type, contact_id)) WITHOUT ROWID
"""

_SAME_KEY = (
    "r.instance = m.instance AND r.object_type = m.object_type AND r.contact_id = m.contact_id"
)
_RETRIED = (
    "SELECT 1 FROM retries t WHERE t.instance = m.instance"
    " AND t.object_type = m.object_type AND t.contact_id = m.contact_id"
)
_ALONE = (
    "p.person = m.object_type || ':' || m.contact_id AND NOT EXISTS (SELECT 1 FROM people q"
    " WHERE q.instance = p.instance AND q.person = p.person AND q.rowid != p.rowid)"
)
"""The record is indexed (`sync/people.py`) as the person named after it, which no other
record shares: read with its row, in key order, it costs a fraction of a look-up by key."""
_PERSON_ROW = (
    " LEFT JOIN people p ON p.instance = m.instance AND p.object_type = m.object_type"
    " AND p.contact_id = m.contact_id"
)


LATEST_ACKED = (
    "SELECT json_group_object(f.field, json_array(json(f.new))) FROM field_writes f"
    " WHERE f.instance = mirror.instance AND f.object_type = mirror.object_type"
    " AND f.contact_id = mirror.contact_id AND f.status = 'acked' AND f.seq = ("
    "SELECT MAX(g.seq) FROM field_writes g WHERE g.instance = f.instance"
    " AND g.object_type = f.object_type AND g.contact_id = f.contact_id"
    " AND g.field = f.field AND g.status = 'acked')"
)
"""Per field, the latest acknowledged value the audit trail holds for a mirrored record."""
REMEMBER_WRITTEN = f"written = json_patch(COALESCE(written, ({LATEST_ACKED}), '{{}}'), ?)"
"""A mirror row's `written`, patched with an acknowledged write (`written_patch`): our last
acknowledged value per field, what `unless_edited` compares with, one row per record however
long the audit trail. A record's first remembered write starts from what the trail holds."""
NOTHING_WRITTEN_YET = (
    "CASE WHEN EXISTS (SELECT 1 FROM field_writes f WHERE f.instance = ?1"
    " AND f.object_type = ?2 AND f.contact_id = ?3) THEN NULL ELSE '{}' END"
)
"""A new mirror row's `written`: empty for a record the audit trail has never seen, so its
first acknowledged write patches `{}` instead of gathering the trail's latest values (about
half of the mirror's update after a full sync's writes); NULL, as before, for one the trail
has seen, whose first remembered write starts from the trail."""


def owned_patch(values: Mapping[str, Any]) -> str:
    """A mirrored contact's JSON merge patch (RFC 7396, SQLite's `json_patch`) for values the
    CRM acknowledged: they join its `owned` values, and a written stage becomes its stage.
    One parse of the contact's facts where `json_set` over `json_extract`s took three."""
    stage = values.get("stage")
    return json.dumps({"owned": values} if stage is None else {"owned": values, "stage": stage})


def written_patch(values: Mapping[str, Any]) -> str:
    """`REMEMBER_WRITTEN`'s parameter: each value in a list, so a written null stays a value."""
    return json.dumps({k: [v] for k, v in values.items()})


_UNSEEN = (
    " AND read_at < ? AND (write_acked_at IS NULL OR write_acked_at < ?)"
    " AND NOT EXISTS (SELECT 1 FROM retries r WHERE r.instance = mirror.instance"
    " AND r.object_type = mirror.object_type AND r.contact_id = mirror.contact_id)"
)
"""A mirrored record a full read begun at the first `?` did not return (nor our writes
reach since the second), unless waiting for a re-read: gone from the CRM."""


class Mirror:
    """The mirror tables of one state store (`StateStore.mirror`)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._create_review_table()

    def _create_review_table(self) -> None:
        """Once per state file: the table, filled from the columns that held the same before
        it (`mirror.hot_since`, `mirror.recheck_at`) and a row for every mirrored record.
        Opening a state file that has it takes no write lock."""
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mirror_review'"
        store = self._store
        if store._query(exists):
            return
        # Called while the store opens, before its own transactions can be used.
        with store._lock, store._errors("create the mirror review table"):
            conn = store._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not conn.execute(exists).fetchone():  # another process may have made it
                    conn.execute(REVIEW_SCHEMA)
                    conn.execute(
                        "INSERT INTO mirror_review (instance, object_type, contact_id,"
                        " hot_since, recheck_at) SELECT instance, object_type, contact_id,"
                        " hot_since, recheck_at FROM mirror"
                    )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def upsert(
        self, instance: str, contacts: Sequence[Contact], read_at: datetime, *, due: bool = False
    ) -> None:
        """Facts as just read; what the engine keeps beside them (episode, writes) stays. A
        version older than the one mirrored (a lagging search index's) does not replace it.
        `due`: the records are decided later, from here, so they are due until then (a run
        that stops first leaves them to the next one)."""
        rows = [
            (
                instance,
                c.object_type,
                c.id,
                encode(c),
                _iso(c.updated_at),
                _iso(read_at),
                c.source_digest,
            )
            for c in contacts
        ]
        with self._store._tx() as conn:
            conn.executemany(
                "INSERT INTO mirror (instance, object_type, contact_id, contact, stamp, read_at,"
                f" digest, written) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {NOTHING_WRITTEN_YET})"
                " ON CONFLICT (instance, object_type, contact_id)"
                " DO UPDATE SET contact = excluded.contact, stamp = excluded.stamp,"
                " read_at = excluded.read_at, digest = excluded.digest"
                " WHERE excluded.stamp IS NULL"
                " OR mirror.stamp IS NULL OR excluded.stamp >= mirror.stamp",
                rows,
            )
            conn.executemany(
                "INSERT INTO mirror_review (instance, object_type, contact_id) VALUES (?, ?, ?)"
                " ON CONFLICT DO " + ("UPDATE SET recheck_at = NULL" if due else "NOTHING"),
                [row[:3] for row in rows],
            )

    def record_batch(
        self,
        instance: str,
        writes: Sequence[AckedWrite],
        tasks: Sequence[tuple[PlannedTask, str]],
        decided: Sequence[tuple[Key, datetime | None, datetime | None]],
        now: datetime,
    ) -> None:
        """After a batch: acknowledged values become the CRM's values and our last written
        ones (`REMEMBER_WRITTEN`: the audit trail's `settle_writes(remember=False)` leaves
        them to this, so each row is written once), created tasks join their contact
        (created `now`, open), and each decided contact keeps its hot episode's start and
        when its decision can next change (`decided`: key, hot_since, recheck_at, None for
        due now; a row that holds these already is left unwritten); one transaction. Each
        write's row is encoded as the statement takes it, not all first: a bulk call
        acknowledges 10,000 at once.
        Each moment is written as text once: a request's writes share their round trip, and
        many review moments are the same (the safety net's)."""
        texts: dict[datetime | None, str | None] = {}

        def text(moment: datetime | None) -> str | None:
            found = texts.get(moment)
            if found is None:
                found = texts[moment] = _iso(moment)
            return found

        rows = (
            (
                owned_patch(values := write.update.values()),
                text(write.sent_at),
                text(write.acked_at),
                _iso(write.stamp),
                written_patch(values),
                instance,
                write.update.object_type,
                write.update.contact_id,
            )
            for write in writes
        )
        with self._store._tx() as conn:
            conn.executemany(
                "UPDATE mirror SET contact = json_patch(contact, ?),"
                f" write_sent_at = ?, write_acked_at = ?, write_stamp = ?, {REMEMBER_WRITTEN}"
                " WHERE instance = ? AND object_type = ? AND contact_id = ?",
                rows,
            )
            conn.executemany(
                "UPDATE mirror SET contact = json_set(contact, '$.tasks', json_insert("
                "COALESCE(json_extract(contact, '$.tasks'), '[]'), '$[#]', json(?)))"
                " WHERE instance = ? AND object_type = ? AND contact_id = ?",
                (
                    (_task_json(task, crm_id, now), instance, task.object_type, task.contact_id)
                    for task, crm_id in tasks
                ),
            )
            conn.executemany(
                "INSERT INTO mirror_review (instance, object_type, contact_id, hot_since,"
                " recheck_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
                " hot_since = excluded.hot_since, recheck_at = excluded.recheck_at"
                " WHERE mirror_review.hot_since IS NOT excluded.hot_since"
                " OR mirror_review.recheck_at IS NOT excluded.recheck_at",
                [
                    (
                        instance,
                        *key,
                        None if since is None else _iso(since),
                        text(recheck),
                    )
                    for key, since, recheck in decided
                ],
            )

    def mark_due(self, instance: str, keys: Sequence[Key]) -> None:
        """These records are decided again at the next run, whatever their review moment
        said: their CRM values changed by something other than a decision (a rollback)."""
        with self._store._tx() as conn:
            conn.executemany(
                "UPDATE mirror_review SET recheck_at = NULL"
                " WHERE instance = ? AND object_type = ? AND contact_id = ?",
                [(instance, *key) for key in keys],
            )

    def remove_tasks(self, instance: str, removed: Sequence[tuple[Key, str]]) -> None:
        """Tasks a rollback removed from the CRM (record, CRM task id) leave their mirrored
        record, as a read would find it (HubSpot archives them, Salesforce deletes them).
        Removing a task changes the task, not the record, so no read of the record brings the
        change (and Salesforce's leaves out our own changes): without this the mirror would
        hold them, and the next decision would take the slot they held as filled."""
        ids: dict[Key, set[str]] = {}
        for key, crm_id in removed:
            ids.setdefault(key, set()).add(crm_id)
        with self._store._tx() as conn:
            for key, (text,) in list(self._rows(instance, list(ids), "contact")):
                contact = Contact.model_validate_json(text)
                contact.tasks = [task for task in contact.tasks if task.id not in ids[key]]
                conn.execute(
                    "UPDATE mirror SET contact = ?"
                    " WHERE instance = ? AND object_type = ? AND contact_id = ?",
                    (encode(contact), instance, *key),
                )

    def end_episodes(self, instance: str, keys: Sequence[Key]) -> None:
        """A rollback put these contacts' temperature back and removed their person's
        hot-lead call: their hot episode is over, so a run that finds them hot again starts a
        new one, and its call is owed (the removed call's key, created once ever, cannot come
        back)."""
        with self._store._tx() as conn:
            conn.executemany(
                "UPDATE mirror_review SET hot_since = NULL"
                " WHERE instance = ? AND object_type = ? AND contact_id = ?",
                [(instance, *key) for key in keys],
            )

    def episodes(self, instance: str, keys: Sequence[Key]) -> dict[Key, datetime | None]:
        """When each record's current hot episode began (absent: not mirrored yet)."""
        rows = self._rows(instance, keys, "hot_since", table="mirror_review")
        return {key: _moment(since) for key, (since,) in rows}

    def by_keys(self, instance: str, keys: Sequence[Key]) -> dict[Key, Mirrored]:
        """The mirrored records among `keys` (the other records of a person)."""
        episodes = self.episodes(instance, keys)
        return {
            key: Mirrored(Contact.model_validate_json(text), episodes.get(key))
            for key, (text,) in self._rows(instance, keys, "contact")
        }

    def known_versions(
        self, instance: str, hits: Sequence[Hit], *, by_others: bool = False
    ) -> set[Key]:
        """Hits (record, CRM modification stamp, digest and owned values, or none) whose
        version the mirror already holds: the one we last read (or an older one), or our own
        acknowledged write (`by_others`: the CRM says none is ours, so only the one read). A
        hit with a digest is our write only while the digest is the one read: our writes
        leave the fields it covers as they were, so another one is someone else's change
        too; a hit at our write's version with owned values only while they are what our
        writes left (`_own`).
        The mirrored contact is decoded for its owned values only when a hit carries some."""
        stamps = {hit[0]: hit[1] for hit in hits}
        digests = {hit[0]: hit[2] for hit in hits if len(hit) > 2 and hit[2] is not None}
        carried = {hit[0]: hit[3] for hit in hits if len(hit) > 3 and hit[3] is not None}
        columns = "stamp" if by_others else "stamp, write_sent_at, write_acked_at, write_stamp"
        owned = "json_extract(contact, '$.owned')" if carried and not by_others else "NULL"
        rows = self._rows(instance, list(stamps), f"digest, {owned}, {columns}")
        return {
            key
            for key, (digest, held, *times) in rows
            if _own(
                stamps[key],
                *map(_moment, times),
                unchanged=key not in digests or digests[key] == digest,
                as_left=key not in carried or _same_owned(carried[key], held),
            )
        }

    def _rows(
        self, instance: str, keys: Sequence[Key], columns: str, table: str = "mirror"
    ) -> Iterator[tuple[Key, tuple[Any, ...]]]:
        """(key, columns) of the mirrored records among `keys`, 500 ids per query."""
        for object_type, ids in by_type(keys).items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = self._store._query(
                    f"SELECT contact_id, {columns} FROM {table} WHERE instance = ?"
                    f" AND object_type = ? AND contact_id IN ({','.join('?' * len(chunk))})",
                    [instance, object_type, *chunk],
                )
                for cid, *values in rows:
                    yield (object_type, cid), tuple(values)

    def chunks(
        self,
        instance: str,
        *,
        read_before: datetime,
        exclude: set[Key],
        due_by: datetime | None,
        size: int | Iterator[int] = 500,
        read_now: bool = False,
    ) -> Iterator[list[Mirrored]]:
        """Every mirrored contact not read since `read_before` and not waiting for a re-read
        (retries, records needing attention, `exclude`) whose decision can have changed by
        `due_by` (None: all of them), in key order, `size` at a time (or each chunk's size
        in turn, from an endless iterator), so memory stays flat however many there are.
        `read_now`: the records read since `read_before` too, retry or not (a full read
        decides what it read from here; their outcome renews or clears the retry). With
        `due_by` the narrow review table is walked and only the due contacts' facts are
        read. Each says whether it is its own person alone, and what its review row holds
        (`Mirrored`). Read "since `read_before`" ends at this call: a record stamped as read
        later was read by a run whose clock ran ahead of ours now (set back since), and is
        decided like any other."""
        fresh = "m.read_at BETWEEN ? AND ?"
        read = (
            f" AND ({fresh} OR NOT EXISTS ({_RETRIED}))"
            if read_now
            else f" AND NOT {fresh} AND NOT EXISTS ({_RETRIED})"
        )
        columns = f"m.contact, r.hot_since, r.recheck_at, {fresh}, {_ALONE}"
        if due_by is None:
            sql = (
                f"SELECT m.object_type, m.contact_id, {columns}"
                f" FROM mirror m LEFT JOIN mirror_review r ON {_SAME_KEY}{_PERSON_ROW}"
                " WHERE m.instance = ? AND (m.object_type, m.contact_id) > (?, ?)"
                + read
                + " ORDER BY m.object_type, m.contact_id LIMIT ?"
            )
            bounds: tuple[Any, ...] = ()
        else:
            sql = (
                f"SELECT r.object_type, r.contact_id, {columns}"
                f" FROM mirror_review r JOIN mirror m ON {_SAME_KEY}{_PERSON_ROW}"
                " WHERE r.instance = ? AND (r.object_type, r.contact_id) > (?, ?)"
                " AND (r.recheck_at IS NULL OR r.recheck_at <= ?)"
                + read
                + " ORDER BY r.object_type, r.contact_id LIMIT ?"
            )
            bounds = (_iso(due_by),)
        since = (_iso(read_before), _iso(datetime.now(UTC)))
        sizes = repeat(size) if isinstance(size, int) else size
        after: tuple[str, str] = ("", "")
        while True:
            rows = self._store._query(sql, (*since, instance, *after, *bounds, *since, next(sizes)))
            if not rows:
                return
            after = (rows[-1][0], rows[-1][1])
            batch = [
                Mirrored(
                    Contact.model_validate_json(text),
                    _moment(since),
                    bool(read),
                    bool(alone),
                    _moment(recheck),
                )
                for object_type, cid, text, since, recheck, read, alone in rows
                if (object_type, cid) not in exclude
            ]
            if batch:
                yield batch
            del rows, batch  # handed on: not held while the next chunk is read

    def contacts(self, instance: str, chunk: int = 1000) -> Iterator[list[Contact]]:
        """Every mirrored contact, `chunk` at a time (reports)."""
        after: tuple[str, str] = ("", "")
        while True:
            rows = self._store._query(
                "SELECT object_type, contact_id, contact FROM mirror WHERE instance = ?"
                " AND (object_type, contact_id) > (?, ?)"
                " ORDER BY object_type, contact_id LIMIT ?",
                (instance, *after, chunk),
            )
            if not rows:
                return
            after = (rows[-1][0], rows[-1][1])
            yield [Contact.model_validate_json(row[2]) for row in rows]

    def open_follow_ups(self, instance: str, keys: Sequence[Key]) -> list[str]:
        """The keys of our follow-ups these records held open when last read: a record
        deleted in the CRM may take them with it (Salesforce deletes a record's tasks)."""
        return [
            task.key
            for mirrored in self.by_keys(instance, keys).values()
            for task in mirrored.contact.tasks
            if task_kind(task.key) and task.is_open
        ]

    def unseen(self, instance: str, full_read_started: datetime) -> list[Key]:
        """The records `prune_unseen` would drop now."""
        since = _iso(full_read_started)
        rows = self._store._query(
            f"SELECT object_type, contact_id FROM mirror WHERE instance = ?{_UNSEEN}",
            (instance, since, since),
        )
        return [(row[0], row[1]) for row in rows]

    def prune_unseen(self, instance: str, full_read_started: datetime) -> int:
        """After a complete full read: records it did not return are gone from the CRM
        (deleted or merged). Records waiting for a re-read, and records our writes reached
        since the read began, stay."""
        since = _iso(full_read_started)
        with self._store._tx() as conn:
            cursor = conn.execute(
                f"DELETE FROM mirror WHERE instance = ?{_UNSEEN}", (instance, since, since)
            )
            gone = cursor.rowcount
            if gone:
                conn.execute(
                    "DELETE FROM mirror_review WHERE instance = ? AND NOT EXISTS (SELECT 1"
                    " FROM mirror m WHERE m.instance = mirror_review.instance"
                    " AND m.object_type = mirror_review.object_type"
                    " AND m.contact_id = mirror_review.contact_id)",
                    (instance,),
                )
            return gone

    def forget(self, instance: str, keys: Sequence[Key]) -> int:
        """Records the CRM merged into another or deleted: gone, so never decided nor written
        again. How many the mirror held: one record's write and its task can each find it
        gone, in two answers."""
        held = 0
        with self._store._tx() as conn:
            for table in ("mirror", "mirror_review"):
                cursor = conn.executemany(
                    f"DELETE FROM {table}"
                    " WHERE instance = ? AND object_type = ? AND contact_id = ?",
                    [(instance, *key) for key in keys],
                )
                if table == "mirror":
                    held = cursor.rowcount
        return held

    def held(self, instance: str, keys: Sequence[Key]) -> set[Key]:
        """Those of `keys` the mirror holds."""
        return {key for key, _ in self._rows(instance, keys, "1")}

    def keys(self, instance: str) -> set[Key]:
        """Every record the mirror holds: the CRM's records as the last read left them."""
        rows = self._store._query(
            "SELECT object_type, contact_id FROM mirror WHERE instance = ?", (instance,)
        )
        return {(row[0], row[1]) for row in rows}

    def count(self, instance: str) -> int:
        rows = self._store._query("SELECT COUNT(*) FROM mirror WHERE instance = ?", (instance,))
        return int(rows[0][0])


def _own(
    hit: datetime,
    read: datetime | None,
    sent: datetime | None = None,
    acked: datetime | None = None,
    written: datetime | None = None,
    *,
    unchanged: bool = True,
    as_left: bool = True,
) -> bool:
    """Whether a hit's stamp is a version we hold: the one read or our write's exact stamp, or
    an older one (a search index that lags its writes still serves versions before them), or
    (without our write's stamp) a stamp inside our write's round trip. A clock skew between
    us and the CRM only makes a known version look new (a needless read). The stamp cannot
    tell a change by someone else made after our read of the record and before our write
    (the run's whole duration, not only the write's round trip): our write's stamp covers
    it. So a stamp is taken as our write's only while the fields our writes never change
    are as read (`unchanged`: the hit's digest, where the adapter gives one, is the one
    read), and our write's own version (its exact stamp, or inside its round trip) only
    while the owned values it carries are the ones our writes left (`as_left`, where the
    adapter gives them). A version older than our last write holds our earlier writes'
    values, so it is not compared: a rep's owned-field edit that a lagging index serves
    under its own, older stamp passes, and the next run, whose lookback window serves our
    write's version, reads it. Without them such a change waits for the next full read. A
    stamp at or before the version read is known whatever it carries: a lagging index's
    older version is no news."""
    if read is not None and hit <= read:
        return True
    if not unchanged:
        return False
    if written is not None and hit <= written:
        return hit < written or as_left
    return sent is not None and acked is not None and sent <= hit <= acked and as_left


def _same_owned(carried: Mapping[str, Any], held: str | None) -> bool:
    """Whether a hit's owned values are the mirror's (`held`: its `owned` as JSON), field by
    field as the diff compares them, so what a CRM echoes of our write in its own spelling
    ("6" for 6) is ours. A passenger (`scored_at`) is never compared by the diff, and a
    CRM may echo a time at another precision: left out."""
    mirrored = json.loads(held) if held else {}
    return all(
        same(carried.get(name), mirrored.get(name))
        for name in carried.keys() | mirrored.keys()
        if name not in PASSENGER_FIELDS
    )


def _task_json(task: PlannedTask, crm_id: str, created_at: datetime) -> str:
    document: dict[str, Any] = {
        "id": crm_id,
        "key": task.key,
        "due": task.due.isoformat(),
        "created_at": created_at.isoformat(),
    }
    return json.dumps(document)
