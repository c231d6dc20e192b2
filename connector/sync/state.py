"""The state store: cursors, run history, the audit trail and task idempotency, in one SQLite file.

Embedded so a first run needs no setup; everything goes through `StateStore`, so a server
database can replace it later behind the same methods. The audit trail records every field
write with its old value: `unless_edited` reads it to spot human edits, rollback replays it.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_qualify.connector.model import PlannedTask, RecordUpdate

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
"""

LEASE_SECONDS = 600.0
"""A sync lease outlives a stalled process by at most this long; holders renew it per batch."""


def sync_lock_name(instance: str) -> str:
    """The lease a sync or a rollback of this portal holds: one of them at a time."""
    return f"sync:{instance}"


def lock_holder(role: str) -> str:
    """Who holds a lease: host, process and a random part, readable in the locks table."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}:{uuid.uuid4().hex[:8]}"


TASK_PENDING = "pending"
TASK_CREATED = "created"
TASK_CLOSED = "closed"


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


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StateStore:
    """Thread-safe access to one SQLite state file (WAL, so `runs` can read during a sync)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._lock = threading.RLock()
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

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
                "INSERT INTO runs (id, instance, mode, dry_run, started_at, status)"
                " VALUES (?, ?, ?, ?, ?, 'running')",
                (run_id, instance, mode, int(dry_run), _now()),
            )
        return run_id

    def finish_run(
        self, run_id: str, status: str, counts: dict[str, int], errors: Sequence[str]
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET ended_at = ?, status = ?, counts = ?, errors = ? WHERE id = ?",
                (_now(), status, json.dumps(counts), json.dumps(list(errors)), run_id),
            )

    def runs(self, instance: str | None = None, limit: int = 20) -> list[RunRecord]:
        where, params = ("WHERE instance = ?", [instance]) if instance else ("", [])
        rows = self._query(
            f"SELECT * FROM runs {where} ORDER BY started_at DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [_run_record(row) for row in rows]

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return _run_record(rows[0]) if rows else None

    # audit trail -------------------------------------------------------------------------
    def record_writes(self, run_id: str, instance: str, updates: Sequence[RecordUpdate]) -> None:
        at = _now()
        rows = [
            (
                run_id,
                instance,
                update.object_type,
                update.contact_id,
                change.field,
                json.dumps(change.old),
                json.dumps(change.new),
                at,
            )
            for update in updates
            for change in update.changes
        ]
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO field_writes (run_id, instance, object_type, contact_id, field,"
                " old, new, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def last_written(
        self, instance: str, records: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The value we last wrote per field, for each (object_type, contact_id)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for chunk in _chunks(list(records)):
            ids = [contact_id for _, contact_id in chunk]
            marks = ",".join("?" * len(ids))
            rows = self._query(
                "SELECT object_type, contact_id, field, new FROM field_writes"
                f" WHERE instance = ? AND contact_id IN ({marks}) ORDER BY seq",
                [instance, *ids],
            )
            wanted = set(chunk)
            for object_type, contact_id, field, new in rows:
                if (object_type, contact_id) in wanted:
                    found.setdefault((object_type, contact_id), {})[field] = json.loads(new)
        return found

    def writes_for_run(self, run_id: str) -> list[AuditWrite]:
        rows = self._query(
            "SELECT run_id, object_type, contact_id, field, old, new, at FROM field_writes"
            " WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        return [
            AuditWrite(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6])
            for r in rows
        ]

    def writes(self, instance: str, fields: Sequence[str]) -> Iterator[AuditWrite]:
        """Every write of these fields, oldest first, streamed (reports read the whole trail)."""
        marks = ",".join("?" * len(fields))
        cursor = self._conn.execute(
            "SELECT run_id, object_type, contact_id, field, old, new, at FROM field_writes"
            f" WHERE instance = ? AND field IN ({marks}) ORDER BY seq",
            [instance, *fields],
        )
        for r in cursor:
            yield AuditWrite(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6])

    # tasks -------------------------------------------------------------------------------
    def all_tasks(self, instance: str) -> list[TaskRecord]:
        rows = self._query(
            "SELECT key, run_id, object_type, contact_id, kind, status, crm_id, due"
            " FROM tasks WHERE instance = ? ORDER BY created_at, key",
            (instance,),
        )
        return [TaskRecord(*row) for row in rows]

    def tasks_by_key(self, instance: str, keys: Sequence[str]) -> dict[str, TaskRecord]:
        found: dict[str, TaskRecord] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                "SELECT key, run_id, object_type, contact_id, kind, status, crm_id, due"
                f" FROM tasks WHERE instance = ? AND key IN ({marks})",
                [instance, *chunk],
            )
            found.update({row[0]: TaskRecord(*row) for row in rows})
        return found

    def tasks_for_run(self, run_id: str) -> list[TaskRecord]:
        rows = self._query(
            "SELECT key, run_id, object_type, contact_id, kind, status, crm_id, due"
            " FROM tasks WHERE run_id = ? ORDER BY created_at, key",
            (run_id,),
        )
        return [TaskRecord(*row) for row in rows]

    def mark_tasks_pending(self, instance: str, run_id: str, tasks: Sequence[PlannedTask]) -> None:
        """Recorded before the create call: a crash after it leaves the key 'uncertain'."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)"
                " ON CONFLICT (instance, key) DO UPDATE SET run_id = excluded.run_id",
                [
                    (
                        instance,
                        task.key,
                        run_id,
                        task.object_type,
                        task.contact_id,
                        task.kind,
                        TASK_PENDING,
                        task.due.isoformat(),
                        _now(),
                        json.dumps(task.to_json()),
                    )
                    for task in tasks
                ],
            )

    def pending_tasks(self, instance: str) -> list[PlannedTask]:
        """Tasks whose creation was sent but never acknowledged (a crash or a lost answer)."""
        rows = self._query(
            "SELECT payload FROM tasks WHERE instance = ? AND status = ? ORDER BY created_at, key",
            (instance, TASK_PENDING),
        )
        return [PlannedTask.from_json(json.loads(row[0])) for row in rows if row[0]]

    def mark_task_created(self, instance: str, key: str, crm_id: str) -> None:
        self.set_task_status(instance, key, TASK_CREATED, crm_id)

    def set_task_status(self, instance: str, key: str, status: str, crm_id: str | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE tasks SET status = ?, crm_id = COALESCE(?, crm_id)"
                " WHERE instance = ? AND key = ?",
                (status, crm_id, instance, key),
            )

    def forget_task(self, instance: str, key: str) -> None:
        """A definite creation failure: the key may be planned and created again next run."""
        with self._tx() as conn:
            conn.execute("DELETE FROM tasks WHERE instance = ? AND key = ?", (instance, key))

    # retry queue -------------------------------------------------------------------------
    def add_retries(self, instance: str, records: Sequence[tuple[str, str, str]]) -> None:
        """(object_type, contact_id, reason) of records whose write failed: re-read next run."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO retries VALUES (?, ?, ?, ?, ?) ON CONFLICT"
                " (instance, object_type, contact_id) DO UPDATE SET reason = excluded.reason",
                [(instance, obj, cid, reason, _now()) for obj, cid, reason in records],
            )

    def retries(self, instance: str) -> list[tuple[str, str]]:
        rows = self._query(
            "SELECT object_type, contact_id FROM retries WHERE instance = ? ORDER BY since",
            (instance,),
        )
        return [(row[0], row[1]) for row in rows]

    def clear_retries(self, instance: str, records: Sequence[tuple[str, str]]) -> None:
        with self._tx() as conn:
            conn.executemany(
                "DELETE FROM retries WHERE instance = ? AND object_type = ? AND contact_id = ?",
                [(instance, obj, cid) for obj, cid in records],
            )

    # locks -------------------------------------------------------------------------------
    def acquire_lock(self, name: str, holder: str, ttl_seconds: float, now: float) -> bool:
        """A lease shared by every process on this file: one sync per portal at a time."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT holder, expires_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row and row[0] != holder and row[1] > now:
                return False
            conn.execute(
                "INSERT INTO locks VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
                (name, holder, now + ttl_seconds),
            )
            return True

    def rollbacks_of(self, run_id: str) -> list[str]:
        """Ids of the (non-dry) rollbacks recorded for `run_id`, oldest first."""
        rows = self._query(
            "SELECT id FROM runs WHERE mode = ? AND dry_run = 0 ORDER BY started_at, id",
            (f"rollback of {run_id}",),
        )
        return [row[0] for row in rows]

    def release_lock(self, name: str, holder: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM locks WHERE name = ? AND holder = ?", (name, holder))


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
    )
