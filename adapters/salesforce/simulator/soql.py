"""The SOQL subset a connector sends, parsed and evaluated the way Salesforce answers it.

SELECT item, ... FROM Object [WHERE condition] [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST],
...] [LIMIT n] [OFFSET n]. Object and relationship names, like field names, are read without
case (`select id from lead`); nulls sort first ascending and last descending unless NULLS says
otherwise; OFFSET skips at most 2,000 rows (NUMBER_OUTSIDE_VALID_RANGE beyond), in the
top-level query only (MALFORMED_QUERY in a subquery: the pilot that allows it under a parent's
LIMIT 1 is not simulated).
Items: fields, child-to-parent paths through lookups with one target (`Opportunity.IsWon`, up
to five relationships), and parent-to-child subqueries on the relationships the schema
names (`(SELECT Id, Subject FROM Tasks WHERE ... ORDER BY ... LIMIT n)`, LIMIT per parent):
at most 20 in a statement, one level deep before API 58.0, up to five levels (the root
included) from 58.0 on. Conditions: comparisons (=, !=, <, >, <=, >=, LIKE), IN / NOT IN
lists, AND / OR / NOT and parentheses; literals: 'strings' (with \\' escapes), numbers,
true / false / null, dates (2026-11-22), datetimes (2026-11-22T10:00:00Z, .000+0000) and the
relative date literals TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n
(UTC days). Unknown objects, fields and relationships fail as Salesforce fails:
MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE. Not simulated: relationship paths in WHERE and
ORDER BY (refused as unknown columns), polymorphic paths (`Who.Name`, TYPEOF: MALFORMED_QUERY
saying so), semi-joins (`Id IN (SELECT ...)`), aggregates other than a lone `COUNT()` or
`COUNT(field)` (no GROUP BY, no alias), USING SCOPE.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from typing import Any

from .comparisons import (
    ID_TYPES,
    TEXT_TYPES,
    DayRange,
    SoqlError,
    comparable,
    compare,
    compare_ids,
    day_range,
    folded,
    parse_datetime,
    short,
    typed,
)
from .schema import CHILDREN, OBJECTS, PARENTS

__all__ = ["DayRange", "Path", "Query", "SoqlError", "comparable", "parse", "run"]

MAX_LENGTH = 100_000
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
LITERAL_PERCENT, LITERAL_UNDERSCORE = "\ue000", "\ue001"
"""`\\%` and `\\_` in a string literal: the characters themselves, never LIKE's wildcards (held as
private-use characters until the literal's use is known)."""
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f",
            "%": LITERAL_PERCENT, "_": LITERAL_UNDERSCORE}  # fmt: skip
_PLAIN = str.maketrans({LITERAL_PERCENT: "%", LITERAL_UNDERSCORE: "_"})

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
    "desc", "limit", "offset", "null", "true", "false", "nulls", "first", "last",
}  # fmt: skip


MAX_OFFSET = 2000
"""Rows OFFSET may skip."""
MAX_SUBQUERIES = 20
"""Parent-to-child relationships in one statement."""
MAX_PATH = 5
"""Relationships in one child-to-parent path (Contact.Account.Owner.FirstName: three)."""
NESTED_SINCE = 58.0
"""API version from which subqueries nest (up to five levels, the root included)."""
RELATIONSHIP_HINT = (
    " If you are attempting to use a custom relationship, be sure to append the '__r' after"
    " the custom relationship name. Please reference your WSDL or the describe call for the"
    " appropriate names."
)


@dataclass(frozen=True)
class Path:
    """A selected field: `hops` are the lookups followed to reach it, each (relationship,
    lookup field, parent object); none for the object's own field."""

    field: str
    hops: tuple[tuple[str, str, str], ...] = ()


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Callable[[dict[str, Any]], bool] | None
    order: list[tuple[str, bool, bool]]
    """(field, descending, nulls first) for each ORDER BY item."""
    limit: int | None
    items: list[Path | Query] = dataclass_field(default_factory=list)
    """What SELECT lists, in order: fields and paths, and subqueries (`Query`)."""
    relationship: str = ""
    """For a subquery: the child relationship's name, which keys its results in a row."""
    link: str = ""
    """For a subquery: the child's lookup field that points at the parent row."""
    count: str | None = None
    """`SELECT COUNT() ...`: "" ; `SELECT COUNT(field) ...`: the field; otherwise None."""
    offset: int = 0
    """Rows OFFSET skips (after ORDER BY, before LIMIT)."""

    def subqueries(self) -> list[Query]:
        return [item for item in self.items if isinstance(item, Query)]


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
            value = _ESCAPED.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), value[1:-1])
        elif kind == "datetime":
            value = parse_datetime(value)
        elif kind == "date":
            value = date.fromisoformat(value)
        elif kind == "range":
            value = day_range(value.upper())
        elif kind == "number":
            value = float(value)
        elif kind == "word" and value.lower() in KEYWORDS:
            kind, value = "kw", value.lower()
        tokens.append((kind, value))
    return tokens


class _Parser:
    def __init__(
        self,
        text: str | list[tuple[str, Any]],
        fields_of: Callable[[str], Any],
        version: float = 59.0,
        parent: str | None = None,
        level: int = 1,
    ) -> None:
        if isinstance(text, str) and len(text) > MAX_LENGTH:
            raise SoqlError(
                "MALFORMED_QUERY", f"SOQL statements cannot exceed {MAX_LENGTH} characters"
            )
        self.tokens = _tokens(text) if isinstance(text, str) else text
        self.position = 0
        self.fields_of = fields_of
        self.version, self.parent, self.level = version, parent, level
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

    def select_list(self) -> list[str | list[tuple[str, Any]]]:
        """Field names and, for each subquery, its tokens (parsed once FROM is known)."""
        items: list[str | list[tuple[str, Any]]] = []
        while True:
            if self.accept("op", "("):
                start, depth = self.position, 1
                while depth:
                    if self.peek() is None:
                        raise SoqlError("MALFORMED_QUERY", "expecting ')', found end of query")
                    kind, value = self.take()
                    depth += {"(": 1, ")": -1}.get(value, 0) if kind == "op" else 0
                items.append(self.tokens[start : self.position - 1])
            else:
                items.append(self.take("word")[1])
            if not self.accept("op", ","):
                return items

    def relationship(self, name: str) -> tuple[str, str, str]:
        """A subquery's FROM (`Tasks`, or `Lead.Tasks`): (relationship, child, lookup)."""
        parent = self.parent or ""
        prefix, _, last = name.rpartition(".")
        children = CHILDREN.get(parent, {})
        found = next((k for k in children if k.lower() == last.lower()), None)
        if found is None or (prefix and prefix.lower() != parent.lower()):
            raise SoqlError(
                "INVALID_TYPE",
                f"Didn't understand relationship '{name}' in FROM part of query call."
                + RELATIONSHIP_HINT,
            )
        return (found, *children[found])

    def path(self, name: str) -> Path:
        """A selected field of this object, or a child-to-parent path to one."""
        parts = name.split(".")
        if len(parts) > 1 and parts[0].lower() == self.sobject.lower():
            parts = parts[1:]  # `Lead.Email` FROM Lead: the object's own field
        if len(parts) - 1 > MAX_PATH:
            raise SoqlError(
                "MALFORMED_QUERY",
                f"no more than {MAX_PATH} levels can be specified in a child-to-parent"
                " relationship",
            )
        hops: list[tuple[str, str, str]] = []
        current, canonical = self.sobject, self.canonical
        for step in parts[:-1]:
            lookups = PARENTS.get(current, {})
            found = next((k for k in lookups if k.lower() == step.lower()), None)
            if found is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{step}' in field path." + RELATIONSHIP_HINT,
                )
            link, target = lookups[found]
            if target is None:
                raise SoqlError(
                    "MALFORMED_QUERY", f"polymorphic relationship paths ({name}) are not simulated"
                )
            hops.append((found, link, target))
            current = target
            canonical = {f.lower(): f for f in self.fields_of(current)}
        if parts[-1].lower() not in canonical:
            raise SoqlError("INVALID_FIELD", f"No such column '{parts[-1]}' on entity '{current}'")
        return Path(canonical[parts[-1].lower()], tuple(hops))

    def count_call(self) -> str | None:
        """`COUNT()` (""), or `COUNT(name)` (the name, checked once FROM is known), as the
        whole SELECT list; None when the list is something else."""
        ahead = self.tokens[self.position : self.position + 2]
        if not (len(ahead) == 2 and ahead[0][0] == "word" and ahead[1] == ("op", "(")):
            return None
        if ahead[0][1].lower() != "count":
            return None
        self.position += 2
        name = "" if self.peek() == ("op", ")") else self.take("word")[1]
        self.take("op", ")")
        if self.peek() == ("op", ","):
            raise SoqlError("MALFORMED_QUERY", "COUNT() must be the only item in SELECT")
        return name

    def parse(self) -> Query:
        self.take("kw", "select")
        count = self.count_call()
        selected = self.select_list() if count is None else []
        self.take("kw", "from")
        name = self.take("word")[1]
        relationship = link = ""
        if self.parent is not None:
            relationship, name, link = self.relationship(name)
        self.sobject = _object_name(name)
        fields = self.fields_of(self.sobject)
        if fields is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{self.sobject}' is not supported.")
        self.canonical = {f.lower(): f for f in fields}
        self.known = set(self.canonical)
        if isinstance(fields, dict):
            self.types = {name: spec.get("type", "") for name, spec in fields.items()}
        items = [
            self.path(item) if isinstance(item, str) else self.subquery(item) for item in selected
        ]
        if count:
            counted = self.path(count)
            if counted.hops:
                raise SoqlError("MALFORMED_QUERY", "COUNT() of a path is not simulated")
            count = counted.field
        where = self.condition() if self.accept("kw", "where") else None
        order = self.order_by() if self.accept("kw", "order") else []
        limit = int(self.take("number")[1]) if self.accept("kw", "limit") else None
        offset = self.offset() if self.accept("kw", "offset") else 0
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {self.peek()[1]!r}")
        own = [item.field for item in items if isinstance(item, Path) and not item.hops]
        query = Query(
            own, self.sobject, where, order, limit, items, relationship, link, count, offset
        )
        if self.parent is None and _count(query) > MAX_SUBQUERIES:
            raise SoqlError(
                "MALFORMED_QUERY",
                f"no more than {MAX_SUBQUERIES} parent-to-child relationships can be specified"
                " in a query",
            )
        return query

    def order_by(self) -> list[tuple[str, bool, bool]]:
        """`BY field [ASC|DESC] [NULLS FIRST|LAST], ...`: nulls first ascending and last
        descending unless NULLS says otherwise."""
        self.take("kw", "by")
        order = []
        while True:
            name = self.field()
            descending = self.accept("kw", "desc")
            if not descending:
                self.accept("kw", "asc")
            nulls_first = not descending
            if self.accept("kw", "nulls"):
                placement = self.take("kw")[1]
                if placement not in ("first", "last"):
                    raise SoqlError("MALFORMED_QUERY", "expecting FIRST or LAST after NULLS")
                nulls_first = placement == "first"
            order.append((name, descending, nulls_first))
            if not self.accept("op", ","):
                return order

    def offset(self) -> int:
        """`OFFSET n`: a top-level query's rows to skip, at most 2,000."""
        if self.parent is not None:
            raise SoqlError("MALFORMED_QUERY", "OFFSET is not allowed in a subquery here")
        skip = self.take("number")[1]
        if skip != int(skip) or skip < 0:
            raise SoqlError("MALFORMED_QUERY", f"OFFSET must be a whole number, not {skip}")
        if skip > MAX_OFFSET:
            raise SoqlError(
                "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
            )
        return int(skip)

    def subquery(self, tokens: list[tuple[str, Any]]) -> Query:
        if not tokens or tokens[0] != ("kw", "select"):
            raise SoqlError("MALFORMED_QUERY", "unexpected '(' in the SELECT list")
        depth = self.level + 1
        deepest = 5 if self.version >= NESTED_SINCE else 2
        if depth > deepest:
            raise SoqlError(
                "MALFORMED_QUERY",
                f"parent-to-child relationships {depth - 1} levels deep: API version"
                f" {self.version:.1f} allows {deepest - 1}",
            )
        return _Parser(tokens, self.fields_of, self.version, self.sobject, depth).parse()

    def condition(self) -> Callable[[dict[str, Any]], bool]:
        terms = [self.conjunction()]
        while self.accept("kw", "or"):
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else any_of(terms)

    def conjunction(self) -> Callable[[dict[str, Any]], bool]:
        terms = [self.unary()]
        while self.accept("kw", "and"):
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else lambda r: all(term(r) for term in terms)

    def unary(self) -> Callable[[dict[str, Any]], bool]:
        if self.accept("kw", "not"):
            inner = self.unary()
            return lambda r: not inner(r)
        if self.accept("op", "("):
            inner = self.condition()
            self.take("op", ")")
            return inner
        return self.comparison()

    def literal(self, field: str | None = None, *, pattern: bool = False) -> Any:
        """A literal value; with `field`, checked against the field's type as Salesforce
        checks it (and a 15-character id widened to match its 18-character record). Escaped
        `%` and `_` stay marked in a LIKE `pattern`, plain characters elsewhere."""
        kind, value = self.take()
        if kind == "string" and not pattern:
            value = value.translate(_PLAIN)
        if kind == "kw" and value in ("null", "true", "false"):
            kind, value = "boolean", {"null": None, "true": True, "false": False}[value]
            if value is None:
                return None
        elif kind not in ("string", "number", "date", "datetime", "range"):
            raise SoqlError("MALFORMED_QUERY", f"unexpected value {value!r}")
        if field is not None:
            value = typed(field, self.types.get(field, ""), kind, value)
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
            text = self.types.get(name) in TEXT_TYPES
            wanted = {folded(comparable(v), text) for v in values}
            if self.types.get(name) in ID_TYPES:
                return lambda r: (short(r.get(name)) in wanted) != negate
            return lambda r: (folded(comparable(r.get(name)), text) in wanted) != negate
        if negate:
            raise SoqlError("MALFORMED_QUERY", "NOT must be followed by IN here")
        if self.accept("kw", "like"):
            return Like(name, (like_regex(str(self.literal(pattern=True))),))
        op = self.take("op")[1]
        value = comparable(self.literal(name))
        if self.types.get(name) in ID_TYPES:
            return compare_ids(name, op, value)
        text = self.types.get(name) in TEXT_TYPES
        if op == "=" and not isinstance(value, DayRange):
            return OneOf(name, frozenset([folded(value, text)]), text)
        return compare(name, op, folded(value, text), fold=text)


def like_regex(pattern: str) -> str:
    """A LIKE pattern as a regular expression: `%` any run of characters (line breaks too),
    `_` one character, everything else (escaped `%` and `_` too) itself."""
    wild = {"%": ".*", "_": ".", LITERAL_PERCENT: "%", LITERAL_UNDERSCORE: "_"}
    return "".join(wild.get(ch) or re.escape(ch) for ch in pattern)


@dataclass(frozen=True)
class Like:
    """`field LIKE pattern` (any of `patterns`: LIKEs on one field OR'd together), as
    Salesforce reads it: case-insensitive, the whole value; null never matches. Patterns that
    start with `%` are searched for as one expression ending the value, the others matched
    whole as another: a regular expression that starts with `.*` would be tried at every
    position for every alternative."""

    name: str
    patterns: tuple[str, ...]
    tests: tuple[Callable[[str], Any], ...] = dataclass_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flags = re.IGNORECASE | re.DOTALL
        ending = [p.removeprefix(".*") for p in self.patterns if p.startswith(".*")]
        whole = [p for p in self.patterns if not p.startswith(".*")]
        tests = []
        if ending:
            tests.append(re.compile(f"(?:{_either(ending)})\\Z", flags).search)
        if whole:
            tests.append(re.compile(_either(whole), flags).fullmatch)
        object.__setattr__(self, "tests", tuple(tests))

    def __call__(self, record: dict[str, Any]) -> bool:
        value = record.get(self.name)
        if value is None:
            return False
        text = str(value)
        return any(test(text) is not None for test in self.tests)


def _either(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


@dataclass(frozen=True)
class OneOf:
    """`field = value` (any of `values`: equalities on one field OR'd together); a null
    value is `field = null`. A text field compares without case (`fold`), as Salesforce
    compares every field but a unique case-sensitive one."""

    name: str
    values: frozenset[Any]
    fold: bool = False

    def __call__(self, record: dict[str, Any]) -> bool:
        try:
            return folded(comparable(record.get(self.name)), self.fold) in self.values
        except TypeError:  # a value nothing equals (a test's spoiled record)
            return False


def any_of(terms: list[Callable[[dict[str, Any]], bool]]) -> Callable[[dict[str, Any]], bool]:
    """The OR of `terms`, with the LIKEs on one field merged into one regular expression and
    the equalities on one field into one set: a long OR (a page of Leads' company names and
    email domains) costs a few tests per record, not one call per condition."""
    likes: dict[str, list[str]] = {}
    equal: dict[tuple[str, bool], set[Any]] = {}
    others = []
    for term in terms:
        if isinstance(term, Like):
            likes.setdefault(term.name, []).extend(term.patterns)
        elif isinstance(term, OneOf):
            equal.setdefault((term.name, term.fold), set()).update(term.values)
        else:
            others.append(term)
    merged = [
        *(OneOf(name, frozenset(values), fold) for (name, fold), values in equal.items()),
        *(Like(name, tuple(patterns)) for name, patterns in likes.items()),
        *others,
    ]
    return lambda r: any(term(r) for term in merged)


def _count(query: Query) -> int:
    return sum(1 + _count(sub) for sub in query.subqueries())


def _object_name(name: str) -> str:
    """An object's name as the schema spells it: SOQL reads `lead` as `Lead`."""
    return next((known for known in OBJECTS if known.lower() == name.lower()), name)


def parse(text: str, fields_of: Callable[[str], Any], version: float = 59.0) -> Query:
    return _Parser(text, fields_of, version).parse()


def run(query: Query, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [r for r in records if query.where is None or query.where(r)]
    for name, descending, nulls_first in reversed(query.order):
        present = [r for r in rows if r.get(name) is not None]
        missing = [r for r in rows if r.get(name) is None]
        try:
            present.sort(key=lambda r: comparable(r[name]), reverse=descending)
        except TypeError:  # values of mixed types (a test's spoiled record): compare as text
            present.sort(key=lambda r: str(r[name]), reverse=descending)
        rows = missing + present if nulls_first else present + missing
    rows = rows[query.offset :]
    return rows[: query.limit] if query.limit is not None else rows
