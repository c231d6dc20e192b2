"""`crm-qualify simulate <crm>`: serve a bundled CRM simulator on loopback (demo, tests, bench).

Simulators are found through the `crm_qualify.simulators` entry-point group, so the core never
imports an adapter package.
"""

from __future__ import annotations

import argparse
import errno
import sys
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
    try:
        return int(point.load()(list(args.options)) or 0)
    except OSError as exc:
        if getattr(args, "debug", False) or exc.errno not in (errno.EADDRINUSE, errno.EACCES):
            raise
        print(f"error: {cannot_listen(args.crm, args.options, exc)}", file=sys.stderr)
        return 2


def requested_port(options: list[str]) -> str | None:
    """The `--port` among the simulator's options, if one was given."""
    for index, option in enumerate(options):
        if option == "--port" and index + 1 < len(options):
            return options[index + 1]
        if option.startswith("--port="):
            return option.removeprefix("--port=")
    return None


def cannot_listen(crm: str, options: list[str], exc: OSError) -> str:
    """One line: which port, why, and what to do instead."""
    port = requested_port(options)
    where = (
        f"port {port}" if port else f"its default port (see `crm-qualify simulate {crm} --help`)"
    )
    if exc.errno == errno.EACCES:
        return (
            f"the {crm} simulator may not listen on {where}: permission denied; pick a port"
            " above 1023 with --port"
        )
    return (
        f"the {crm} simulator cannot listen on {where}: the port is already in use (another"
        " simulator still running?); stop what listens there, or pick another with --port"
        " (--port 0: any free port)"
    )
