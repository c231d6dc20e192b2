"""Whether each CRM field the mapping points an owned field at can hold what crm-qualify
writes there: checked by `doctor` and `setup`, and by a sync before it reads (once a configuration).

An adapter describes its fields in canonical terms (`FieldInfo.kind`, `writable`,
`options`); the rule is the core's, the same for every CRM. A field that cannot hold our
values (a read-only one, a choice without our values, a number field for text) would refuse
every record's write one by one: one configuration error says it once, before any write.
Only certain misfits are named: a field of a kind the adapter could not name (`kind` "") is
judged on `writable` alone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from crm_qualify.connector.contract import AdapterError, CheckResult, ConfigError, FieldInfo
from crm_qualify.connector.decision.scoring import GRADES
from crm_qualify.connector.mapping import FLAG_FIELDS, NUMBER_FIELDS, OPTION_TABLES
from crm_qualify.connector.model import CUSTOMER_TYPES, Stage, Temperature
from crm_qualify.connector.owned_values import ELLIPSIS, OwnedFields, is_text

CANONICAL_VALUES: dict[str, tuple[str, ...]] = {
    "temperature": tuple(Temperature),
    "highest_stage": tuple(Stage),
    "customer_type": CUSTOMER_TYPES,
    "grade": GRADES,
}
"""The canonical values of the owned fields that take few, besides `stage` and the flags."""
WRITES = {
    **dict.fromkeys(NUMBER_FIELDS, "number"),
    **dict.fromkeys(FLAG_FIELDS, "flag"),
    "scored_at": "datetime",
}
"""The kind of value written to each owned field; any other is text."""
KIND_WORDS = {"number": "number", "flag": "yes/no", "datetime": "date and time", "text": "text"}
TABLES = {"stage": "stages", **OPTION_TABLES}
"""The mapping table that spells the values of a field that has one."""
SHOWN_OPTIONS = 12
log = logging.getLogger(__name__)
MISSING = "no such field"
"""What a misfit the CRM lacks holds (`Misfit.holds`)."""
LONGEST_TEXT = {"grade": max(map(len, GRADES)), "rules_version": 10, "duplicate_group": 40}
"""The longest text written to each owned text field but reasons (`reasons_max`): a rules
version is a 10-character hash, a duplicate group `<object>:<id>`."""


@dataclass(frozen=True)
class Misfit:
    """An owned field mapped to a CRM field that cannot hold what crm-qualify writes."""

    key: str
    """The mapping key: `objects.<object>.fields.<name>`."""
    name: str
    field: str
    holds: str
    writes: str
    fix: str
    creator: str = ""
    """Of a missing field: who can create it (the fix of several missing at once)."""

    @property
    def mapped(self) -> str:
        return f"{self.key} = {self.field}"

    @property
    def detail(self) -> str:
        return f"{self.holds}; crm-qualify writes {self.writes}" if self.writes else self.holds

    def line(self) -> str:
        return f"{self.mapped}: {self.detail}"


def misfits(
    object_type: str,
    owned: OwnedFields,
    fields: Mapping[str, FieldInfo],
    names: Collection[str] | None = None,
    *,
    missing: bool = False,
    setup: str | None = None,
) -> list[Misfit]:
    """The owned fields of `object_type` (only `names`, when given: those the configuration
    owns) whose CRM field, as `fields` describes it, cannot hold our values; with `missing`,
    those the CRM lacks too (a sync's check: a query naming one fails whole, naming no key;
    `doctor` lists them apart). `setup`: the adapter's name when `crm-qualify setup` can
    create its fields, for the fix a missing one names."""
    found = []
    for name, field in owned.fields.items():
        if names is not None and name not in names:
            continue
        info = fields.get(field)
        if info is None:
            if missing:
                found.append(_missing(object_type, name, field, setup))
            continue
        misfit = _misfit(object_type, name, info, written_values(name, owned))
        if misfit is not None:
            found.append(misfit)
    return found


def _missing(object_type: str, name: str, field: str, setup: str | None) -> Misfit:
    creator = f"`crm-qualify setup {setup}` creates ours" if setup else "a CRM admin does"
    fix = (
        f"create it ({creator}), map {name} to a field that exists,"
        f" or set [fields.{name}] owned = false"
    )
    key = f"objects.{object_type}.fields.{name}"
    return Misfit(key, name, field, MISSING, "", fix, creator)


def written_values(name: str, owned: OwnedFields) -> tuple[str, ...] | None:
    """Every value crm-qualify can write to the field of `name`, as the CRM spells it; None
    when they are not few (numbers, text, times)."""
    if name == "stage":
        return tuple(owned.stages.values())
    if name in FLAG_FIELDS:
        return tuple(str(owned.spelling.write_flag(flag)) for flag in (True, False))
    values = CANONICAL_VALUES.get(name)
    if values is None:
        return None
    if name in OPTION_TABLES:
        return tuple(dict.fromkeys(owned.options.crm(name, str(value)) for value in values))
    return values


def _misfit(
    object_type: str, name: str, info: FieldInfo, values: tuple[str, ...] | None
) -> Misfit | None:
    writes = WRITES.get(name, "text")
    key = f"objects.{object_type}.fields.{name}"
    give_up = f"set [fields.{name}] owned = false"
    what = f"one of {', '.join(values)}" if values is not None else KIND_WORDS[writes]
    holds = _holds(info)
    if not info.writable:
        fix = f"map {name} to a field crm-qualify can write, or {give_up}"
        return Misfit(key, name, info.name, holds, what, fix)
    if info.kind == "choice":
        absent = [v for v in values or () if v not in info.options]
        if values is not None and not absent:
            return None
        if values is None:
            fix = f"map {name} to a {KIND_WORDS[writes]} field, or {give_up}"
        else:
            what += f" ({', '.join(absent)}: no option)"
            table = TABLES.get(name)
            change = f", change [objects.{object_type}.{table}]" if table else ""
            fix = (
                f"add the option(s) {', '.join(absent)} to {info.name}{change}, map {name}"
                f" to another field, or {give_up}"
            )
        return Misfit(key, name, info.name, holds, what, fix)
    if info.kind in ("", "text") or info.kind == writes:
        return None
    fix = f"map {name} to a {KIND_WORDS[writes]} field, or {give_up}"
    return Misfit(key, name, info.name, holds, what, fix)


def _holds(info: FieldInfo) -> str:
    """The CRM field as its CRM names it: type, read-only, options."""
    text = f"{info.type or 'a field'}{'' if info.writable else ', read-only'}"
    if info.kind == "choice":
        shown = ", ".join(info.options[:SHOWN_OPTIONS])
        hidden = len(info.options) - SHOWN_OPTIONS
        more = f" and {hidden} more" if hidden > 0 else ""
        text += f" with options {shown}{more}" if info.options else " with no option"
    return text


def cut_notes(
    object_type: str, owned: OwnedFields, fields: Mapping[str, FieldInfo]
) -> list[CheckResult]:
    """A warning (the write lands) for each owned text field shorter than what crm-qualify
    may write there: longer texts are cut to its length, ending in "…" (`OwnedFields.write`)."""
    notes = []
    for name, field in owned.fields.items():
        info = fields.get(field)
        if not is_text(name) or info is None or not info.length or not info.writable:
            continue
        longest = owned.spelling.reasons_max if name == "reasons" else LONGEST_TEXT.get(name)
        if longest is None or info.length >= longest:
            continue
        detail = (
            f"{_holds(info)} of {info.length} characters: a longer {name} text is cut to"
            f" {info.length} characters, ending in {ELLIPSIS}"
        )
        fix = f"map {name} to a longer field, or widen {field}, to keep whole texts"
        notes.append(
            CheckResult(f"objects.{object_type}.fields.{name} = {field}", True, detail, fix, True)
        )
    return notes


def learn_lengths(adapter: Any, object_types: Collection[str] | None = None) -> None:
    """The length of each owned text field (`OwnedFields.learn`) of the adapter's objects
    (`owned_fields`; only `object_types`, when given) not described yet in this process: one
    `describe_fields` each. Text longer than its field is then cut (`OwnedFields.write`) and
    a dry run shows it cut. A failed describe leaves that object's texts whole (logged)."""
    owned_fields: Mapping[str, OwnedFields] = getattr(adapter, "owned_fields", {})
    for object_type, owned in owned_fields.items():
        if owned.lengths.known or (object_types is not None and object_type not in object_types):
            continue
        try:
            owned.learn(adapter.describe_fields(object_type))
        except AdapterError as exc:
            log.warning("%s: text lengths not known, texts written whole: %s", object_type, exc)


def fit_checks(
    object_type: str, owned: OwnedFields, fields: Mapping[str, FieldInfo]
) -> list[CheckResult]:
    """`doctor`'s and `setup`'s lines: one per misfit, with its fix, or one that all fit;
    and a warning per text field that will cut longer texts (`cut_notes`)."""
    found = misfits(object_type, owned, fields)
    notes = cut_notes(object_type, owned, fields)
    if not found:
        detail = "each one the CRM has can hold our values"  # a missing one: its own check
        return [CheckResult(f"{object_type} owned fields fit", True, detail), *notes]
    return [CheckResult(m.mapped, False, m.detail, m.fix) for m in found] + notes


def misfit_error(found: list[Misfit]) -> ConfigError:
    """The sync's stop before any write: each misfit with its fix. Fields the CRM lacks are
    named together with one fix: before `setup`, every owned field is missing, and thirteen
    copies of the same fix hid what to do."""
    missing = [m for m in found if m.holds == MISSING]
    lines = [f"{m.line()} (fix: {m.fix})" for m in found if len(missing) < 2 or m not in missing]
    if len(missing) > 1:
        fix = (
            f"create them ({missing[0].creator}), map each to a field that exists, or set"
            " [fields.<name>] owned = false for those crm-qualify should not write"
        )
        lines.insert(0, f"{MISSING}: {', '.join(m.mapped for m in missing)} (fix: {fix})")
    return ConfigError(
        f"mapped field(s) the CRM lacks or that cannot hold what crm-qualify writes, so"
        f" nothing was read or written: "
        f"{'; '.join(lines)}; `crm-qualify doctor` lists them"
    )
