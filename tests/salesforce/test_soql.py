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
