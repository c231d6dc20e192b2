"""Reading one Salesforce value as the type its field has, or refusing it naming the field.

Salesforce's JSON gives text, numbers, booleans, dates as ISO strings and null. A value of
another type means the mapping names a field of another kind (or the data is damaged): it
raises `TranslationError` with the Salesforce field name (`Object.Field` for related rows).
Numeric strings in number fields and "true" / "false" in checkboxes are read as what they say.
A field may be a relationship path (`Account.Industry` on a Contact): the parent's value.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

from crm_qualify.connector.contract import TranslationError, plausible_time

TEXT_MAX = 131_072
"""Salesforce's longest text field (Long Text Area): a longer value came from no field."""
DIGITS = {"NumberOfEmployees": 8}
"""Standard whole-number fields a mapping reads whose size Salesforce fixes (Lead and Account
`NumberOfEmployees`, Number(8, 0) in the field reference; the API refuses a longer value with
NUMBER_OUTSIDE_VALID_RANGE): a longer value came from no such field."""
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def is_id(value: Any) -> bool:
    """A record id as Salesforce writes them: 15 or 18 letters and digits."""
    return isinstance(value, str) and bool(SALESFORCE_ID.fullmatch(value))


def value_at(row: dict[str, Any], field: str | None) -> Any:
    """The value of `field` in a row; a relationship path (`Account.Industry`) is followed
    through the parent records Salesforce nests in the row (null parent: no value), or read
    as the column of that name a Bulk API CSV has."""
    if not field:
        return None
    if "." not in field or field in row:
        return row.get(field)
    value: Any = row
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _name(field: str, where: str | None) -> str:
    return f"{where}.{field}" if where else field


def text(row: dict[str, Any], field: str, where: str | None = None) -> str | None:
    """A text field's value; absent or empty is None. A number, a boolean or an object means
    the mapping names a field of another type: refused, naming the field."""
    value = value_at(row, field)
    if value is None or value == "":
        return None
    name = _name(field, where)
    if not isinstance(value, str):
        raise TranslationError(name, f"{name}: expected text, got {type(value).__name__}")
    if len(value) > TEXT_MAX:
        raise TranslationError(name, f"{name}: {len(value)} characters, longer than any field")
    return value


def number(row: dict[str, Any], field: str, where: str | None = None) -> float | None:
    """A numeric field's value; a numeric string (as a formula field may hold) is read as its
    number. Booleans, other text, and infinities are refused."""
    value = value_at(row, field)
    if value is None or value == "":
        return None
    name = _name(field, where)
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise TranslationError(name, f"{name}: not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(result):
        raise TranslationError(name, f"{name}: not a finite number: {str(value)[:40]!r}")
    return result


def whole(row: dict[str, Any], field: str) -> int | None:
    """A count (NumberOfEmployees): a number with no fraction, not negative, and no longer
    than the field can hold (`DIGITS`); integers are taken exactly. A refusal says which of
    these the value is not, and shows a number as a number (text, as a formula field holds
    it, quoted)."""
    value = value_at(row, field)
    exact = isinstance(value, int) and not isinstance(value, bool)
    result = value if exact else number(row, field)
    if result is None:
        return None
    shown = repr(value[:40]) if isinstance(value, str) else str(value)[:40]
    if not (exact or float(result).is_integer()):
        raise TranslationError(field, f"{field}: not a whole number: {shown}")
    if result < 0:
        raise TranslationError(field, f"{field}: a count cannot be negative: {shown}")
    digits = DIGITS.get(field.rsplit(".", 1)[-1])
    if digits and result >= 10**digits:
        message = f"{field}: {shown} has more digits than the field's {digits}"
        raise TranslationError(field, message)
    return int(result)


def flag(row: dict[str, Any], field: str | None, where: str | None = None) -> bool:
    """A checkbox; the strings "true" / "false" are read as such, anything else is refused."""
    value = value_at(row, field)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    name = _name(field or "", where)
    raise TranslationError(name, f"{name}: not a checkbox value: {str(value)[:40]!r}")


def parse_time(value: Any, field: str) -> datetime | None:
    """A Salesforce date or datetime (`2026-11-22`, `…T10:05:07.000+0000`, `…Z`) in UTC when
    it names no zone; anything else, numbers included, is refused naming `field`."""
    if value in (None, ""):
        return None
    try:
        if not isinstance(value, str):
            raise TypeError
        text = value.replace("Z", "+00:00")
        if re.search(r"[+-]\d{4}$", text):
            text = text[:-2] + ":" + text[-2:]
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise TranslationError(field, f"{field}: not a date: {str(value)[:40]!r}") from None
    return plausible_time(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC), field)
