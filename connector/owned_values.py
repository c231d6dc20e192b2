"""Owned fields between `Contact.owned` and a CRM record, in both directions.

Which kind of value each owned field holds (a stage, an option of a value table, a number, a
checkbox, a time, text) is the core's and decided here once; how a CRM spells a number, a
checkbox or a time is the adapter's (`Spelling`). What an adapter reads back must compare
equal (`diff.normalise`) with what it wrote, or every run writes it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_qualify.connector.contract import FieldInfo, TranslationError
from crm_qualify.connector.mapping import FLAG_FIELDS, NUMBER_FIELDS, OPTION_TABLES, OptionValues
from crm_qualify.connector.model import Stage

ELLIPSIS = "…"
"""What ends a text cut to its field's length."""


def cut(text: str, most: int | None) -> str:
    """`text` in at most `most` characters: a longer one keeps its start and ends in "…"."""
    if most is None or len(text) <= most:
        return text
    return text[: max(most - 1, 0)] + ELLIPSIS


def is_cut_of(short: str, full: str) -> bool:
    """Whether `short` is `full` cut to the length of `short` (`cut`): what a CRM holds after
    we wrote `full` to a field that takes fewer characters. Writing `full` again would write
    `short` again."""
    return len(full) > len(short) and short.endswith(ELLIPSIS) and full.startswith(short[:-1])


def is_text(name: str) -> bool:
    """Whether the owned field `name` is written as free text (reasons, grade, rules version,
    duplicate group): cut to its CRM field's length."""
    return not (
        name in ("stage", "scored_at")
        or name in OPTION_TABLES
        or name in NUMBER_FIELDS
        or name in FLAG_FIELDS
    )


@dataclass
class TextLengths:
    """The most characters each text field takes, by CRM field, as the CRM describes it
    (`FieldInfo.length`); `known` once an object's describe was seen (`OwnedFields.learn`)."""

    by_field: dict[str, int] = field(default_factory=dict)
    known: bool = False


Reader = Callable[[Any, str], Any]
"""(the record as the CRM sent it, field name) -> the value, refused naming the field."""


@dataclass(frozen=True)
class Spelling:
    """How one CRM spells the owned values (the adapter's part of the codec)."""

    text: Reader
    number: Reader
    """As `Contact.owned` keeps it: a number, or the CRM's own text for one."""
    flag: Reader
    time: Reader
    """`scored_at`: ISO text in UTC, as the engine wrote it."""
    empty: Callable[[Any, str], bool]
    """Whether the field holds nothing: left out of `Contact.owned`."""
    write_number: Callable[[Any, str], Any]
    write_flag: Callable[[Any], Any]
    cleared: Any
    """What empties a field (a rollback to a value never set)."""
    reasons_max: int
    """The longest text the reasons field takes: longer is cut, with an ellipsis."""


@dataclass(frozen=True)
class OwnedFields:
    """One CRM object's owned fields and value tables, with the CRM's spelling."""

    fields: Mapping[str, str]
    """Canonical owned field -> CRM field."""
    stages: Mapping[str, str]
    """Canonical stage -> the CRM's value."""
    stage_of_value: Mapping[str, Stage]
    """The CRM's values read as a canonical stage."""
    options: OptionValues
    spelling: Spelling
    lengths: TextLengths = field(default_factory=TextLengths, compare=False)
    """Learnt from the CRM's describe (`learn`): text longer than its field takes is cut."""

    @classmethod
    def from_section(cls, section: Mapping[str, Any], spelling: Spelling) -> OwnedFields:
        """From an `objects.<object>` section of the mapping (`fields`, `stages`,
        `stage_values` and the value tables)."""
        stages = dict(section.get("stages", {}))
        return cls(
            fields=dict(section.get("fields", {})),
            stages=stages,
            stage_of_value={
                **{value: Stage(name) for name, value in stages.items()},
                **{value: Stage(name) for value, name in section.get("stage_values", {}).items()},
            },
            options=OptionValues.from_section(section),
            spelling=spelling,
        )

    def learn(self, fields: Mapping[str, FieldInfo]) -> None:
        """The length of each owned text field, from the CRM's description of the object
        (`describe_fields`); a field without one (or missing) is cut at `reasons_max` only."""
        self.lengths.by_field = {
            crm: info.length
            for name, crm in self.fields.items()
            if is_text(name) and (info := fields.get(crm)) is not None and info.length
        }
        self.lengths.known = True

    def most(self, name: str) -> int | None:
        """The most characters written to the owned text field `name`: its CRM field's
        length, and for reasons `reasons_max` at most."""
        lengths = [self.lengths.by_field.get(self.fields.get(name, ""))]
        if name == "reasons":
            lengths.append(self.spelling.reasons_max)
        known = [n for n in lengths if n]
        return min(known) if known else None

    def as_written(self, name: str, value: Any) -> Any:
        """A canonical value as `write` sends it, where it differs: text cut to its field
        (what a dry run shows)."""
        if isinstance(value, str) and is_text(name):
            return cut(value, self.most(name))
        return value

    def read(self, record: Any) -> dict[str, Any]:
        """The current values of the owned fields in `record`, by canonical name. A stage
        value the mapping does not know is kept as it is (a person's choice)."""
        empty = self.spelling.empty
        return {
            name: self.value(name, record)
            for name, field in self.fields.items()
            if not empty(record, field)
        }

    def value(self, name: str, record: Any) -> Any:
        """One owned field's value in `record`, as `Contact.owned` holds it."""
        field, spelling = self.fields[name], self.spelling
        if name == "stage":
            text = spelling.text(record, field) or ""
            stage = self.stage_of_value.get(text)
            return stage.value if stage else text
        if name in OPTION_TABLES:
            text = spelling.text(record, field)
            return self.options.canonical(name, text) if text else text
        if name in NUMBER_FIELDS:
            return spelling.number(record, field)
        if name in FLAG_FIELDS:
            return spelling.flag(record, field)
        if name == "scored_at":
            return spelling.time(record, field)
        return spelling.text(record, field)

    def write(self, values: Mapping[str, Any], what: str) -> dict[str, Any]:
        """Canonical values -> the CRM's field values; `what` names the CRM's kind of field
        in errors ("HubSpot property")."""
        spelling = self.spelling
        written: dict[str, Any] = {}
        for name, value in values.items():
            field = self.fields.get(name)
            if field is None:
                raise TranslationError(name, f"{name}: no {what} in the mapping")
            if value is None:
                written[field] = spelling.cleared
            elif name == "stage":
                if value not in self.stages:
                    raise TranslationError(field, f"{field}: no value for stage {value}")
                written[field] = self.stages[value]
            elif name in OPTION_TABLES:
                written[field] = self.options.crm(name, value)
            elif name in NUMBER_FIELDS:
                written[field] = spelling.write_number(value, field)
            elif name in FLAG_FIELDS:
                written[field] = spelling.write_flag(value)
            elif name == "scored_at":
                written[field] = value
            elif name == "reasons" or isinstance(value, str):  # text: cut to its field
                written[field] = cut(str(value), self.most(name))
            else:
                written[field] = value
        return written
