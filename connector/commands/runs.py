"""`crm-qualify runs` and `crm-qualify rollback RUN_ID`: the history, and undoing one run."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from crm_qualify.connector.commands.common import (
    adapter_or_exit,
    add_config_argument,
    positive_int,
    settings_or_exit,
    state_missing,
)
from crm_qualify.connector.ops.progress import Progress
from crm_qualify.connector.sync.engine import READ_KEY
from crm_qualify.connector.sync.rollback import RollbackError, RollbackReport, rollback
from crm_qualify.connector.sync.state import RunRecord, StateStore

COLUMNS = ("RUN", "STARTED (UTC)", "MODE", "STATUS", "READ", "FIELDS", "TASKS", "ERRORS")
RIGHT_ALIGNED = {"READ", "ERRORS"}


def register(subparsers: argparse._SubParsersAction) -> None:
    runs = subparsers.add_parser(
        "runs",
        help="list recent runs with their counts and errors",
        description=(
            "Recent runs of this instance, newest first in the order they were recorded"
            " (whatever the clock said): when, mode (once: sync --once;"
            " scheduled: the daemon's; ', full' where the run read every record; rollback of"
            " RUN), status, contacts read, fields written (planned, for a dry run; with those"
            " the write policies held back), tasks created (removed, for a rollback) and"
            " those whose answer was lost (outcome unknown: the next run looks them up),"
            " errors, with the first errors of each run. Reads the state store only; --json"
            " prints one object per run."
        ),
    )
    add_config_argument(runs)
    runs.add_argument("--limit", type=positive_int, default=20, help="how many (default 20)")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")
    runs.set_defaults(handler=run_runs)
    undo = subparsers.add_parser(
        "rollback",
        help="restore the values a run overwrote and remove the tasks it created",
        description=(
            "Restore every field RUN_ID wrote to its previous value, unless a person or a"
            " later run changed it since (reported, left alone; a stage never moves"
            " backwards). Remove the tasks it created (HubSpot archives them, Salesforce"
            " deletes them to its recycle bin), but those a person completed or changed and"
            " those that still serve what stays: a hand-off while its record stays at MQL or"
            " beyond, a hot-lead call while the contact stays hot, an escalation while its"
            " follow-up is open, a duplicate review (reported, kept). A contact whose call is"
            " removed and that a later run finds hot again gets a new call. Try --dry-run"
            " first."
        ),
    )
    undo.add_argument("run_id", metavar="RUN_ID")
    add_config_argument(undo)
    undo.add_argument("--dry-run", action="store_true", help="show what would be restored")
    undo.set_defaults(handler=run_rollback)


def run_runs(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if state_missing(settings, quiet_stdout=args.json):
        return 0
    store = StateStore(settings.sync.state_path)
    records = store.runs(settings.crm.instance, limit=args.limit)
    store.close()
    if args.json:
        for record in records:
            print(json.dumps(record.__dict__, default=str))
        return 0
    if not records:
        print(f"no runs yet for instance {settings.crm.instance}")
        return 0
    rows = [run_row(record) for record in records]
    for record, line in zip([None, *records], aligned([COLUMNS, *rows]), strict=True):
        print(line)
        previous = record.details.get("previous_rules_version") if record else None
        if record and previous:
            print(f"    rules changed: {previous} -> {record.details.get('rules_version')}")
        for error in record.errors[:3] if record else []:
            print(f"    {error}")
    return 0


Cell = str | tuple[int, str]
"""A table cell: text, or a count with the word that says what was counted."""


def run_row(record: RunRecord) -> tuple[Cell, ...]:
    """One line of `crm-qualify runs`: what a run did, in the words of its kind. A rollback
    reports the fields it restored and the tasks it removed; a dry run what it planned."""
    counts = record.counts
    rollback_run = record.mode.startswith("rollback")
    if record.dry_run:
        fields: Cell = (counts.get("fields_planned", 0), "planned" + _held(counts))
        tasks: Cell = (counts.get("tasks_planned", 0), "planned")
    elif rollback_run:
        fields = (counts.get("fields_written", 0), "restored" + _held(counts))
        tasks = (counts.get("tasks_closed", 0), "removed")
    else:
        fields = (counts.get("fields_written", 0), "written" + _held(counts))
        created = counts.get("tasks_created", 0) + counts.get("tasks_recovered", 0)
        tasks = (created, "created" + _found(counts) + _uncertain(counts) + _removed(counts))
    return (
        record.id,
        record.started_at[:19].replace("T", " "),
        record.mode + _full(record) + (" (dry run)" if record.dry_run else ""),
        record.status,
        "-" if rollback_run else _read(record),
        fields,
        tasks,
        str(len(record.errors)),
    )


def _full(record: RunRecord) -> str:
    """A full read (`--full`, or reconciliation's schedule) is named: it reads everyone."""
    return ", full" if record.details.get(READ_KEY) == "full" else ""


def _read(record: RunRecord) -> str:
    """Contacts read: counted at a run's end, so one that did not end shows '?' (what it
    landed comes from the audit trail, what it read from nowhere)."""
    if "read" not in record.counts and record.status in ("running", "crashed"):
        return "?"
    return f"{record.counts.get('read', 0):,}"


def _held(counts: dict[str, int]) -> str:
    """Fields the write policies kept as the CRM holds them (a person's value, a stage
    moved back): the log names each."""
    held = counts.get("fields_held_back", 0)
    return f", {held:,} held back" if held else ""


def _removed(counts: dict[str, int]) -> str:
    """Follow-ups a merge in the CRM doubled that the run removed."""
    removed = counts.get("tasks_closed", 0)
    return f", {removed:,} removed" if removed else ""


def _found(counts: dict[str, int]) -> str:
    """Of the tasks created, those an earlier run sent whose answer was lost, found in the
    CRM by this run's look-up (`tasks_recovered`): counted here, as created, once known."""
    found = counts.get("tasks_recovered", 0)
    return f" ({found:,} found after an unknown outcome)" if found else ""


def _uncertain(counts: dict[str, int]) -> str:
    """Creates whose answer was lost (a timeout, a 5xx after sending): the next run looks
    them up, so they may well exist; counted as created only by that run (`_found`)."""
    uncertain = counts.get("tasks_uncertain", 0)
    return f", {uncertain:,} outcome unknown" if uncertain else ""


def aligned(rows: list[tuple[Cell, ...]]) -> list[str]:
    """Rows as lines with aligned columns: counts right-aligned, their words after them."""
    columns = list(zip(*rows, strict=True))
    rendered = []
    for name, cells in zip(COLUMNS, columns, strict=True):
        counted = [cell for cell in cells if isinstance(cell, tuple)]
        digits = max((len(f"{count:,}") for count, _ in counted), default=0)
        texts = [
            f"{cell[0]:,}".rjust(digits) + (f" {cell[1]}" if cell[1] else "")
            if isinstance(cell, tuple)
            else cell
            for cell in cells
        ]
        width = max(len(text) for text in texts)
        right = name in RIGHT_ALIGNED
        rendered.append([text.rjust(width) if right else text.ljust(width) for text in texts])
    return ["  ".join(line).rstrip() for line in zip(*rendered, strict=True)]


def run_rollback(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if not Path(settings.sync.state_path).exists():
        print(
            f"error: no run {args.run_id} to roll back: no state file at"
            f" {settings.sync.state_path} (check sync.state_path)",
            file=sys.stderr,
        )
        return 2
    adapter = adapter_or_exit(settings)
    store = StateStore(settings.sync.state_path)
    progress = Progress(
        sys.stderr, label="rollback: reading back", usage=adapter.usage, shown=("read",)
    )
    try:
        report = rollback(
            adapter,
            store,
            settings.crm.instance,
            args.run_id,
            dry_run=args.dry_run,
            progress=progress.rollback_step,
            lookup_delay=timedelta(seconds=settings.sync.lookup_delay_seconds),
        )
    except RollbackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.finish()
        store.close()
    print_rollback(report, args.dry_run)
    return 1 if report.errors else 0


def print_rollback(report: RollbackReport, dry_run: bool) -> None:
    """Every field restored or left alone (with why) on stdout; the tally on stderr."""
    if report.earlier_rollbacks:
        print(
            f"note: run {report.run_id} was already rolled back by"
            f" {', '.join(report.earlier_rollbacks)}; only what is left is undone now",
            file=sys.stderr,
        )
    verb = "would restore" if dry_run else "restored"
    done = report.restored if dry_run else report.written  # only what the CRM acknowledged
    for update in done:
        for change in update.changes:
            print(
                f"{verb}: {update.object_type}/{update.contact_id} {change.field}:"
                f" {_shown(change.old)} -> {_shown(change.new)}"
            )
    for record, field, why in report.held:
        print(f"left alone: {record} {field}: {why}")
    removed = set(report.tasks_closed)
    for task in report.tasks_to_close:
        if dry_run or task.key in removed:
            print(
                f"{'would remove' if dry_run else 'removed'}: {task.object_type}/"
                f"{task.contact_id} task {task.crm_id} ({task.kind}, {task.key})"
            )
    closed = len(report.tasks_to_close) if dry_run else len(report.tasks_closed)
    fields = sum(len(update.changes) for update in done)
    print(
        f"{'dry run: ' if dry_run else ''}{fields} fields on"
        f" {len(done)} records {verb}, {report.counts['held']} left alone,"
        f" {closed} tasks {'to remove' if dry_run else 'removed'}"
        + (
            f"; recorded as run {report.rollback_run_id} ({report.status})"
            if report.rollback_run_id
            else ""
        ),
        file=sys.stderr,
    )
    for error in report.errors:
        print(f"  error: {error}", file=sys.stderr)
    if report.errors and not dry_run:
        print(
            f"note: what failed is still to restore: run `crm-qualify rollback {report.run_id}`"
            " again (it restores only what is left)",
            file=sys.stderr,
        )
    if report.written and not dry_run:
        print(
            "note: the next sync scores these contacts again and may write the same values;"
            " change the rules or pause the daemon first if that is not wanted",
            file=sys.stderr,
        )


def _shown(value: object) -> str:
    return "(empty)" if value in (None, "") else repr(str(value)[:40])
