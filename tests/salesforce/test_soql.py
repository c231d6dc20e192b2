"""SOQL building: literals are escaped, IN lists fit one request."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote_plus

from crm_qualify.adapters.salesforce.soql import MAX_QUERY_URI, in_chunks, quote, when


def test_string_literals_escape_quotes_and_backslashes():
    assert quote("crmq:Lead:1:it's") == "'crmq:Lead:1:it\\'s'"
    assert quote("a\\b") == "'a\\\\b'"
    assert quote("x' OR Id != '") == "'x\\' OR Id != \\''"


def test_datetime_literal():
    assert when(datetime(2026, 11, 22, 10, 5, 7, 123000, tzinfo=UTC)) == "2026-11-22T10:05:07Z"


def test_in_lists_are_cut_to_fit_the_uri():
    ids = [f"00Q5g{n:013d}" for n in range(3000)]
    statements = list(in_chunks("SELECT Id FROM Task WHERE WhoId IN ({values})", ids))
    assert len(statements) > 1
    assert all(len(quote_plus(s)) <= MAX_QUERY_URI for s in statements)
    joined = " ".join(statements)
    assert all(f"'{i}'" in joined for i in ids)


def test_in_chunks_is_exact_for_many_ids_and_awkward_characters():
    """20,000 ids: every statement under the limit, each id in exactly one, nothing lost,
    and each chunk as full as the limit allows (the incremental length is exact)."""
    template = "SELECT Id FROM Task WHERE WhoId IN ({values}) AND Subject != 'x'"
    ids = [f"00Q5g{n:013d}" for n in range(20_000)]
    ids += ["it's", "a\\b", "é ü/&=+", ""]
    statements = list(in_chunks(template, ids))
    assert len(statements) > 10
    seen: list[str] = []
    prefix, suffix = template.split("{values}")
    for statement in statements:
        assert len(quote_plus(statement)) <= MAX_QUERY_URI
        assert statement.startswith(prefix) and statement.endswith(suffix)
        seen.extend(statement[len(prefix) : len(statement) - len(suffix)].split(", "))
    assert seen == [quote(i) for i in ids]
    # Greedy and tight: the next id would not have fitted in any statement but the last.
    position = 0
    for statement in statements[:-1]:
        count = statement.count(", ") + 1
        position += count
        grown = statement[: len(statement) - len(suffix)] + ", " + quote(ids[position]) + suffix
        assert len(quote_plus(grown)) > MAX_QUERY_URI


def test_in_chunks_gives_an_oversized_value_its_own_statement():
    huge = "x" * (MAX_QUERY_URI + 10)
    statements = list(in_chunks("SELECT Id FROM Lead WHERE Email IN ({values})", ["a", huge, "b"]))
    assert len(statements) == 3
    assert quote(huge) in statements[1]
