"""`crm-qualify config check`: validate configuration, adapter options and mapping; no API call."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from crm_qualify.connector.commands.common import (
    CONFIG_ENV,
    CONFIG_FILE_NAME,
    adapter_file_problems,
    config_path,
    print_problems,
)
from crm_qualify.connector.commands.doctor import unanswered_criteria
from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.decision.rules import rules_version
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.ops.logs import mask_secrets, register_secrets, secret_values
from crm_qualify.connector.plugins import (
    PluginError,
    available_adapters,
    construct,
    load_adapter_class,
    mistyped_adapter_tables,
    reveal_plain_fields,
)
from crm_qualify.connector.settings import (
    ConfigurationError,
    CrmSettings,
    FieldPolicy,
    LoggingSettings,
    ScheduleSettings,
    ServerSettings,
    Settings,
    SyncSettings,
    describe_validation_error,
    load_settings,
    resolve_secret_files,
)
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="work with the configuration",
        description="Check a configuration (`config check`) or print its reference.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a configuration file and the environment; exit 0 or 2",
        description=(
            "Validate the TOML file (the FILE given, else $" + CONFIG_ENV + ", else"
            f" ./{CONFIG_FILE_NAME}), CRMQ_* environment overrides, the schedule, the"
            " adapter's options, the files they name (secret files, ca_bundle) and the"
            " mapping, in one pass; no API call. Prints every problem with its key and exits"
            " 2. Secrets that are not set yet are warnings (doctor, sync and run need them);"
            " --strict makes them errors."
        ),
    )
    check.add_argument("file", nargs="?", type=Path, default=None)
    check.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings (a secret not set yet) as errors, e.g. before a deployment",
    )
    check.set_defaults(handler=run_check)
    reference = actions.add_parser(
        "reference",
        help="print the configuration reference (Markdown) from the settings model",
        description="Print every configuration key but the scoring rules with its type, default"
        " and meaning, as Markdown, generated from the settings models of the core and installed"
        " adapters. The [rules] keys, whose defaults are whole tables, are in docs/admin.md"
        " (Scoring rules) and config.example.toml.",
    )
    reference.set_defaults(handler=run_reference)


@dataclass
class CheckOutcome:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: str | None = None


def check_configuration(path: Path | None) -> CheckOutcome:
    """The whole configuration in one pass: core sections, the schedule, the adapter's options
    and the files they name, other adapter tables, the mapping. A section with an error does
    not hide the others: the valid rest is checked as if the bad keys were left out."""
    from crm_qualify.connector.ops.scheduler import make_trigger  # the daemon's: see run.py

    outcome = CheckOutcome()
    try:
        settings = load_settings(path)
    except ConfigurationError as exc:
        outcome.problems += exc.problems
        settings = _valid_part(path)
        if settings is None:  # the file cannot be read or parsed: nothing more to check
            return outcome
    register_secrets(secret_values(settings.adapters))
    try:
        make_trigger(settings.schedule)
    except ValueError as exc:
        outcome.problems.append(str(exc) if "schedule.cron" in str(exc) else f"schedule: {exc}")
    _check_adapter(settings, outcome)
    try:
        schema = getattr(load_adapter_class(settings.crm.adapter), "mapping_schema", None)
    except (ConfigurationError, PluginError):  # reported by `_check_adapter`
        schema = None
    try:
        if settings.crm.adapter in available_adapters() or settings.crm.mapping_file:
            load_mapping(
                settings.crm.adapter, settings.crm.mapping_file, schema, None, settings.fields
            )
    except ConfigurationError as exc:
        outcome.problems += [p for p in exc.problems if p not in outcome.problems]
    outcome.summary = (
        f"configuration ok: adapter {settings.crm.adapter}, instance {settings.crm.instance},"
        f" rules version {rules_version(settings.rules)}"
    )
    return outcome


def _check_adapter(settings: Settings, outcome: CheckOutcome) -> None:
    available = available_adapters()
    mistyped = mistyped_adapter_tables(settings)
    outcome.problems += mistyped
    for name in sorted(settings.adapters):
        if any(problem.startswith(f"adapters.{name}:") for problem in mistyped):
            continue
        if name not in available and name != settings.crm.adapter and settings.adapters[name]:
            known = ", ".join(sorted(available)) or "none installed"
            outcome.warnings.append(
                f"adapters.{name}: no adapter of that name is installed (available: {known});"
                " this table is not used"
            )
    try:
        adapter_class = load_adapter_class(settings.crm.adapter)
    except ConfigurationError as exc:
        outcome.problems += exc.problems
        return
    except PluginError as exc:
        outcome.problems.append(f"crm.adapter: {exc}")
        return
    files = adapter_file_problems(settings, adapter_class)
    outcome.problems += files
    name = settings.crm.adapter
    prefix = f"adapters.{name}."
    model = adapter_class.settings_model
    options = {}
    for key, value in settings.adapters.get(name, {}).items():
        if key.endswith("_file") and any(p.startswith(f"{prefix}{key}:") for p in files):
            options.setdefault(key.removesuffix("_file"), SecretStr(PLACEHOLDER))  # reported
        else:
            options[key] = value
    try:
        options = reveal_plain_fields(resolve_secret_files(options, prefix), model)
    except ConfigurationError as exc:  # a file that went away since it was checked
        outcome.problems += exc.problems
        return
    for key, info in model.model_fields.items():
        if key not in options and info.is_required() and _holds_a_secret(info.annotation):
            options[key] = SecretStr(PLACEHOLDER)
            outcome.warnings.append(_not_set_yet(name, key))
    try:
        validated = model.model_validate(options)
    except ValidationError as exc:
        # A secret the adapter requires only in some setups (HubSpot's OAuth keys) is
        # reported "missing" by its validator: not set yet, like a required one.
        unset, problems = [], len(outcome.problems)
        for error, line in zip(
            exc.errors(),
            describe_validation_error(exc, prefix, environment=True, model=model),
            strict=True,
        ):
            key = str(error["loc"][0]) if error["loc"] else ""
            field = model.model_fields.get(key)
            if error["type"] == "missing" and field and _holds_a_secret(field.annotation):
                outcome.warnings.append(_not_set_yet(name, key))
                unset.append(key)
            else:
                outcome.problems.append(line)
        if len(outcome.problems) > problems:
            return
        try:
            validated = model.model_validate(
                {**options, **{key: SecretStr(PLACEHOLDER) for key in unset}}
            )
        except ValidationError:
            return
    try:  # the adapter's own mapping sections, as sync would construct it (no API call)
        adapter = construct(adapter_class, validated, settings)
    except ConfigurationError as exc:
        outcome.problems += [p for p in exc.problems if p not in outcome.problems]
        return
    unanswered = unanswered_criteria(settings, adapter)
    if unanswered:
        outcome.warnings.append(unanswered)


def _not_set_yet(adapter: str, key: str) -> str:
    variable = f"CRMQ_ADAPTERS__{adapter}__{key}".upper()
    return (
        f"adapters.{adapter}.{key}: not set yet; set {variable} or {key}_file (doctor, sync"
        " and run need it)"
    )


PLACEHOLDER = "secret-not-set-yet"


def _holds_a_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


class _Given(Settings):
    """The settings model fed only what it is given (no file, no environment)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _valid_part(path: Path | None) -> Settings | None:
    """The configuration with every key that has an error left out (its default used), so the
    rest is checked in the same pass; None when the file itself cannot be read or parsed."""
    try:
        data = TomlConfigSettingsSource(Settings, toml_file=path)() if path else {}
        data = _merged(data, EnvSettingsSource(Settings)())
    except Exception:  # already reported, by key, by load_settings
        return None
    for _ in range(50):
        try:
            return _Given(**data)
        except ValidationError as exc:
            locations = [tuple(error["loc"]) for error in exc.errors()]
        if not all(locations) or not any(_drop(data, loc) for loc in locations):
            return None
    return None


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _drop(data: Any, location: tuple[Any, ...]) -> bool:
    """Remove the value at `location` (or its nearest container key that exists)."""
    *parents, last = location
    for part in parents:
        if not isinstance(data, dict) or part not in data:
            return False
        if not isinstance(data[part], dict):
            del data[part]
            return True
        data = data[part]
    if isinstance(data, dict) and last in data:
        del data[last]
        return True
    return False


def run_check(args: argparse.Namespace) -> int:
    path = args.file or config_path(args)
    outcome = check_configuration(path)
    problems = outcome.problems + (outcome.warnings if args.strict else [])
    warnings = [] if args.strict else outcome.warnings
    if problems:
        print_problems([mask_secrets(problem) for problem in problems])  # a plugin's text too
    for warning in warnings:
        print(f"warning: {mask_secrets(warning)}", file=sys.stderr)
    if problems:
        return 2
    print(f"{outcome.summary}; file: {path or 'none (defaults and CRMQ_* variables)'}")
    return 0


def _type_text(annotation: object) -> str:
    if get_origin(annotation) is Literal:
        return " or ".join(json.dumps(value) for value in get_args(annotation))
    text = getattr(annotation, "__name__", None) or str(annotation)
    for noise in ("typing.", "pathlib.", "pydantic.types.", "PosixPath"):
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
        (CalibrateSettings, "calibrate."),
        (IdentityRules, "identity."),
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
