"""Error mapping of the Salesforce client, narrowly, with `responses` (simple-salesforce
uses requests)."""

from __future__ import annotations

import pytest
import responses
from crm_qualify.adapters.salesforce.client import SalesforceCallError, SalesforceClient
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.connector.contract import AuthError, BudgetExhausted

LOGIN = "https://login.example.test"
INSTANCE = "https://org.example.test"
QUERY = f"{INSTANCE}/services/data/v59.0/query/"


def client() -> SalesforceClient:
    return SalesforceClient(
        SalesforceSettings(
            login_url=LOGIN, client_id="id", client_secret="secret-xyz", username="u",
            password="pw-canary", security_token="tok", max_attempts=3,
        )
    )  # fmt: skip


def login(calls: int = 1) -> None:
    for _ in range(calls):
        responses.add(
            responses.POST, f"{LOGIN}/services/oauth2/token",
            json={"access_token": "00Dsession", "instance_url": INSTANCE},
        )  # fmt: skip


@responses.activate
def test_a_503_is_retried_and_the_usage_header_is_read():
    login()
    responses.add(
        responses.GET,
        QUERY,
        status=503,
        json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}],
    )
    responses.add(
        responses.GET, QUERY, json={"totalSize": 0, "done": True, "records": []},
        headers={"Sforce-Limit-Info": "api-usage=40/1000"},
    )  # fmt: skip
    sf_client = client()
    assert sf_client.call("query", lambda sf: sf.query("SELECT Id FROM Lead"))["done"]
    assert sf_client.usage().daily_remaining == 960


@responses.activate
def test_request_limit_exceeded_is_a_clean_stop_not_a_retry_loop():
    login()
    responses.add(
        responses.GET, QUERY, status=403,
        json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    )  # fmt: skip
    with pytest.raises(BudgetExhausted):
        client().call("query", lambda sf: sf.query("SELECT Id FROM Lead"))
    assert len([c for c in responses.calls if "/query" in c.request.url]) == 1


@responses.activate
def test_an_expired_session_twice_is_an_auth_error():
    login(2)
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    responses.add(responses.GET, QUERY, status=401, json=expired)
    responses.add(responses.GET, QUERY, status=401, json=expired)
    with pytest.raises(AuthError, match="expired again"):
        client().call("query", lambda sf: sf.query("SELECT Id FROM Lead"))


@responses.activate
def test_a_malformed_query_is_not_retried_and_names_the_code():
    login()
    responses.add(
        responses.GET, QUERY, status=400,
        json=[{"message": "unexpected token: 'FROMM'", "errorCode": "MALFORMED_QUERY"}],
    )  # fmt: skip
    with pytest.raises(SalesforceCallError, match="MALFORMED_QUERY"):
        client().call("query", lambda sf: sf.query("SELECT Id FROMM Lead"))
    assert len([c for c in responses.calls if "/query" in c.request.url]) == 1


@responses.activate
def test_a_refused_login_does_not_echo_the_password():
    responses.add(
        responses.POST, f"{LOGIN}/services/oauth2/token", status=400,
        json={"error": "invalid_grant", "error_description": "authentication failure"},
    )  # fmt: skip
    with pytest.raises(AuthError) as caught:
        client().login()
    assert "authentication failure" in str(caught.value)
    assert "pw-canary" not in str(caught.value) and "secret-xyz" not in str(caught.value)
