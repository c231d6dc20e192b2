"""Error mapping of the Salesforce client, narrowly, with `responses` (simple-salesforce
uses requests)."""

from __future__ import annotations

import socket

import pytest
import requests
import responses
from crm_qualify.adapters.salesforce.client import (
    SalesforceCallError,
    SalesforceClient,
    _transport_error,
)
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.connector.contract import AuthError, BudgetExhausted, OutcomeUnknown

LOGIN = "https://login.example.test"
INSTANCE = "https://org.example.test"
QUERY = f"{INSTANCE}/services/data/v59.0/query/"
UPSERT_PATH = "composite/sobjects/Task/CRMQ_Task_Key__c"
UPSERT = f"{INSTANCE}/services/data/v59.0/{UPSERT_PATH}"


def client() -> SalesforceClient:
    return SalesforceClient(
        SalesforceSettings(
            login_url=LOGIN, client_id="id", client_secret="secret-xyz", username="u",
            allowed_domains=["example.test"],
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
    assert caught.value.setting == "adapters.salesforce.username, password and security_token"


@responses.activate
@pytest.mark.parametrize(
    ("error", "setting"),
    [
        ("invalid_client_id", "adapters.salesforce.client_id"),
        ("invalid_client", "adapters.salesforce.client_id and client_secret"),
        ("unsupported_grant_type", "adapters.salesforce"),
    ],
)
def test_a_refused_login_names_the_options_its_error_code_points_at(error, setting):
    """`doctor` said `fix: check adapters.salesforce`: Salesforce's code tells the connected
    app's key or secret from the user's credentials."""
    responses.add(
        responses.POST, f"{LOGIN}/services/oauth2/token", status=400,
        json={"error": error, "error_description": "refused"},
    )  # fmt: skip
    with pytest.raises(AuthError) as caught:
        client().login()
    assert caught.value.setting == setting


# classification: what is retried, and what a create may retry ---------------------------------
GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body>"


@responses.activate
def test_a_non_json_error_body_is_retried_and_excerpted():
    login()
    responses.add(responses.GET, QUERY, status=502, body=GATEWAY, content_type="text/html")
    responses.add(responses.GET, QUERY, json={"totalSize": 0, "done": True, "records": []})
    assert client().call("query", lambda sf: sf.query("SELECT Id FROM Lead"))["done"]
    responses.add(responses.GET, QUERY, status=404, body=GATEWAY * 20, content_type="text/html")
    with pytest.raises(SalesforceCallError) as caught:
        client().call("query", lambda sf: sf.query("SELECT Id FROM Lead"))
    assert caught.value.transient and "502 Bad Gateway 502 Bad Gateway" in str(caught.value)
    assert "<" not in str(caught.value) and len(str(caught.value)) < 200
    assert len([c for c in responses.calls if "/query" in c.request.url]) == 2 + 3


@responses.activate
def test_a_create_is_retried_after_429_and_a_lock_but_not_after_a_5xx():
    login()
    throttled = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn"}]
    locked = [{"errorCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"}]
    responses.add(responses.PATCH, UPSERT, status=429, json=throttled)
    responses.add(responses.PATCH, UPSERT, status=400, json=locked)
    responses.add(responses.PATCH, UPSERT, json=[{"id": "00T1", "success": True, "errors": []}])
    sf_client = client()
    assert sf_client.restful("upsert", UPSERT_PATH, "PATCH", json={}, idempotent=False)
    responses.add(responses.PATCH, UPSERT, status=503, json=[{"errorCode": "SERVER_UNAVAILABLE"}])
    with pytest.raises(OutcomeUnknown):
        sf_client.restful("upsert", UPSERT_PATH, "PATCH", json={}, idempotent=False)
    assert len([c for c in responses.calls if c.request.method == "PATCH"]) == 4


@responses.activate
def test_concurrent_request_limit_is_a_throttle_not_the_daily_limit():
    login()
    busy = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn Limit"}]
    responses.add(responses.GET, QUERY, status=403, json=busy)
    responses.add(responses.GET, QUERY, json={"totalSize": 0, "done": True, "records": []})
    assert client().call("query", lambda sf: sf.query("SELECT Id FROM Lead"))["done"]


@responses.activate
def test_login_is_retried_on_a_server_error():
    responses.add(responses.POST, f"{LOGIN}/services/oauth2/token", status=503, body="down")
    login()
    assert client().login() is not None


def test_a_refused_connection_never_reached_salesforce_but_a_silent_one_may_have():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(requests.ConnectionError) as refused:
        make_session(None, timeout=1).get(f"https://127.0.0.1:{port}/")
    assert _transport_error("x", refused.value).unprocessed
    timeout = requests.ReadTimeout("read timed out")
    assert (
        not _transport_error("x", timeout).unprocessed and _transport_error("x", timeout).transient
    )


@responses.activate
def test_an_answer_echoing_our_secrets_is_not_repeated():
    echo = "<html>bad gateway for password=pw-canarytok&client_secret=secret-xyz 00Dsession</html>"
    responses.add(responses.POST, f"{LOGIN}/services/oauth2/token", status=400, body=echo)
    with pytest.raises(SalesforceCallError) as refused:
        client().login()
    login()
    responses.add(responses.GET, QUERY, status=502, body=echo)
    with pytest.raises(SalesforceCallError) as failed:
        client().call("query", lambda sf: sf.query("SELECT Id FROM Lead"))
    for error in (refused.value, failed.value):
        assert "pw-canary" not in str(error) and "secret-xyz" not in str(error)
    assert "00Dsession" not in str(failed.value)
