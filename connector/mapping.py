"""Mapping files: plain TOML data that says how canonical fields and stages look in one CRM.

The core validates the parts it understands (owned field names, stage, temperature, highest
stage and customer type values) and hands the document to the adapter, which interprets its
own sections (profile fields, event translations, qualification fields). Bundled mappings live
in `mappings/`. Fields the configuration does not own are taken out of the document first
(`owned_only`), so the CRM need not have them: nothing reads or writes them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

from crm_qualify.connector.decision.duplicates import PROFILE_FIELDS
from crm_qualify.connector.decision.rules import CRITERIA
from crm_qualify.connector.model import (
    CUSTOMER_TYPES,
    OWNED_FIELDS,
    CriterionStatus,
    Stage,
    Temperature,
)
from crm_qualify.connector.settings import (
    ConfigurationError,
    FieldPolicy,
    describe_validation_error,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    create_model,
    field_validator,
)

CONTEXT_FIELDS = frozenset({"stage"})
"""Owned fields the engine also reads as context (the current lifecycle stage decides what
comes next): kept in the mapping even when not owned."""
NUMBER_FIELDS = frozenset({"score", "fit_score", "engagement_score", "intent_score"})
"""Owned fields that hold a number."""
FLAG_FIELDS = frozenset({"renurture", "disqualified", "duplicate"})
"""Owned fields that hold yes or no."""
OPTION_TABLES = {
    "temperature": "temperatures",
    "highest_stage": "highest_stages",
    "customer_type": "customer_types",
}
"""Owned fields written as one of the CRM's options, and the mapping table that names it."""


@dataclass(frozen=True)
class OptionValues:
    """The option fields' values both ways (`OPTION_TABLES`), made once per mapping section,
    so that reading a record does not invert a table for every field."""

    to_crm: dict[str, dict[str, str]]
    to_canonical: dict[str, dict[str, str]]

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> OptionValues:
        to_crm = {name: dict(section.get(table, {})) for name, table in OPTION_TABLES.items()}
        inverted = {name: {v: k for k, v in values.items()} for name, values in to_crm.items()}
        return cls(to_crm, inverted)

    def crm(self, name: str, value: str) -> str:
        """The CRM's option for a canonical value; one the mapping does not name is written
        as it is."""
        return self.to_crm[name].get(value, value)

    def canonical(self, name: str, option: str) -> str:
        """The canonical value of a CRM option; one the mapping does not know is kept as it
        is (the next write replaces it)."""
        return self.to_canonical[name].get(option, option)


class ObjectMapping(BaseModel):
    """One CRM object that holds people (HubSpot `contacts`, Salesforce `Lead`, `Contact`)."""

    model_config = ConfigDict(extra="allow")

    fields: dict[str, str] = {}
    stages: dict[Stage, str] = {}
    temperatures: dict[Temperature, str] = {}
    highest_stages: dict[Stage, str] = {}
    customer_types: dict[str, str] = {}
    stage_values: dict[str, Stage] = {}
    """The CRM's own stage values that mean a canonical stage when read (custom stages)."""
    qualification_values: dict[str, Any] = {}
    """The CRM's own answer values -> canonical answer; a sub-table per criterion."""

    @field_validator("qualification_values")
    @classmethod
    def _tables_per_criterion(cls, value: dict[str, Any]) -> dict[str, Any]:
        """A sub-table is a criterion's own values: one under another name is a typo. Each
        answer is checked here, not by a union type, whose errors named pydantic's types
        instead of the key."""
        tables = {name: table for name, table in value.items() if isinstance(table, dict)}
        _known_criteria(tables)
        answers = {k: v for k, v in value.items() if k not in tables}
        answers |= {f"{name}.{k}": v for name, table in tables.items() for k, v in table.items()}
        wrong = [f"{key} = {answer!r}" for key, answer in answers.items() if not _answer(answer)]
        if wrong:
            known = ", ".join(CriterionStatus)
            raise ValueError(f"not an answer: {', '.join(wrong)}; answers: {known}")
        return value

    @field_validator("customer_types")
    @classmethod
    def _customer_types(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CUSTOMER_TYPES))
        if unknown:
            raise ValueError(
                f"not a customer type: {', '.join(unknown)}; known: {', '.join(CUSTOMER_TYPES)}"
            )
        return value

    @field_validator("fields")
    @classmethod
    def _owned_names(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(OWNED_FIELDS))
        if unknown:
            raise ValueError(
                f"not an owned canonical field: {', '.join(unknown)};"
                f" known: {', '.join(OWNED_FIELDS)}"
            )
        return value


def _answer(value: Any) -> bool:
    return isinstance(value, str) and value in set(CriterionStatus)


class MappingDocument(BaseModel):
    model_config = ConfigDict(extra="allow")

    crm: str
    objects: dict[str, ObjectMapping]


class StrictTable(BaseModel):
    """A table of an adapter's `mapping_schema`: a key it does not know is an error naming
    it. A mistyped `[objects.contacts.stagez]` was read as no stages at all, and the sync
    created hand-offs for contacts already MQL; `emial = "email"` stopped reading emails."""

    model_config = ConfigDict(extra="forbid")


ProfileTable = create_model(
    "ProfileTable",
    __base__=StrictTable,
    __doc__="Canonical profile field -> the CRM field that holds it.",
    **{name: (str | None, None) for name in PROFILE_FIELDS},
)


def _compiles(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return text


Pattern = Annotated[str, AfterValidator(_compiles)]
"""A mapping's regular expression, checked where the mapping is loaded: one that does not
compile is named by its key, not by the adapter's `re.error` once it is constructed."""


class FitTable(StrictTable):
    """Canonical fit field -> the company record's field that holds it."""

    company: str | None = None
    industry: str | None = None
    employees: str | None = None
    country: str | None = None


def _known_criteria(value: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(value) - CRITERIA)
    if unknown:
        known = ", ".join(sorted(CRITERIA))
        raise ValueError(f"not a qualification criterion: {', '.join(unknown)}; known: {known}")
    return value


Criteria = Annotated[dict[str, str], AfterValidator(_known_criteria)]
"""Criterion -> the CRM field holding its answer (a mapping's `qualification` table)."""


class CoreObjectTables(ObjectMapping):
    """The tables of an `objects.<type>` section the core reads, and nothing else: an
    adapter's schema adds its own."""

    model_config = ConfigDict(extra="forbid")


def check_object_tables(
    tables: Mapping[str, Any], known: Collection[str], read: Collection[str], setting: str
) -> None:
    """An adapter schema's check of `objects`: each table names an object the adapter reads
    (`known`), and each object its settings read (`read`, the option `setting`) has its table.
    `[objects.leads]` in a HubSpot mapping was read by nothing, without a word, and a missing
    table was a bare KeyError."""
    unknown = [f"[objects.{name}]" for name in tables if name not in known]
    missing = [f"[objects.{name}]" for name in read if name not in tables]
    problems = []
    if unknown:
        problems.append(
            f"{', '.join(unknown)}: not an object this adapter reads"
            f" ({setting}: {', '.join(known)})"
        )
    if missing:
        problems.append(f"no {', '.join(missing)} table, which {setting} reads")
    if problems:
        raise ValueError("; ".join(problems))


ADAPTER_GROUP = "crm_qualify.adapters"
"""The entry-point group of adapters (`plugins.py`): a plugin's mapping lies in its package."""


def _bundled_mapping(adapter: str) -> str:
    """The mapping shipped with the adapter: ours in `crm_qualify.mappings/<adapter>.toml`, a
    plugin's beside the module its entry point names (`<package>/<adapter>.toml`)."""
    packages = ["crm_qualify.mappings"]
    packages += [
        point.module.rpartition(".")[0] or point.module
        for point in entry_points(group=ADAPTER_GROUP, name=adapter)
    ]
    for package in packages:
        try:
            return resources.files(package).joinpath(f"{adapter}.toml").read_text("utf-8")
        except (OSError, ModuleNotFoundError):
            continue
    raise FileNotFoundError(adapter)


def load_mapping(
    adapter: str,
    path: Path | None = None,
    schema: type[BaseModel] | None = None,
    options: BaseModel | None = None,
    policies: Mapping[str, FieldPolicy] | None = None,
) -> dict[str, Any]:
    """The validated mapping for `adapter`, from `path` or the one bundled with the adapter
    (`_bundled_mapping`); `schema` is the adapter's `mapping_schema`, when it has one: every
    key of the document must be one it knows. `options`, the adapter's validated settings,
    are the schema's validation context: which object tables are read depends on them.
    `policies` (`[fields]`): no field they own is one the adapter reads a fact from
    (`written_facts`)."""
    where = str(path) if path else f"bundled mappings/{adapter}.toml"
    try:
        if path is not None:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = _bundled_mapping(adapter)
    except (OSError, FileNotFoundError):
        raise ConfigurationError([f"crm.mapping_file: cannot read {where}"]) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError([f"crm.mapping_file: {where}: {exc}"]) from None
    for model in (MappingDocument, schema):
        try:
            validated = model.model_validate(document, context=options) if model else None
        except ValidationError as exc:
            problems = describe_validation_error(exc, f"mapping {where}: ", model=model)
            raise ConfigurationError(problems) from None
    if policies is not None:
        owned = owned_only(document, policies)
        clashes = shared_fields(owned)
        clashes += written_facts(validated, owned) if validated is not None else []
        if clashes:
            raise ConfigurationError([f"mapping {where}: {clash}" for clash in clashes])
    return document


def shared_fields(document: Mapping[str, Any]) -> list[str]:
    """One CRM field mapped for several owned fields, per object: each run would write one
    over the other, and rewrite both every run. Fields not owned are left out (`owned_only`):
    `duplicate_group`, not owned by default, sharing the field of `reasons` is never written."""
    clashes = []
    for name, section in document.get("objects", {}).items():
        fields = section.get("fields", {})
        by_field: dict[str, list[str]] = {}
        for owned, crm_field in fields.items():
            by_field.setdefault(str(crm_field).casefold(), []).append(owned)
        shared = [names for names in by_field.values() if len(names) > 1]
        if shared:
            clashes.append(
                f"objects.{name}.fields: one CRM field for several owned fields: "
                + "; ".join(f"{' and '.join(names)} = {fields[names[0]]!r}" for names in shared)
            )
    return clashes


def written_facts(schema: BaseModel, document: Mapping[str, Any]) -> list[str]:
    """Owned fields mapped onto a CRM field the adapter reads a fact from (a profile field, a
    qualification answer, consent, an engagement counter), each named by both keys. Each run
    would overwrite the CRM's own data with ours and then read our value back as the fact:
    `fit_score = "NumberOfEmployees"` wrote a fit score over 110 Leads' employee counts,
    passed `config check` and `doctor`, and the negative counts stopped those Leads from
    being read. An adapter's schema says what it reads by `facts_read()` (object -> key ->
    CRM field); one without it is not checked."""
    facts_read = getattr(schema, "facts_read", None)
    if facts_read is None:
        return []
    clashes = []
    for name, read in facts_read().items():
        by_field: dict[str, list[str]] = {}
        for key, crm_field in read.items():
            by_field.setdefault(crm_field.casefold(), []).append(key)
        written = document.get("objects", {}).get(name, {}).get("fields", {})
        for field_name, crm_field in written.items():
            if field_name in CONTEXT_FIELDS or crm_field.casefold() not in by_field:
                continue
            clashes.append(
                f"objects.{name}.fields.{field_name} = {crm_field!r} is also read as"
                f" {' and '.join(by_field[crm_field.casefold()])}: crm-qualify would write"
                " over the CRM's own data there; map the owned field to a field of its own"
            )
    return clashes


def named_fields(table: BaseModel, prefix: str) -> dict[str, str]:
    """A mapping table's CRM field names by key (`prefix.key`), those set: what a schema's
    `facts_read` is made of."""
    return {
        f"{prefix}.{key}": value
        for key, value in table.model_dump().items()
        if isinstance(value, str) and value
    }


def owned_only(document: dict[str, Any], policies: Mapping[str, FieldPolicy]) -> dict[str, Any]:
    """The mapping without the fields `[fields.<name>] owned = false` gives up (context fields
    stay): an adapter then never reads or writes them, so a CRM that lacks them still syncs."""
    dropped = {
        name for name, policy in policies.items() if not policy.owned and name not in CONTEXT_FIELDS
    }
    if not dropped:
        return document
    objects = {
        name: {
            **section,
            "fields": {k: v for k, v in section.get("fields", {}).items() if k not in dropped},
        }
        for name, section in document.get("objects", {}).items()
    }
    return {**document, "objects": objects}
