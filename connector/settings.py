"""Typed configuration: a TOML file, overridden by `CRMQ_*` environment variables.

Nested keys use `__` in the environment (`CRMQ_SYNC__STATE_PATH`,
`CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN`). A secret may also come from a file: any adapter option
`X_file = "/run/secrets/…"` fills option `X` with the file's content. Every problem is reported
with the dotted key that holds it, before any API call is made.

Secret-looking adapter options (and everything read from a secret file) are held as `SecretStr`
from validation on, so no repr, dump, log line or error message of the settings can show them.
A URL option may hold a proxy's `user:password@`: the settings' reprs mask it (`masked_repr_str`).
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.key_hints import unknown_key_hint
from crm_qualify.connector.model import OPT_IN_FIELDS, OWNED_FIELDS
from crm_qualify.connector.ops.logs import is_secret_key, mask_url_passwords, mask_values
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

WritePolicy = Literal["always", "if_empty", "unless_edited"]

log = logging.getLogger(__name__)

CONFIG_ENV = "CRMQ_CONFIG"
CONFIG_FILE_NAME = "crm-qualify.toml"


def masked_repr_str(self: BaseModel, join_str: str) -> str:
    """pydantic's repr and str of a settings model, with a URL's password masked (secrets are
    `SecretStr` already): `__repr_str__ = masked_repr_str` in a model that holds URLs."""
    return mask_url_passwords(BaseModel.__repr_str__(self, join_str))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FieldPolicy(_Section):
    """Whether crm-qualify owns a field, and when it may overwrite what is there."""

    owned: bool = Field(
        default=True,
        description="false: crm-qualify never writes this field nor reads it (the CRM need"
        " not have it; the stage is still read). `duplicate` and `duplicate_group` default"
        " to false: set true to write them.",
    )
    policy: WritePolicy = Field(
        default="always",
        description="always; if_empty (only fill a blank); unless_edited (keep a value a person"
        " set, before our first write too, or changed since our last write, cleared included)."
        " Default: always, but unless_edited for temperature (a Rating a rep sets by hand).",
    )


CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
"""What no HTTP header (and no token, password or client secret) can carry: line breaks, tabs
and the other C0 controls, DEL."""


def _secret_text(value: Any) -> Any:
    """A secret without its surrounding whitespace (the newline an `echo` or a heredoc puts at
    the end of an environment variable or file), unset when blank: the option's own check
    then names it, before any request could carry it."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str):
        return value
    return SecretStr(text.strip()) if text.strip() else None


def _single_line_secret(value: Any) -> Any:
    """`_secret_text`, refusing a control character left inside: sent in an Authorization
    header, `http.client` would refuse it with an error quoting the whole header, and a
    second line of a secrets file would be sent as part of the token."""
    value = _secret_text(value)
    if isinstance(value, SecretStr):
        found = CONTROL_CHARACTER.search(value.get_secret_value())
        if found:
            what = "a line break" if found.group() in "\r\n" else "a control character"
            raise PydanticCustomError(
                "secret_control_character",
                f"holds {what} (U+{ord(found.group()):04X}) inside it, which no HTTP header"
                " can carry: set it on one line (check the variable or file it comes from)",
            )
    return value


OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_single_line_secret)]
"""An adapter's secret option (a token, password, client secret): one line, surrounding
whitespace removed, unset when blank."""

OptionalMultilineSecret = Annotated[SecretStr | None, BeforeValidator(_secret_text)]
"""A secret of several lines that is never sent as is (a PEM private key, which signs):
surrounding whitespace removed, unset when blank."""


DEFAULT_POLICIES: dict[str, WritePolicy] = {"temperature": "unless_edited"}
"""Fields people set by hand (Salesforce's standard Lead `Rating` holds the temperature):
what a person set is kept unless the configuration says otherwise. Every other field is
`always` by default: crm-qualify's own properties, and the stage, which has rules of its own
(never backwards, a stage a person moved back stays)."""


def _default_fields() -> dict[str, FieldPolicy]:
    return {
        name: FieldPolicy(
            owned=name not in OPT_IN_FIELDS, policy=DEFAULT_POLICIES.get(name, "always")
        )
        for name in OWNED_FIELDS
    }


def _known_field(name: str) -> str:
    """A `[fields.X]` name checked as a key, so that its error comes in the same pass as
    those of every field's policy."""
    if name not in OWNED_FIELDS:
        raise PydanticCustomError(
            "unknown_field",
            "unknown field {name}; known: {known}",
            {"name": name, "known": ", ".join(OWNED_FIELDS)},
        )
    return name


FieldName = Annotated[str, AfterValidator(_known_field)]


def _opt_in(name: str, policy: FieldPolicy) -> FieldPolicy:
    """An optional field stays off until `owned = true` is said, even with a policy set; a
    field keeps its default policy until one is said."""
    update: dict[str, Any] = {}
    if name in OPT_IN_FIELDS and "owned" not in policy.model_fields_set:
        update["owned"] = False
    if "policy" not in policy.model_fields_set:
        update["policy"] = DEFAULT_POLICIES.get(name, "always")
    return policy.model_copy(update=update) if update else policy


class CrmSettings(_Section):
    adapter: str = Field(default="hubspot", description="Entry-point name of the CRM adapter.")
    instance: str = Field(
        default="default",
        description="Names this portal or org in the state store (cursors, locks, audit).",
    )
    mapping_file: Path | None = Field(
        default=None, description="A mapping TOML of your own; default: the bundled one."
    )


class SyncSettings(_Section):
    state_path: Path = Field(
        default=Path("crm-qualify.sqlite"),
        description="SQLite state store: cursors, runs, audit trail, task keys, locks.",
    )
    max_retry_records: int = Field(
        default=10_000, ge=0, description="Failed records re-read at the start of a run."
    )
    lookup_delay_seconds: float = Field(
        default=120.0,
        ge=0,
        description="A task create whose answer was lost is looked up in the CRM only after"
        " this long, so the CRM's search index has caught up (HubSpot's lags a few seconds);"
        " until then it is neither looked up nor sent again.",
    )
    reconcile_every_days: float = Field(
        default=7.0,
        ge=0,
        description="A full read this often corrects the mirror: records deleted or merged in"
        " the CRM leave it, and changes the incremental reads could not see are caught."
        " 0 turns it off (`sync --full` still does one).",
    )
    max_clock_offset_minutes: float = Field(
        default=60.0,
        ge=0,
        description="A run whose clock is further than this from the CRM's (its answers' Date"
        " header) stops before deciding anything: ages, due times and SLAs would be judged on"
        " the wrong day. 0 turns the check off.",
    )
    keep_runs_days: float = Field(
        default=90.0,
        ge=0,
        description="Runs that ended longer ago than this leave the state store with their"
        " audit trail (they can no longer be rolled back); each field's last acknowledged"
        " write, unsettled intents, runs still running and every task key stay. Applied once a"
        " day after a successful run, and by `crm-qualify compact`. 0 keeps everything.",
    )


class ScheduleSettings(_Section):
    interval_minutes: float = Field(default=15.0, gt=0, description="Minutes between runs.")
    cron: str | None = Field(default=None, description="Crontab expression; wins over interval.")
    jitter_seconds: int = Field(
        default=30, ge=0, description="Random delay per run, so daemons do not all fire at once."
    )


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "text", "json"] = Field(
        default="auto", description="auto: text on a terminal, JSON lines otherwise."
    )


class ServerSettings(_Section):
    enabled: bool = Field(default=True, description="Serve /healthz and /metrics in `run`.")
    host: str = Field(default="0.0.0.0", description="Address to listen on.")
    port: int = Field(default=9108, ge=0, le=65535, description="Port (0: any free port).")


_toml_path: ContextVar[Path | None] = ContextVar("crmq_toml_path", default=None)


class Settings(BaseSettings):
    """The whole configuration; `config.example.toml` documents every key."""

    model_config = SettingsConfigDict(
        env_prefix="CRMQ_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )
    __repr_str__ = masked_repr_str

    crm: CrmSettings = Field(default_factory=CrmSettings)
    adapters: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per adapter name, validated by the adapter."
    )
    fields: dict[FieldName, FieldPolicy] = Field(default_factory=_default_fields)
    rules: Rules = Field(default_factory=Rules)
    identity: IdentityRules = Field(default_factory=IdentityRules)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    calibrate: CalibrateSettings = Field(default_factory=CalibrateSettings)

    @field_validator("fields")
    @classmethod
    def _every_field(cls, value: dict[str, FieldPolicy]) -> dict[str, FieldPolicy]:
        return {**_default_fields(), **{name: _opt_in(name, p) for name, p in value.items()}}

    @field_validator("adapters")
    @classmethod
    def _conceal_adapter_secrets(
        cls, value: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        return {name: conceal_secrets(options) for name, options in value.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _toml_path.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def adapter_options(self) -> dict[str, Any]:
        """The active adapter's options with `X_file` secrets read from their files."""
        name = self.crm.adapter
        return resolve_secret_files(self.adapters.get(name, {}), f"adapters.{name}.")


class ConfigurationError(Exception):
    """Configuration problems, each naming its key; raised before any API call."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def conceal_secrets(options: dict[str, Any], inherited: bool = False) -> dict[str, Any]:
    """`options` with every value under a secret-looking key (or inside a secret table) as a
    `SecretStr`, nested; numbers too, since a TOML `password = 1234` is still a password."""
    return {key: _conceal(value, _is_secret(key, inherited)) for key, value in options.items()}


def _is_secret(key: str, inherited: bool) -> bool:
    """Secret-looking, or inside a secret table; an `X_file` path never is."""
    return is_secret_key(key) or (inherited and not key.lower().endswith("_file"))


def _conceal(value: Any, secret: bool) -> Any:
    if isinstance(value, dict):
        return conceal_secrets(value, secret)
    if isinstance(value, list):
        return [_conceal(item, secret) for item in value]
    if secret and isinstance(value, str | int | float) and not isinstance(value, bool):
        return SecretStr(str(value).strip())  # as a secret file's content is
    return value


def describe_validation_error(
    error: ValidationError,
    prefix: str = "",
    *,
    environment: bool = False,
    model: type[BaseModel] | None = None,
) -> list[str]:
    """`key.path: message` lines a person can act on, never echoing the input value: pydantic
    leaves the input out of `msg`, but a validator's own message may quote it. With
    `environment`, a key a `CRMQ_` variable set says so: it is not in the file (`prefix`,
    a dotted key such as `adapters.hubspot.`, is part of the variable's name). With the
    `model` validated, an unknown key says the key it nearly spells or the table it belongs
    in (`key_hints`)."""
    problems = []
    within = tuple(part for part in prefix.split(".") if part)
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if part != "[key]")  # a bad key names itself
        key = ".".join(str(part) for part in loc) or "(top level)"
        line = f"{prefix}{key}: {mask_values(item['msg'], _input_secrets(item))}"
        if item["type"] == "extra_forbidden" and model is not None and loc:
            line += unknown_key_hint(model, loc, prefix if prefix.endswith(".") else "")
        variable = _variable_of((*within, *loc)) if environment else None
        problems.append(f"{line} (from the environment variable {variable})" if variable else line)
    return problems


def _variable_of(loc: tuple[int | str, ...]) -> str | None:
    """The `CRMQ_` variable that sets the key at `loc`, or a key within it, if one is set."""
    wanted = ("CRMQ_" + "__".join(str(part) for part in loc)).upper()
    return next(
        (
            name
            for name in os.environ
            if name.upper() == wanted or name.upper().startswith(wanted + "__")
        ),
        None,
    )


def _input_secrets(item: ErrorDetails) -> list[str]:
    """Secret strings in one error's input: `SecretStr`s anywhere, a plain string at a
    secret-looking key."""
    at_secret_key = any(is_secret_key(str(part)) for part in item["loc"])
    return _secrets_in(item.get("input"), at_secret_key)


def _secrets_in(value: Any, secret: bool) -> list[str]:
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, str):
        return [value] if secret else []
    if isinstance(value, dict):
        return [
            found
            for key, inner in value.items()
            for found in _secrets_in(inner, _is_secret(str(key), secret))
        ]
    if isinstance(value, list | tuple):
        return [found for inner in value for found in _secrets_in(inner, secret)]
    return []


def discover_config(explicit: Path | str | None = None, cwd: Path | None = None) -> Path | None:
    """The configuration file, found as tools in our ecosystem find theirs: `--config`, then
    `$CRMQ_CONFIG`, then `./crm-qualify.toml` in the working directory. None: no file, the
    built-in defaults and `CRMQ_*` variables alone (an explicit path is returned even when it
    does not exist, so loading it names it)."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    candidate = (cwd or Path.cwd()) / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def load_settings(path: Path | str | None = None) -> Settings:
    """Read the TOML file (if any) and the environment; raise `ConfigurationError`."""
    toml_path = Path(path) if path else None
    if toml_path is not None:
        if not toml_path.is_file():
            raise ConfigurationError([f"config file {toml_path}: not found"])
        try:
            tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError([f"config file {toml_path}: {exc}"]) from None
    unknown = _unknown_sections()
    if unknown:
        raise ConfigurationError(unknown)
    token = _toml_path.set(toml_path)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = describe_validation_error(exc, environment=True, model=Settings)
        raise ConfigurationError(problems) from None
    except SettingsError as exc:  # an environment value that is not valid JSON for its table
        raise ConfigurationError([str(exc)]) from None
    finally:
        _toml_path.reset(token)
    astray = _state_astray(settings.sync.state_path, toml_path)
    if astray:
        raise ConfigurationError([astray])
    return settings


def _state_astray(state_path: Path, toml_path: Path | None) -> str | None:
    """A relative `sync.state_path` is taken from the working directory. Run from another
    folder than the configuration file's (cron, a service manager), it would start a second
    state file there, silently: a full read, a run history without the first, and a lock the
    daemon beside the first one does not see. Refused when the working directory has no such
    file and the configuration file's folder has one."""
    if state_path.is_absolute() or toml_path is None:
        return None
    cwd = Path.cwd()
    here, beside = cwd / state_path, toml_path.resolve().parent / state_path
    if here.exists() or not beside.exists():
        return None
    return (
        f"sync.state_path: {state_path} is taken from the working directory"
        f" ({cwd}), which has no such file, but {beside} beside the"
        " configuration file is one: run from that folder or give an absolute path"
        " (a new state file would start over with a full read)"
    )


def _unknown_sections() -> list[str]:
    """`CRMQ_` variables the settings source would skip without a word, so a typo would
    leave the default in force: `CRMQ_<SECTION>__<KEY>` naming no section, and a section's
    key joined by one underscore (`CRMQ_SYNC_STATE_PATH`)."""
    known = sorted(Settings.model_fields)
    problems = []
    for name in sorted(os.environ):
        if not name.upper().startswith("CRMQ_"):
            continue
        rest = name[len("CRMQ_") :].lower()
        section, nested, key = rest.partition("__")
        if nested and section not in known:
            problems.append(f"{name}: no section {section!r} (sections: {', '.join(known)})")
        elif not nested:
            for known_section in known:
                if rest.startswith(f"{known_section}_"):
                    key = rest.removeprefix(f"{known_section}_").upper()
                    joined = f"CRMQ_{known_section.upper()}__{key}"
                    problems.append(f"{name}: a section and its key take two underscores: {joined}")
    return problems


def resolve_secret_files(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Options with each `X_file` replaced by `X`, the file's content as a `SecretStr`.
    An `X` given directly wins (the environment's over the TOML's file, as the environment
    overrides the TOML everywhere): the `X_file` is dropped with a warning naming both, not
    left for the adapter's model to refuse as an unknown option."""
    resolved = dict(options)
    for key, value in options.items():
        if not key.endswith("_file") or not value:
            continue
        target = key.removesuffix("_file")
        if resolved.get(target):
            log.warning("%s%s is set, so %s%s is not read", prefix, target, prefix, key)
            del resolved[key]
            continue
        try:
            resolved[target] = SecretStr(Path(str(value)).read_text(encoding="utf-8").strip())
        except OSError as exc:
            problem = f"{prefix}{key}: cannot read secret file ({exc.strerror})"
            raise ConfigurationError([problem]) from None
        del resolved[key]
    return resolved
