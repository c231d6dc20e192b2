"""The SOQL subset a connector sends, parsed and evaluated the way Salesforce answers it.

SELECT field, ... FROM Object [WHERE condition] [ORDER BY field [ASC|DESC], ...] [LIMIT n]
Conditions: comparisons (=, !=, <, >, <=, >=, LIKE), IN / NOT IN lists, AND / OR / NOT and
parentheses; literals: 'strings' (with \\' escapes), numbers, true / false / null, dates
(2026-11-22), datetimes (2026-11-22T10:00:00Z, .000+0000) and the relative date literals
TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n (UTC days). Unknown
objects and fields, and anything else, fail as Salesforce fails: MALFORMED_QUERY,
INVALID_FIELD, INVALID_TYPE.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

MAX_LENGTH = 100_000

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<range>(?:LAST_N_DAYS|NEXT_N_DAYS|N_DAYS_AGO):\d+\b|(?:TODAY|YESTERDAY|TOMORROW)\b)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc",
    "desc", "limit", "null", "true", "false", "nulls", "first", "last",
}  # fmt: skip


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Callable[[dict[str, Any]], bool] | None
    order: list[tuple[str, bool]]
    limit: int | None


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected token at: {text[position : position + 20]!r}"
            )
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif kind == "datetime":
            value = _parse_datetime(value)
        elif kind == "date":
            value = date.fromisoformat(value)
        elif kind == "range":
            value = _day_range(value.upper())
        elif kind == "number":
            value = float(value)
        elif kind == "word" and value.lower() in KEYWORDS:
            kind, value = "kw", value.lower()
        tokens.append((kind, value))
    return tokens


@dataclass(frozen=True)
class DayRange:
    """A relative date literal (TODAY, LAST_N_DAYS:n...): whole UTC days, first to last."""

    first: date
    last: date


def _day_range(literal: str) -> DayRange:
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


def _parse_datetime(text: str) -> datetime:
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text).astimezone(UTC)


def comparable(value: Any) -> Any:
    """Stored values are JSON-ish strings; compare dates and datetimes as such."""
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T", value):
        return _parse_datetime(value)
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        return date.fromisoformat(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


class _Parser:
    def __init__(self, text: str, fields_of: Callable[[str], Any]) -> None:
        if len(text) > MAX_LENGTH:
            raise SoqlError(
                "MALFORMED_QUERY", f"SOQL statements cannot exceed {MAX_LENGTH} characters"
            )
        self.tokens = _tokens(text)
        self.position = 0
        self.fields_of = fields_of
        self.known: set[str] = set()
        self.types: dict[str, str] = {}

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str | None = None, value: Any = None) -> tuple[str, Any]:
        token = self.peek()
        if (
            token is None
            or (kind and token[0] != kind)
            or (value is not None and token[1] != value)
        ):
            found = "end of query" if token is None else repr(token[1])
            wanted = value or kind
            raise SoqlError("MALFORMED_QUERY", f"expecting {wanted}, found {found}")
        self.position += 1
        return token

    def accept(self, kind: str, value: Any = None) -> bool:
        token = self.peek()
        if token and token[0] == kind and (value is None or token[1] == value):
            self.position += 1
            return True
        return False

    def field(self) -> str:
        name = self.take("word")[1]
        if name.lower() not in self.known:
            raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{self.sobject}'")
        return self.canonical[name.lower()]

    def parse(self) -> Query:
        self.take("kw", "select")
        names = [self.take("word")[1]]
        while self.accept("op", ","):
            names.append(self.take("word")[1])
        self.take("kw", "from")
        self.sobject = self.take("word")[1]
        fields = self.fields_of(self.sobject)
        if fields is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{self.sobject}' is not supported.")
        self.canonical = {f.lower(): f for f in fields}
        self.known = set(self.canonical)
        if isinstance(fields, dict):
            self.types = {name: spec.get("type", "") for name, spec in fields.items()}
        for name in names:
            if name.lower() not in self.known:
                raise SoqlError(
                    "INVALID_FIELD", f"No such column '{name}' on entity '{self.sobject}'"
                )
        where = self.condition() if self.accept("kw", "where") else None
        order = []
        if self.accept("kw", "order"):
            self.take("kw", "by")
            while True:
                name = self.field()
                descending = self.accept("kw", "desc")
                if not descending:
                    self.accept("kw", "asc")
                order.append((name, descending))
                if not self.accept("op", ","):
                    break
        limit = int(self.take("number")[1]) if self.accept("kw", "limit") else None
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {self.peek()[1]!r}")
        return Query([self.canonical[n.lower()] for n in names], self.sobject, where, order, limit)

    def condition(self) -> Callable[[dict[str, Any]], bool]:
        left = self.conjunction()
        while self.accept("kw", "or"):
            right, first = self.conjunction(), left
            left = lambda r, a=first, b=right: a(r) or b(r)  # noqa: E731
        return left

    def conjunction(self) -> Callable[[dict[str, Any]], bool]:
        left = self.unary()
        while self.accept("kw", "and"):
            right, first = self.unary(), left
            left = lambda r, a=first, b=right: a(r) and b(r)  # noqa: E731
        return left

    def unary(self) -> Callable[[dict[str, Any]], bool]:
        if self.accept("kw", "not"):
            inner = self.unary()
            return lambda r: not inner(r)
        if self.accept("op", "("):
            inner = self.condition()
            self.take("op", ")")
            return inner
        return self.comparison()

    def literal(self, field: str | None = None) -> Any:
        """A literal value; with `field`, checked against the field's type as Salesforce
        checks it (and a 15-character id widened to match its 18-character record)."""
        kind, value = self.take()
        if kind == "kw" and value in ("null", "true", "false"):
            kind, value = "boolean", {"null": None, "true": True, "false": False}[value]
            if value is None:
                return None
        elif kind not in ("string", "number", "date", "datetime", "range"):
            raise SoqlError("MALFORMED_QUERY", f"unexpected value {value!r}")
        if field is not None:
            value = _typed(field, self.types.get(field, ""), kind, value)
        return value

    def comparison(self) -> Callable[[dict[str, Any]], bool]:
        name = self.field()
        negate = self.accept("kw", "not")
        if self.accept("kw", "in"):
            self.take("op", "(")
            values = [self.literal(name)]
            while self.accept("op", ","):
                values.append(self.literal(name))
            self.take("op", ")")
            wanted = {comparable(v) for v in values}
            if self.types.get(name) in ID_TYPES:
                return lambda r: (_short(r.get(name)) in wanted) != negate
            return lambda r: (comparable(r.get(name)) in wanted) != negate
        if negate:
            raise SoqlError("MALFORMED_QUERY", "NOT must be followed by IN here")
        if self.accept("kw", "like"):
            pattern = self.literal()
            regex = re.compile(
                "^" + re.escape(str(pattern)).replace("%", ".*").replace("_", ".") + "$",
                re.IGNORECASE,
            )
            return lambda r: r.get(name) is not None and bool(regex.match(str(r.get(name))))
        op = self.take("op")[1]
        value = comparable(self.literal(name))
        if self.types.get(name) in ID_TYPES:
            return _compare_ids(name, op, value)
        return _compare(name, op, value)


ID_TYPES = ("id", "reference")
TEXT_TYPES = ("string", "email", "picklist", "textarea", "url", "phone", "multipicklist")
NUMBER_TYPES = ("double", "int", "currency", "percent")
_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def _typed(field: str, kind: str, literal: str, value: Any) -> Any:
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


def _compare_ids(name: str, op: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    """Ids compare by their case-sensitive 15-character form: a 15-character literal finds
    its 18-character record."""
    test = _compare(name, op, value)

    def shortened(record: dict[str, Any]) -> bool:
        mine = record.get(name)
        return test({name: mine[:15] if isinstance(mine, str) else mine})

    return shortened


def _in_days(mine: Any, op: str, days: DayRange) -> bool:
    """Salesforce's reading of `field op RANGE`: = within, < before it, > after it."""
    day = mine.date() if isinstance(mine, datetime) else mine
    if not isinstance(day, date):
        return op in ("!=", "<>") and mine is None
    return {
        "=": days.first <= day <= days.last, "!=": not days.first <= day <= days.last,
        "<>": not days.first <= day <= days.last, "<": day < days.first,
        "<=": day <= days.last, ">": day > days.last, ">=": day >= days.first,
    }[op]  # fmt: skip


def _compare(name: str, op: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    def test(record: dict[str, Any]) -> bool:
        mine = comparable(record.get(name))
        if isinstance(value, DayRange):
            return _in_days(mine, op, value)
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


def _short(value: Any) -> Any:
    return value[:15] if isinstance(value, str) else value


def parse(text: str, fields_of: Callable[[str], Any]) -> Query:
    return _Parser(text, fields_of).parse()


def run(query: Query, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [r for r in records if query.where is None or query.where(r)]
    for name, descending in reversed(query.order):
        present = [r for r in rows if r.get(name) is not None]
        missing = [r for r in rows if r.get(name) is None]
        try:
            present.sort(key=lambda r: comparable(r[name]), reverse=descending)
        except TypeError:  # values of mixed types (a test's spoiled record): compare as text
            present.sort(key=lambda r: str(r[name]), reverse=descending)
        rows = missing + present if not descending else present + missing  # Salesforce's defaults
    return rows[: query.limit] if query.limit is not None else rows
