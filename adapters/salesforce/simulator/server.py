"""The REST subset a connector uses, over TLS, answering as Salesforce answers.

Error bodies are JSON lists (`[{"message", "errorCode"}]`, simple-salesforce reads
`[0]`); every API answer carries `Sforce-Limit-Info: api-usage=N/M`; the daily allocation
ends in 403 REQUEST_LIMIT_EXCEEDED; query results page through `nextRecordsUrl` with a
server-side locator (a snapshot: writes made while paging do not shift the pages).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .schema import OBJECTS, describe

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

MAX_COLLECTION = 200
MAX_URI = 16_384


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def make_server(sim: SalesforceSimulator, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(_Handler):
        simulator = sim

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.socket = sim.ssl_context.wrap_socket(server.socket, server_side=True)
    return server


class _Handler(BaseHTTPRequestHandler):
    simulator: SalesforceSimulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        sim = self.simulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers: dict[str, str] = {}
        try:
            if len(self.path) > MAX_URI:
                raise ApiError(414, "URI_TOO_LONG", "The request URI is too long")
            if sim.latency_ms:
                time.sleep(sim.latency_ms / 1000)
            if parts.path == "/services/oauth2/token" and method == "POST":
                status, body = sim.token_endpoint(parse_qs(raw.decode()))
            elif parts.path.startswith("/services/Soap/"):
                raise ApiError(404, "NOT_FOUND", "SOAP login is not simulated: use OAuth")
            else:
                status, body = self._api(method, parts.path, parse_qs(parts.query), raw, headers)
        except ApiError as error:
            status, body = error.status, [{"message": error.message, "errorCode": error.code}]
        sim.stats.count(method, parts.path, status)
        payload = b"" if status == 204 else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _api(
        self, method: str, path: str, query: dict[str, list[str]], raw: bytes, headers: dict
    ) -> tuple[int, Any]:
        sim = self.simulator
        if path.rstrip("/") == "/services/data":
            return 200, [
                {"version": v, "url": f"/services/data/v{v}"} for v in ("58.0", sim.api_version)
            ]
        match = re.match(r"^/services/data/v(\d+\.\d+)/(.*)$", path)
        if not match:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        sim.authenticate(self.headers.get("Authorization", ""))
        headers["Sforce-Limit-Info"] = sim.count_api_call()
        fault = sim.faults.take(path)
        if fault == "503":
            raise ApiError(503, "SERVER_UNAVAILABLE", "Service unavailable")
        if fault == "REQUEST_LIMIT_EXCEEDED":
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        resource = match.group(2).rstrip("/")
        body = json.loads(raw) if raw else None
        with sim.org.lock:
            return self._route(method, resource, query, body, fault)

    def _route(self, method, resource, query, body, fault) -> tuple[int, Any]:  # noqa: ANN001
        sim = self.simulator
        if resource == "limits" and method == "GET":
            return 200, {"DailyApiRequests": {"Max": sim.daily_limit, "Remaining": sim.remaining}}
        if resource == "query" and method == "GET":
            return 200, sim.query(query.get("q", [""])[0], self.headers.get("Sforce-Query-Options"))
        if resource.startswith("query/") and method == "GET":
            return 200, sim.query_more(resource.removeprefix("query/"))
        if resource == "composite/sobjects":
            if method == "DELETE":
                ids = (query.get("ids", [""])[0]).split(",")
                return 200, sim.delete(ids, fault)
            if method in ("POST", "PATCH"):
                return 200, sim.collection(method, body or {}, fault)
        found = re.match(r"^sobjects/(\w+)/describe$", resource)
        if found and method == "GET":
            if found.group(1) not in OBJECTS:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            return 200, describe(found.group(1), sim.api_version)
        found = re.match(r"^sobjects/(\w+)/(\w{15,18})$", resource)
        if found and method == "GET":
            hit = sim.org.find(found.group(2))
            if not hit or hit[0] != found.group(1):
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            return 200, sim.render(hit[0], hit[1], None)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def new_session() -> str:
    return "00D5g000000SIM!" + secrets.token_urlsafe(32)


def locator() -> str:
    return "01g5g" + uuid.uuid4().hex[:13].upper()


def now() -> datetime:
    return datetime.now(UTC)
