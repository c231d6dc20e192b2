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
    """A request-level failure, answered as Salesforce's JSON error list."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            item["fields"] = self.fields
        return [item]


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
            elif re.match(r"^/services/Soap/u/[\d.]+/?$", parts.path) and method == "POST":
                status, body = sim.soap_login(raw.decode("utf-8", "replace"))
                headers["Content-Type"] = "text/xml; charset=utf-8"
            else:
                status, body = self._api(method, parts.path, parse_qs(parts.query), raw, headers)
        except ApiError as error:
            status, body = error.status, error.body()
        except json.JSONDecodeError:
            status, body = 400, ApiError(400, "JSON_PARSER_ERROR", "malformed JSON body").body()
        sim.stats.count(method, parts.path, status)
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        payload = b"" if status == 204 else payload
        headers.setdefault("Content-Type", "application/json;charset=UTF-8")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
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
        if resource == "queryAll" and method == "GET":
            text = query.get("q", [""])[0]
            return 200, sim.query(text, self.headers.get("Sforce-Query-Options"), deleted=True)
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
        found = re.match(r"^sobjects/(\w+)$", resource)
        if found and method == "POST" and found.group(1) in OBJECTS:
            return 201, sim.create_one(found.group(1), _fields_body(body))
        found = re.match(r"^sobjects/(\w+)/(\w{15,18})$", resource)
        if found and method in ("GET", "PATCH", "DELETE"):
            sobject, record_id = found.groups()
            if method == "PATCH":
                sim.update_one(sobject, record_id, _fields_body(body))
                return 204, None
            if method == "DELETE":
                sim.delete_one(sobject, record_id)
                return 204, None
            record = sim.org.find(record_id)
            if not record or record[0] != sobject:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            wanted = query.get("fields", [""])[0]
            names = [n.strip() for n in wanted.split(",") if n.strip()] or None
            unknown = [n for n in names or [] if n not in OBJECTS[sobject]]
            if unknown:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on "
                               f"sobject of type {sobject}", unknown)  # fmt: skip
            return 200, sim.render(sobject, record[1], names)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def _fields_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "expected a JSON object of field values")
    return body


def new_session() -> str:
    return "00D5g000000SIM!" + secrets.token_urlsafe(32)


def locator() -> str:
    return "01g5g" + uuid.uuid4().hex[:13].upper()


def now() -> datetime:
    return datetime.now(UTC)
