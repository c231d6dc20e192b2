"""Values in SOQL conditions as Salesforce compares them: literals checked against the field's
type, ids by their 15-character form, dates and datetimes as such, relative date ranges."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DayRange:
    """A relative date literal (TODAY, LAST_N_DAYS:n...): whole UTC days, first to last."""

    first: date
    last: date


def day_range(literal: str) -> DayRange:
    today = datetime.now(UTC).date()
    name, _, count = literal.partition(":")
    n = int(count or 0)
    first, last = {
        "TODAY": (today, today),
        "YESTERDAY": (today - timedelta(days=1), today - timedelta(days=1)),
        "TOMORROW": (today + timedelta(days=1), today + timedelta(days=1)),
        "LAST_N_DAYS": (today - timedelta(days=n), today),
        "NEXT_N_DAYS": (today, today + timedelta(days=n)),
        "N_DAYS_AGO": (today - timedelta(days=n), today - timedelta(days=n)),
    }[name]
    return DayRange(first, last)


def parse_datetime(text: str) -> datetime:
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text).astimezone(UTC)


def comparable(value: Any) -> Any:
    """Stored values are JSON-ish strings; compare dates and datetimes as such."""
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T", value):
        return parse_datetime(value)
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        return date.fromisoformat(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


ID_TYPES = ("id", "reference")
TEXT_TYPES = ("string", "email", "picklist", "textarea", "url", "phone", "multipicklist")
NUMBER_TYPES = ("double", "int", "currency", "percent")
_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def typed(field: str, kind: str, literal: str, value: Any) -> Any:
    """`value` if a literal of this kind may be compared with a field of this type;
    otherwise the error Salesforce answers (INVALID_FIELD; a malformed id literal:
    INVALID_QUERY_FILTER_OPERATOR)."""
    if not kind:
        return value

    def wrong(expected: str, quoted: bool) -> SoqlError:
        quotes = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{field}' must be of type {expected}"
            f" and {quotes}",
        )

    if kind in ID_TYPES:
        if literal != "string":
            raise wrong("id", True)
        if not _ID.match(value):
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
        return value[:15]
    if kind in TEXT_TYPES and literal != "string":
        raise wrong("string", True)
    if kind == "datetime" and literal not in ("datetime", "range"):
        raise wrong("dateTime", False)
    if kind == "date" and literal not in ("date", "range"):
        raise wrong("date", False)
    if kind in NUMBER_TYPES and literal != "number":
        raise wrong(kind, False)
    if kind == "boolean" and literal != "boolean":
        raise wrong("boolean", False)
    return value


def compare_ids(name: str, op: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    """Ids compare by their case-sensitive 15-character form: a 15-character literal finds
    its 18-character record."""
    test = compare(name, op, value)

    def shortened(record: dict[str, Any]) -> bool:
        mine = record.get(name)
        return test({name: mine[:15] if isinstance(mine, str) else mine})

    return shortened


def in_days(mine: Any, op: str, days: DayRange) -> bool:
    """Salesforce's reading of `field op RANGE`: = within, < before it, > after it."""
    day = mine.date() if isinstance(mine, datetime) else mine
    if not isinstance(day, date):
        return op in ("!=", "<>") and mine is None
    return {
        "=": days.first <= day <= days.last, "!=": not days.first <= day <= days.last,
        "<>": not days.first <= day <= days.last, "<": day < days.first,
        "<=": day <= days.last, ">": day > days.last, ">=": day >= days.first,
    }[op]  # fmt: skip


def folded(value: Any, fold: bool) -> Any:
    """A text value as a case-insensitive comparison sees it."""
    return value.casefold() if fold and isinstance(value, str) else value


def compare(
    name: str, op: str, value: Any, *, fold: bool = False
) -> Callable[[dict[str, Any]], bool]:
    """`value` already folded when `fold` (a text field: case-insensitive)."""

    def test(record: dict[str, Any]) -> bool:
        mine = folded(comparable(record.get(name)), fold)
        if isinstance(value, DayRange):
            return in_days(mine, op, value)
        if op == "=":
            return mine == value
        if op in ("!=", "<>"):
            return mine != value
        if mine is None or value is None:
            return False
        try:
            return {"<": mine < value, ">": mine > value, "<=": mine <= value, ">=": mine >= value}[
                op
            ]
        except TypeError:
            return False

    if op not in ("=", "!=", "<>", "<", ">", "<=", ">="):
        raise SoqlError("MALFORMED_QUERY", f"unexpected operator {op!r}")
    return test


def short(value: Any) -> Any:
    return value[:15] if isinstance(value, str) else value
