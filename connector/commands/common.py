"""Helpers shared by subcommands: loading configuration the same way everywhere."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from crm_qualify.connector.contract import Adapter
from crm_qualify.connector.ops.logs import configure_logging, register_secrets, secret_values
from crm_qualify.connector.plugins import PluginError, build_adapter
from crm_qualify.connector.settings import ConfigurationError, Settings, load_settings

CONFIG_ENV = "CRMQ_CONFIG"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML configuration file (default: ${CONFIG_ENV}, else built-in defaults)",
    )


def config_path(args: argparse.Namespace) -> Path | None:
    path = getattr(args, "config", None)
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    return path


def settings_or_exit(args: argparse.Namespace) -> Settings:
    """Load configuration or print every problem and exit 2, before any API call. Logging is
    configured from it, with every secret it holds registered for masking."""
    try:
        settings = load_settings(config_path(args))
    except ConfigurationError as exc:
        print_problems(exc.problems)
        raise SystemExit(2) from None
    register_secrets(secret_values(settings.adapters))
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def adapter_or_exit(settings: Settings) -> Adapter:
    """The configured adapter, or every problem printed and exit 2, before any API call."""
    try:
        return build_adapter(settings)
    except ConfigurationError as exc:
        print_problems(exc.problems)
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2)


def print_problems(problems: list[str]) -> None:
    print("configuration error:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def parse_now(value: str | None) -> datetime:
    """`--now` as an aware datetime (naive input is taken as UTC)."""
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--now: not an ISO 8601 date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
