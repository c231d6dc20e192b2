"""`HubSpotClient` against answers HubSpot itself never gives: gateway HTML pages, JSON that is
not an object, redirects, refused connections. A scripted server answers over a real socket."""

from __future__ import annotations

import json
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError, classify
from crm_qualify.adapters.hubspot.endpoints import IN_FLIGHT
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import PlannedTask

from tests.hubspot.conftest import FakeClock

TOKEN = "pat-canary-token-0042"
PROPERTIES = json.dumps({"results": [{"name": "email", "type": "string"}]}).encode()


class Scripted:
    """An HTTP server that plays queued answers and records what it was sent."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[tuple[str, str | None]] = []
        self.delay = 0.0
        """Seconds each answer waits, so that requests sent together are in flight together."""
        self.connections = 0
        """Connections clients opened (a handler serves one connection)."""
        counting = threading.Lock()
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with counting:
                    scripted.connections += 1

            def log_message(self, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                time.sleep(scripted.delay)
                scripted.seen.append((self.path, self.headers.get("Authorization")))
                status, headers, body = (
                    scripted.answers.pop(0) if scripted.answers else (200, {}, PROPERTIES)
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.stop()


def client_for(url: str, attempts: int = 3) -> HubSpotClient:
    settings = HubSpotSettings(
        access_token=TOKEN, base_url=url, max_attempts=attempts, timeout_seconds=2
    )
    clock = FakeClock()
    return HubSpotClient(settings, clock=clock, sleep=clock.sleep)


def properties(client: HubSpotClient) -> tuple[int, dict[str, Any]]:
    return client.call("GET properties", client.properties.get_all, "contacts")


def test_a_gateway_html_page_is_a_retryable_error_with_a_short_excerpt(scripted):
    page = b"<html><body><h1>502 Bad Gateway</h1>" + b"<p>nginx</p>" * 200 + b"</body></html>"
    scripted.answers = [(502, {"Content-Type": "text/html"}, page)]
    with pytest.raises(HubSpotError) as caught:
        properties(client_for(scripted.url, attempts=1))
    error = caught.value
    assert (error.status, error.garbled, classify(error).transient) == (502, True, True)
    assert "502 Bad Gateway" in str(error) and "<" not in str(error)
    assert len(str(error)) < 250


@pytest.mark.parametrize(
    "body", [b"<html>maintenance</html>", b"[1, 2]", b'"oops"', b"\xff\xfe", b"null"]
)
def test_an_answer_that_is_not_a_json_object_is_retried(scripted, body):
    scripted.answers = [(200, {}, body)]
    status, answer = properties(client_for(scripted.url))
    assert (status, answer["results"][0]["name"]) == (200, "email")
    assert len(scripted.seen) == 2


def test_an_empty_answer_is_an_empty_object(scripted):
    scripted.answers = [(200, {}, b"")]
    assert properties(client_for(scripted.url)) == (200, {})


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_error_and_is_never_followed(scripted, status):
    elsewhere = Scripted()
    try:
        location = f"{elsewhere.url}/steal?x=1"
        scripted.answers = [(status, {"Location": location}, b"")]
        with pytest.raises(HubSpotError) as caught:
            properties(client_for(scripted.url))
        assert elsewhere.seen == [], "the token never travels to another host"
    finally:
        elsewhere.stop()
    assert caught.value.status == status and not classify(caught.value).transient
    assert "127.0.0.1" in str(caught.value) and TOKEN not in str(caught.value)
    assert len(scripted.seen) == 1, "not retried, not followed on the same host either"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_unprocessed_so_even_a_create_is_retried_then_failed():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(HubSpotError) as caught:
        properties(client_for(url, attempts=1))
    assert classify(caught.value).unprocessed and TOKEN not in str(caught.value)
    settings = HubSpotSettings(access_token=TOKEN, base_url=url, max_attempts=2)
    clock = FakeClock()
    adapter = HubSpotAdapter(
        settings, load_mapping("hubspot"), HubSpotClient(settings, clock=clock, sleep=clock.sleep)
    )
    task = PlannedTask(
        key="crmq:contacts:1:hot_call:2026-W02",
        contact_id="1",
        kind="hot_call",
        subject="Call",
        due=datetime(2026, 1, 5, tzinfo=UTC),
    )
    (result,) = adapter.create_tasks([task])
    assert (result.ok, result.uncertain, result.retryable) == (False, False, True)
    assert adapter.usage().requests["POST tasks/batch/create"] == 2
    assert TOKEN not in repr(adapter) and TOKEN not in repr(adapter.client)


def test_error_bodies_as_bytes_or_text_never_crash():
    for body in (b'{"category": "X", "message": "m"}', '{"category": "X"}', b"", None, "<p>"):
        error = HubSpotError("GET x", 500, body)
        assert error.status == 500 and isinstance(str(error), str)


def test_a_connection_is_kept_for_each_request_in_flight_whatever_the_cpus(
    scripted, monkeypatch, caplog
):
    """hubspot-api-client keeps 5 connections per CPU in each API's pool: on a machine of one
    CPU, 5 for the 14 requests the core lets fly at once, so every wave of requests opened
    new connections (a TLS handshake each, against HubSpot) and urllib3 logged "Connection
    pool is full, discarding connection" for each one left over."""
    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: 1)
    client = client_for(scripted.url)
    scripted.delay = 0.2
    for _ in range(2):
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            answers = list(pool.map(lambda _: properties(client), range(IN_FLIGHT)))
        assert {status for status, _ in answers} == {200}
    assert len(scripted.seen) == 2 * IN_FLIGHT
    assert scripted.connections == IN_FLIGHT, "the second wave reuses the first one's"
    assert "Connection pool is full" not in caplog.text
