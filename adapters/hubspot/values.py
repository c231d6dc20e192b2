"""HubSpot's string-typed values read strictly: each accessor returns a typed value, applies
one of the harmless normalisations listed in `translate.py`, or raises `TranslationError`
naming the HubSpot property, and never raises anything else."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from crm_qualify.connector.contract import TranslationError, plausible_time

MAX_COUNT = 10**9
"""An engagement counter above this is corrupt data, not engagement."""
MAX_COMPANY_SIZE = 10**9
"""A company size above this is corrupt data (the largest employers have a few million)."""
_WHOLE = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_BUCKET = re.compile(rf"\s*({_WHOLE})\s*(?:-\s*{_WHOLE}|\+)?\s*")
"""A count ("250"), or a `numemployees` bucket: a range ("1,000-5,000") or open ("1000+")."""


def fail(prop: str, problem: str, value: Any) -> TranslationError:
    shown = repr(value)
    shown = shown[:60] + "…" if len(shown) > 60 else shown
    return TranslationError(prop, f"{prop}: {problem}: {shown}")


def empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def text_value(value: Any, prop: str) -> str | None:
    """Text as HubSpot sends it; a JSON number is read as its text."""
    if empty(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return render_number(value, prop)
    raise fail(prop, "expected text", value)


def finite_number(value: Any, prop: str) -> float:
    """A finite number from HubSpot's text (or a JSON number)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise fail(prop, "not a number", value)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise fail(prop, "not a number", value) from None
    if not math.isfinite(number):
        raise fail(prop, "not a finite number", value)
    return number


def render_number(value: Any, prop: str) -> str:
    """A number as HubSpot's text: integral values without ".0" (17.0 -> "17")."""
    if isinstance(value, str):
        finite_number(value, prop)
        return value
    number = finite_number(value, prop)
    if isinstance(value, int):
        return str(value)
    return str(int(number)) if number.is_integer() else repr(number)


def parse_time(value: Any, prop: str) -> datetime | None:
    """HubSpot sends datetimes as ISO 8601 or as epoch milliseconds, dates as YYYY-MM-DD."""
    if empty(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _from_ms(value, prop, value)
    if not isinstance(value, str):
        raise fail(prop, "not a date", value)
    text = value.strip()
    if text.isascii() and text.isdigit():
        return _from_ms(int(text), prop, value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(prop, "not a date", value) from None
    return plausible_time(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC), prop)


def _from_ms(ms: int, prop: str, value: Any) -> datetime:
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise fail(prop, "date out of range", value) from None
    return plausible_time(moment, prop)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def counter(value: Any, prop: str) -> int:
    if empty(value):
        return 0
    number = finite_number(value, prop)
    if number > MAX_COUNT:
        raise fail(prop, "implausibly large counter", value)
    return max(0, int(number))


def flag(value: Any, prop: str) -> bool:
    if empty(value):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(prop, "expected true or false", value)


def company_size(value: Any, prop: str) -> int | None:
    """`numemployees` is a bucket ("100-500", "1000+"): the lower bound; a count is itself.
    Anything else (text that is no size, a size too large to be one) is refused, never
    taken for unknown or cut to the digits that fit."""
    if empty(value):
        return None
    match = _BUCKET.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        size = int(match.group(1).replace(",", ""))
    else:
        number = finite_number(value, prop)
        if not number.is_integer():
            raise fail(prop, "not a whole number", value)
        if number < 0:
            raise fail(prop, "a company size cannot be negative", value)
        size = int(number)
    if size > MAX_COMPANY_SIZE:
        raise fail(prop, "implausibly large company size", value)
    return size


def lenient(read: Any, value: Any, prop: str) -> Any:
    """A context value (deal, task) read leniently: unreadable is unknown."""
    try:
        return read(value, prop)
    except TranslationError:
        return None


def record_id(row: Any) -> str | None:
    """A record's id as text, or None when the row has no usable one."""
    value = row.get("id") if isinstance(row, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def properties_of(row: dict[str, Any]) -> dict[str, Any]:
    props = row.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise fail("properties", "expected an object", props)
    return props


def objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list (anything else in it, or a non-list, is ignored)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
