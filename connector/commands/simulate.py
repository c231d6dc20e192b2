"""`crm-qualify simulate <crm>`: serve a bundled CRM simulator on loopback (demo, tests, bench).

Simulators are found through the `crm_qualify.simulators` entry-point group, so the core never
imports an adapter package.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points

GROUP = "crm_qualify.simulators"


def register(subparsers: argparse._SubParsersAction) -> None:
    names = sorted(point.name for point in entry_points(group=GROUP))
    parser = subparsers.add_parser(
        "simulate",
        help=f"serve a local CRM API simulator ({', '.join(names) or 'none installed'})",
        description="Serve a simulator; options after the CRM name go to it (try --help).",
    )
    parser.add_argument("crm", nargs="?", choices=names or None)
    parser.add_argument("options", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    if not args.crm:
        args.parser.print_help()
        return 2
    (point,) = [p for p in entry_points(group=GROUP) if p.name == args.crm]
    return int(point.load()(list(args.options)) or 0)
