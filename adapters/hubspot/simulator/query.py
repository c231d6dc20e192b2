"""Search request parsing: HubSpot's limits (groups, filters, body size, the 10,000-result
window), operators and typed filter values.

A filter on the pseudo-property `associations.{objecttype}` (`associations.company`, EQ a
record id or IN a list of them) selects the records associated with those records, as
HubSpot's search guide describes searching through associations; the ids are resolved when
the search is parsed, so it needs no index of its own."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import validation_error
from .schema import MODIFIED, SEARCH_ALIASES, resolve_type
from .values import MISSING, key_function

if TYPE_CHECKING:
    from .store import Store

MAX_RESULTS = 10_000
MAX_GROUPS, MAX_PER_GROUP, MAX_FILTERS = 5, 6, 18
RANGE_OPS = {"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"}
OPERATORS = RANGE_OPS | {
    "NEQ",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
_TOKENS = re.compile(r"[a-z0-9]+")


@dataclass
class Filter:
    prop: str
    op: str
    kind: str
    low: tuple[int, Any]
    high: tuple[int, Any]
    test: Callable[[str | None], bool]


@dataclass
class Query:
    groups: list[list[Filter]]
    sort_prop: str
    descending: bool
    text: str
    offset: int
    limit: int
    properties: list[str] | None


def parse_query(store: Store, object_type: str, body: dict[str, Any], raw_size: int) -> Query:
    """Validate a search body the way HubSpot does (sizes, operators, the 10k window)."""
    if raw_size > 3000:
        raise validation_error(f"Search request body is {raw_size} characters; the limit is 3000.")
    groups_in = body.get("filterGroups") or []
    if not isinstance(groups_in, list) or len(groups_in) > MAX_GROUPS:
        raise validation_error(
            f"Too many filter groups ({len(groups_in)}). The limit is {MAX_GROUPS}."
        )
    count = sum(len(g.get("filters") or []) for g in groups_in if isinstance(g, dict))
    if count > MAX_FILTERS:
        raise validation_error(f"Too many filters ({count}). The limit is {MAX_FILTERS} in total.")
    defs = store.definitions[object_type]
    groups = []
    for group in groups_in:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise validation_error("Each filter group needs a 'filters' list.")
        if len(filters) > MAX_PER_GROUP:
            raise validation_error(
                f"Too many filters in a group ({len(filters)}). The limit is {MAX_PER_GROUP}."
            )
        groups.append([_filter(store, object_type, f) for f in filters])
    sort_prop, descending = _sort(defs, object_type, body.get("sorts") or [])
    offset, limit = _paging(body)
    props = body.get("properties")
    return Query(
        groups,
        sort_prop,
        descending,
        str(body.get("query") or "").strip(),
        offset,
        limit,
        [str(p) for p in props] if props else None,
    )


def resolve_prop(defs: dict[str, Any], object_type: str, name: str) -> str:
    if name not in defs and SEARCH_ALIASES.get(name) == MODIFIED[object_type]:
        return MODIFIED[object_type]
    return name


def _sort(defs: dict[str, Any], object_type: str, sorts: list[Any]) -> tuple[str, bool]:
    if len(sorts) > 1:
        raise validation_error("Only one sort is supported per search request.")
    if not sorts:
        return "hs_object_id", False
    sort = sorts[0]
    if isinstance(sort, str):
        name, descending = sort.lstrip("-"), sort.startswith("-")
    elif isinstance(sort, dict) and sort.get("propertyName"):
        name = str(sort["propertyName"])
        direction = str(sort.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING", "ASC", "DESC"):
            raise validation_error(f"Invalid sort direction: {direction}")
        descending = direction.startswith("DESC")
    else:
        raise validation_error("A sort needs a 'propertyName'.")
    return resolve_prop(defs, object_type, name), descending


def _paging(body: dict[str, Any]) -> tuple[int, int]:
    try:
        limit = int(body.get("limit", 10))
        offset = int(body.get("after") or 0)
    except (TypeError, ValueError) as exc:
        raise validation_error("'limit' and 'after' must be integers.") from exc
    if not 0 < limit <= 200:
        raise validation_error(f"limit must be between 1 and 200, was {limit}")
    if offset < 0 or offset + limit > MAX_RESULTS:
        raise validation_error(
            f"Search requests may page through at most {MAX_RESULTS} results; after={offset} "
            f"with limit={limit} goes past that. Narrow the filters instead."
        )
    return offset, limit


def _association_filter(store: Store, object_type: str, op: str, raw: dict[str, Any]) -> Filter:
    """`associations.{type}` EQ / IN record ids: the records of `object_type` associated with
    any of them, tested on `hs_object_id` (never a range filter, so no index narrows on it)."""
    other = resolve_type(str(raw["propertyName"]).removeprefix("associations."))
    if other is None or other not in store.objects:
        raise validation_error(f"Unknown association object type in '{raw['propertyName']}'.")
    if op not in ("EQ", "IN"):
        raise validation_error(f"{op} is not supported on '{raw['propertyName']}'; use EQ or IN.")
    ids = raw.get("values") if op == "IN" else [raw.get("value")]
    if not isinstance(ids, list) or not ids:
        raise validation_error(f"IN filter on '{raw['propertyName']}' needs a 'values' list.")
    linked = {oid for one in ids for oid in store.associations(other, str(one), object_type)}
    return Filter("hs_object_id", "IN", "string", MISSING, MISSING, lambda v: v in linked)


def _filter(store: Store, object_type: str, raw: Any) -> Filter:
    if not isinstance(raw, dict) or not raw.get("propertyName") or not raw.get("operator"):
        raise validation_error("Each filter needs 'propertyName' and 'operator'.")
    op = str(raw["operator"]).upper()
    if op not in OPERATORS:
        raise validation_error(f"Unknown filter operator: {op}")
    if str(raw["propertyName"]).startswith("associations."):
        return _association_filter(store, object_type, op, raw)
    defs = store.definitions[object_type]
    prop = resolve_prop(defs, object_type, str(raw["propertyName"]))
    kind = defs.get(prop, {}).get("type", "string")
    to_key = key_function(kind)

    def key(value: Any) -> tuple[int, Any]:
        parsed = to_key(None if value is None else str(value))
        if parsed == MISSING:
            raise validation_error(f"Invalid value {value!r} for {op} filter on '{prop}'.")
        return parsed

    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        want = op == "HAS_PROPERTY"
        return Filter(prop, op, kind, MISSING, MISSING, lambda v: bool(v) is want)
    if op in ("IN", "NOT_IN"):
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise validation_error(f"{op} filter on '{prop}' needs a non-empty 'values' list.")
        wanted = {key(v) for v in values}
        negate = op == "NOT_IN"
        return Filter(
            prop, op, kind, MISSING, MISSING, lambda v: (to_key(v) in wanted) is not negate
        )
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        return Filter(prop, op, kind, MISSING, MISSING, _token_test(str(raw.get("value", "")), op))
    low = key(raw.get("value"))
    high = key(raw.get("highValue")) if op == "BETWEEN" else low
    tests: dict[str, Callable[[tuple[int, Any]], bool]] = {
        "EQ": lambda k: k == low,
        "NEQ": lambda k: k != low,
        "GT": lambda k: low < k < MISSING,
        "GTE": lambda k: low <= k < MISSING,
        "LT": lambda k: k < low,
        "LTE": lambda k: k <= low,
        "BETWEEN": lambda k: low <= k <= high,
    }
    compare = tests[op]
    return Filter(prop, op, kind, low, high, lambda v: compare(to_key(v)))


def _token_test(pattern: str, op: str) -> Callable[[str | None], bool]:
    """CONTAINS_TOKEN: whole-token match, or a `*` wildcard match on the value or a token."""
    needle = pattern.lower()
    negate = op == "NOT_CONTAINS_TOKEN"

    def test(value: str | None) -> bool:
        if not value:
            return negate
        text = value.lower()
        if "*" in needle:
            hit = fnmatch.fnmatchcase(text, needle) or any(
                fnmatch.fnmatchcase(t, needle) for t in _TOKENS.findall(text)
            )
        else:
            tokens = _TOKENS.findall(needle)
            found = _TOKENS.findall(text)
            hit = bool(tokens) and all(t in found for t in tokens)
        return hit is not negate

    return test
