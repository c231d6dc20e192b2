"""Benchmark: every mirrored contact re-decided from the state store, as each run does.

    python bench/rescore.py [--contacts 1000000] [--days D] [--state PATH]

Builds (once, untimed, in its own process) a state store whose mirror holds N contacts, each
with the CRM values of yesterday's decision, as after a real sync. Then, in a fresh process,
runs the engine against a CRM in which nothing changed, in four scenarios: 15 minutes later
(the next scheduled run) and a day later (only contacts whose decision can have moved are
decided, `decision/review.py`), a rules change that moves no value (all N decided, as after
a configuration change), and a real one (`NEW_WEIGHTS`: all N decided, the values that move
written to a CRM that answers at once). It reads nothing and writes only what moved. Prints
wall time, CPU time
and the peak RSS of that process alone. Targets (issue 9): 1,000,000 contacts under 20 s and
under 300 MB. Each measure runs on a copy of the built state, so runs compare.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crm_qualify.connector.contract import (  # noqa: E402
    ApiUsage,
    ContactBatch,
    KnownVersions,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.decision.decide import decide  # noqa: E402
from crm_qualify.connector.decision.review import next_review  # noqa: E402
from crm_qualify.connector.model import (  # noqa: E402
    Contact,
    ExistingTask,
    FieldUpdate,
    PlannedTask,
    RecordUpdate,
)
from crm_qualify.connector.settings import Settings  # noqa: E402
from crm_qualify.connector.sync.engine import (  # noqa: E402
    DECIDED_WITH_KEY,
    PEOPLE_INDEXED_KEY,
    RunOptions,
    SyncEngine,
)
from crm_qualify.connector.sync.fingerprints import decision_fingerprint  # noqa: E402
from crm_qualify.connector.sync.mirror import AckedWrite  # noqa: E402
from crm_qualify.connector.sync.people import People  # noqa: E402
from crm_qualify.connector.sync.state import StateStore  # noqa: E402
from score_throughput import NOW, generate  # noqa: E402

CHUNK = 20_000
INSTANCE = "default"


class QuietCrm:
    """A CRM in which nothing changed: no record to read, every write accepted."""

    name = "quiet"

    def __init__(self) -> None:
        self.fields_written = 0
        self.tasks_created = 0

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
    ) -> Iterator[ContactBatch]:
        yield ContactBatch(cursor="idle")

    def read_contacts(self, ids: Any) -> Iterator[ContactBatch]:
        return iter(())

    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        self.fields_written += sum(len(u.changes) for u in updates)
        return [WriteResult(u.contact_id, True) for u in updates]

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        self.tasks_created += len(tasks)
        return [TaskResult(t.key, True, f"T-{t.key}") for t in tasks]

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        return {}

    def existing_task_keys(self) -> Iterator[tuple[str, str]]:
        return iter(())

    def describe_fields(self, object_type: str) -> dict[str, Any]:
        return {}

    def usage(self) -> ApiUsage:
        return ApiUsage()


NEW_WEIGHTS = {"content_download": 12, "webinar_attended": 15, "demo_request": 35}
"""The weights a real rules change sets (`--new-weights`): values move, so they are written."""


def settings(state: Path, weights: dict[str, float] | None = None) -> Settings:
    document: dict[str, Any] = {"sync": {"state_path": str(state), "reconcile_every_days": 0}}
    if weights:
        document["rules"] = {"weights": weights}
    return Settings.model_validate(document)


def build(state: Path, count: int) -> None:
    """A mirror as a sync leaves it at NOW: each contact with that decision as CRM values,
    remembered as our last acknowledged write (what `unless_edited` compares with; the audit
    rows themselves left out, as after retention), and in the identity index (a sync indexes
    each record it reads)."""
    store = StateStore(state)
    rules = settings(state).rules
    people = People(store, settings(state).identity)
    read_at = NOW
    reviews: list[tuple[tuple[str, str], datetime | None, datetime]] = []
    for start in range(0, count, CHUNK):
        contacts: list[Contact] = []
        written: list[AckedWrite] = []
        tasks: list[tuple[str, str]] = []
        for contact in generate(min(CHUNK, count - start), seed=start):
            contact.id = str(start + int(contact.id))
            decision = decide(contact, rules, read_at)
            review = next_review(contact, decision, rules, read_at)
            reviews.append(((contact.object_type, contact.id), decision.hot_since, review))
            values = decision.field_values()
            contact.owned = {k: v for k, v in values.items() if k != "scored_at"}
            changes = [FieldUpdate(field=k, new=v) for k, v in contact.owned.items()]
            update = RecordUpdate(
                contact_id=contact.id, object_type=contact.object_type, changes=changes
            )
            written.append(AckedWrite(update, sent_at=read_at, acked_at=read_at))
            for task in decision.tasks:
                tasks.append((task.key, f"T-{task.key}"))
                contact.tasks.append(
                    ExistingTask(id=f"T-{task.key}", key=task.key, due=task.due, created_at=read_at)
                )
            contacts.append(contact)
        store.mirror.upsert(INSTANCE, contacts, read_at)
        people.index(INSTANCE, contacts)
        store.mirror.record_batch(INSTANCE, written, [], reviews, read_at)
        reviews.clear()
        store.record_existing_tasks(INSTANCE, tasks)
    store.set_meta(INSTANCE, "full_read_done_at", datetime.now(UTC).isoformat())
    store.set_cursor(INSTANCE, "contacts", "idle")
    store.set_meta(INSTANCE, "task_ledger_rebuilt_at", datetime.now(UTC).isoformat())
    store.set_meta(INSTANCE, DECIDED_WITH_KEY, decision_fingerprint(settings(state)))
    store.set_meta(INSTANCE, PEOPLE_INDEXED_KEY, datetime.now(UTC).isoformat())
    store.close()


def measure(state: Path, days: float, rules_change: bool, new_weights: bool = False) -> None:
    """The timed part, alone in its process so RSS is the engine's own. `rules_change`: the
    configuration differs from the one the mirror was decided with, so everyone is decided;
    `new_weights`: and it is a real change (`NEW_WEIGHTS`), so the values that move are
    written through the write protocol (to a CRM that answers at once)."""
    store = StateStore(state)
    if rules_change:
        store.delete_meta(INSTANCE, DECIDED_WITH_KEY)
    crm = QuietCrm()
    weights = {**settings(state).rules.weights, **NEW_WEIGHTS} if new_weights else None
    configured = settings(state, weights)
    engine = SyncEngine(crm, configured, store)  # type: ignore[arg-type]
    wall, cpu = time.perf_counter(), time.process_time()
    summary = engine.run(RunOptions(now=NOW + timedelta(days=days)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    decided = summary.counts["redecided"]
    what = "rules change" if rules_change else f"{days * 24:.2f} h later"
    what = f"rules change, new weights {NEW_WEIGHTS}" if new_weights else what
    print(f"{what}: {summary.status}; re-decided {decided:,} contacts, read 0")
    print(f"fields written: {crm.fields_written:,}, tasks created: {crm.tasks_created:,}")
    print(f"wall: {wall:.2f} s, cpu: {cpu:.2f} s, {decided / wall:,.0f} contacts/s")
    if decided:
        print(f"cpu per contact decided: {cpu / decided * 1e6:,.0f} µs (target: 20 µs)")
    print(f"peak RSS: {peak_mb:.0f} MB (targets at 1,000,000: under 20 s and 300 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=None, help="one scenario only")
    parser.add_argument("--state", type=Path, default=None)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rules-change", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--new-weights", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    state = args.state or Path(f"/tmp/crmq-rescore-{args.contacts}.sqlite")
    if args.measure:
        measure(state, args.days, args.rules_change, args.new_weights)
        return
    if args.build:
        build(state, args.contacts)
        return
    if not state.exists():
        # In a process of its own: Linux keeps a process's peak RSS across the exec of a
        # measure run, so building here would count in every figure after it.
        started = time.perf_counter()
        command = [sys.executable, __file__, "--build", "--state", str(state)]
        subprocess.run([*command, "--contacts", str(args.contacts)], check=True)
        size = state.stat().st_size / 1e6
        print(f"built {state} ({size:,.0f} MB) in {time.perf_counter() - started:.0f} s")
    else:
        print(f"using {state} (delete it to rebuild)")
    scenarios = [
        ["--days", "0.010417"],
        ["--days", "1"],
        ["--days", "0", "--rules-change"],
        ["--days", "0", "--rules-change", "--new-weights"],
    ]
    if args.days is not None:
        scenarios = [["--days", str(args.days)]]
    for scenario in scenarios:
        work = state.with_suffix(".run.sqlite")
        shutil.copyfile(state, work)  # every measure starts from the same built state
        try:
            command = [sys.executable, __file__, "--measure", "--state", str(work)]
            subprocess.run([*command, *scenario], check=True)
        finally:
            for leftover in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
                leftover.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
