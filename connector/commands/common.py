"""Helpers shared by subcommands: loading configuration the same way everywhere."""

from __future__ import annotations

import argparse
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from crm_qualify.connector.contract import Adapter
from crm_qualify.connector.ops.logs import (
    configure_logging,
    mask_secrets,
    register_secrets,
    secret_values,
)
from crm_qualify.connector.plugins import (
    PluginError,
    adapter_name_problems,
    build_adapter,
    load_adapter_class,
)
from crm_qualify.connector.settings import (
    CONFIG_ENV,
    CONFIG_FILE_NAME,
    ConfigurationError,
    Settings,
    discover_config,
    load_settings,
)
from pydantic import SecretStr

PATH_OPTION_SUFFIXES = ("_file", "_bundle", "_path", "_pem", "_cert", "cafile")
"""Adapter options that name a file (`access_token_file`, `ca_bundle`, ...): checked before
any API call, so a missing file is named by its key instead of failing deep in a library."""


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML configuration file (default: ${CONFIG_ENV}, else ./{CONFIG_FILE_NAME} if"
        " present, else built-in defaults and CRMQ_* variables)",
    )


def config_path(args: argparse.Namespace) -> Path | None:
    """`--config`, then `$CRMQ_CONFIG`, then `./crm-qualify.toml`; None: no file at all."""
    return discover_config(getattr(args, "config", None))


def state_missing(settings: Settings, *, quiet_stdout: bool = False) -> bool:
    """For commands that only read the state store: True (and one line said) when there is no
    state file yet, so they never create one. `quiet_stdout`: say it on stderr (--json)."""
    path = Path(settings.sync.state_path)
    if path.exists():
        return False
    print(
        f"no runs yet for instance {settings.crm.instance}: no state file at {path}"
        " (`crm-qualify sync --once` or `crm-qualify run` creates it)",
        file=sys.stderr if quiet_stdout else sys.stdout,
    )
    return True


def state_or_empty(settings: Settings, *, quiet_stdout: bool = False) -> str:
    """The state file a report reads, or ':memory:' (an empty store, and `state_missing`'s
    line) when there is none yet: a scheduled --html or --json still replaces yesterday's page
    with today's empty one, and no state file is created."""
    if state_missing(settings, quiet_stdout=quiet_stdout):
        return ":memory:"
    return settings.sync.state_path


def settings_or_exit(args: argparse.Namespace, *, adapter_names: bool = True) -> Settings:
    """Load configuration or print every problem and exit 2, before any API call; adapter
    names included (`adapter_names`), for the commands that never load the adapter too.
    Logging is configured from it, with every secret it holds registered for masking."""
    try:
        settings = load_settings(config_path(args))
        problems = adapter_name_problems(settings) if adapter_names else []
        if problems:
            raise ConfigurationError(problems)
    except ConfigurationError as exc:
        print_problems(_every_problem(args, exc.problems))
        raise SystemExit(2) from None
    register_secrets(secret_values(settings.adapters))
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def _every_problem(args: argparse.Namespace, found: list[str]) -> list[str]:
    """A configuration that does not load: every problem `config check` finds in it (the
    schedule, the adapter's options, the mapping), not only the first section's, so that a
    user who fixes what `doctor` or `sync` lists is not met by new errors after."""
    from crm_qualify.connector.commands.config import check_configuration  # imports this

    every = check_configuration(config_path(args)).problems
    merged = [*every, *(problem for problem in found if problem not in every)]
    return [mask_secrets(problem) for problem in merged]  # a plugin's text too


def adapter_or_exit(settings: Settings) -> Adapter:
    """The configured adapter, or every problem printed and exit 2, before any API call: the
    files its options name (secret files, a CA bundle) are checked first, all of them."""
    try:
        problems = adapter_file_problems(settings, load_adapter_class(settings.crm.adapter))
        if problems:
            print_problems(problems)
            raise SystemExit(2)
        return build_adapter(settings)
    except ConfigurationError as exc:
        print_problems(exc.problems)
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2)


def adapter_file_problems(settings: Settings, adapter_class: type) -> list[str]:
    """Every file the active adapter's options name that cannot be used, by key: secret files
    (`X_file`), CA bundles (`ca_bundle`: also checked to hold PEM certificates), and options
    typed as paths."""
    name = settings.crm.adapter
    model = getattr(adapter_class, "settings_model", None)
    problems = []
    for key, value in settings.adapters.get(name, {}).items():
        if not _names_a_file(key, model) or value in (None, ""):
            continue
        path = Path(str(value.get_secret_value() if isinstance(value, SecretStr) else value))
        problem = file_problem(path, ca=_is_ca_option(key))
        if problem:
            problems.append(f"adapters.{name}.{key}: {problem}")
    return problems


def _names_a_file(key: str, model: Any) -> bool:
    if key.lower().endswith(PATH_OPTION_SUFFIXES):
        return True
    fields = getattr(model, "model_fields", {}) if isinstance(model, type) else {}
    field = fields.get(key)
    if field is None:
        return False
    annotation = field.annotation
    return annotation is Path or Path in get_args(annotation)


def _is_ca_option(key: str) -> bool:
    name = key.lower()
    return name.endswith("_bundle") or "cafile" in name or name.startswith("ca_")


def file_problem(path: Path, *, ca: bool = False) -> str | None:
    """Why `path` cannot be read (or, for a CA bundle, holds no usable certificate); None if
    it can."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path}: is a directory, not a file"
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"{path}: cannot read it ({exc.strerror})"
    if ca:
        try:
            ssl.create_default_context(cafile=str(path))
        except (ssl.SSLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            return f"{path}: not a PEM bundle of CA certificates ({reason})"
    return None


def print_problems(problems: list[str]) -> None:
    print("configuration error:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def positive_int(value: str) -> int:
    """An argparse type: a count of 1 or more (`--limit 0` or `-5` is a usage error)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def parse_now(value: str | None) -> datetime:
    """`--now` as an aware datetime (naive input is taken as UTC)."""
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--now: not an ISO 8601 date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
