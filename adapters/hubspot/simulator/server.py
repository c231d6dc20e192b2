"""HTTP plumbing: routing, the per-request pipeline, and response writing.

Pipeline per request: latency sleep -> fault selection (`expire_token` acts before auth) ->
auth -> injected faults -> rate limits -> scope check -> handler (under the store lock) ->
faults that spoil a served answer (`lost`, `timeout`) -> JSON encoding outside the lock.
The server is a `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive, so concurrent
clients overlap their latency as they would against HubSpot.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from .auth import OAuthError, Principal, require_scopes
from .errors import ApiError, invalid_json, rate_limit_body
from .faults import AFTER_SERVING, TYPE_PARAMS, Fault, request_names
from .limits import RateLimited
from .schema import resolve_type

if TYPE_CHECKING:
    from .simulator import HubSpotSimulator

_PARAM = re.compile(r"\{(\w+)\}")
# Object types the portal has pipelines for but no records of (tickets: pipelines only).
PIPELINE_ONLY_TYPES = {"tickets": "tickets", "ticket": "tickets", "0-5": "tickets"}
_GATEWAY_HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    raw: bytes
    base_url: str
    principal: Principal | None = None
    fault: Fault | None = None
    _body: Any = field(default=None, repr=False)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def arg_list(self, name: str) -> list[str] | None:
        """Comma lists and repeated params (the official client repeats them)."""
        if name not in self.query:
            return None
        return [p.strip() for v in self.query[name] for p in v.split(",") if p.strip()]

    def json(self) -> Any:
        if self._body is None:
            if not self.raw:
                raise invalid_json("No content to map due to end-of-input")
            try:
                self._body = json.loads(self.raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise invalid_json(f"Unexpected character: {exc}") from exc
        return self._body


@dataclass
class Response:
    status: int
    body: Any = None
    wrote: bool = False
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["HubSpotSimulator", Request], Response]


@dataclass(frozen=True)
class Route:
    """`kind`: "api" (burst-limited), "search" (secondly-limited) or "oauth" (no auth)."""

    method: str
    template: str
    handler: Handler
    kind: str = "api"
    scopes: Callable[[dict[str, str]], tuple[str, ...]] = lambda _params: ()

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", self.template) + "$")


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self._table = [(r, r.pattern) for r in routes]

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_known); path_known distinguishes 405-ish from 404."""
        known = False
        for route, pattern in self._table:
            found = pattern.match(path)
            if found:
                known = True
                if route.method == method:
                    # Clients percent-encode path values (`x%40y.org`): match raw, decode values.
                    return route, {k: unquote(v) for k, v in found.groupdict().items()}, True
        return None, {}, known


def endpoint_key(method: str, route: Route | None, params: dict[str, str], path: str) -> str:
    """Stats key such as `POST /crm/v3/objects/contacts/batch/update` (types canonical)."""
    if route is None:
        return f"{method} {path}"
    key = route.template
    for name in TYPE_PARAMS:
        if name in params:
            key = key.replace("{" + name + "}", resolve_type(params[name]) or params[name])
    return f"{method} {key}"


def make_server(sim: HubSpotSimulator, router: Router, host: str, port: int) -> ThreadingHTTPServer:
    class SimHandler(_Handler):
        pass

    SimHandler.sim, SimHandler.router = sim, router
    server = _Server((host, port), SimHandler)
    server.daemon_threads = True
    return server


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (killed, or gone after a `timeout` fault) is routine."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    server_version = "hubspot-simulator"
    sys_version = ""
    sim: HubSpotSimulator
    router: Router

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging; the simulator's stats are the record."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET  # noqa: N815

    def _serve(self) -> None:
        sim, url = self.sim, urlsplit(self.path)
        path = url.path.rstrip("/") or "/"  # the owners client asks for `/crm/v3/owners/`
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        route, params, known = self.router.match(self.command, path)
        sim.stats.request(endpoint_key(self.command, route, params, path))
        req = Request(
            self.command,
            path,
            params,
            parse_qs(url.query, keep_blank_values=True),
            raw,
            sim.base_url or "",
        )
        if sim.latency_ms:
            time.sleep(sim.latency_ms / 1000)
        headers: dict[str, str] = {}
        try:
            response = self._pipeline(route, known, req, headers)
        except ApiError as err:
            response = Response(err.status, err.body())
        except RateLimited as limited:
            response = Response(429, limited.body, headers=limited.headers)
        except OAuthError as err:
            response = Response(400, err.body)
        except _Dropped as dropped:
            self._hang_up(reset=dropped.reset)
            return
        if response.wrote:
            sim.stats.wrote()
        if req.fault and req.fault.kind in AFTER_SERVING:
            if req.fault.kind == "lost":
                self._hang_up(reset=False)
                return
            time.sleep(req.fault.delay)
        self._send(response, {**headers, **response.headers})

    def _hang_up(self, *, reset: bool) -> None:
        """Close without answering: a reset (RST) or an orderly close (FIN)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            if reset:
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)

    def _pipeline(
        self, route: Route | None, known: bool, req: Request, headers: dict[str, str]
    ) -> Response:
        sim = self.sim
        fault = None
        if route is not None:
            names = request_names(req.method, route.template, req.params)
            fault = sim.faults.take(req.path, lambda: _referenced_ids(req), names)
        if fault and fault.kind == "expire_token":
            sim.auth.expire_all()
            fault = None
        req.fault = fault
        if route is None:
            if known:
                raise ApiError(
                    405, "VALIDATION_ERROR", f"HTTP method {req.method} is not supported."
                )
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to route {req.method} {req.path}")
        for name in TYPE_PARAMS:
            if name in req.params:
                canonical = resolve_type(req.params[name])
                if canonical is None and route.template.startswith("/crm/v3/pipelines/"):
                    canonical = PIPELINE_ONLY_TYPES.get(req.params[name].lower())
                if canonical is None and route.kind != "oauth":
                    raise ApiError(
                        400,
                        "VALIDATION_ERROR",
                        f"Unable to infer object type from: {req.params[name]}",
                    )
                req.params[name] = canonical or req.params[name]
        if route.kind != "oauth":
            req.principal = sim.auth.authenticate(self.headers.get("Authorization"))
        if fault:
            injected = self._inject(fault)
            if injected is not None:
                return injected
        if route.kind != "oauth":
            assert req.principal is not None
            headers.update(sim.limits.admit(route.kind == "search", req.principal.oauth))
            require_scopes(req.principal, route.scopes(req.params))
        with sim.store.lock:
            return route.handler(sim, req)

    def _inject(self, fault: Fault) -> Response | None:
        """Faults that act before the request is served."""
        if fault.kind in ("drop", "reset"):
            raise _Dropped(reset=fault.kind == "reset")
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return None
        if fault.kind == "401":
            message = "The OAuth token used to make this call expired 0 second(s) ago."
            return Response(401, ApiError(401, "EXPIRED_AUTHENTICATION", message).body())
        if fault.kind == "429":
            body = rate_limit_body(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten_secondly_rolling limit.",
                self.sim.hub_id,
            )
            return Response(429, body, headers={"X-HubSpot-RateLimit-Remaining": "0"})
        if fault.kind == "502":
            return Response(502, _GATEWAY_HTML, headers={"Content-Type": "text/html"})
        if fault.kind in ("500", "503"):
            message = "internal error" if fault.kind == "500" else "Service Unavailable"
            category = "INTERNAL_ERROR" if fault.kind == "500" else "SERVICE_UNAVAILABLE"
            return Response(int(fault.kind), ApiError(int(fault.kind), category, message).body())
        return None

    def _send(self, response: Response, headers: dict[str, str]) -> None:
        body = response.body
        if isinstance(body, bytes):
            payload = body
        elif body is None:
            payload = b""
        else:
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json;charset=utf-8")
        self.sim.stats.status(response.status)
        try:
            self.send_response(response.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload and response.status != 204:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. timed out on a slow fault)


class _Dropped(Exception):
    """The `drop` and `reset` faults: close the socket without answering."""

    def __init__(self, *, reset: bool) -> None:
        super().__init__("dropped")
        self.reset = reset


def _referenced_ids(req: Request) -> set[str]:
    """Ids a fault's `ids=` can match: path segments and batch inputs' id / trace id."""
    refs = set(req.path.split("/"))
    try:
        body = json.loads(req.raw) if req.raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return refs
    for item in body.get("inputs", []) if isinstance(body, dict) else []:
        if isinstance(item, dict):
            refs.update(str(item[k]) for k in ("id", "objectWriteTraceId") if k in item)
    return refs
