"""Every HubSpot call goes through `HubSpotClient.call`: rate budgets, retries, usage counts
and errors that name the endpoint but never the token.

Calls use the official `hubspot-api-client` with `_preload_content=False`: the client builds
and sends the request, and we read the JSON ourselves. That keeps the `X-HubSpot-RateLimit-*`
headers (the generated models drop them) and skips the model deserialisation that would
dominate a large sync.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.connector.contract import AdapterError, ApiUsage, AuthError
from crm_qualify.connector.sync.ratelimit import DailyBudget, RateBudget
from crm_qualify.connector.sync.retrying import Failure, call_with_retries, status_failure
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsError
from hubspot.crm.objects.exceptions import ApiException as ObjectsError
from hubspot.crm.owners.exceptions import ApiException as OwnersError
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesError
from hubspot.crm.properties.exceptions import ApiException as PropertiesError
from urllib3.exceptions import HTTPError as Urllib3Error

log = logging.getLogger(__name__)

API_EXCEPTIONS = (ObjectsError, AssociationsError, PropertiesError, PipelinesError, OwnersError)
"""Each generated sub-package of hubspot-api-client raises its own ApiException class."""


class HubSpotError(AdapterError):
    """A HubSpot answer we could not use: status, HubSpot's category and message."""

    def __init__(self, endpoint: str, status: int | None, body: Any) -> None:
        self.endpoint, self.status = endpoint, status
        self.body = body if isinstance(body, dict) else {}
        self.category = self.body.get("category") or self.body.get("errorType") or ""
        message = self.body.get("message") or (str(body)[:300] if body else "no answer")
        super().__init__(
            f"{endpoint}: HTTP {status or 'connection error'} {self.category}: {message}"
        )


def _classify(exc: BaseException) -> Failure:
    if isinstance(exc, HubSpotError):
        return status_failure(exc.status)
    return Failure(transient=False)


class HubSpotClient:
    """One portal. The API objects are built once: each `.batch_api` access would build a new
    ApiClient (and a new connection pool)."""

    def __init__(self, settings: HubSpotSettings) -> None:
        hubspot = HubSpot(
            access_token=settings.access_token.get_secret_value(),
            host=settings.base_url.rstrip("/"),
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
        self.settings = settings
        self.burst = RateBudget(settings.requests_per_10s, 10.0)
        self.search_budget = RateBudget(settings.searches_per_second, 1.0)
        self.daily = DailyBudget(None, settings.daily_reserve)
        self.requests: Counter[str] = Counter()
        self.throttled = 0

    def call(
        self,
        endpoint: str,
        method: Callable[..., Any],
        *args: Any,
        search: bool = False,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        """(status, parsed JSON) of one API call, retried on 429 / 5xx / dropped connections."""
        budget = self.search_budget if search else self.burst

        def once() -> tuple[int, Any]:
            self.daily.check()
            budget.acquire()
            self.requests[endpoint] += 1
            try:
                response = method(
                    *args,
                    _preload_content=False,
                    _request_timeout=self.settings.timeout_seconds,
                    **kwargs,
                )
            except API_EXCEPTIONS as exc:
                # The generated client raises for every 4xx/5xx (429 included) before we see it.
                self._observe(exc.headers or {})
                raise self._error(endpoint, exc.status or None, _json(exc.body)) from None
            except (Urllib3Error, OSError) as exc:
                raise HubSpotError(endpoint, None, type(exc).__name__) from None
            self._observe(response.headers)
            body = _json(response.data)
            if response.status >= 400:
                raise self._error(endpoint, response.status, body)
            return response.status, body

        def on_retry(failure: Failure) -> None:
            if failure.kind == "throttled":
                self.throttled += 1
                budget.pause(1.0 if search else 10.0)

        return call_with_retries(
            once, _classify, attempts=self.settings.max_attempts, on_retry=on_retry
        )

    @staticmethod
    def _error(endpoint: str, status: int | None, body: Any) -> AdapterError:
        error = HubSpotError(endpoint, status, body)
        if status == 401:
            return AuthError(
                f"HubSpot rejected the access token ({error.category or 'HTTP 401'})",
                setting="adapters.hubspot.access_token",
            )
        if status == 403:
            return AuthError(
                f"HubSpot refused {endpoint}: {error.body.get('message', 'missing scope')}",
                setting="adapters.hubspot.access_token",
            )
        return error

    def _observe(self, headers: Any) -> None:
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


def _json(data: bytes | None) -> Any:
    if not data:
        return {}
    try:
        return json.loads(data)
    except ValueError:
        return {"message": data[:300].decode("utf-8", "replace")}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
