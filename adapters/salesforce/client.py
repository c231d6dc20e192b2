"""Every Salesforce call goes through `SalesforceClient`: OAuth login, one re-login on an
expired session, retries on transient faults, and the daily API budget.

Logging in is an OAuth token request made here, so one code path serves the password,
client-credentials and refresh-token flows of a connected app; the session id and instance
URL then go to `simple_salesforce.Salesforce`, which makes every API call.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.connector.contract import AdapterError, ApiUsage, AuthError, BudgetExhausted
from crm_qualify.connector.sync.ratelimit import DailyBudget
from crm_qualify.connector.sync.retrying import Failure, call_with_retries, status_failure
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"}


class SalesforceCallError(AdapterError):
    def __init__(self, what: str, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{what}: HTTP {status or 'connection error'} {code}: {message}")
        self.status, self.code = status, code


def _first_error(exc: SalesforceError) -> tuple[str, str]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode", ""), content[0].get("message", "")
    return "", str(content)[:200]


def _classify(exc: BaseException) -> Failure:
    if isinstance(exc, SalesforceCallError):
        if exc.code in TRANSIENT_CODES:
            return Failure(transient=True, kind=exc.code.lower())
        return status_failure(exc.status)
    return Failure(transient=False)


class SalesforceClient:
    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self.session = make_session(settings.ca_bundle, settings.timeout_seconds)
        self.daily = DailyBudget(None, settings.daily_reserve)
        self.requests: Counter[str] = Counter()
        self.throttled = 0
        self._sf: Salesforce | None = None

    def __repr__(self) -> str:
        return f"SalesforceClient(login_url={self.settings.login_url!r})"

    # login -----------------------------------------------------------------------------------
    def login(self) -> Salesforce:
        s = self.settings
        form = {
            "grant_type": s.auth,
            "client_id": s.client_id,
            "client_secret": s.client_secret.get_secret_value(),
        }
        if s.auth == "password":
            token = s.security_token.get_secret_value() if s.security_token else ""
            form |= {"username": s.username, "password": s.password.get_secret_value() + token}
        elif s.auth == "refresh_token":
            form["refresh_token"] = s.refresh_token.get_secret_value()
        url = s.login_url.rstrip("/") + "/services/oauth2/token"
        self.requests["POST oauth2/token"] += 1
        try:
            answer = self.session.post(url, data=form, timeout=s.timeout_seconds)
        except requests.RequestException as exc:
            raise AdapterError(f"cannot reach {s.login_url}: {type(exc).__name__}") from None
        if answer.status_code != 200:
            try:
                detail = answer.json().get("error_description") or answer.text[:200]
            except ValueError:
                detail = answer.text[:200]
            raise AuthError(
                f"Salesforce login refused ({answer.status_code}): {detail}",
                setting="adapters.salesforce",
            )
        body = answer.json()
        self._sf = Salesforce(
            instance_url=body["instance_url"],
            session_id=body["access_token"],
            session=self.session,
            version=s.api_version,
        )
        return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._sf or self.login()

    # calls -----------------------------------------------------------------------------------
    def call(self, what: str, action: Callable[[Salesforce], T]) -> T:
        """Run `action(sf)`: retried on 5xx / lock contention, one re-login on an expired
        session, a clean stop on the daily limit."""
        relogged = False

        def once() -> T:
            nonlocal relogged
            self.daily.check()
            self.requests[what] += 1
            try:
                result = action(self.sf)
            except SalesforceExpiredSession:
                if relogged:
                    raise AuthError(
                        "Salesforce session expired again right after a new login",
                        setting="adapters.salesforce",
                    ) from None
                relogged = True
                log.info("session expired: logging in again")
                self.login()
                return once()
            except SalesforceRefusedRequest as exc:
                code, message = _first_error(exc)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise BudgetExhausted(
                        f"the org's daily API limit is reached: {message}"
                    ) from None
                raise AuthError(
                    f"{what} refused: {code} {message}", setting="adapters.salesforce"
                ) from None
            except SalesforceError as exc:
                code, message = _first_error(exc)
                raise SalesforceCallError(what, exc.status, code, message) from None
            except requests.RequestException as exc:
                raise SalesforceCallError(what, None, type(exc).__name__, "") from None
            finally:
                self._observe()
            return result

        def on_retry(failure: Failure) -> None:
            if failure.kind in ("http_503", "unable_to_lock_row"):
                self.throttled += 1

        return call_with_retries(
            once, _classify, attempts=self.settings.max_attempts, on_retry=on_retry
        )

    def _observe(self) -> None:
        usage = (self._sf.api_usage or {}).get("api-usage") if self._sf else None
        if usage is not None:
            self.daily.observe(usage.used, usage.total)

    def usage(self) -> ApiUsage:
        remaining = None
        if self.daily.limit is not None and self.daily.used is not None:
            remaining = self.daily.limit - self.daily.used
        return ApiUsage(dict(self.requests), self.throttled, remaining)

    def restful(self, what: str, path: str, method: str, **kwargs: Any) -> Any:
        return self.call(what, lambda sf: sf.restful(path, method=method, **kwargs))
