"""The state store: cursors, run history, the audit trail, task obligations and records that
need attention, in one SQLite file.

Embedded so a first run needs no setup; everything goes through `StateStore`, so a server
database can replace it later behind the same methods. The audit trail is written before the
CRM is: each field change is an *intent* (with its old value) until the CRM acknowledges it,
so a crash leaves intents that the next run settles. `unless_edited` and rollback read only
acknowledged writes. Every sqlite failure surfaces as `StateStoreError`, which stops a run
before its next CRM call.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from crm_qualify.connector.model import Contact, FieldUpdate, PlannedTask, RecordUpdate
from crm_qualify.connector.sync.mirror import REMEMBER_WRITTEN, Mirror, by_type, written_patch
from crm_qualify.connector.sync.people import SCHEMA as PEOPLE_SCHEMA


class StateStoreError(Exception):
    """The state file cannot be read or written (corrupt, locked, disk full, read-only): the
    run stops before its next CRM call, so nothing reaches the CRM unrecorded."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    instance TEXT NOT NULL, stream TEXT NOT NULL, value TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (instance, stream));
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, instance TEXT NOT NULL, mode TEXT NOT NULL, dry_run INTEGER NOT NULL,
    started_at TEXT NOT NULL, ended_at TEXT, status TEXT NOT NULL,
    counts TEXT NOT NULL DEFAULT '{}', errors TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS runs_by_instance ON runs (instance, started_at);
CREATE TABLE IF NOT EXISTS field_writes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, instance TEXT NOT NULL,
    object_type TEXT NOT NULL, contact_id TEXT NOT NULL, field TEXT NOT NULL,
    old TEXT, new TEXT, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS writes_by_contact
    ON field_writes (instance, object_type, contact_id, field, seq);
CREATE INDEX IF NOT EXISTS writes_by_run ON field_writes (run_id);
CREATE TABLE IF NOT EXISTS tasks (
    instance TEXT NOT NULL, key TEXT NOT NULL, run_id TEXT NOT NULL, object_type TEXT NOT NULL,
    contact_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, crm_id TEXT,
    due TEXT, created_at TEXT NOT NULL, payload TEXT, PRIMARY KEY (instance, key));
CREATE INDEX IF NOT EXISTS tasks_by_run ON tasks (run_id);
CREATE TABLE IF NOT EXISTS retries (
    instance TEXT NOT NULL, object_type TEXT NOT NULL, contact_id TEXT NOT NULL,
    reason TEXT NOT NULL, since TEXT NOT NULL,
    PRIMARY KEY (instance, object_type, contact_id));
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (
    instance TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (instance, key));
CREATE TABLE IF NOT EXISTS mirror (
    instance TEXT NOT NULL, object_type TEXT NOT NULL, contact_id TEXT NOT NULL,
    contact TEXT NOT NULL, stamp TEXT, read_at TEXT NOT NULL, hot_since TEXT,
    write_sent_at TEXT, write_acked_at TEXT, write_stamp TEXT,
    PRIMARY KEY (instance, object_type, contact_id));
"""

COLUMNS = {
    "field_writes": {"status": "TEXT NOT NULL DEFAULT 'acked'"},
    "tasks": {"attempts": "INTEGER NOT NULL DEFAULT 0", "last_error": "TEXT", "sent_at": "TEXT"},
    "retries": {
        "transient": "INTEGER NOT NULL DEFAULT 1",
        "field": "TEXT",
        "attempts": "INTEGER NOT NULL DEFAULT 0",
        "next_at": "TEXT",
        "fingerprint": "TEXT",
        "stamp": "TEXT",
    },
    "runs": {"holder": "TEXT", "details": "TEXT NOT NULL DEFAULT '{}'"},
    "mirror": {"recheck_at": "TEXT", "written": "TEXT", "digest": "TEXT"},
}
"""Columns added since the first release: older state files gain them on open."""

WRITE_INTENDED = "intended"
WRITE_ACKED = "acked"
WRITE_FAILED = "failed"
WRITE_NOT_LANDED = "not_landed"

LEASE_SECONDS = 60.0
"""A lease outlives a dead holder on another host by at most this long; a heartbeat renews it
(`connector.sync.lease`), and a dead holder on this host is taken over at once."""


def sync_lock_name(instance: str) -> str:
    """The lease a sync or a rollback of this portal holds: one of them at a time."""
    return f"sync:{instance}"


INCARNATION = uuid.uuid4().hex[:8]
"""This process among all that had its pid on this host: a container's process is pid 1
after every restart, and a lease its killed predecessor left named pid 1 as well."""


def lock_holder(role: str) -> str:
    """Who holds a lease: host, process and a random part, readable in the locks table."""
    return f"{process_id()}:{role}:{uuid.uuid4().hex[:8]}"


def process_id() -> str:
    """host:pid.incarnation of this process, as leases and runs record their owner."""
    return f"{socket.gethostname()}:{os.getpid()}.{INCARNATION}"


def holder_parts(holder: str) -> tuple[str, int | None, str]:
    """(host, pid, role) of a `lock_holder` or `process_id` string; pid None when the
    string was written by something else."""
    host, _, rest = holder.partition(":")
    pid_text, _, role = rest.partition(":")
    pid_text = pid_text.partition(".")[0]
    pid = int(pid_text) if pid_text.isdigit() else None
    return host, pid, role.split(":", 1)[0]


def process_alive(holder: str) -> bool:
    """False only when `holder` (host:pid.incarnation:...) names a process on this host that
    is gone: no such pid, a zombie (killed, not yet reaped), or this very pid in an earlier
    incarnation (a restarted container's pid 1). A process on another host is presumed alive
    until its lease expires."""
    host, pid, _ = holder_parts(holder)
    if host != socket.gethostname() or pid is None:
        return True
    if pid == os.getpid():
        incarnation = holder.partition(":")[2].partition(":")[0].partition(".")[2]
        return incarnation in ("", INCARNATION)  # written before incarnations: cannot tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether `pid` has exited and waits to be reaped (state Z in /proc, where Linux has
    it; elsewhere presumed not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


ROLLBACK_MODE = "rollback of "
"""A rollback's run mode begins so, the run it undoes after it (`sync/rollback.py`)."""

TASK_OWED = "owed"
"""A decision owes this task and the CRM does not have it yet (never sent, or refused)."""
TASK_PENDING = "pending"
"""Sent, outcome unknown: the key is looked up in the CRM before it is ever sent again."""
TASK_CREATED = "created"
TASK_CLOSING = "closing"
"""A follow-up a merge in the CRM doubled, being removed (`sync/redundant.py`): sent again at
the next run's start until the CRM acknowledges it, then `closed`."""
TASK_CLOSED = "closed"
"""Removed from the CRM by a rollback, or as a follow-up a merge doubled (HubSpot archives
it, Salesforce deletes it): never created again, so a rollback removes only a task that no
longer serves anything (`sync/rollback.py`); but a hot-lead call, whose key names its
episode's start to the minute, is planned again when a new episode begins in that very
minute."""
TASK_GONE = "gone"
"""No longer in the CRM (a person deleted it), or an escalation of such a follow-up: never
created again, never escalated, not counted in the follow-up SLA."""
RECHECK_KEY = "follow_ups_to_recheck"
"""Meta key: follow-ups whose record left the mirror as deleted while they were open."""


@dataclass(frozen=True)
class RunRecord:
    id: str
    instance: str
    mode: str
    dry_run: bool
    started_at: str
    ended_at: str | None
    status: str
    counts: dict[str, int]
    errors: list[str]
    details: dict[str, Any] = dataclass_field(default_factory=dict)


@dataclass(frozen=True)
class AuditWrite:
    run_id: str
    object_type: str
    contact_id: str
    field: str
    old: Any
    new: Any
    at: str


@dataclass(frozen=True)
class TaskRecord:
    key: str
    run_id: str
    object_type: str
    contact_id: str
    kind: str
    status: str
    crm_id: str | None
    due: str | None


@dataclass(frozen=True)
class AttentionRecord:
    """A record whose last error was not transient: kept with its reason, retried when the
    configuration or the CRM schema changes, and on a slow backoff otherwise."""

    object_type: str
    contact_id: str
    field: str | None
    reason: str
    since: str
    attempts: int
    next_at: str | None


RUN_COLUMNS = "id, instance, mode, dry_run, started_at, ended_at, status, counts, errors, details"
TASK_COLUMNS = "key, run_id, object_type, contact_id, kind, status, crm_id, due"


def _now() -> str:
    return _text(datetime.now(UTC))


def _text(moment: datetime) -> str:
    """Moments are compared as text: one width always (see `mirror._iso`)."""
    return moment.isoformat(timespec="microseconds")


class _SharedValues:
    """JSON values decoded once per text: a bulk call's updates read back from the audit
    trail (10,000 records, about ten fields each) repeat a few stages, temperatures, grades
    and versions, which would otherwise each be a string of their own. Only short texts of
    immutable values are shared, so no caller can change another's value."""

    SHORT = 64

    def __init__(self) -> None:
        self._known: dict[str, Any] = {}

    def decode(self, text: str) -> Any:
        known = self._known
        if text in known:
            return known[text]
        value = json.loads(text)
        if len(text) <= self.SHORT and isinstance(value, str | int | float | bool | None):
            known[text] = value
        return value


def _json_value(value: Any) -> str:
    """`json.dumps(value)`, with the common field values (null, text, whole numbers) encoded
    directly: a full sync records two of these per field written, 240,000 for 10,000
    contacts, and the encoder's call chain cost more than the rest of the intent."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value)


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StateStore:
    """Thread-safe access to one SQLite state file (WAL, so `runs` can read during a sync)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10000) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        with self._errors("open"):
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.executescript(SCHEMA + PEOPLE_SCHEMA)
            self._add_columns()
        self.mirror = Mirror(self)
        self._grouped = False

    def _add_columns(self) -> None:
        for table, columns in COLUMNS.items():
            have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns.items():
                if name not in have:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
        self._conn.execute("CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (instance, status)")
        # Open intents are few (a dead run's, the batch in flight): a partial index keeps
        # open_intents and settling them off the audit trail, however long it is.
        self._conn.execute(
            "CREATE INDEX IF NOT EXISTS writes_open ON field_writes"
            " (instance, object_type, contact_id, field) WHERE status = 'intended'"
        )

    def close(self) -> None:
        with self._lock, self._errors("close"):
            self._conn.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Every sqlite failure becomes one clear `StateStoreError` naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StateStoreError(_explain(self.path, doing, exc)) from None
        except OSError as exc:
            raise StateStoreError(
                f"state store {self.path}: cannot {doing}: {exc.strerror or exc}"
            ) from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors("write"):
            if self._grouped:
                yield self._conn  # inside `transaction()`: its commit covers this write
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write made inside lands in one commit (or none): a batch's acknowledgements,
        its mirror update and its retries cost one fsync, not one each."""
        with self._tx():
            self._grouped = True
            try:
                yield
            finally:
                self._grouped = False

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors("read"):
            return self._conn.execute(sql, tuple(params)).fetchall()

    def mirrored_contacts(self, instance: str, chunk: int = 1000) -> Iterator[list[Contact]]:
        """Every contact the mirror holds, `chunk` at a time (reports)."""
        return self.mirror.contacts(instance, chunk)

    # meta --------------------------------------------------------------------------------
    def get_meta(self, instance: str, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE instance = ? AND key = ?", (instance, key))
        return rows[0][0] if rows else None

    def set_meta(self, instance: str, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO meta VALUES (?, ?, ?) ON CONFLICT (instance, key)"
                " DO UPDATE SET value = excluded.value",
                (instance, key, value),
            )

    def delete_meta(self, instance: str, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM meta WHERE instance = ? AND key = ?", (instance, key))

    # cursors -----------------------------------------------------------------------------
    def get_cursor(self, instance: str, stream: str) -> str | None:
        rows = self._query(
            "SELECT value FROM cursors WHERE instance = ? AND stream = ?", (instance, stream)
        )
        return rows[0][0] if rows else None

    def set_cursor(self, instance: str, stream: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT (instance, stream)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (instance, stream, value, _now()),
            )

    def clear_cursor(self, instance: str, stream: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM cursors WHERE instance = ? AND stream = ?", (instance, stream)
            )

    # runs --------------------------------------------------------------------------------
    def start_run(self, instance: str, *, mode: str, dry_run: bool) -> str:
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO runs (id, instance, mode, dry_run, started_at, status, holder)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?)",
                (run_id, instance, mode, int(dry_run), _now(), process_id()),
            )
        return run_id

    def mark_crashed_runs(self, instance: str, *, except_run: str) -> list[str]:
        """Runs of this portal still `running` whose process is gone become `crashed`.

        Called by a run that holds the portal's lease, so no other write run can be alive;
        a dry run (which takes no lease) is left alone while its process lives.
        """
        rows = self._query(
            "SELECT id, holder, dry_run FROM runs WHERE instance = ? AND status = 'running'"
            " AND id != ?",
            (instance, except_run),
        )
        dead = [
            run_id
            for run_id, holder, dry_run in rows
            if not (dry_run and holder and process_alive(holder))
        ]
        with self._tx() as conn:
            conn.executemany(
                "UPDATE runs SET status = 'crashed', ended_at = COALESCE((SELECT MAX(at) FROM"
                " field_writes WHERE run_id = runs.id), ?),"
                " errors = json_insert(errors, '$[#]', ?) WHERE id = ?",
                [
                    (_now(), "the process ended without finishing the run (killed?)", run_id)
                    for run_id in dead
                ],
            )
        return dead

    @staticmethod
    def _landed_counts(conn: sqlite3.Connection, run_id: str) -> dict[str, int]:
        """What a run that did not end well has landed, from the audit trail and the task
        ledger (its own counts are written at its end): so `runs` does not show it 0 written,
        nor its creations sent and never answered (a kill in the call) as none."""
        fields, records = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT object_type || '/' || contact_id) FROM field_writes"
            " WHERE run_id = ? AND status = 'acked'",
            (run_id,),
        ).fetchone()
        tasks, uncertain = conn.execute(
            "SELECT COUNT(*) FILTER (WHERE status = 'created'),"
            " COUNT(*) FILTER (WHERE status = 'pending') FROM tasks WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        return {
            "fields_written": fields,
            "records_written": records,
            "tasks_created": tasks,
            "tasks_uncertain": uncertain,
        }

    def note_run_details(self, run_id: str, details: Mapping[str, Any]) -> None:
        """What a reader of a run needs (its rules versions), kept from its start: a run that
        dies says which rules it wrote with, for whoever decides whether to roll it back."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET details = ? WHERE id = ?", (json.dumps(dict(details)), run_id)
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        counts: dict[str, int],
        errors: Sequence[str],
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """`details`: what a reader of the run needs beyond counts (rules versions)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET ended_at = ?, status = ?, counts = ?, errors = ?, details = ?"
                " WHERE id = ?",
                (
                    _now(),
                    status,
                    json.dumps(counts),
                    json.dumps(list(errors)),
                    json.dumps(dict(details or {})),
                    run_id,
                ),
            )

    def runs(self, instance: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first as recorded (`rowid`), not by their start time: a
        host clock set back would put the runs after it below the one made before. A run
        that did not end `ok` or `partial` (still running, killed, failed, stopped) shows
        what it has landed (`_with_landed`)."""
        where, params = ("WHERE instance = ?", [instance]) if instance else ("", [])
        rows = self._query(
            f"SELECT {RUN_COLUMNS}, holder FROM runs {where} ORDER BY rowid DESC LIMIT ?",
            [*params, limit],
        )
        return [self._with_landed(_as_seen(_run_record(row), row[-1])) for row in rows]

    def _with_landed(self, record: RunRecord) -> RunRecord:
        """A run that did not end well, with what the audit trail knows it landed now: the
        writes a dead, failed or stopped run left in flight are settled by the next run (a
        failed one's counts were taken at its end, before that)."""
        if record.status in ("ok", "partial") or record.dry_run:
            return record
        with self._lock, self._errors("read"):
            landed = self._landed_counts(self._conn, record.id)
        return replace(record, counts={**record.counts, **landed})

    def last_success(self, instance: str) -> datetime | None:
        """When the last sync that ended `ok` or `partial` ended (dry runs and rollbacks not
        counted): the daemon's success gauge starts from it, not from zero. The last recorded,
        not the latest end time: one stamped while the clock was ahead would hold the gauge
        fresh until the clock caught up."""
        rows = self._query(
            "SELECT ended_at FROM runs WHERE instance = ? AND dry_run = 0"
            f" AND status IN ('ok', 'partial') AND mode NOT LIKE '{ROLLBACK_MODE}%'"
            " ORDER BY rowid DESC LIMIT 1",
            (instance,),
        )
        return datetime.fromisoformat(rows[0][0]) if rows and rows[0][0] else None

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return self._with_landed(_run_record(rows[0])) if rows else None

    # audit trail -------------------------------------------------------------------------
    def record_writes(
        self,
        run_id: str,
        instance: str,
        updates: Sequence[RecordUpdate],
        status: str = WRITE_ACKED,
    ) -> None:
        """Add field changes to the audit trail: `intended` before they are sent, or
        `acked` for writes known to have landed (kept on their mirror rows too, as every
        acknowledgement is: `mirror.REMEMBER_WRITTEN`)."""
        with self._tx() as conn:
            self._insert_writes(conn, run_id, instance, updates, status)
            if status == WRITE_ACKED:
                acked = [(u.object_type, u.contact_id, u.values()) for u in updates]
                self._remember_written(conn, instance, acked)

    def record_intents(
        self,
        run_id: str,
        instance: str,
        updates: Sequence[RecordUpdate],
        tasks: Sequence[PlannedTask],
    ) -> None:
        """Before anything is sent: the field changes (with their old values) and the tasks
        the batch owes, in one transaction."""
        with self._tx() as conn:
            self._insert_writes(conn, run_id, instance, updates, WRITE_INTENDED)
            self._insert_tasks(conn, instance, run_id, tasks, TASK_OWED)

    def settle_writes(
        self,
        run_id: str,
        instance: str,
        outcomes: Sequence[tuple[RecordUpdate, str]],
        *,
        remember: bool = True,
    ) -> None:
        """Mark the intents of `run_id` for each update `acked`, `failed` or `not_landed`.
        `remember=False`: the caller keeps the acknowledged values on the mirror itself, in
        the same transaction (`Mirror.record_batch`), so each mirror row is written once."""
        rows = [
            (status, run_id, instance, update.object_type, update.contact_id)
            for update, status in outcomes
        ]
        with self._tx() as conn:
            conn.executemany(
                "UPDATE field_writes SET status = ? WHERE run_id = ? AND instance = ?"
                " AND object_type = ? AND contact_id = ? AND status = 'intended'",
                rows,
            )
            if not remember:
                return
            acked = [
                (u.object_type, u.contact_id, u.values()) for u, st in outcomes if st == "acked"
            ]
            self._remember_written(conn, instance, acked)

    @staticmethod
    def _remember_written(
        conn: sqlite3.Connection,
        instance: str,
        acked: Sequence[tuple[str, str, Mapping[str, Any]]],
    ) -> None:
        """Our last acknowledged value per field, kept on the mirrored record
        (`mirror.REMEMBER_WRITTEN`)."""
        conn.executemany(
            f"UPDATE mirror SET {REMEMBER_WRITTEN}"
            " WHERE instance = ? AND object_type = ? AND contact_id = ?",
            [(written_patch(values), instance, obj, cid) for obj, cid, values in acked],
        )

    def open_intents(self, instance: str) -> dict[tuple[str, str], list[AuditWrite]]:
        """Field intents a dead run left unacknowledged, by record."""
        rows = self._query(
            "SELECT run_id, object_type, contact_id, field, old, new, at FROM field_writes"
            " WHERE instance = ? AND status = 'intended' ORDER BY seq",
            (instance,),
        )
        found: dict[tuple[str, str], list[AuditWrite]] = {}
        for r in rows:
            write = AuditWrite(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6])
            found.setdefault((r[1], r[2]), []).append(write)
        return found

    def intended_updates(
        self, run_id: str, instance: str, keys: Sequence[tuple[str, str]]
    ) -> list[RecordUpdate]:
        """The updates `run_id` intended for these records and has not sent yet, rebuilt from
        the audit trail (fields in the order they were planned), in the order of `keys`.
        Through the open intents' partial index: `+run_id` keeps SQLite off the run's index,
        which would walk every field this run wrote (a million in a full sync) per query."""
        changes: dict[tuple[str, str], list[FieldUpdate]] = {}
        names: dict[str, str] = {}  # one string per field name, not one per row
        decode = _SharedValues().decode
        for object_type, ids in by_type(keys).items():
            for chunk in _chunks(ids):
                rows = self._query(
                    "SELECT contact_id, field, old, new FROM field_writes WHERE instance = ?"
                    f" AND object_type = ? AND contact_id IN ({','.join('?' * len(chunk))})"
                    " AND +run_id = ? AND status = 'intended' ORDER BY seq",
                    [instance, object_type, *chunk, run_id],
                )
                for contact_id, field, old, new in rows:
                    name = names.setdefault(field, field)
                    change = FieldUpdate(field=name, old=decode(old), new=decode(new))
                    changes.setdefault((object_type, contact_id), []).append(change)
        return [
            RecordUpdate(contact_id=key[1], object_type=key[0], changes=changes[key])
            for key in keys
            if key in changes
        ]

    def settle_intent_fields(
        self, instance: str, outcomes: Sequence[tuple[AuditWrite, bool]]
    ) -> None:
        """After a re-read: each left-over intent either landed (the CRM holds its value) or
        did not."""
        with self._tx() as conn:
            conn.executemany(
                "UPDATE field_writes SET status = ? WHERE run_id = ? AND instance = ?"
                " AND object_type = ? AND contact_id = ? AND field = ? AND status = 'intended'",
                [
                    (
                        WRITE_ACKED if landed else WRITE_NOT_LANDED,
                        write.run_id,
                        instance,
                        write.object_type,
                        write.contact_id,
                        write.field,
                    )
                    for write, landed in outcomes
                ],
            )
            landed = [(w.object_type, w.contact_id, {w.field: w.new}) for w, ok in outcomes if ok]
            self._remember_written(conn, instance, landed)

    @staticmethod
    def _insert_writes(
        conn: sqlite3.Connection,
        run_id: str,
        instance: str,
        updates: Sequence[RecordUpdate],
        status: str,
    ) -> None:
        at = _now()
        rows = [
            (
                run_id,
                instance,
                update.object_type,
                update.contact_id,
                change.field,
                _json_value(change.old),
                _json_value(change.new),
                at,
                status,
            )
            for update in updates
            for change in update.changes
        ]
        conn.executemany(
            "INSERT INTO field_writes (run_id, instance, object_type, contact_id, field,"
            " old, new, at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def last_written(
        self, instance: str, records: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The value we last wrote (and the CRM acknowledged) per field, for each record: from
        the mirror, else (records written before it kept them) from the audit trail."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for object_type, ids in by_type(records).items():
            older: list[str] = []
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                rows = self._query(
                    "SELECT contact_id, written FROM mirror WHERE instance = ?"
                    f" AND object_type = ? AND contact_id IN ({marks}) AND written IS NOT NULL",
                    [instance, object_type, *chunk],
                )
                kept = {cid: json.loads(text) for cid, text in rows}
                for cid, values in kept.items():
                    found[(object_type, cid)] = {k: v[0] for k, v in values.items()}
                older += [cid for cid in chunk if cid not in kept]
            for chunk in _chunks(older):
                marks = ",".join("?" * len(chunk))
                rows = self._query(
                    "SELECT contact_id, field, new FROM field_writes WHERE instance = ?"
                    f" AND object_type = ? AND contact_id IN ({marks}) AND status = 'acked'"
                    " ORDER BY seq",
                    [instance, object_type, *chunk],
                )
                for contact_id, field, new in rows:
                    found.setdefault((object_type, contact_id), {})[field] = json.loads(new)
        return found

    def writes_for_run(self, run_id: str) -> list[AuditWrite]:
        """What the run wrote: acknowledged writes, and intents whose outcome is still open
        (rollback checks each against the CRM before touching it)."""
        rows = self._query(
            "SELECT run_id, object_type, contact_id, field, old, new, at FROM field_writes"
            " WHERE run_id = ? AND status IN ('acked', 'intended') ORDER BY seq",
            (run_id,),
        )
        return [
            AuditWrite(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6])
            for r in rows
        ]

    def written_again(self, run_id: str) -> dict[tuple[str, str, str], str]:
        """(object_type, contact_id, field) this run wrote that a later sync wrote again and
        the CRM acknowledged, with the latest such run: a later run may write the very value
        this one did (after a person cleared it), which the CRM's value alone cannot tell. A
        rollback's writes restore earlier values and do not count, nor do the writes of a run
        rolled back since (it was rolled back first, as asked: what its rollback could not
        put back, a stage, stays whatever this rollback does)."""
        rolled_back = (
            f"SELECT substr(mode, {len(ROLLBACK_MODE) + 1}) FROM runs"
            f" WHERE mode LIKE '{ROLLBACK_MODE}%' AND dry_run = 0"
        )
        rows = self._query(
            "SELECT w.object_type, w.contact_id, w.field, l.run_id FROM field_writes w"
            " JOIN field_writes l ON l.instance = w.instance AND l.object_type = w.object_type"
            " AND l.contact_id = w.contact_id AND l.field = w.field AND l.seq > w.seq"
            " WHERE w.run_id = ? AND l.status = 'acked' AND l.run_id != w.run_id"
            f" AND l.run_id NOT IN (SELECT id FROM runs WHERE mode LIKE '{ROLLBACK_MODE}%')"
            f" AND l.run_id NOT IN ({rolled_back}) ORDER BY l.seq",
            (run_id,),
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    def writes(self, instance: str, fields: Sequence[str]) -> Iterator[AuditWrite]:
        """Every write of these fields, oldest first, streamed (reports read the whole trail)."""
        marks = ",".join("?" * len(fields))
        cursor = self._conn.execute(
            "SELECT run_id, object_type, contact_id, field, old, new, at FROM field_writes"
            f" WHERE instance = ? AND field IN ({marks}) AND status = 'acked' ORDER BY seq",
            [instance, *fields],
        )
        for r in cursor:
            yield AuditWrite(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6])

    # tasks -------------------------------------------------------------------------------
    def all_tasks(self, instance: str) -> list[TaskRecord]:
        rows = self._query(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE instance = ? ORDER BY created_at, key",
            (instance,),
        )
        return [TaskRecord(*row) for row in rows]

    def tasks_by_key(self, instance: str, keys: Sequence[str]) -> dict[str, TaskRecord]:
        found: dict[str, TaskRecord] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE instance = ? AND key IN ({marks})",
                [instance, *chunk],
            )
            found.update({row[0]: TaskRecord(*row) for row in rows})
        return found

    def tasks_for_run(self, run_id: str) -> list[TaskRecord]:
        rows = self._query(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ? ORDER BY created_at, key",
            (run_id,),
        )
        return [TaskRecord(*row) for row in rows]

    def last_sent_pending(self, run_id: str) -> datetime | None:
        """When the last of a run's task creations sent and never answered was sent."""
        rows = self._query(
            "SELECT MAX(sent_at) FROM tasks WHERE run_id = ? AND status = ?",
            (run_id, TASK_PENDING),
        )
        return datetime.fromisoformat(rows[0][0]) if rows and rows[0][0] else None

    def mark_tasks_pending(self, instance: str, run_id: str, tasks: Sequence[PlannedTask]) -> None:
        """Recorded just before the create call: a crash after it leaves the key `pending`,
        to be looked up in the CRM before it is ever sent again."""
        with self._tx() as conn:
            self._insert_tasks(conn, instance, run_id, tasks, TASK_PENDING)
            conn.executemany(
                "UPDATE tasks SET sent_at = ? WHERE instance = ? AND key = ? AND status = ?",
                [(_now(), instance, task.key, TASK_PENDING) for task in tasks],
            )

    @staticmethod
    def _insert_tasks(
        conn: sqlite3.Connection,
        instance: str,
        run_id: str,
        tasks: Sequence[PlannedTask],
        status: str,
    ) -> None:
        """New keys get `status`; a key already known moves only owed -> pending (a created
        task is never owed again), or from closed for a hot-lead call the engine plans again
        (`SyncEngine._plan`: a rollback removed it, and a new episode began in its minute),
        owed (held for a full call) or pending, which then starts over: its old task is gone
        from the CRM."""
        anew = (
            "tasks.status = 'closed' AND tasks.kind = 'hot_call'"
            " AND excluded.status IN ('owed', 'pending')"
        )
        conn.executemany(
            "INSERT INTO tasks (instance, key, run_id, object_type, contact_id, kind, status,"
            " crm_id, due, created_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)"
            " ON CONFLICT (instance, key) DO UPDATE SET run_id = excluded.run_id,"
            f" status = CASE WHEN {anew} THEN excluded.status WHEN tasks.status IN"
            " ('owed', 'pending') AND excluded.status = 'pending' THEN 'pending'"
            " ELSE tasks.status END,"
            f" crm_id = CASE WHEN {anew} THEN NULL ELSE tasks.crm_id END,"
            f" due = CASE WHEN {anew} THEN excluded.due ELSE tasks.due END,"
            f" payload = CASE WHEN {anew} THEN excluded.payload ELSE tasks.payload END",
            [
                (
                    instance,
                    task.key,
                    run_id,
                    task.object_type,
                    task.contact_id,
                    task.kind,
                    status,
                    task.due.isoformat(),
                    _now(),
                    json.dumps(task.to_json()),
                )
                for task in tasks
            ],
        )

    def tasks_in(
        self,
        instance: str,
        status: str,
        *,
        below_attempts: int | None = None,
        sent_before: datetime | None = None,
    ) -> list[PlannedTask]:
        """Tasks in one state (`pending`: sent but never acknowledged; `owed`: not yet in
        the CRM), from the payload saved with the intent; optionally only those that failed
        fewer than `below_attempts` times, or that were last sent before `sent_before`."""
        rows = self._query(
            "SELECT payload FROM tasks WHERE instance = ? AND status = ? AND attempts < ?"
            " AND (sent_at IS NULL OR sent_at <= ?) ORDER BY created_at, key",
            (
                instance,
                status,
                below_attempts if below_attempts is not None else 2**31,
                _text(sent_before or datetime.max.replace(tzinfo=UTC)),
            ),
        )
        return [PlannedTask.from_json(json.loads(row[0])) for row in rows if row[0]]

    def owed_tasks(
        self, instance: str, keys: Sequence[str], status: str = TASK_OWED
    ) -> list[PlannedTask]:
        """Those of `keys` still owed (or in `status`), from their saved payloads, in the
        order of `keys`: a key created or sent since it was planned is not handed back."""
        found: dict[str, PlannedTask] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT key, payload FROM tasks WHERE instance = ? AND status = ?"
                f" AND key IN ({marks}) AND payload IS NOT NULL",
                [instance, status, *chunk],
            )
            found.update((key, PlannedTask.from_json(json.loads(payload))) for key, payload in rows)
        return [found[key] for key in keys if key in found]

    def to_recheck(self, instance: str, keys: Sequence[str]) -> None:
        """Follow-ups a record held open when it left the mirror as deleted: the next run
        asks the CRM whether they went with it (`rechecks`)."""
        if keys:
            known = json.loads(self.get_meta(instance, RECHECK_KEY) or "[]")
            self.set_meta(instance, RECHECK_KEY, json.dumps(sorted({*known, *keys})))

    def rechecks(self, instance: str) -> list[str]:
        """The follow-up keys `to_recheck` queued; cleared with `delete_meta`."""
        return json.loads(self.get_meta(instance, RECHECK_KEY) or "[]")

    def count_tasks(self, instance: str, status: str) -> int:
        """How many task keys are in one state (for logs and /metrics: no payloads read)."""
        rows = self._query(
            "SELECT COUNT(*) FROM tasks WHERE instance = ? AND status = ?", (instance, status)
        )
        return rows[0][0]

    def waiting_follow_ups(
        self, instance: str, records: Sequence[tuple[str, str]], *, below_attempts: int
    ) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """(kind, key) of the tasks on their way to each of these records, not yet seen on
        it: pending (sent, answer lost), or owed and still resent (fewer failures than
        `below_attempts`)."""
        found: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for object_type, ids in by_type(records).items():
            for chunk in _chunks(sorted(set(ids))):
                rows = self._query(
                    "SELECT contact_id, kind, key FROM tasks WHERE instance = ?"
                    " AND (status = 'pending' OR (status = 'owed' AND attempts < ?))"
                    f" AND object_type = ? AND contact_id IN ({','.join('?' * len(chunk))})",
                    [instance, below_attempts, object_type, *chunk],
                )
                for contact_id, kind, key in rows:
                    found.setdefault((object_type, contact_id), []).append((kind, key))
        return found

    def task_records_in(self, instance: str, status: str) -> list[TaskRecord]:
        """The ledger's rows in one state (few: `closing` ones a dead run left)."""
        rows = self._query(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE instance = ? AND status = ?"
            " ORDER BY created_at, key",
            (instance, status),
        )
        return [TaskRecord(*row) for row in rows]

    def mark_tasks_closing(
        self, instance: str, closing: Sequence[tuple[str, tuple[str, str], str]]
    ) -> None:
        """(key, record holding it now, CRM id) of created follow-ups about to be removed:
        the intent, on disk before the CRM is asked (`sync/redundant.py`)."""
        with self._tx() as conn:
            conn.executemany(
                "UPDATE tasks SET status = 'closing', object_type = ?, contact_id = ?,"
                " crm_id = ? WHERE instance = ? AND key = ? AND status IN ('created', 'closing')",
                [(obj, cid, crm_id, instance, key) for key, (obj, cid), crm_id in closing],
            )

    def mark_task_created(self, instance: str, key: str, crm_id: str) -> None:
        self.set_task_status(instance, key, TASK_CREATED, crm_id)

    def mark_tasks_created(self, instance: str, created: Sequence[tuple[str, str]]) -> None:
        """(key, crm_id) pairs acknowledged by the CRM, in one transaction."""
        with self._tx() as conn:
            conn.executemany(
                "UPDATE tasks SET status = 'created', crm_id = ?, last_error = NULL"
                " WHERE instance = ? AND key = ?",
                [(crm_id, instance, key) for key, crm_id in created],
            )

    def retarget_tasks(self, instance: str, tasks: Sequence[PlannedTask]) -> None:
        """Tasks refused because their record is gone, or that went with it, owed again under
        the same keys on the record given (another record of the person), for the next run."""
        with self._tx() as conn:
            conn.executemany(
                "UPDATE tasks SET object_type = ?, contact_id = ?, payload = ?, status = 'owed'"
                " WHERE instance = ? AND key = ? AND status IN ('owed', 'pending', 'created')",
                [
                    (t.object_type, t.contact_id, json.dumps(t.to_json()), instance, t.key)
                    for t in tasks
                ],
            )

    def forget_tasks(self, instance: str, keys: Sequence[str]) -> None:
        """Owed tasks no record is left for (every record of their person is gone)."""
        with self._tx() as conn:
            conn.executemany(
                "DELETE FROM tasks WHERE instance = ? AND key = ?"
                " AND status IN ('owed', 'pending')",
                [(instance, key) for key in keys],
            )

    def mark_tasks_owed(
        self, instance: str, failed: Sequence[tuple[str, str | None]], *, attempt: bool = True
    ) -> None:
        """(key, error) of creations that certainly did not land: still owed, tried again.
        `attempt`: the refusal counts against the task (not when the CRM refused the whole
        call for our configuration: the task is not at fault)."""
        with self._tx() as conn:
            conn.executemany(
                "UPDATE tasks SET status = 'owed', attempts = attempts + ?, last_error = ?"
                " WHERE instance = ? AND key = ? AND status IN ('owed', 'pending')",
                [(int(attempt), error, instance, key) for key, error in failed],
            )

    def record_existing_tasks(self, instance: str, found: Iterable[tuple[str, str]]) -> int:
        """Tasks the CRM already carries with our key (ledger rebuild): known as created."""
        rows = [
            (instance, key, "ledger", "", "", "", TASK_CREATED, crm_id, None, _now(), None)
            for key, crm_id in found
        ]
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO tasks (instance, key, run_id, object_type, contact_id, kind,"
                " status, crm_id, due, created_at, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instance, key)"
                " DO UPDATE SET status = CASE WHEN tasks.status IN ('closed', 'gone')"
                " THEN tasks.status ELSE 'created' END,"
                " crm_id = COALESCE(tasks.crm_id, excluded.crm_id)",
                rows,
            )
        return len(rows)

    def set_task_status(self, instance: str, key: str, status: str, crm_id: str | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE tasks SET status = ?, crm_id = COALESCE(?, crm_id)"
                " WHERE instance = ? AND key = ?",
                (status, crm_id, instance, key),
            )

    # retry queue and records needing attention -------------------------------------------
    def add_retries(self, instance: str, records: Sequence[tuple[str, str, str]]) -> None:
        """(object_type, contact_id, reason) of records with a transient failure: re-read at
        the start of the next run. A record needing attention keeps its refusal (field, reason,
        backoff): a transient failure since says nothing about whether it was fixed."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO retries (instance, object_type, contact_id, reason, since)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (instance, object_type, contact_id)"
                " DO UPDATE SET reason = excluded.reason WHERE retries.transient = 1",
                [(instance, obj, cid, reason, _now()) for obj, cid, reason in records],
            )

    def add_attention(
        self,
        instance: str,
        records: Sequence[tuple[str, str, str | None, str]],
        fingerprints: Mapping[str, str],
        now: datetime,
        versions: Mapping[tuple[str, str], datetime] | None = None,
    ) -> None:
        """(object_type, contact_id, CRM field, reason) of records whose error is not
        transient. Retried after a configuration or schema change (`fingerprints`, per object
        type), and on a backoff that doubles from one hour to a week. `versions`: the CRM
        stamp each failed at, where known (`failed_versions`).

        Only a retry counts as an attempt: met again before its backoff is over, under the
        same configuration (the read's look-back window, or a person's edit that left the
        value bad), a record keeps its attempts and its next retry, so the backoff is the one
        the docs give whatever the schedule."""
        if not records:
            return
        rows = self._query(
            "SELECT object_type, contact_id, attempts, next_at, fingerprint FROM retries"
            " WHERE instance = ? AND transient = 0",
            (instance,),
        )
        known = {(r[0], r[1]): r[2:] for r in rows}
        moment = _text(now)
        values = []
        for obj, cid, field, reason in records:
            fingerprint = fingerprints.get(obj)
            tries, next_at, seen = known.get((obj, cid), (0, None, None))
            if next_at is None or next_at <= moment or seen != fingerprint:
                tries += 1
                wait = min(3600 * 2 ** (tries - 1), 7 * 86400)
                next_at = _text(datetime.fromtimestamp(now.timestamp() + wait, UTC))
            stamp = (versions or {}).get((obj, cid))
            version = _text(stamp.astimezone(UTC)) if stamp else None
            values.append(
                (instance, obj, cid, reason, _now(), field, tries, next_at, fingerprint, version)
            )
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO retries (instance, object_type, contact_id, reason, since,"
                " transient, field, attempts, next_at, fingerprint, stamp)"
                " VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) ON CONFLICT"
                " (instance, object_type, contact_id) DO UPDATE SET reason = excluded.reason,"
                " transient = 0, field = excluded.field, attempts = excluded.attempts,"
                " next_at = excluded.next_at, fingerprint = excluded.fingerprint,"
                " stamp = excluded.stamp",
                values,
            )

    def failed_versions(self, instance: str) -> dict[tuple[str, str], datetime]:
        """The CRM stamp of the version each record needing attention failed at, where the
        adapter gave one: met again at it, the record has not changed since."""
        rows = self._query(
            "SELECT object_type, contact_id, stamp FROM retries"
            " WHERE instance = ? AND transient = 0 AND stamp IS NOT NULL",
            (instance,),
        )
        return {(obj, cid): datetime.fromisoformat(stamp) for obj, cid, stamp in rows}

    def retries(
        self,
        instance: str,
        *,
        fingerprints: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> list[tuple[str, str]]:
        """Records to re-read now: every transient one, and those needing attention whose
        backoff is over or whose configuration or schema changed since."""
        rows = self._query(
            "SELECT object_type, contact_id, transient, next_at, fingerprint FROM retries"
            " WHERE instance = ? ORDER BY since",
            (instance,),
        )
        moment = _text(now or datetime.now(UTC))
        return [
            (obj, cid)
            for obj, cid, transient, next_at, seen in rows
            if transient
            or fingerprints is None
            or seen != fingerprints.get(obj)
            or (next_at or "") <= moment
        ]

    def attention(self, instance: str) -> list[AttentionRecord]:
        rows = self._query(
            "SELECT object_type, contact_id, field, reason, since, attempts, next_at"
            " FROM retries WHERE instance = ? AND transient = 0 ORDER BY since",
            (instance,),
        )
        return [AttentionRecord(*row) for row in rows]

    def retry_keys(self, instance: str) -> set[tuple[str, str]]:
        """Every record with a retry or needing attention (at most `max_retry_records` a run
        re-reads, a few thousand in a troubled org)."""
        rows = self._query(
            "SELECT object_type, contact_id FROM retries WHERE instance = ?", (instance,)
        )
        return {(row[0], row[1]) for row in rows}

    def clear_retries(self, instance: str, records: Sequence[tuple[str, str]]) -> None:
        with self._tx() as conn:
            if not conn.execute(
                "SELECT 1 FROM retries WHERE instance = ? LIMIT 1", (instance,)
            ).fetchone():
                return  # the usual case: every batch clears its records, nothing to delete
            conn.executemany(
                "DELETE FROM retries WHERE instance = ? AND object_type = ? AND contact_id = ?",
                [(instance, obj, cid) for obj, cid in records],
            )

    # locks -------------------------------------------------------------------------------
    def acquire_lock(self, name: str, holder: str, ttl_seconds: float, now: float) -> bool:
        """A lease shared by every process on this file: one sync per portal at a time. A
        holder on this host whose process is gone is taken over at once."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT holder, expires_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row and row[0] != holder and row[1] > now and process_alive(row[0]):
                return False
            conn.execute(
                "INSERT INTO locks VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
                (name, holder, now + ttl_seconds),
            )
            return True

    def rollbacks_of(self, run_id: str) -> list[str]:
        """Ids of the (non-dry) rollbacks recorded for `run_id`, oldest first as recorded."""
        rows = self._query(
            "SELECT id FROM runs WHERE mode = ? AND dry_run = 0 ORDER BY rowid",
            (ROLLBACK_MODE + run_id,),
        )
        return [row[0] for row in rows]

    def lock_info(self, name: str) -> tuple[str, float] | None:
        """(holder, expires_at) of a lease, for a refusal message."""
        rows = self._query("SELECT holder, expires_at FROM locks WHERE name = ?", (name,))
        return (rows[0][0], rows[0][1]) if rows else None

    def release_lock(self, name: str, holder: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM locks WHERE name = ? AND holder = ?", (name, holder))


def _explain(path: str, doing: str, exc: sqlite3.Error) -> str:
    """A one-line cause and fix for the sqlite errors an admin actually meets."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        hint = "another process holds the file; stop it or wait"
    elif "disk" in lowered and "full" in lowered:
        hint = "the disk is full; free space and run again"
    elif "readonly" in lowered or "read-only" in lowered:
        hint = "the file or its folder is read-only; fix the permissions"
    elif "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        hint = "the file is damaged; restore it from a backup or move it aside"
    elif "unable to open" in lowered:
        hint = "check that the folder exists and is writable (sync.state_path)"
    else:
        hint = "check sync.state_path"
    return f"state store {path}: cannot {doing}: {text} ({hint})"


def _as_seen(record: RunRecord, holder: str | None) -> RunRecord:
    """A run still `running` whose process is gone shows as `crashed` (a second SIGTERM
    ends a process at once): the next run's start records it so."""
    if record.status == "running" and holder and not process_alive(holder):
        return replace(record, status="crashed")
    return record


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        id=row[0],
        instance=row[1],
        mode=row[2],
        dry_run=bool(row[3]),
        started_at=row[4],
        ended_at=row[5],
        status=row[6],
        counts=json.loads(row[7]),
        errors=json.loads(row[8]),
        details=json.loads(row[9] or "{}"),
    )
