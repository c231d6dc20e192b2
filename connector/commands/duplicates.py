"""`crm-qualify duplicates`: duplicate groups and fake or invalid records, from the mirror."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crm_qualify.connector.commands.common import (
    add_config_argument,
    settings_or_exit,
    state_or_empty,
)
from crm_qualify.connector.ops.duplicates_report import (
    build_duplicates,
    html_report,
    named_as_written,
    text_report,
)
from crm_qualify.connector.sync.people import People
from crm_qualify.connector.sync.state import StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "duplicates",
        help="records that are one person, and records that are no one (text, JSON or HTML)",
        description=(
            "Compares every record in the mirror (the contacts the last syncs read), with no"
            " API call, by the [identity] rules: the same mailbox, the same phone, the same"
            " name at the same company. Each group has a confidence, the rules that matched and"
            " a suggested survivor; the connector never merges records itself."
        ),
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="also write a one-file HTML report"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    state = state_or_empty(settings, quiet_stdout=args.json)
    store = StateStore(state)
    try:
        instance = settings.crm.instance
        report = build_duplicates(store.mirrored_contacts(instance), settings.identity)
        members = [member for group in report.groups for member in group.members]
        stored = People(store, settings.identity).stored(instance, members)
        named_as_written(report, {key: person.key for key, person in stored.items()})
    finally:
        store.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else text_report(report))
    if args.html:
        args.html.write_text(html_report(report), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0
