"""`crm-qualify config check`: validate configuration, adapter options and mapping; no API call."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Literal, get_args, get_origin

from crm_qualify.connector.commands.common import CONFIG_ENV, config_path, print_problems
from crm_qualify.connector.decision.rules import rules_version
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.ops.logs import mask_secrets, register_secrets, secret_values
from crm_qualify.connector.plugins import (
    PluginError,
    adapter_settings,
    available_adapters,
    load_adapter_class,
)
from crm_qualify.connector.settings import (
    ConfigurationError,
    CrmSettings,
    FieldPolicy,
    LoggingSettings,
    ScheduleSettings,
    ServerSettings,
    SyncSettings,
    load_settings,
)
from pydantic import BaseModel


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
    reference = actions.add_parser(
        "reference", help="print the configuration reference (Markdown) from the settings model"
    )
    reference.set_defaults(handler=run_reference)


def collect_problems(path: Path | None) -> tuple[list[str], str | None]:
    """Every problem with its key, or a one-line summary that names no option value."""
    try:
        settings = load_settings(path)
    except ConfigurationError as exc:
        return exc.problems, None
    register_secrets(secret_values(settings.adapters))
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
        print_problems([mask_secrets(problem) for problem in problems])  # a plugin's text too
        return 2
    print(summary)
    return 0


def _type_text(annotation: object) -> str:
    if get_origin(annotation) is Literal:
        return " or ".join(json.dumps(value) for value in get_args(annotation))
    text = getattr(annotation, "__name__", None) or str(annotation)
    for noise in ("typing.", "pathlib.", "PosixPath"):
        text = text.replace(noise, "Path" if noise == "PosixPath" else "")
    return text.replace(" | ", " or ")


def reference_rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every key of a settings model, nested."""
    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += reference_rows(annotation, f"{key}.")
            continue
        default = info.get_default(call_default_factory=True)
        default_text = "required" if info.is_required() else json.dumps(default, default=str)
        rows.append((key, _type_text(annotation), default_text, info.description or ""))
    return rows


def reference_markdown() -> str:
    """The configuration reference in docs/admin.md, generated from the settings models."""
    lines = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for model, prefix in (
        (CrmSettings, "crm."),
        (SyncSettings, "sync."),
        (ScheduleSettings, "schedule."),
        (LoggingSettings, "logging."),
        (ServerSettings, "server."),
        (FieldPolicy, "fields.<field>."),
    ):
        for key, kind, default, what in reference_rows(model, prefix):
            lines.append(f"| `{key}` | {kind} | `{default}` | {what} |")
    for name in sorted(available_adapters()):
        try:
            adapter_class = load_adapter_class(name)
        except (PluginError, ConfigurationError):
            continue
        for key, kind, default, what in reference_rows(
            adapter_class.settings_model, f"adapters.{name}."
        ):
            lines.append(f"| `{key}` | {kind} | `{default}` | {what} |")
    return "\n".join(lines)


def run_reference(args: argparse.Namespace) -> int:
    print(reference_markdown())
    return 0
