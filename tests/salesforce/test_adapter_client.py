"""The client's login flows, timeout and budget, and escaping at the adapter's edge."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests
import responses
from crm_qualify.adapters.salesforce.client import SalesforceClient
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.connector.contract import BudgetExhausted

from tests.salesforce.conftest import make_adapter

LOGIN = "https://login.example.test"
INSTANCE = "https://org.example.test"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_silent_server_times_out_instead_of_hanging(silent_port):
    session = make_session(None, timeout=0.3)
    with pytest.raises(requests.Timeout):
        session.get(f"https://127.0.0.1:{silent_port}/services/data/")


@pytest.mark.parametrize("flow", ["client_credentials", "refresh_token"])
def test_connected_app_flows_log_in_and_query(sim, flow):
    adapter = make_adapter(sim, auth=flow, refresh_token=sim.refresh_token)
    answer = adapter.client.call("query", lambda sf: sf.query("SELECT Id FROM User"))
    assert answer["totalSize"] == len(sim.org.records["User"]) > 0
    assert adapter.usage().requests["POST oauth2/token"] == 1


@responses.activate
def test_the_run_stops_before_the_reserve_is_touched():
    responses.add(
        responses.POST,
        f"{LOGIN}/services/oauth2/token",
        json={"access_token": "00Dsession", "instance_url": INSTANCE},
    )
    responses.add(
        responses.GET,
        f"{INSTANCE}/services/data/v59.0/query/",
        json={"totalSize": 0, "done": True, "records": []},
        headers={"Sforce-Limit-Info": "api-usage=80/100"},
    )
    client = SalesforceClient(
        SalesforceSettings(
            login_url=LOGIN, client_id="id", client_secret="s", username="u", password="p",
            allowed_domains=["example.test"],
            daily_reserve=0.2,
        )
    )  # fmt: skip
    client.call("query", lambda sf: sf.query("SELECT Id FROM Lead"))
    with pytest.raises(BudgetExhausted, match="80 of 100"):
        client.call("query", lambda sf: sf.query("SELECT Id FROM Lead"))
    assert len([c for c in responses.calls if "/query" in c.request.url]) == 1
    assert client.usage().daily_remaining == 20


def test_ids_with_quotes_are_escaped_not_injected(sim, adapter):
    hostile = "00Q' OR Id != '"
    (batch,) = adapter.read_contacts([("Lead", hostile)])
    assert batch.raw == []
    assert [(e.record, e.message) for e in batch.errors] == [
        (f"Lead/{hostile}", "not found: malformed id")
    ]
