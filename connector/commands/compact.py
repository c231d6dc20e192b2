"""`crm-qualify compact`: apply the retention now (`sync.keep_runs_days`), then VACUUM."""

from __future__ import annotations

import argparse
import sys

from crm_qualify.connector.commands.common import (
    add_config_argument,
    settings_or_exit,
    state_missing,
)
from crm_qualify.connector.sync import retention
from crm_qualify.connector.sync.lease import Lease, LeaseHeld
from crm_qualify.connector.sync.state import StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compact",
        help="prune runs older than sync.keep_runs_days, then shrink the state file",
        description=(
            "Remove runs that ended more than sync.keep_runs_days ago with their audit rows"
            " (each field's last acknowledged write, unsettled intents, running runs and every"
            " task key stay), then VACUUM the state file, and print what was removed and the"
            " file size before and after. Holds the portal's sync lease: it never runs during"
            " a sync, and a sync waits for it. --dry-run counts and changes nothing."
        ),
    )
    add_config_argument(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be removed; change nothing"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if state_missing(settings):
        return 0
    path = settings.sync.state_path
    instance = settings.crm.instance
    days = settings.sync.keep_runs_days
    store = StateStore(path)
    lease = Lease(store, instance, "compact")
    try:
        if args.dry_run:
            pruned = retention.prune(store, instance, days, dry_run=True)
            print(f"dry run: {pruned.sentence(dry_run=True)}")
            print(f"state file {path}: {_mb(retention.file_size(path))}; nothing was changed")
            return 0
        try:
            lease.acquire()
        except LeaseHeld as held:
            print(held, file=sys.stderr)
            return 1
        try:
            before = retention.file_size(path)
            print(retention.prune(store, instance, days).sentence())
            retention.vacuum(store)
            after = retention.file_size(path)
        finally:
            lease.release()
        print(f"state file {path}: {_mb(before)} -> {_mb(after)} (VACUUM)")
        return 0
    finally:
        store.close()


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB ({size:,} bytes)"
