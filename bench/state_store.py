"""Benchmark: the state store's work per batch as the audit trail grows, and its bytes per contact.

    python bench/state_store.py [--sizes 10000,100000,1000000] [--batches 5] [--contacts 10000]

1. Per batch. For each size, a state file is filled with that many audit rows (synthetic,
   `executemany`: 13 acknowledged field writes per contact, as a full sync leaves them, with
   the mirror and one task in four contacts beside them). Then batches of 500 of those contacts
   go through what the engine asks the store per batch: `last_written`, `tasks_by_key`,
   `record_intents`, `settle_writes`, the task marks, `mirror.upsert` and `mirror.record_batch`
   (and `open_intents`, once per run). Prints the median ms per batch of each; the target is
   flat from 10k to 1M rows. A second table holds the trail at 1M rows and deepens each
   contact's history instead (writes per field), which is what retention bounds.
2. Bytes. A simulated sync (the engine, `--contacts` generated contacts, every write
   accepted) leaves a state file: bytes per contact, by table. Then a year of daily runs
   (synthetic: a tenth of the contacts get four field writes a day) is added, and
   `crm-qualify compact`'s work (retention at 90 days, then VACUUM) is timed and measured.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crm_qualify.connector.contract import ContactBatch  # noqa: E402
from crm_qualify.connector.model import (  # noqa: E402
    OWNED_FIELDS,
    Contact,
    FieldUpdate,
    PlannedTask,
    RecordUpdate,
)
from crm_qualify.connector.sync import retention  # noqa: E402
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine  # noqa: E402
from crm_qualify.connector.sync.mirror import AckedWrite, encode  # noqa: E402
from crm_qualify.connector.sync.state import StateStore  # noqa: E402
from rescore import QuietCrm, settings  # noqa: E402
from score_throughput import NOW, generate  # noqa: E402

INSTANCE = "default"
BATCH = 500
FIELDS = [name for name in OWNED_FIELDS][:13]
STEPS = (
    "last_written",
    "tasks_by_key",
    "record_intents",
    "settle_writes",
    "task marks",
    "mirror.upsert",
    "record_batch",
)


def run_id(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S") + f"-{random.getrandbits(24):06x}"


def fill(store: StateStore, rows: int, depth: int) -> list[Contact]:
    """`rows` acknowledged writes: `depth` runs each writing 13 fields of every contact."""
    count = max(BATCH + 100, rows // (len(FIELDS) * depth))
    people = generate(min(count, 20_000), seed=1)
    contacts = [people[n % len(people)].model_copy(update={"id": str(n)}) for n in range(count)]
    conn = store._conn
    start = NOW - timedelta(days=depth)
    with store._tx():
        for layer in range(depth):
            moment = start + timedelta(days=layer)
            rid, at = run_id(moment), moment.isoformat()
            conn.execute(
                "INSERT INTO runs (id, instance, mode, dry_run, started_at, ended_at, status)"
                " VALUES (?, ?, 'scheduled', 0, ?, ?, 'ok')",
                (rid, INSTANCE, at, at),
            )
            conn.executemany(
                "INSERT INTO field_writes (run_id, instance, object_type, contact_id, field,"
                " old, new, at, status) VALUES (?, ?, 'contact', ?, ?, ?, ?, ?, 'acked')",
                (
                    (rid, INSTANCE, str(n), name, json.dumps(layer), json.dumps(layer + 1), at)
                    for n in range(count)
                    for name in FIELDS
                ),
            )
        conn.executemany(
            "INSERT INTO mirror (instance, object_type, contact_id, contact, stamp, read_at)"
            " VALUES (?, 'contact', ?, ?, ?, ?)",
            ((INSTANCE, c.id, encode(c), NOW.isoformat(), NOW.isoformat()) for c in contacts),
        )
        conn.executemany(
            "INSERT INTO tasks (instance, key, run_id, object_type, contact_id, kind, status,"
            " crm_id, due, created_at, payload) VALUES (?, ?, 'r', 'contact', ?, 'hot_call',"
            " 'created', ?, ?, ?, ?)",
            (
                (INSTANCE, f"k:{n}", str(n), f"T{n}", at, at, json.dumps({"body": "x" * 300}))
                for n in range(0, count, 4)
            ),
        )
    return contacts


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def one_batch(store: StateStore, contacts: Sequence[Contact], number: int) -> dict[str, float]:
    """What the engine asks the store for one batch of 500 read contacts, timed step by step."""
    rid = store.start_run(INSTANCE, mode="bench", dry_run=False)
    keys = [(c.object_type, c.id) for c in contacts]
    updates = [
        RecordUpdate(
            contact_id=c.id,
            changes=[FieldUpdate(field=name, old=1, new=number) for name in FIELDS[:5]],
        )
        for c in contacts
    ]
    tasks = [
        PlannedTask(
            key=f"k:{c.id}:{number}", contact_id=c.id, kind="hot_call", subject="Call", due=NOW
        )
        for c in contacts[::5]
    ]
    now = datetime.now(UTC)
    acked = [AckedWrite(u, now, now) for u in updates]
    decided = [(key, None, now + timedelta(days=1)) for key in keys]
    took = {
        "last_written": timed(lambda: store.last_written(INSTANCE, keys)),
        "tasks_by_key": timed(
            lambda: store.tasks_by_key(
                INSTANCE, [t.key for t in tasks] + [f"k:{c.id}" for c in contacts]
            )
        ),
        "record_intents": timed(lambda: store.record_intents(rid, INSTANCE, updates, tasks)),
        "settle_writes": timed(
            lambda: store.settle_writes(rid, INSTANCE, [(u, "acked") for u in updates])
        ),
        "task marks": timed(
            lambda: (
                store.mark_tasks_pending(INSTANCE, rid, tasks),
                store.mark_tasks_created(INSTANCE, [(t.key, f"T-{t.key}") for t in tasks]),
            )
        ),
        "mirror.upsert": timed(lambda: store.mirror.upsert(INSTANCE, list(contacts), now)),
        "record_batch": timed(
            lambda: store.mirror.record_batch(
                INSTANCE, acked, [(t, f"T-{t.key}") for t in tasks], decided, now
            )
        ),
    }
    store.finish_run(rid, "ok", {}, [])
    return took


def per_batch(rows: int, depth: int, batches: int) -> tuple[dict[str, float], float, int]:
    """Median ms per step over `batches` batches, open_intents ms, and the trail's length."""
    with tempfile.TemporaryDirectory() as folder:
        store = StateStore(Path(folder) / "state.sqlite")
        contacts = fill(store, rows, depth)
        rng = random.Random(rows + depth)
        samples: dict[str, list[float]] = {step: [] for step in STEPS}
        for number in range(batches):
            start = rng.randrange(0, len(contacts) - BATCH)
            for step, ms in one_batch(store, contacts[start : start + BATCH], number).items():
                samples[step].append(ms)
        intents = timed(lambda: store.open_intents(INSTANCE))
        length = store._query("SELECT COUNT(*) FROM field_writes")[0][0]
        store.close()
    return {step: statistics.median(values) for step, values in samples.items()}, intents, length


def print_table(title: str, rows: list[tuple[str, dict[str, float], float]]) -> None:
    print(title)
    head = ["trail"] + [step for step in STEPS] + ["total", "open_intents"]
    print("  ".join(f"{name:>14}" for name in head))
    for label, steps, intents in rows:
        cells = [label] + [f"{steps[s]:.1f}" for s in STEPS]
        cells += [f"{sum(steps.values()):.1f}", f"{intents:.1f}"]
        print("  ".join(f"{cell:>14}" for cell in cells))
    print()


class GeneratedCrm(QuietCrm):
    """`rescore`'s quiet CRM that returns generated contacts, 500 a batch, once."""

    def __init__(self, contacts: list[Contact]) -> None:
        super().__init__()
        self.contacts = contacts

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: object = None
    ) -> Iterator[ContactBatch]:
        for start in range(0, len(self.contacts), BATCH):
            yield ContactBatch(contacts=self.contacts[start : start + BATCH], cursor=str(start))
        self.contacts = []


def by_table(store: StateStore, contacts: int) -> str:
    try:
        rows = store._query("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
    except Exception:  # SQLite built without dbstat
        return "  (no dbstat in this SQLite build)"
    return "\n".join(
        f"  {name:<28} {size / contacts:8,.0f} B/contact" for name, size in rows if size > 4096
    )


def year_of_runs(store: StateStore, contact_ids: list[str], days: int) -> int:
    """Daily runs over `days` days: a tenth of the contacts get score, temperature, reasons
    and scored_at written each day. Returns the rows added."""
    rng = random.Random(5)
    conn = store._conn
    added = 0
    start = datetime.now(UTC) - timedelta(days=days)
    with store._tx():
        for day in range(days):
            moment = start + timedelta(days=day)
            rid, at = run_id(moment), moment.isoformat()
            conn.execute(
                "INSERT INTO runs (id, instance, mode, dry_run, started_at, ended_at, status)"
                " VALUES (?, ?, 'scheduled', 0, ?, ?, 'ok')",
                (rid, INSTANCE, at, at),
            )
            touched = rng.sample(contact_ids, max(1, len(contact_ids) // 10))
            rows = [
                (rid, INSTANCE, cid, name, json.dumps(value), json.dumps(value), at)
                for cid in touched
                for name, value in (
                    ("score", day % 100),
                    ("temperature", "warm"),
                    ("reasons", f"Visited pricing {day} days ago; opened 3 emails; demo asked"),
                    ("scored_at", at),
                )
            ]
            conn.executemany(
                "INSERT INTO field_writes (run_id, instance, object_type, contact_id, field,"
                " old, new, at, status) VALUES (?, ?, 'contact', ?, ?, ?, ?, ?, 'acked')",
                rows,
            )
            added += len(rows)
    return added


def checkpoint(store: StateStore) -> None:
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def bytes_per_contact(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.sqlite"
        store = StateStore(path)
        crm = GeneratedCrm(generate(count, seed=3))
        started = time.perf_counter()
        summary = SyncEngine(crm, settings(path), store).run(RunOptions(now=NOW))  # type: ignore[arg-type]
        took = time.perf_counter() - started
        checkpoint(store)
        writes = store._query("SELECT COUNT(*) FROM field_writes")[0][0]
        size = retention.file_size(path)
        print(
            f"simulated full sync of {count:,} contacts ({summary.status}, {took:.1f} s):"
            f" {writes:,} audit rows, {size / 1e6:.1f} MB, {size / count:,.0f} bytes/contact"
        )
        print(by_table(store, count))
        backdate = (datetime.now(UTC) - timedelta(days=400)).isoformat()
        with store._tx() as conn:
            conn.execute("UPDATE runs SET started_at = ?, ended_at = ?", (backdate, backdate))
            conn.execute("UPDATE field_writes SET at = ?", (backdate,))
            conn.execute("UPDATE tasks SET created_at = ?", (backdate,))
        ids = [row[0] for row in store._query("SELECT contact_id FROM mirror")]
        added = year_of_runs(store, ids, 365)
        checkpoint(store)
        size = retention.file_size(path)
        print(
            f"after a year of daily runs (+{added:,} audit rows): {size / 1e6:.1f} MB,"
            f" {size / count:,.0f} bytes/contact"
        )
        started = time.perf_counter()
        pruned = retention.prune(store, INSTANCE, 90)
        pruning = time.perf_counter() - started
        checkpoint(store)
        kept = store._query("SELECT COUNT(*) FROM field_writes")[0][0]
        print(f"retention at 90 days ({pruning:.1f} s): {pruned.sentence()}; {kept:,} rows left")
        print(
            f"  without VACUUM (the daemon): {retention.file_size(path) / 1e6:.1f} MB on disk,"
            " the freed pages are reused by the next writes"
        )
        started = time.perf_counter()
        retention.vacuum(store)
        size = retention.file_size(path)
        print(
            f"  after VACUUM ({time.perf_counter() - started:.1f} s, `crm-qualify compact`):"
            f" {size / 1e6:.1f} MB, {size / count:,.0f} bytes/contact"
        )
        print(by_table(store, count))
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--contacts", type=int, default=10_000, help="for the bytes part")
    parser.add_argument("--depths", default="1,10,90", help="history depths at the largest size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    rows = []
    for size in sizes:
        steps, intents, length = per_batch(size, 1, args.batches)
        rows.append((f"{length:,}", steps, intents))
    print_table(
        f"ms per batch of {BATCH} contacts (median of {args.batches}), by trail length:", rows
    )
    rows = []
    for depth in [int(depth) for depth in args.depths.split(",")]:
        steps, intents, length = per_batch(sizes[-1], depth, args.batches)
        rows.append((f"depth {depth}", steps, intents))
    print_table(f"at ~{sizes[-1]:,} rows, by writes per field per contact (history depth):", rows)
    bytes_per_contact(args.contacts)


if __name__ == "__main__":
    main()
