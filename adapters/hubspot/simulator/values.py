"""HubSpot's string encoding of property values: datetimes, numbers, options.

Every property value travels as a string. Datetimes are ISO 8601 in UTC with milliseconds and
`Z` (epoch-millisecond strings are accepted on input, as HubSpot does); `date` properties must
be midnight UTC. Parsing is tolerant on read (search filters) and strict on write, so adapters
get the same 400s they would get from HubSpot for a malformed value.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from .errors import PropertyProblem

DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@lru_cache(maxsize=8192)
def _day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))


_CLOCK = [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}." for s in range(86_400)]
_MILLIS = [f"{m:03d}Z" for m in range(1000)]


def format_ms(ms: int) -> str:
    """Epoch millis -> `2024-05-01T09:30:00.123Z`, from lookup tables (seeding formats ~1M)."""
    day, rem = divmod(ms, DAY_MS)
    sec, milli = divmod(rem, 1000)
    return _day(day) + _CLOCK[sec] + _MILLIS[milli]


def parse_ms(value: str | None) -> int | None:
    """ISO 8601, `YYYY-MM-DD` or epoch-millis string -> epoch millis; None if unparseable."""
    if not value:
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def parse_number(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_string(raw: Any) -> str | None:
    """JSON scalars -> HubSpot's string form; None means 'not a scalar'."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    if isinstance(raw, str):
        return raw
    return None


def normalize(definition: dict[str, Any], raw: Any) -> tuple[str, PropertyProblem | None]:
    """Validate one written value against its definition; `""` clears the property."""
    name = definition["name"]
    value = as_string(raw)
    if value is None:
        return "", PropertyProblem(name, "INVALID_VALUE", f"{raw!r} is not a valid value")
    if value == "":
        return "", None
    kind = definition["type"]
    if kind == "number":
        if parse_number(value) is None:
            return "", PropertyProblem(name, "INVALID_DOUBLE", f"{value} is not a valid number.")
        return value, None
    if kind == "bool":
        lowered = value.lower()
        if lowered not in ("true", "false"):
            return "", PropertyProblem(
                name, "INVALID_BOOLEAN", f"{value} is not a valid boolean value."
            )
        return lowered, None
    if kind in ("datetime", "date"):
        return _normalize_time(name, kind, value)
    if kind == "enumeration":
        return _normalize_option(definition, value)
    return value, None


def _normalize_time(name: str, kind: str, value: str) -> tuple[str, PropertyProblem | None]:
    ms = parse_ms(value)
    if ms is None:
        return "", PropertyProblem(name, "INVALID_LONG", f"{value} was not a valid long.")
    if kind == "date":
        if ms % DAY_MS:
            return "", PropertyProblem(
                name, "INVALID_DATE", f"{value} is not midnight UTC; date properties need midnight"
            )
        return _day(ms // DAY_MS), None
    return (format_ms(ms) if value.strip().isdigit() else value), None


def _normalize_option(definition: dict[str, Any], value: str) -> tuple[str, PropertyProblem | None]:
    allowed = list(dict.fromkeys(opt["value"] for opt in definition.get("options", [])))
    parts = value.split(";") if definition.get("fieldType") == "checkbox" else [value]
    bad = [p for p in parts if p not in allowed]
    if bad:
        listing = ", ".join(allowed)  # the property's own order, as HubSpot lists them
        return "", PropertyProblem(
            definition["name"],
            "INVALID_OPTION",
            f"{bad[0]} was not one of the allowed options: [{listing}]",
        )
    return value, None


MISSING = (1, 0)


def _time_key(value: str | None) -> tuple[int, Any]:
    if not value:
        return MISSING
    if len(value) == 24 and value[19] == "." and value[23] == "Z":
        return (0, value)
    ms = parse_ms(value)
    return MISSING if ms is None else (0, format_ms(ms))


def _number_key(value: str | None) -> tuple[int, Any]:
    if not value:
        return MISSING
    try:
        number = float(value)
    except ValueError:
        return MISSING
    return (0, number) if math.isfinite(number) else MISSING


def _text_key(value: str | None) -> tuple[int, Any]:
    return (0, value.lower()) if value else MISSING


def key_function(kind: str) -> Callable[[str | None], tuple[int, Any]]:
    """Typed, totally ordered sort keys; objects without a value sort after all others.
    Datetimes key on their canonical ISO text (which orders like time), so sorting 100k
    contacts does not parse 100k timestamps."""
    if kind in ("datetime", "date"):
        return _time_key
    return _number_key if kind == "number" else _text_key
