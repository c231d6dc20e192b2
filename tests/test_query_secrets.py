"""A secret a plugin sends in a URL (`?api_token=`) or a form body is masked in every encoding
it travels in: percent-encoded by `requests`, a connection error quotes the whole URL, and
that text reaches the log, the run record in the state file, `runs` and `doctor`."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import EntryPoint
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import requests
from crm_qualify.connector import plugins
from crm_qualify.connector.cli import main
from crm_qualify.connector.contract import AdapterError, CheckResult
from crm_qualify.connector.ops.logs import configure_logging, mask_values, redact, register_secrets
from pydantic import BaseModel, SecretStr

from tests.memory_adapter import MemoryAdapter

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "hubspot.toml"


@pytest.fixture
def token() -> str:
    """Fresh per test, with the characters a URL must escape (`/`, `+`, `=`)."""
    return f"pl/{secrets.token_hex(6)}+q2Zw7Lm=="


def encodings(secret: str) -> set[str]:
    """Every form of `secret` that must not be seen."""
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)}
    return forms | {re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in forms}


def leaks(text: str, secret: str) -> list[str]:
    return [form for form in encodings(secret) if form in text]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# the masking itself -------------------------------------------------------------------------
def test_a_secret_in_a_requests_connection_error_is_masked_by_the_log_filter(token):
    register_secrets([token])
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    url = f"http://127.0.0.1:{closed_port()}/v1/tasks"
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get(url, params={"api_token": token}, timeout=5)
    assert quote(token, safe="") in str(caught.value), "requests quotes the encoded URL"
    log = logging.getLogger("crm_qualify.test")
    log.error("call failed: %s", caught.value)
    try:
        raise caught.value
    except requests.ConnectionError:
        log.exception("call failed")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    lines = [r["message"] for r in records if r["logger"] == "crm_qualify.test"]
    assert len(lines) == 2 and all("/v1/tasks?api_token=***" in line for line in lines)
    assert not leaks(stream.getvalue(), token)


def test_every_url_and_form_encoding_of_a_registered_secret_is_masked(token):
    secret = f"{token} é"
    for form in encodings(secret) | {quote(secret, safe="!#$%&'()*+,/:;=?@[]~")}:
        masked = mask_values(f"GET /x?q={form}&page=2", [secret])
        assert masked == "GET /x?q=***&page=2", (form, masked)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/v1/tasks?api_token=unregistered42&page=2", "/v1/tasks?api_token=***&page=2"),
        ("GET /x?limit=5&apikey=abc%2Fdef#top", "GET /x?limit=5&apikey=***#top"),
        ("url: /x?API_TOKEN=abc (Caused by", "url: /x?API_TOKEN=*** (Caused by"),
        (
            "body grant_type=password&client_secret=s3cr%3D",
            "body grant_type=password&client_secret=***",
        ),
        ("/x?sessionId=00D!AQ&user=ann", "/x?sessionId=***&user=ann"),
        ("/x?token_file=/run/secrets/t&page=2", "/x?token_file=/run/secrets/t&page=2"),
        ("/x?page=2&limit=100", "/x?page=2&limit=100"),
    ],
)
def test_a_query_parameter_with_a_secret_name_is_masked_registered_or_not(text, expected):
    assert redact(text) == expected


# through the commands -----------------------------------------------------------------------
class QuerySettings(BaseModel):
    base_url: str
    api_token: SecretStr


class QueryTokenAdapter(MemoryAdapter):
    """A plugin that authenticates with `?api_token=` as Pipedrive-like CRMs do, and quotes
    its client's error (and so the URL) in its `AdapterError`, as adapters commonly do."""

    settings_model = QuerySettings

    def __init__(self, settings: QuerySettings) -> None:
        super().__init__()
        self.settings = settings

    @classmethod
    def from_config(cls, settings, mapping):
        return cls(settings)

    def _get(self, path: str) -> dict:
        token = self.settings.api_token.get_secret_value()
        try:
            answer = requests.get(
                self.settings.base_url + path, params={"api_token": token}, timeout=5
            )
        except requests.RequestException as exc:
            raise AdapterError(f"GET {path} failed: {exc}") from exc
        if answer.status_code >= 400:
            raise AdapterError(f"GET {path} failed: HTTP {answer.status_code} for {answer.url}")
        return answer.json()

    def existing_task_keys(self):
        yield from self._get("/v1/tasks")["data"]

    def read_changed(self, cursor, *, until, known=None):
        self._get("/v1/persons")
        yield from ()

    def check(self):
        try:
            self._get("/v1/fields")
        except AdapterError as exc:
            return [CheckResult("connectivity", False, str(exc))]
        return [CheckResult("credentials", True, "token accepted")]


class RaisingAdapter(QueryTokenAdapter):
    """Its `check` lets the `AdapterError` out, which doctor prints itself."""

    def check(self):
        self._get("/v1/fields")
        return []


@pytest.fixture
def query_adapter(monkeypatch, request):
    known = plugins.available_adapters()
    where = f"tests.test_query_secrets:{getattr(request, 'param', 'QueryTokenAdapter')}"
    point = EntryPoint("querycrm", where, plugins.ADAPTER_GROUP)
    monkeypatch.setattr(plugins, "available_adapters", lambda: {**known, "querycrm": point})
    for name in ("CRMQ_CONFIG", "CRMQ_ADAPTERS__QUERYCRM__API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def write_config(tmp_path: Path, monkeypatch, token: str, port: int) -> Path:
    monkeypatch.setenv("CRMQ_ADAPTERS__QUERYCRM__API_TOKEN", token)
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = 'querycrm'\nmapping_file = '{MAPPING}'\n"
        f"[adapters.querycrm]\nbase_url = 'http://127.0.0.1:{port}'\n"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
        "[logging]\nformat = 'json'\n"
    )
    return config


def test_a_refused_call_never_shows_the_encoded_token_in_log_state_or_runs(
    tmp_path, monkeypatch, capsys, query_adapter, token
):
    config = write_config(tmp_path, monkeypatch, token, closed_port())
    assert main(["sync", "--once", "--config", str(config)]) == 1
    assert main(["runs", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "Max retries exceeded with url: /v1/tasks?api_token=***" in captured.err
    assert "api_token=***" in captured.out, "the run's error in `runs`"
    assert not leaks(shown, token)
    stored = list(tmp_path.glob("state.sqlite*"))
    assert stored and not any(leaks(p.read_bytes().decode("latin-1"), token) for p in stored)


class Failing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def failing_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("query_adapter", ["QueryTokenAdapter", "RaisingAdapter"], indirect=True)
def test_doctor_after_a_500_never_shows_the_encoded_token(
    tmp_path, monkeypatch, capsys, query_adapter, failing_server, token
):
    config = write_config(tmp_path, monkeypatch, token, failing_server)
    assert main(["doctor", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"\[FAIL\] (connectivity|AdapterError): GET /v1/fields failed: HTTP 500", out)
    assert "/v1/fields?api_token=***" in out
    assert not leaks(out, token)
