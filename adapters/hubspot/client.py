"""Every HubSpot call goes through `HubSpotClient.call`: rate budgets, retries, usage counts
and errors that name the endpoint but never the token.

Calls use the official `hubspot-api-client` with `_preload_content=False`: the client builds
and sends the request, and we read the JSON ourselves. That keeps the `X-HubSpot-RateLimit-*`
headers (the generated models drop them) and skips the model deserialisation that would
dominate a large sync.

urllib3 (under hubspot-api-client) would retry and follow redirects on its own; both are
switched off (`Retry(total=0, redirect=False)`): our retry policy is the only one, so a create
is never resent behind our back, and a 3xx is an error, never followed with the token.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from crm_qualify.adapters.hubspot.auth import credentials
from crm_qualify.adapters.hubspot.endpoints import API, IN_FLIGHT, SEARCH, limits
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.connector.contract import AdapterError, ApiUsage, AuthError
from crm_qualify.connector.crm_clock import CrmClock
from crm_qualify.connector.ops.logs import redact
from crm_qualify.connector.sync.concurrency import Traffic
from crm_qualify.connector.sync.ratelimit import DailyBudget
from crm_qualify.connector.sync.retrying import Failure, call_with_retries, status_failure
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsError
from hubspot.crm.objects.exceptions import ApiException as ObjectsError
from hubspot.crm.owners.exceptions import ApiException as OwnersError
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesError
from hubspot.crm.properties.exceptions import ApiException as PropertiesError
from hubspot.oauth.exceptions import ApiException as OAuthError
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

API_EXCEPTIONS = (
    ObjectsError,
    AssociationsError,
    PropertiesError,
    PipelinesError,
    OwnersError,
    OAuthError,
)
"""Each generated sub-package of hubspot-api-client raises its own ApiException class."""
EXCERPT = 120
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class HubSpotError(AdapterError):
    """A HubSpot answer we could not use: status, HubSpot's category and message.

    `garbled`: the body was not HubSpot's JSON (a gateway's HTML page): worth retrying.
    `unprocessed`: the request never reached HubSpot (connection refused), so even a create
    may be sent again."""

    def __init__(
        self,
        endpoint: str,
        status: int | None,
        body: Any,
        *,
        garbled: bool = False,
        unprocessed: bool = False,
    ) -> None:
        self.endpoint, self.status = endpoint, status
        self.garbled, self.unprocessed = garbled, unprocessed
        self.body = body if isinstance(body, dict) else {}
        self.category = str(self.body.get("category") or self.body.get("errorType") or "")
        message = self.body.get("message") or (str(body)[:300] if body else "no answer")
        super().__init__(
            f"{endpoint}: HTTP {status or 'connection error'} {self.category}: {message}"
        )


def classify(exc: BaseException) -> Failure:
    """Our errors as the core's retry policy sees them."""
    if not isinstance(exc, HubSpotError):
        return Failure(transient=False)
    if exc.garbled:
        return Failure(transient=True, kind="unreadable_answer")
    if exc.status is None:
        return Failure(transient=True, kind="connection", unprocessed=exc.unprocessed)
    return status_failure(exc.status)


class TokenRejected(AuthError):
    """A 401: the access token sent was refused (an OAuth app may renew it once)."""


class ScopeRefused(AuthError):
    """A 403: the token is good but may not make this call (a scope the app lacks). Only this
    lets an optional source be given up; a rejected token or a refused refresh fails the run."""


class HubSpotClient:
    """One portal. The API objects are built once: each `.batch_api` access would build a new
    ApiClient (and a new connection pool). `clock` and `sleep` drive the rate budgets and the
    OAuth token's expiry (tests pass a fake clock). The bearer token goes with each request
    (`_request_auth`), so an OAuth app's renewed token reaches every API object at once."""

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        hubspot = HubSpot(
            host=settings.base_url.rstrip("/"),
            retry=Retry(total=0, redirect=False),
            connection_pool_maxsize=IN_FLIGHT,  # not the SDK's 5 per CPU: one per request flying
        )
        crm = hubspot.crm
        self.basic = crm.objects.basic_api
        self.batch = crm.objects.batch_api
        self.search_api = crm.objects.search_api
        self.associations = crm.associations.v4.batch_api
        self.properties = crm.properties.core_api
        self.groups = crm.properties.groups_api
        self.pipelines = crm.pipelines.pipelines_api
        self.owners = crm.owners.owners_api
        self.tokens = hubspot.oauth.tokens_api
        self.settings = settings
        self.credentials = credentials(settings, self._token_request, clock)
        self.traffic = Traffic(limits(settings), clock=clock, sleep=sleep)
        """The core's slots and budgets for this portal (`endpoints.py`), shared by every
        thread that calls."""
        self.burst = self.traffic.budgets[API]
        self.daily = DailyBudget(None, settings.daily_reserve)
        self.requests: Counter[str] = Counter()
        self.throttled = 0
        self._counting = threading.Lock()
        self.crm_clock = CrmClock()
        """The portal's clock, from each answer's `Date`: read positions are kept in it."""

    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={redact(self.settings.base_url)!r})"

    def call(
        self,
        endpoint: str,
        method: Callable[..., Any],
        *args: Any,
        search: bool = False,
        idempotent: bool = True,
        auth: bool = True,
        **kwargs: Any,
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON object) of one API call, retried on 429 / 5xx / dropped connections.
        With `idempotent=False` (creates) only failures that prove HubSpot never acted are
        retried; any other transient failure raises `OutcomeUnknown`. A 401 is sent again
        once when the credentials renew the token (HubSpot acted on nothing); `auth=False`
        sends no token (the OAuth token endpoint). The token is fetched (and refreshed)
        before the request takes its slot, so a refresh never waits on a slot it holds."""
        kind = SEARCH if search else API

        def attempt(token: str | None) -> tuple[int, dict[str, Any]]:
            self.daily.check()
            with self.traffic.request(kind) as answered:
                with self._counting:
                    self.requests[endpoint] += 1
                return self._send(endpoint, method, args, kwargs, token, answered)

        def once() -> tuple[int, dict[str, Any]]:
            if not auth:
                return attempt(None)
            token = self.credentials.bearer()
            try:
                return attempt(token)
            except TokenRejected:
                if not self.credentials.renew(token):
                    raise
            return attempt(self.credentials.bearer())

        def on_retry(failure: Failure) -> None:
            if failure.kind == "throttled":
                with self._counting:
                    self.throttled += 1
                self.traffic.pause(self.traffic.limits.classes[kind].window)

        return call_with_retries(
            once,
            classify,
            attempts=self.settings.max_attempts,
            on_retry=on_retry,
            idempotent=idempotent,
            what=endpoint,
            sleep=self.traffic.backoff,
        )

    def _send(
        self,
        endpoint: str,
        method: Callable[..., Any],
        args: Any,
        kwargs: dict[str, Any],
        token: str | None,
        answered: Callable[[], None],
    ) -> tuple[int, dict[str, Any]]:
        """One request. `answered` frees the rate budget as the answer's status line is in
        (the body is read and parsed after): HubSpot counted the request before it answered."""
        if token is not None:
            kwargs = {**kwargs, "_request_auth": _bearer(token)}
        try:
            response = method(
                *args,
                _preload_content=False,
                _request_timeout=self.settings.timeout_seconds,
                **kwargs,
            )
            answered()
            status, headers, data = response.status, response.headers, response.data
        except API_EXCEPTIONS as exc:
            # The generated client raises for every non-2xx status (3xx and 429 included).
            status, headers, data = exc.status or None, exc.headers or {}, exc.body
            if status is None:
                raise HubSpotError(endpoint, None, exc.reason) from None
        except (Urllib3Error, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            never_sent = isinstance(reason, ConnectTimeoutError | ConnectionRefusedError)
            raise HubSpotError(
                endpoint, None, type(reason).__name__, unprocessed=never_sent
            ) from None
        self._observe(headers)
        return status, self._answer(endpoint, status, headers, data)

    def _answer(self, endpoint: str, status: int, headers: Any, data: Any) -> dict[str, Any]:
        if 300 <= status < 400:
            where = urlsplit(str(headers.get("Location") or "")).netloc or "elsewhere"
            raise HubSpotError(
                endpoint,
                status,
                {"message": f"redirected to {where}; not followed (check base_url)"},
            )
        body = _json_object(data)
        if body is None:
            raise HubSpotError(endpoint, status, _excerpt(data), garbled=True)
        if status >= 400:
            raise self._error(endpoint, status, body)
        return body

    def _error(self, endpoint: str, status: int, body: dict[str, Any]) -> AdapterError:
        error = HubSpotError(endpoint, status, body)
        setting = self.credentials.setting
        if status == 401:
            return TokenRejected(
                f"HubSpot rejected the access token ({error.category or 'HTTP 401'})", setting
            )
        if status == 403:
            return ScopeRefused(
                f"HubSpot refused {endpoint}: {body.get('message', 'missing scope')}", setting
            )
        return error

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        """`POST /oauth/v1/token` through the official client (form body, no bearer)."""
        return self.call("POST oauth/v1/token", self.tokens.create, auth=False, **form)[1]

    def _observe(self, headers: Any) -> None:
        self.crm_clock.observe(headers.get("Date"))
        daily = _int(headers.get("X-HubSpot-RateLimit-Daily"))
        remaining = _int(headers.get("X-HubSpot-RateLimit-Daily-Remaining"))
        if daily is not None and remaining is not None:
            self.daily.observe(daily - remaining, daily)
        burst_left = _int(headers.get("X-HubSpot-RateLimit-Remaining"))
        interval = _int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
        self.burst.observe_remaining(burst_left, interval / 1000 if interval else None)

    def usage(self) -> ApiUsage:
        remaining = None
        if self.daily.limit is not None and self.daily.used is not None:
            remaining = self.daily.limit - self.daily.used
        return ApiUsage(dict(self.requests), self.throttled, remaining)


def _bearer(token: str) -> dict[str, str]:
    """hubspot-api-client's per-request auth override (`_request_auth`)."""
    return {"in": "header", "key": "Authorization", "value": f"Bearer {token}"}


def _text(data: Any) -> str:
    if isinstance(data, bytes | bytearray):
        return bytes(data).decode("utf-8", "replace")
    return "" if data is None else str(data)


def _json_object(data: Any) -> dict[str, Any] | None:
    """The body as a JSON object; an empty body is an empty object (204); None when the body
    is not a JSON object (an HTML page, a bare string, a list)."""
    text = _text(data)
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _excerpt(data: Any) -> dict[str, str]:
    """A short, tag-free excerpt of an unreadable body, for the error message."""
    flat = _SPACE.sub(" ", _TAGS.sub(" ", _text(data))).strip()
    shown = flat[:EXCERPT] + ("…" if len(flat) > EXCERPT else "")
    return {"message": f"not a HubSpot JSON answer: {shown!r}"}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
