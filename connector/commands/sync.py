"""`crm-qualify sync --once`: one run now; with --dry-run, the diff it would write and no write."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from crm_qualify.connector.commands.common import (
    adapter_or_exit,
    add_config_argument,
    positive_int,
    settings_or_exit,
)
from crm_qualify.connector.field_fit import learn_lengths
from crm_qualify.connector.model import RecordUpdate
from crm_qualify.connector.ops.logs import counts_sentence
from crm_qualify.connector.ops.progress import Progress
from crm_qualify.connector.owned_values import OwnedFields
from crm_qualify.connector.sync.engine import BatchReport, RunOptions, RunSummary, SyncEngine
from crm_qualify.connector.sync.lease import Lease, LeaseHeld
from crm_qualify.connector.sync.state import StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="run one sync now (use --dry-run first)",
        description=(
            "Read contacts changed since the last run, score them, and write owned fields and"
            " follow-up tasks. --dry-run prints the diff and sends no write."
        ),
    )
    add_config_argument(parser)
    parser.add_argument("--once", action="store_true", help="one run, then exit (the default)")
    parser.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
    parser.add_argument("--json", action="store_true", help="dry-run diff as JSON lines")
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="process at most N contacts, a sample: the read position is not moved",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="read every record (a reconciliation): deleted ones leave the mirror",
    )
    parser.add_argument(
        "--contact",
        action="append",
        default=None,
        metavar="ID",
        help="only this record (TYPE/ID or ID); repeatable",
    )
    parser.set_defaults(handler=run)


def parse_contact(value: str) -> tuple[str, str]:
    object_type, _, record_id = value.rpartition("/")
    return object_type, record_id


def diff_rows(
    report: BatchReport, owned_fields: Mapping[str, OwnedFields] | None = None
) -> list[dict[str, Any]]:
    """The report's changes and tasks; with the adapter's `owned_fields`, each new value as
    the write sends it (a text cut to its field's length, `OwnedFields.as_written`)."""
    rows: list[dict[str, Any]] = []
    for update in report.updates:
        owned = (owned_fields or {}).get(update.object_type)
        for change in update.changes:
            new = owned.as_written(change.field, change.new) if owned else change.new
            rows.append(
                {
                    "kind": "field",
                    "record": f"{update.object_type}/{update.contact_id}",
                    "field": change.field,
                    "old": change.old,
                    "new": new,
                }
            )
    for task in report.tasks:
        rows.append(
            {
                "kind": "task",
                "record": f"{task.object_type}/{task.contact_id}",
                "key": task.key,
                "subject": task.subject,
                "owner_id": task.owner_id,
                "due": task.due.isoformat(),
            }
        )
    for closing in report.closing:
        rows.append(
            {
                "kind": "task_removed",
                "record": f"{closing.record[0]}/{closing.record[1]}",
                "key": closing.key,
                "crm_id": closing.crm_id,
            }
        )
    return rows


def _text(value: Any) -> str:
    """A value as one line; a whole float as the whole number it is (a CRM's number fields
    come back as 66.0 for the 66 we wrote)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).replace("\n", " | ")


def _shortened(old: Any, new: Any, width: int = 40) -> tuple[str, str]:
    """Both values in `width` characters each, from a little before where they first
    differ: two long reasons that share their first lines still show what changes."""
    before, after = _text(old), _text(new)
    same = len(os.path.commonprefix([before, after]))
    start = max(0, same - 10) if same > width - 10 else 0
    return _cut(before, start, width), _cut(after, start, width)


def _cut(text: str, start: int, width: int) -> str:
    if start:
        text = "…" + text[start + 1 :]
    return text if len(text) <= width else text[: width - 1] + "…"


def print_diff(
    report: BatchReport, as_json: bool, owned_fields: Mapping[str, OwnedFields] | None = None
) -> None:
    for row in diff_rows(report, owned_fields):
        if as_json:
            print(json.dumps(row, ensure_ascii=False, default=str))
        elif row["kind"] == "field":
            old, new = _shortened(row["old"], row["new"])
            print(f"{row['record']:<28} {row['field']:<17} {old:>40} -> {new}")
        elif row["kind"] == "task":
            print(f"{row['record']:<28} {'task':<17} {row['subject']} (due {row['due'][:16]})")
        else:
            why = "a merge in the CRM doubled it"
            print(f"{row['record']:<28} {'task removed':<17} {row['key']} ({why})")


def impact(summary: RunSummary) -> str:
    """What the run moved in the CRM (acknowledged), or, dry, would move, and the rules it
    decided with; a real run that landed less than it planned says so."""
    counts = summary.counts
    rules = summary.details.get("rules_version", "?")
    previous = summary.details.get("previous_rules_version")
    change = f"rules {previous} -> {rules}" if previous else f"rules {rules}"
    planned = [counts.get(name, 0) for name in ("stages_moving", "temperatures_moving")]
    planned.append(counts.get("tasks_planned", 0) - counts.get("tasks_gone_with_their_record", 0))
    landed = planned
    if not summary.dry_run:
        landed = [counts.get(name, 0) for name in ("stages_moved", "temperatures_moved")]
        landed.append(counts.get("tasks_created", 0))
    # a run stopped before deciding (read, then refused) scored no one
    decided = counts.get("read", 0) + counts.get("redecided", 0) if counts.get("scored") else 0
    line = (
        f"{'would move' if summary.dry_run else 'moved'}: {landed[0]:,} stage(s),"
        f" {landed[1]:,} temperature(s), {landed[2]:,} task(s), across"
        f" {decided:,} contact(s) decided; {change}"
    )
    if any(done < wanted for done, wanted in zip(landed, planned, strict=True)):
        line += (
            f"; planned {planned[0]:,} stage(s), {planned[1]:,} temperature(s),"
            f" {planned[2]:,} task(s): the rest is sent again or looked up by the next run"
        )
    return line


MOVES_SHOWN = 6
"""Stage or temperature moves named under the impact line, the most frequent first."""


class Moves:
    """Stage and temperature changes by where from and where to: what a rules change does to
    the funnel, which the impact line's totals do not say (17 stages: 12 leads to MQL, or 17
    MQLs held back?)."""

    def __init__(self) -> None:
        self.by_field: dict[str, Counter[tuple[str, str]]] = {
            "stage": Counter(),
            "temperature": Counter(),
        }

    def add(self, updates: Sequence[RecordUpdate]) -> None:
        for update in updates:
            for change in update.changes:
                moves = self.by_field.get(change.field)
                if moves is not None:
                    moves[(_text(change.old) or "(empty)", _text(change.new))] += 1

    def lines(self) -> list[str]:
        """'  stages: lead -> marketingqualifiedlead 12, ...', per field that moved."""
        lines = []
        for name, moves in self.by_field.items():
            if not moves:
                continue
            shown = [f"{old} -> {new} {n:,}" for (old, new), n in moves.most_common(MOVES_SHOWN)]
            more = len(moves) - MOVES_SHOWN
            shown += [f"{more} other move(s)"] if more > 0 else []
            lines.append(f"  {name}s: {', '.join(shown)}")
        return lines


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    adapter = adapter_or_exit(settings)
    store = StateStore(settings.sync.state_path)
    lease = Lease(store, settings.crm.instance, "sync")
    if not args.dry_run:
        try:
            lease.acquire()
        except LeaseHeld as held:
            store.close()
            print(held, file=sys.stderr)
            return 1

    owned_fields: Mapping[str, OwnedFields] = getattr(adapter, "owned_fields", {})
    if args.dry_run:  # shown as the real run writes them: texts cut to their field's length
        learn_lengths(adapter)

    moves = Moves()

    def on_batch(report: BatchReport) -> None:
        if args.dry_run:
            print_diff(report, args.json, owned_fields)
        moves.add(report.updates if args.dry_run else report.written)
        progress.batch(report)

    engine = SyncEngine(adapter, settings, store, on_batch=on_batch)
    contacts = [parse_contact(value) for value in args.contact] if args.contact else None
    progress = Progress(
        sys.stderr, label="dry run" if args.dry_run else "sync", usage=adapter.usage
    )
    try:
        options = RunOptions(
            dry_run=args.dry_run, limit=args.limit, contact_ids=contacts, full=args.full
        )
        with interrupt_stops(engine.stop):
            summary = engine.run(options)
    finally:
        progress.finish()
        if not args.dry_run:
            lease.release()
        store.close()
    counts = counts_sentence(summary.counts)
    print(f"run {summary.run_id}: {summary.status}; {counts}", file=sys.stderr)
    print(impact(summary), file=sys.stderr)
    for line in moves.lines():
        print(line, file=sys.stderr)
    if args.limit is not None:
        print(
            f"  limited to {args.limit:,} contacts: a sample, so the read position is kept"
            " and the next run starts from the same place; run without --limit to sync the rest",
            file=sys.stderr,
        )
    for error in summary.errors[:20]:
        print(f"  error: {error}", file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"  … and {len(summary.errors) - 20} more (crm-qualify runs)", file=sys.stderr)
    if engine.stop.is_set():
        print(
            "  stopped: what was written is recorded; the next run goes on from there",
            file=sys.stderr,
        )
        return 130
    return 0 if summary.status in ("ok", "partial") else 1


@contextmanager
def interrupt_stops(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C stops the run as a signal stops the daemon's: the writes in flight are
    answered and recorded, the read under way is given up, and the run ends `interrupted`
    (it waited for that read to end, over a minute into a first sync). A second Ctrl-C
    quits at once; the next run settles what was in flight. Left alone where SIGINT is
    ignored (a background job) or off the main thread."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(_number: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        # Straight to the descriptor: print() here may land inside a write to stderr the
        # signal interrupted, and a buffered stream refuses a reentrant call.
        os.write(2, b"interrupted: finishing the writes in flight (Ctrl-C again to quit)\n")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
