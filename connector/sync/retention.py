"""Retention: what the state store keeps once runs grow old, and compaction.

Runs that ended more than `sync.keep_runs_days` ago leave the state store with their audit
rows, except what must stay whatever its age:
- for every (record, field), the latest acknowledged write: `unless_edited` compares the CRM's
  value with it (`StateStore.last_written`), and reports read the current values from it;
- intents not settled yet (a dead run's; the next read of the record settles them);
- runs still `running`, with all their rows;
- every task key (owed, pending, created, closed): the ledger prevents duplicates and is
  never pruned. A created or closed task's payload (what it was created with) is dropped with
  its run: only owed and pending tasks are ever sent again.

A run goes whole: its `runs` row first, then its audit rows, so a crash in between leaves rows
no run claims (removed next time), never a run with half its trail. Rollback of a removed run
refuses and names the setting (`missing_run`). The daemon applies retention at most once a day
after a successful run (`apply_if_due`), which keeps the file from growing: SQLite reuses the
freed pages. Only `crm-qualify compact` also VACUUMs, which gives them back to the disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_qualify.connector.sync.state import StateStore

log = logging.getLogger(__name__)

RETENTION_KEY = "retention"
"""Meta per instance: when retention last ran, and the cut-off before which runs are gone."""
EVERY = timedelta(days=1)
"""The daemon applies retention at most this often."""
SEQ_CHUNK = 50_000
"""Audit rows examined per transaction: the write lock is held briefly, the WAL stays small."""
SETTING = "sync.keep_runs_days"

_KEPT_RUNS = (
    "SELECT id FROM runs WHERE instance = :instance AND (status = 'running'"
    " OR COALESCE(ended_at, started_at) >= :cutoff)"
)
_OLD_RUNS = (
    "FROM runs WHERE instance = :instance AND status != 'running'"
    " AND COALESCE(ended_at, started_at) < :cutoff"
)
_OLD_WRITES = (
    "FROM field_writes WHERE seq BETWEEN :low AND :high AND +instance = :instance"
    " AND at < :cutoff AND status != 'intended'"
    f" AND run_id NOT IN ({_KEPT_RUNS})"
    " AND (status != 'acked' OR EXISTS (SELECT 1 FROM field_writes later"
    " WHERE later.instance = field_writes.instance"
    " AND later.object_type = field_writes.object_type"
    " AND later.contact_id = field_writes.contact_id AND later.field = field_writes.field"
    " AND later.seq > field_writes.seq AND later.status = 'acked'))"
)
"""Rows of runs not kept (removed now, or before), superseded by a later acknowledged write
of the same field or never acknowledged; intents and each field's latest acked write stay.
Read by seq range (`+instance`: not through the instance's whole index)."""
_CLEAR_PAYLOADS = "UPDATE tasks SET payload = NULL WHERE rowid IN (SELECT rowid {})"
_OLD_PAYLOADS = (
    "FROM tasks WHERE instance = :instance AND status IN ('created', 'closed', 'gone')"
    " AND payload IS NOT NULL AND created_at < :cutoff"
)


@dataclass
class Pruned:
    """What retention removed (or, dry, would remove)."""

    cutoff: datetime | None
    runs: int = 0
    writes: int = 0
    task_payloads: int = 0
    complete: bool = True
    """False when stopped part-way (the daemon shutting down): the next pass goes on."""

    def sentence(self, dry_run: bool = False) -> str:
        if self.cutoff is None:
            return f"{SETTING} = 0: nothing is pruned"
        verb = "would remove" if dry_run else "removed"
        return (
            f"{verb} {self.runs:,} run(s) that ended before {self.cutoff:%Y-%m-%d %H:%M} UTC,"
            f" {self.writes:,} audit row(s) and {self.task_payloads:,} payload(s) of created"
            " tasks (task keys and each field's latest acknowledged write are kept)"
            + ("" if self.complete else "; stopped part-way, the rest goes next time")
        )


def cutoff(keep_runs_days: float, now: datetime) -> datetime | None:
    """Runs that ended before this are removed; None: retention is off."""
    return now - timedelta(days=keep_runs_days) if keep_runs_days > 0 else None


def prune(
    store: StateStore,
    instance: str,
    keep_runs_days: float,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    stop: Callable[[], bool] | None = None,
) -> Pruned:
    """Apply the retention rules to one instance (no VACUUM). `dry_run` only counts. `stop`
    is asked between chunks; a stopped pass leaves a consistent store and says so."""
    now = now or datetime.now(UTC)
    limit = cutoff(keep_runs_days, now)
    pruned = Pruned(limit)
    if limit is None:
        return pruned
    params = {"instance": instance, "cutoff": limit.isoformat(timespec="microseconds")}
    if dry_run:
        pruned.runs = _count(store, f"SELECT COUNT(*) {_OLD_RUNS}", params)
    else:
        with store._tx() as conn:
            pruned.runs = conn.execute(f"DELETE {_OLD_RUNS}", params).rowcount
            _note_cutoff(conn, instance, limit, keep_runs_days)
    low, high = store._query("SELECT MIN(seq), MAX(seq) FROM field_writes")[0]
    while low is not None and low <= high:
        if stop and stop():
            pruned.complete = False
            return pruned
        span = {**params, "low": low, "high": min(low + SEQ_CHUNK - 1, high)}
        if not _older_rows(store, span):
            break
        if dry_run:
            pruned.writes += _count(store, f"SELECT COUNT(*) {_OLD_WRITES}", span)
        else:
            with store._tx() as conn:
                pruned.writes += conn.execute(f"DELETE {_OLD_WRITES}", span).rowcount
        low += SEQ_CHUNK
    if dry_run:
        pruned.task_payloads = _count(store, f"SELECT COUNT(*) {_OLD_PAYLOADS}", params)
    else:
        with store._tx() as conn:
            update = _CLEAR_PAYLOADS.format(_OLD_PAYLOADS)
            pruned.task_payloads = conn.execute(update, params).rowcount
    return pruned


def apply_if_due(
    store: StateStore,
    instance: str,
    keep_runs_days: float,
    *,
    now: datetime | None = None,
    stop: Callable[[], bool] | None = None,
) -> Pruned | None:
    """For the daemon, after a successful run and under the portal's lease: retention at most
    once a day (`EVERY`), no VACUUM. None when it is not due or turned off."""
    now = now or datetime.now(UTC)
    if keep_runs_days <= 0:
        return None
    last = _meta(store, instance).get("applied_at")
    if last and now - datetime.fromisoformat(last) < EVERY:
        return None
    pruned = prune(store, instance, keep_runs_days, now=now, stop=stop)
    if pruned.complete:
        note = {**_meta(store, instance), "applied_at": now.isoformat()}
        store.set_meta(instance, RETENTION_KEY, json.dumps(note))
    log.info("retention: %s", pruned.sentence())
    return pruned


def missing_run(store: StateStore, instance: str, run_id: str) -> str:
    """Why a run id is not in the store: removed by retention (rows it left, or an id older
    than the cut-off applied), or unknown."""
    note = _meta(store, instance)
    before = note.get("pruned_before")
    started = _run_started(run_id)
    left = store._query(
        "SELECT 1 FROM tasks WHERE run_id = ? UNION ALL"
        " SELECT 1 FROM field_writes WHERE run_id = ? LIMIT 1",
        (run_id, run_id),
    )
    if left or (before and started and started < datetime.fromisoformat(str(before))):
        days = note.get("keep_runs_days")
        setting = f"{SETTING} = {days:g}" if isinstance(days, int | float) else SETTING
        when = f"runs that ended before {str(before)[:10]}" if before else "old runs"
        return (
            f"run {run_id} is no longer in the state store: {when} were removed with their"
            f" audit trail ({setting}), so it cannot be rolled back; nothing was changed"
        )
    return f"no run {run_id} in the state store (see `crm-qualify runs`)"


def vacuum(store: StateStore) -> None:
    """Rewrite the file without its free pages, then empty the WAL VACUUM went through. Holds
    the whole file while it runs (other writers wait, up to their busy timeout)."""
    with store._lock, store._errors("vacuum"):
        store._conn.execute("VACUUM")
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def file_size(path: str | Path) -> int:
    """Bytes on disk of a state file and its WAL."""
    total = 0
    for name in (str(path), f"{path}-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(name).st_size
    return total


def _read(store: StateStore, sql: str, params: dict[str, object]) -> Any:
    """The one value a query with named parameters returns."""
    with store._lock, store._errors("read"):
        return store._conn.execute(sql, params).fetchone()[0]


def _count(store: StateStore, sql: str, params: dict[str, object]) -> int:
    return int(_read(store, sql, params))


def _older_rows(store: StateStore, span: dict[str, object]) -> bool:
    """Whether rows from `low` on can be older than the cut-off. Rows are numbered in the order
    they were written, so the first chunk written entirely after it ends the pass (a row
    stamped out of order by a clock step is reached on a later day)."""
    oldest = _read(store, "SELECT MIN(at) FROM field_writes WHERE seq BETWEEN :low AND :high", span)
    return oldest is None or oldest < span["cutoff"]


def _meta(store: StateStore, instance: str) -> dict[str, object]:
    text = store.get_meta(instance, RETENTION_KEY)
    return json.loads(text) if text else {}


def _note_cutoff(
    conn: sqlite3.Connection, instance: str, limit: datetime, keep_runs_days: float
) -> None:
    """Remember the latest cut-off applied, in the transaction that removes the runs."""
    row = conn.execute(
        "SELECT value FROM meta WHERE instance = ? AND key = ?", (instance, RETENTION_KEY)
    ).fetchone()
    note = json.loads(row[0]) if row else {}
    before = note.get("pruned_before")
    if not before or datetime.fromisoformat(before) < limit:
        note.update(pruned_before=limit.isoformat(), keep_runs_days=keep_runs_days)
    conn.execute(
        "INSERT INTO meta VALUES (?, ?, ?) ON CONFLICT (instance, key)"
        " DO UPDATE SET value = excluded.value",
        (instance, RETENTION_KEY, json.dumps(note)),
    )


def _run_started(run_id: str) -> datetime | None:
    """When a run started, from its id (`StateStore.start_run`: %Y%m%dT%H%M%S-xxxxxx)."""
    try:
        return datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


__all__ = ["Pruned", "apply_if_due", "cutoff", "file_size", "missing_run", "prune", "vacuum"]
