"""The REST subset a connector uses, over TLS, answering as Salesforce answers (or failing as
it fails: the queued faults of `faults.py` strike here, before or after a request is processed).

Error bodies are JSON lists (`[{"message", "errorCode"}]`, simple-salesforce reads
`[0]`), a 401 from the REST API with `WWW-Authenticate: Token`; every API answer carries
`Sforce-Limit-Info: api-usage=N/M`; the daily allocation ends in 403 REQUEST_LIMIT_EXCEEDED;
query results page through `nextRecordsUrl` with a server-side locator (a snapshot: writes
made while paging do not shift the pages).
"""

from __future__ import annotations

import json
import re
import socket
import struct
import sys
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from . import resources
from .errors import ApiError
from .faults import request_kind
from .schema import OBJECTS, basic_info, describe, describe_global

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

MAX_COLLECTION = 200
MAX_URI = 16_384
IDENTITY = re.compile(r"^/id/(\w{15,18})/(\w{15,18})/?$")


def make_server(sim: SalesforceSimulator, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(_Handler):
        simulator = sim

    server = _Server((host, port), Handler)
    server.daemon_threads = True
    server.socket = sim.ssl_context.wrap_socket(server.socket, server_side=True)
    return server


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (after a `timeout` fault, on a failed handshake) is routine."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    simulator: SalesforceSimulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """Headers and body go out in two writes: with Nagle's algorithm on, the client's delayed
    ACK holds every kept-alive answer back ~40 ms."""

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

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        sim = self.simulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        kind = request_kind(method, parts.path, (query.get("q") or [""])[0])
        fault = sim.faults.take(kind, parts.path)
        if fault == "reset":
            return self._drop(method, parts.path)
        headers: dict[str, str] = {}
        try:
            status, body = self._answer(method, parts.path, query, raw, headers, fault)
        except ApiError as error:
            status, body = error.status, error.body()
        except json.JSONDecodeError:
            status, body = 400, ApiError(400, "JSON_PARSER_ERROR", "malformed JSON body").body()
        if status == 401 and parts.path.startswith("/services/data"):
            headers["WWW-Authenticate"] = "Token"  # the recorded 401 carries it
        if fault == "lost":
            return self._drop(method, parts.path)
        if fault == "timeout":
            time.sleep(sim.faults.delay)
        sim.stats.count(method, parts.path, status)
        self._send(status, body, headers)

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        raw: bytes,
        headers: dict[str, str],
        fault: str | None,
    ) -> tuple[int, Any]:
        sim = self.simulator
        if len(self.path) > MAX_URI:
            raise ApiError(414, "URI_TOO_LONG", "The request URI is too long")
        if len(self.path) + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) > MAX_URI:
            raise ApiError(
                431,
                "REQUEST_HEADER_FIELDS_TOO_LARGE",
                "The combined length of the URI and headers exceeds 16,384 bytes",
            )
        if fault in FAULT_ANSWERS:
            return _fault_answer(sim, fault, path, headers)
        if sim.latency_ms:
            time.sleep(sim.latency_ms / 1000)
        if path == "/services/oauth2/token" and method == "POST":
            foreign = sim.faults.foreign_instance if fault == "foreign_instance" else None
            authorization = self.headers.get("Authorization", "")
            return sim.token_endpoint(parse_qs(raw.decode()), foreign, authorization)
        if method == "GET" and (path == "/services/oauth2/userinfo" or IDENTITY.match(path)):
            status, found = sim.identity(self.headers.get("Authorization", ""), path)
            if isinstance(found, str):
                headers["Content-Type"] = "text/plain;charset=UTF-8"
            return status, found
        if re.match(r"^/services/Soap/u/[\d.]+/?$", path) and method == "POST":
            headers["Content-Type"] = "text/xml; charset=utf-8"
            return sim.soap(raw.decode("utf-8", "replace"))
        return self._api(method, path, query, raw, headers, fault)

    def _drop(self, method: str, path: str) -> None:
        """Close the connection without a word (RST): the client cannot tell what happened."""
        self.simulator.stats.count(method, path, 0)
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
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
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        raw: bytes,
        headers: dict[str, str],
        fault: str | None,
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
        resource = match.group(2).rstrip("/")
        sim.answering(match.group(1))
        if resource.startswith("jobs/"):
            return sim.bulk.route(method, resource, query, raw, match.group(1), headers)
        sim.bulk.settle()
        body = json.loads(raw) if raw else None
        with sim.org.lock:
            return self._route(method, resource, query, body, fault)

    def _route(self, method, resource, query, body, fault) -> tuple[int, Any]:  # noqa: ANN001
        sim = self.simulator
        if resource == "limits" and method == "GET":
            return 200, {
                "DailyApiRequests": {"Max": sim.daily_limit, "Remaining": sim.remaining},
                **sim.bulk.limits(),
            }
        if resource == "sobjects" and method == "GET":
            return 200, describe_global(sim.version)
        found = re.match(r"^sobjects/(\w+)/(updated|deleted)$", resource)
        if found and method == "GET":
            replicate = resources.updated if found.group(2) == "updated" else resources.deleted
            return 200, replicate(sim, found.group(1), query)
        if resource == "composite" and method == "POST":
            sub = lambda m, r, q, b: self._route(m, r, q, b, None)  # noqa: E731
            return 200, resources.composite(sim, body, sub)
        found = re.match(r"^sobjects/(\w+)$", resource)
        if found and method == "GET":
            if found.group(1) not in OBJECTS:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            return 200, basic_info(found.group(1), sim.version)
        if resource == "query" and method == "GET":
            return 200, sim.query(query.get("q", [""])[0], self.headers.get("Sforce-Query-Options"))
        if resource == "queryAll" and method == "GET":
            text = query.get("q", [""])[0]
            return 200, sim.query(text, self.headers.get("Sforce-Query-Options"), deleted=True)
        if resource.startswith("query/") and method == "GET":
            return 200, sim.query_more(resource.removeprefix("query/"))
        found = re.match(r"^composite/sobjects/(\w+)/(\w+)$", resource)
        if found and method == "PATCH":
            return 200, sim.upsert(found.group(1), found.group(2), body, fault)
        if fault == "UNABLE_TO_LOCK_ROW" and resource != "composite/sobjects":
            raise ApiError(
                400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
            )
        if resource == "composite/sobjects":
            if method == "DELETE":
                ids = (query.get("ids", [""])[0]).split(",")
                return 200, sim.delete(ids, fault)
            if method in ("POST", "PATCH"):
                return 200, sim.collection(method, body, fault)
        found = re.match(r"^sobjects/(\w+)/describe$", resource)
        if found and method == "GET":
            if found.group(1) not in OBJECTS:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            return 200, describe(found.group(1), sim.version)
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
            record = sim.live_record(sobject, record_id)
            wanted = query.get("fields", [""])[0]
            names = [n.strip() for n in wanted.split(",") if n.strip()] or None
            unknown = [n for n in names or [] if n not in OBJECTS[sobject]]
            if unknown:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on "
                               f"sobject of type {sobject}", unknown)  # fmt: skip
            return 200, sim.render(sobject, record, names)
        found = re.match(r"^sobjects/(\w+)/(\w+)/([^/]+)$", resource)
        if found and method in ("GET", "PATCH"):
            sobject, field, value = found.group(1), found.group(2), unquote_plus(found.group(3))
            if method == "GET":
                return sim.by_external_id(sobject, field, value)
            return sim.upsert_one(sobject, field, value, body)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    "</h1></center><hr><center>proxy</center></body></html>"
)
FAULT_ANSWERS = frozenset(
    {"429", "503", "500", "502", "INVALID_SESSION_ID", "REQUEST_LIMIT_EXCEEDED", "redirect"}
)


def _fault_answer(
    sim: SalesforceSimulator, fault: str, path: str, headers: dict[str, str]
) -> tuple[int, Any]:
    """The answer of a fault that strikes before the request is processed."""
    if fault == "502":
        headers["Content-Type"] = "text/html"
        return 502, GATEWAY_PAGE
    if fault == "redirect":
        headers["Location"] = sim.faults.redirect_to.rstrip("/") + path
        return 307, ""
    if fault == "INVALID_SESSION_ID":
        sim.expire_sessions()
    error = {
        "429": ApiError(429, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
        "503": ApiError(503, "SERVER_UNAVAILABLE", "Service unavailable"),
        "500": ApiError(
            500,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support:"
            " 1234567890-12345 (-1234567890)",
        ),
        "INVALID_SESSION_ID": ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid"),
        "REQUEST_LIMIT_EXCEEDED": ApiError(
            403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
        ),
    }[fault]
    return error.status, error.body()


def _fields_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "expected a JSON object of field values")
    return body


def now() -> datetime:
    return datetime.now(UTC)
