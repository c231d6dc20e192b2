"""Finding adapters: every adapter, built-in or a consultant's, is an entry point in the
`crm_qualify.adapters` group, checked against the contract when it is loaded."""

from __future__ import annotations

import json
import re
from importlib.metadata import EntryPoint, entry_points
from typing import Any, get_args

from crm_qualify.connector.contract import Adapter, missing_methods
from crm_qualify.connector.key_hints import close_match
from crm_qualify.connector.mapping import ADAPTER_GROUP, load_mapping, owned_only
from crm_qualify.connector.ops.logs import register_secrets, secret_values, without_secrets
from crm_qualify.connector.settings import ConfigurationError, Settings, describe_validation_error
from pydantic import BaseModel, SecretStr, ValidationError


class PluginError(Exception):
    """An adapter plugin could not be loaded or breaks the contract; the message names it."""


def available_adapters() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=ADAPTER_GROUP)}


def unknown_adapter(name: str) -> list[str]:
    """`crm.adapter = name` when no installed adapter has that name, with the close match."""
    installed = sorted(available_adapters())
    if name in installed:
        return []
    close = close_match(name, installed)
    hint = f"; did you mean {close!r}?" if close else ""
    known = ", ".join(installed) or "none installed"
    return [f"crm.adapter: unknown adapter {name!r}{hint} (available: {known})"]


def adapter_name_problems(settings: Settings) -> list[str]:
    """The adapter names a configuration holds that name no adapter, checked without loading
    any adapter code (`crm.adapter`, then the `[adapters.<name>]` tables): every command stops
    on them, not only those that load the adapter, so `runs` or `score` never reads the state
    or rules of a configuration that could not sync."""
    return unknown_adapter(settings.crm.adapter) + mistyped_adapter_tables(settings)


def adapter_identity(settings: Settings) -> str:
    """The configured adapter's package version and non-secret options, as text: a fix to
    the adapter comes as an upgrade of the package that provides it (crm-qualify itself for
    a built-in one) or a change of an `[adapters.<name>]` option, never as a rotated token.
    Left out: secret-looking options (`without_secrets`) and those the adapter declares as
    `SecretStr`."""
    name = settings.crm.adapter
    point = available_adapters().get(name)
    model = getattr(point.load(), "settings_model", None) if point else None
    fields = getattr(model, "model_fields", {})
    options = {
        key: value
        for key, value in without_secrets(settings.adapters.get(name, {})).items()
        if key not in fields or not _secret_type(fields[key].annotation)
    }
    version = point.dist.version if point and point.dist else None
    return json.dumps([name, version, options], sort_keys=True, default=str)


def load_adapter_class(name: str) -> type:
    points = available_adapters()
    if name not in points:
        raise ConfigurationError(unknown_adapter(name))
    point = points[name]
    try:
        adapter_class = point.load()
    except Exception as exc:  # a broken plugin must not look like our bug
        raise PluginError(
            f"adapter plugin {name!r} ({point.value}) failed to import: {exc}"
        ) from exc
    missing = missing_methods(adapter_class)
    settings_model = getattr(adapter_class, "settings_model", None)
    if not (isinstance(settings_model, type) and issubclass(settings_model, BaseModel)):
        missing.append("settings_model (a pydantic model class)")
    if missing:
        raise PluginError(
            f"adapter plugin {name!r} ({point.value}) does not implement the contract;"
            f" missing: {', '.join(missing)}"
        )
    return adapter_class


def mistyped_adapter_tables(settings: Settings) -> list[str]:
    """`[adapters.<name>]` tables that name no installed adapter but nearly name one (the
    configured adapter's options under `[adapters.hubspt]` left it on its defaults: its real
    API host, without the admin's base_url). A table for an adapter not installed, named
    unlike any, may be a plugin's kept for later: not an error. The table of the configured
    adapter is never a near-miss: a plugin may be named close to a built-in
    (`salesforce_cpq`), and when it is not installed `crm.adapter` says so."""
    installed = sorted(available_adapters())
    problems = []
    for name, options in sorted(settings.adapters.items()):
        if name in installed or name == settings.crm.adapter or not options:
            continue
        close = close_match(name, installed)
        if close:
            problems.append(
                f"adapters.{name}: no adapter of that name is installed; did you mean"
                f" adapters.{close}?"
            )
    return problems


def adapter_settings(adapter_class: type, settings: Settings) -> BaseModel:
    """Validate the `[adapters.<name>]` table with the adapter's own settings model."""
    prefix = f"adapters.{settings.crm.adapter}."
    model = adapter_class.settings_model
    try:
        return model.model_validate(reveal_plain_fields(settings.adapter_options(), model))
    except ValidationError as exc:
        problems = describe_validation_error(exc, prefix, environment=True, model=model)
        raise ConfigurationError(problems) from None


def reveal_plain_fields(options: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Settings hold every secret-looking option as a `SecretStr`; an option the adapter
    declares as plain (a plugin's `token_url: str`) gets its value back so it validates.
    Unknown options stay hidden: the model rejects them by name."""
    return {key: _as_declared(model, key, value) for key, value in options.items()}


def _as_declared(model: type[BaseModel], key: str, value: Any) -> Any:
    field = model.model_fields.get(key)
    if field is None or not isinstance(value, SecretStr):
        return value
    return value if _secret_type(field.annotation) else value.get_secret_value()


def _secret_type(annotation: Any) -> bool:
    """An option declared `SecretStr` (or `SecretStr | None`)."""
    return annotation is SecretStr or SecretStr in get_args(annotation)


def build_adapter(settings: Settings, **overrides: Any) -> Adapter:
    """Load, validate and construct the configured adapter; no API call is made here."""
    adapter_class = load_adapter_class(settings.crm.adapter)
    mistyped = mistyped_adapter_tables(settings)
    if mistyped:
        raise ConfigurationError(mistyped)
    options = adapter_settings(adapter_class, settings)
    if overrides:
        options = options.model_copy(update=overrides)
    register_secrets(secret_values(dict(options)))
    return construct(adapter_class, options, settings)


def construct(adapter_class: type, options: BaseModel, settings: Settings) -> Adapter:
    """`from_config` with the configured mapping; a mapping section the adapter cannot use
    (an event name that is no signal, a missing key) is the configuration error it is, named
    by `crm.mapping_file`, not a crash. `from_config` makes no API call."""
    name, path = settings.crm.adapter, settings.crm.mapping_file
    schema = getattr(adapter_class, "mapping_schema", None)
    mapping = load_mapping(name, path, schema, options, settings.fields)
    try:
        return adapter_class.from_config(options, owned_only(mapping, settings.fields))
    except (KeyError, ValueError, TypeError, re.error) as exc:
        where = path or f"bundled mappings/{name}.toml"
        problem = f"crm.mapping_file: {where}: the {name} adapter cannot use it:"
        raise ConfigurationError([f"{problem} {type(exc).__name__}: {exc}"]) from None
