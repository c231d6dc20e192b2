"""`crm-qualify report`: funnel, conversion, time in stage, scores and SLA compliance."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from connector.commands.common import add_config_argument, settings_or_exit
from connector.report import build_report, text_report
from connector.report_html import html_report
from connector.state import StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="funnel, conversion, time in stage, scores and follow-up SLAs (text, JSON or HTML)",
        description="Built from the audit trail in the state store; no API call.",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="also write a one-file HTML report"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    store = StateStore(settings.sync.state_path)
    report = build_report(store, settings.crm.instance)
    store.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else text_report(report))
    if args.html:
        args.html.write_text(html_report(report), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0
