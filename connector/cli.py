"""The `crm-qualify` command: one entry point, one small module per subcommand."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from crm_qualify.connector.commands import COMMAND_MODULES
from crm_qualify.connector.ops.allocator import tune_malloc
from crm_qualify.connector.ops.logs import configure_logging, redact
from crm_qualify.connector.sync.state import StateStoreError

DISTRIBUTION = "crm-qualify"

OPTIONAL_MODULES = {"trustme": "simulators"}
"""Modules that only an optional extra installs, and the extra: a command that needs one
names the `pip install` that brings it instead of failing with an import error."""


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-qualify",
        description="Score and qualify CRM contacts with one transparent rule set.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an unexpected error (otherwise one line)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    _accept_debug_anywhere(subparsers)
    return parser


def _accept_debug_anywhere(subparsers: argparse._SubParsersAction) -> None:
    """`crm-qualify doctor --debug` works too, not only `crm-qualify --debug doctor`."""
    for parser in set(subparsers.choices.values()):
        options = {option for action in parser._actions for option in action.option_strings}
        if "--debug" not in options:
            parser.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_debug_anywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("WARNING", "text")
    tune_malloc()  # before any thread starts: see ops/allocator.py
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
    except ModuleNotFoundError as exc:
        extra = OPTIONAL_MODULES.get((exc.name or "").split(".")[0])
        if args.debug or extra is None:
            return unexpected(exc, args.debug)
        print(
            f"error: this needs the optional package {exc.name!r}: pip install"
            f" 'crm-qualify[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        return unexpected(exc, args.debug)


def unexpected(exc: BaseException, debug: bool) -> int:
    """An error no command expected: one line naming it (the traceback under --debug). Both
    are masked like every log line: a library's message may quote a request's header, and a
    traceback its arguments."""
    if debug:
        print(redact("".join(traceback.format_exception(exc))), end="", file=sys.stderr)
        return 1
    text = redact(str(exc)).strip().splitlines()
    print(
        f"error: {type(exc).__name__}: {text[0] if text else '(no message)'}"
        " (rerun with --debug for the traceback)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
