"""Credentials only where they belong: the session id goes only to an https instance under
Salesforce's domains (or `allowed_domains`), and no redirect is ever followed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses
from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.client import SalesforceClient
from crm_qualify.adapters.salesforce.http import RefusedRequest, host_of, make_session
from crm_qualify.adapters.salesforce.settings import SalesforceSettings, allowed_host
from crm_qualify.connector.contract import AdapterError, AuthError
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import PlannedTask
from pydantic import ValidationError

from tests.salesforce.conftest import make_adapter

SECRETS = ("sim-password", "sim-consumer-secret", "sim-security-token")


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, list[socket.socket]]]:
    """Another host (127.0.0.2, outside every allowed domain) that records who connects."""
    listener = socket.create_server(("127.0.0.2", 0))
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"https://127.0.0.2:{listener.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("acme.my.salesforce.com", True),
        ("acme--uat.sandbox.my.salesforce.com", True),
        ("na42.salesforce.com", True),
        ("acme.lightning.force.com", True),
        ("acme.my.salesforce-setup.com", True),
        ("acme.cloudforce.com", True),
        ("salesforce.com.elsewhere.example", False),
        ("evilsalesforce.com", False),
        ("127.0.0.1", False),
    ],
)
def test_salesforce_domains(host, allowed):
    assert allowed_host(host, []) is allowed


def test_extra_domains_cover_their_subdomains():
    assert allowed_host("proxy.corp.example", ["corp.example"])
    assert not allowed_host("corp.example.elsewhere", ["corp.example"])


def test_login_url_must_be_https_and_a_salesforce_host():
    with pytest.raises(ValidationError, match="https"):
        SalesforceSettings(login_url="http://login.salesforce.com", client_id="i",
                           client_secret="s", username="u", password="p")  # fmt: skip
    with pytest.raises(ValidationError, match="allowed_domains"):
        SalesforceSettings(login_url="https://login.elsewhere.example", client_id="i",
                           client_secret="s", username="u", password="p")  # fmt: skip


def test_a_login_answer_naming_another_host_is_refused_and_never_used(sim, elsewhere):
    url, connections = elsewhere
    sim.faults.foreign_instance = url
    sim.faults.add("foreign_instance")
    adapter = make_adapter(sim, max_attempts=1)
    with pytest.raises(AuthError) as refused:
        list(adapter.read_changed(None, until=datetime.now(UTC)))
    assert refused.value.setting == "adapters.salesforce.allowed_domains"
    assert "127.0.0.2" in str(refused.value)
    assert connections == [], "the session id never left for the other host"
    assert not any(secret in str(refused.value) for secret in SECRETS)


def test_the_default_foreign_instance_fault_is_refused_too(sim):
    sim.faults.add("foreign_instance", request="login")
    with pytest.raises(AuthError, match="elsewhere.example"):
        make_adapter(sim, max_attempts=1).client.login()


@responses.activate
@pytest.mark.parametrize(
    "instance",
    ["http://acme.my.salesforce.com", "https://user@acme.my.salesforce.com", "", None, 42],
)
def test_an_instance_url_that_is_not_plain_https_is_refused(instance):
    responses.add(
        responses.POST,
        "https://login.salesforce.com/services/oauth2/token",
        json={"access_token": "00Dsession!secret", "instance_url": instance},
    )
    client = SalesforceClient(
        SalesforceSettings(client_id="i", client_secret="s", username="u", password="p")
    )
    with pytest.raises(AuthError) as refused:
        client.login()
    assert refused.value.setting == "adapters.salesforce.allowed_domains"
    assert "00Dsession" not in str(refused.value)
    assert len(responses.calls) == 1


def test_a_redirected_login_is_not_followed(sim, elsewhere):
    url, connections = elsewhere
    sim.faults.redirect_to = url
    sim.faults.add("redirect", request="login")
    with pytest.raises(AuthError, match="redirects are never followed") as refused:
        make_adapter(sim, max_attempts=1).client.login()
    assert refused.value.setting == "adapters.salesforce.login_url"
    assert connections == [], "the password was not re-posted elsewhere"


@pytest.mark.parametrize("request_kind", ["query", "upsert"])
def test_a_redirected_api_call_is_an_error_and_nothing_follows_it(sim, elsewhere, request_kind):
    url, connections = elsewhere
    adapter = make_adapter(sim, max_attempts=3)
    adapter.client.login()
    sim.faults.redirect_to = url
    sim.faults.add("redirect", request=request_kind)
    lead = sorted(r["Id"] for r in sim.org.records["Lead"].values() if not r["IsConverted"])[0]
    with pytest.raises(AdapterError, match="redirects are never followed"):
        if request_kind == "query":
            list(adapter.read_contacts([("Lead", lead)]))
        else:
            adapter.create_tasks([_task(lead)])
    assert connections == []
    assert not [t for t in sim.org.records["Task"].values() if t["CRMQ_Task_Key__c"]]


def test_the_session_sends_only_to_the_hosts_it_was_given():
    session = make_session(None, hosts={host_of("https://acme.my.salesforce.com")})
    with pytest.raises(RefusedRequest, match="elsewhere.example:443"):
        session.get("https://elsewhere.example/services/data/")
    with pytest.raises(RefusedRequest):
        session.get("http://acme.my.salesforce.com/services/data/")
    assert host_of("https://ACME.my.salesforce.com/x") == host_of(
        "https://acme.my.salesforce.com:443"
    )


@responses.activate
def test_a_next_page_url_pointing_elsewhere_is_refused():
    responses.add(
        responses.POST, "https://login.salesforce.com/services/oauth2/token",
        json={"access_token": "00Dsession", "instance_url": "https://acme.my.salesforce.com"},
    )  # fmt: skip
    page = {"totalSize": 3, "done": False, "records": [], "nextRecordsUrl": "@elsewhere.example/"}
    responses.add(
        responses.GET, "https://acme.my.salesforce.com/services/data/v59.0/query/", json=page
    )
    settings = SalesforceSettings(client_id="i", client_secret="s", username="u", password="p")
    adapter = SalesforceAdapter.from_config(settings, load_mapping("salesforce"))
    with pytest.raises(AdapterError, match="nextRecordsUrl"):
        list(adapter.existing_task_keys())
    assert all("elsewhere" not in call.request.url for call in responses.calls)


def _task(lead: str) -> PlannedTask:
    return PlannedTask(
        key=f"crmq:Lead:{lead}:hot_call", contact_id=lead, object_type="Lead", kind="hot_call",
        subject="Call", due=datetime.now(UTC) + timedelta(days=1), priority="high",
        task_type="call",
    )  # fmt: skip


def test_a_login_url_error_names_the_key_and_never_the_url_password():
    with pytest.raises(ValidationError) as caught:
        SalesforceSettings(login_url="http://u:hunter2pw@login.salesforce.com", client_id="i",
                           client_secret="s", username="u", password="p")  # fmt: skip
    (error,) = caught.value.errors()
    assert error["loc"] == ("login_url",), "was the model's (top level), naming no key"
    assert "hunter2pw" not in error["msg"]
