"""`crm-qualify report`: funnel, conversion, time in stage, scores and SLA compliance."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from crm_qualify.connector.commands.common import (
    adapter_or_exit,
    add_config_argument,
    settings_or_exit,
    state_or_empty,
)
from crm_qualify.connector.contract import AdapterError
from crm_qualify.connector.ops.progress import Progress
from crm_qualify.connector.ops.report import build_report, crm_snapshot, text_report
from crm_qualify.connector.ops.report_html import html_report
from crm_qualify.connector.sync.state import StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="funnel, conversion, time in stage, scores and follow-up SLAs (text, JSON or HTML)",
        description=(
            "Built from the audit trail in the state store, with no API call; --from-crm adds"
            " one full read of the CRM for every contact's current stage, temperature and score"
            " and whether each follow-up is done."
        ),
    )
    add_config_argument(parser)
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="also write a one-file HTML report"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--from-crm", action="store_true", help="read current values from the CRM (a full read)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    state = state_or_empty(settings, quiet_stdout=args.json)
    now = datetime.now(UTC)
    snapshot = None
    if args.from_crm:
        adapter = adapter_or_exit(settings)
        progress = Progress(
            sys.stderr, label="reading the CRM", usage=adapter.usage, shown=("read",)
        )
        try:
            snapshot = crm_snapshot(adapter, now, lambda n: progress.add(read=n))
        except AdapterError as exc:
            print(f"error: reading the CRM failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        finally:
            progress.finish()
    store = StateStore(state)
    try:
        report = build_report(store, settings.crm.instance, now, snapshot, settings.rules.followup)
    finally:
        store.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else text_report(report))
    if args.html:
        args.html.write_text(html_report(report), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0
