"""The `crm-qualify` command: one entry point, one small module per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from crm_qualify.connector.commands import COMMAND_MODULES
from crm_qualify.connector.ops.logs import configure_logging
from crm_qualify.connector.sync.state import StateStoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-qualify",
        description="Score and qualify CRM contacts with one transparent rule set.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("WARNING", "text")
    try:
        return int(args.handler(args) or 0)
    except SystemExit as exc:  # a handler's "stop here" (configuration errors): keep the code
        return exc.code if isinstance(exc.code, int) else 1
    except StateStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
