"""The simulator's SOQL LIKE and `=` inside long OR chains (a page of Leads' Account query):
merged per field for speed, with Salesforce's meaning kept: LIKE is case-insensitive over the
whole value, `%` is any run of characters, `_` exactly one, `\\%` and `\\_` and other characters
are themselves, null never matches; `= null` finds nulls; `=`, `!=`, `IN` and `<` on text
ignore case, as on every Salesforce field but a unique case-sensitive one. The merged chain
gives what each condition gives alone, and a chain longer than Python's recursion limit still
evaluates."""

from __future__ import annotations

from typing import Any

import pytest
from crm_qualify.adapters.salesforce.simulator import soql
from crm_qualify.adapters.salesforce.simulator.schema import OBJECTS

ID = "0015g{:010d}AAA"
ACCOUNTS: list[dict[str, Any]] = [
    {
        "Label": "a1",
        "Id": ID.format(1),
        "Name": "Acme Corp",
        "Website": "https://www.Acme.COM/about",
    },
    {"Label": "a2", "Id": ID.format(2), "Name": "ACME", "Website": "acmexcom.test"},
    {"Label": "a3", "Id": ID.format(3), "Name": "A_me", "Website": None},
    {"Label": "a4", "Id": ID.format(4), "Name": "Bcme", "Website": "bcme.test"},
    {"Label": "a5", "Id": ID.format(5), "Name": "Bccme", "Website": "shop.bcme.test"},
    {"Label": "a6", "Id": ID.format(6), "Name": "Northwind\nTraders", "Website": "northwind.test"},
    {"Label": "a7", "Id": ID.format(7), "Name": None, "Website": "nameless.test"},
    {"Label": "a8", "Id": ID.format(8), "Name": "Fabrikam", "Website": "fabrikam.test"},
    {"Label": "a9", "Id": ID.format(9), "Name": "Contoso", "Website": None},
    {"Label": "a10", "Id": ID.format(10), "Name": "100% Juice", "Website": "juice.test"},
]
FILLER = [f"Name LIKE 'zz{n}%'" for n in range(150)] + [
    f"Website LIKE '%filler{n}.test%'" for n in range(150)
]


def matched(where: str, records: list[dict[str, Any]] = ACCOUNTS) -> set[str]:
    query = soql.parse(f"SELECT Id FROM Account WHERE {where}", OBJECTS.get)
    return {row["Label"] for row in soql.run(query, records)}


def chain(*conditions: str) -> str:
    """The conditions OR'd among many that match nothing, theirs spread through it."""
    mixed = list(FILLER)
    for n, condition in enumerate(conditions):
        mixed.insert(n * 97 % len(mixed), condition)
    return " OR ".join(mixed)


@pytest.mark.parametrize(
    ("condition", "ids"),
    [
        ("Name LIKE 'acme'", {"a2"}),  # the whole value, any case
        ("Name LIKE 'acme%'", {"a1", "a2"}),
        ("Name LIKE 'a_me'", {"a2", "a3"}),  # `_` is one character, a literal `_` too
        ("Name LIKE 'b_me'", {"a4"}),  # exactly one
        ("Name LIKE '%traders'", {"a6"}),  # `%` runs over a line break
        ("Name LIKE 'northwind'", set()),
        ("Website LIKE '%acme.com%'", {"a1"}),  # `.` is itself
        ("Website LIKE '%bcme.test'", {"a4", "a5"}),
        ("Name LIKE '%'", {f"a{n}" for n in range(1, 11)} - {"a7"}),  # null never matches
        ("Website LIKE '%'", {"a1", "a2", "a4", "a5", "a6", "a7", "a8", "a10"}),
        ("Name LIKE '100%'", {"a10"}),
        ("Name = 'Fabrikam'", {"a8"}),
        ("Name = 'fabrikam'", {"a8"}),  # `=` on text ignores case too
        ("Name IN ('CONTOSO', 'x')", {"a9"}),
        ("Name != 'acme'", {f"a{n}" for n in range(1, 11)} - {"a2"}),
        ("Name < 'b'", {"a1", "a2", "a10", "a3"}),  # ordered without case: 'A_me' < 'b'
        ("Name LIKE 'a\\_me'", {"a3"}),  # an escaped `_` is itself
        ("Name LIKE '100\\%%'", {"a10"}),  # and an escaped `%`
        ("Name LIKE '10\\%%'", set()),
        ("Name = 'A\\_me'", {"a3"}),  # outside LIKE, the character
        ("Name = null", {"a7"}),
        ("(Name LIKE 'b%' AND Website LIKE 'shop.%')", {"a5"}),
    ],
)  # fmt: skip
def test_like_and_equals_inside_a_long_or(condition, ids):
    assert matched(condition) == ids
    assert matched(chain(condition)) == ids


def test_a_long_or_gives_the_union_of_its_conditions():
    conditions = [
        "Name LIKE 'acme'", "Website LIKE '%bcme.test'", "Name LIKE '%traders'",
        "Name = 'Fabrikam'", "Website LIKE 'JUICE.TEST'", "Name LIKE 'a_me'",
        "Name IN ('Contoso')",
    ]  # fmt: skip
    union = set().union(*(matched(c) for c in conditions))
    assert union == {"a2", "a3", "a4", "a5", "a6", "a8", "a9", "a10"}
    assert matched(chain(*conditions)) == union
    assert matched(f"Id != '{ID.format(2)}' AND ({chain(*conditions)})") == union - {"a2"}


def test_or_and_and_chains_longer_than_the_recursion_limit():
    many = " OR ".join(f"Name = 'zz{n}'" for n in range(2_000))
    assert matched(f"{many} OR Name LIKE 'bc%'") == {"a4", "a5"}
    every = " AND ".join(f"Name != 'zz{n}'" for n in range(2_000))
    assert matched(f"{every} AND Website LIKE '%.test'") == {
        "a2",
        "a4",
        "a5",
        "a6",
        "a7",
        "a8",
        "a10",
    }
