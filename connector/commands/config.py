"""`crm-qualify config check`: validate configuration, adapter options and mapping; no API call."""

from __future__ import annotations

import argparse
from pathlib import Path

from connector.commands.common import CONFIG_ENV, config_path, print_problems
from connector.mapping import load_mapping
from connector.plugins import PluginError, adapter_settings, load_adapter_class
from connector.rules import rules_version
from connector.settings import ConfigurationError, load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="work with the configuration")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a configuration file and the environment; exit 0 or 2",
        description=(
            "Validate the TOML file (or $" + CONFIG_ENV + "), CRMQ_* environment overrides,"
            " the adapter's options and the mapping. Prints every problem with its key."
        ),
    )
    check.add_argument("file", nargs="?", type=Path, default=None)
    check.set_defaults(handler=run_check)


def collect_problems(path: Path | None) -> tuple[list[str], str | None]:
    try:
        settings = load_settings(path)
    except ConfigurationError as exc:
        return exc.problems, None
    problems: list[str] = []
    try:
        adapter_settings(load_adapter_class(settings.crm.adapter), settings)
    except ConfigurationError as exc:
        problems += exc.problems
    except PluginError as exc:
        problems.append(f"crm.adapter: {exc}")
    try:
        load_mapping(settings.crm.adapter, settings.crm.mapping_file)
    except ConfigurationError as exc:
        problems += exc.problems
    summary = (
        f"configuration ok: adapter {settings.crm.adapter}, instance {settings.crm.instance},"
        f" rules version {rules_version(settings.rules)}"
    )
    return problems, summary


def run_check(args: argparse.Namespace) -> int:
    problems, summary = collect_problems(args.file or config_path(args))
    if problems:
        print_problems(problems)
        return 2
    print(summary)
    return 0
