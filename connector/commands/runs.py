"""`crm-qualify runs` and `crm-qualify rollback RUN_ID`: the history, and undoing one run."""

from __future__ import annotations

import argparse
import json
import sys

from crm_qualify.connector.commands.common import (
    adapter_or_exit,
    add_config_argument,
    settings_or_exit,
)
from crm_qualify.connector.sync.rollback import RollbackError, RollbackReport, rollback
from crm_qualify.connector.sync.state import StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    runs = subparsers.add_parser("runs", help="list recent runs with their counts and errors")
    add_config_argument(runs)
    runs.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")
    runs.set_defaults(handler=run_runs)
    undo = subparsers.add_parser(
        "rollback",
        help="restore the values a run overwrote and close the tasks it created",
        description=(
            "Restore every field RUN_ID wrote to its previous value, unless a person changed"
            " it since (reported, left alone); close the tasks it created. Try --dry-run first."
        ),
    )
    undo.add_argument("run_id", metavar="RUN_ID")
    add_config_argument(undo)
    undo.add_argument("--dry-run", action="store_true", help="show what would be restored")
    undo.set_defaults(handler=run_rollback)


def run_runs(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    store = StateStore(settings.sync.state_path)
    records = store.runs(settings.crm.instance, limit=args.limit)
    store.close()
    if args.json:
        for record in records:
            print(json.dumps(record.__dict__, default=str))
        return 0
    if not records:
        print(f"no runs yet for instance {settings.crm.instance}")
    for record in records:
        counts = record.counts
        print(
            f"{record.id}  {record.started_at[:19]}  {record.mode:<10} {record.status:<11}"
            f"{' (dry run)' if record.dry_run else ''} read {counts.get('read', 0)},"
            f" fields {counts.get('fields_written', 0)}, tasks {counts.get('tasks_created', 0)},"
            f" errors {len(record.errors)}"
        )
        for error in record.errors[:3]:
            print(f"    {error}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    adapter = adapter_or_exit(settings)
    store = StateStore(settings.sync.state_path)
    try:
        report = rollback(adapter, store, settings.crm.instance, args.run_id, dry_run=args.dry_run)
    except RollbackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
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
    for update in report.restored:
        for change in update.changes:
            print(
                f"{verb}: {update.object_type}/{update.contact_id} {change.field}:"
                f" {_shown(change.old)} -> {_shown(change.new)}"
            )
    for record, field, why in report.held:
        print(f"left alone: {record} {field}: {why}")
    closed = len(report.tasks_to_close) if dry_run else len(report.tasks_closed)
    print(
        f"{'dry run: ' if dry_run else ''}{report.counts['fields']} fields on"
        f" {report.counts['records']} records {verb}, {report.counts['held']} left alone,"
        f" {closed} tasks {'to close' if dry_run else 'closed'}"
        + (
            f"; recorded as run {report.rollback_run_id} ({report.status})"
            if report.rollback_run_id
            else ""
        ),
        file=sys.stderr,
    )
    for error in report.errors:
        print(f"  error: {error}", file=sys.stderr)
    if report.restored and not dry_run:
        print(
            "note: the next sync scores these contacts again and may write the same values;"
            " change the rules or pause the daemon first if that is not wanted",
            file=sys.stderr,
        )


def _shown(value: object) -> str:
    return "(empty)" if value in (None, "") else repr(str(value)[:40])
