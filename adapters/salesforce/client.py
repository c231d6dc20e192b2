"""Every Salesforce call goes through `SalesforceClient`: OAuth login, one re-login on an
expired session, retries on transient faults, and the daily API budget.

Logging in is an OAuth token request made here (its form from `auth.py`), so one code path
serves the password, client-credentials, refresh-token and JWT bearer flows of a connected
app; the session id and instance
URL then go to `simple_salesforce.Salesforce`, which makes every API call. The session id goes
only to an https instance under Salesforce's domains (or `allowed_domains`): a login answer
naming any other host is refused before the session is used.

The login answer's `id` is the identity URL, `https://login.salesforce.com/id/<orgId>/<userId>`
(every OAuth flow returns it), which names the integration user without another request; only
an answer without it costs one `GET /services/oauth2/userinfo` (`user_id`). The adapter uses
that id to leave records whose last change is our own write out of incremental reads.

Errors are classified once, here (`SalesforceCallError.transient` / `.unprocessed`): a call
that is not safe to repeat (`idempotent=False`) is retried only after failures that prove the
request was not acted on (429, a refused connection, a rolled-back lock).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from crm_qualify.adapters.salesforce.auth import token_form
from crm_qualify.adapters.salesforce.endpoints import API, limits
from crm_qualify.adapters.salesforce.http import RefusedRequest, host_of, make_session
from crm_qualify.adapters.salesforce.settings import SalesforceSettings, allowed_host
from crm_qualify.connector.contract import AdapterError, ApiUsage, AuthError, BudgetExhausted
from crm_qualify.connector.crm_clock import CrmClock
from crm_qualify.connector.ops.logs import redact
from crm_qualify.connector.sync.concurrency import Traffic
from crm_qualify.connector.sync.ratelimit import DailyBudget
from crm_qualify.connector.sync.retrying import Failure, call_with_retries
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)
from urllib3.exceptions import NewConnectionError

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"}
UNPROCESSED_CODES = {"UNABLE_TO_LOCK_ROW"}
"""Per-record or request errors after which Salesforce rolled the work back."""
USER_ID = re.compile(r"005[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?")
"""A User record id (key prefix 005), 15 or 18 characters."""
DOMAINS_SETTING = "adapters.salesforce.allowed_domains"


class SalesforceCallError(AdapterError):
    """A failed call, classified: `transient` (worth retrying), `unprocessed` (Salesforce
    certainly did not act on it, so even a create may be sent again)."""

    def __init__(
        self,
        what: str,
        status: int | None,
        code: str,
        message: str,
        *,
        transient: bool = False,
        unprocessed: bool = False,
    ) -> None:
        super().__init__(f"{what}: HTTP {status or 'connection error'} {code}: {message}")
        self.status, self.code = status, code
        self.transient, self.unprocessed = transient, unprocessed


def excerpt(text: str, limit: int = 120) -> str:
    """One short line of a body that is not Salesforce's JSON (a proxy's HTML page)."""
    return " ".join(re.sub(r"<[^>]*>", " ", text).split())[:limit]


def _salesforce_error(what: str, exc: SalesforceError) -> SalesforceCallError:
    """simple-salesforce's error -> ours. Salesforce speaks a JSON list of {errorCode,
    message}; any other body came from something in between and is worth another try."""
    content = exc.content
    if not (isinstance(content, list) and content and isinstance(content[0], dict)):
        text = content if isinstance(content, str) else str(content)
        return SalesforceCallError(
            what, exc.status, "NON_JSON_BODY", excerpt(text), transient=True,
            unprocessed=exc.status == 429,
        )  # fmt: skip
    code = str(content[0].get("errorCode", ""))
    message = str(content[0].get("message", ""))[:300]
    concurrent = code == "REQUEST_LIMIT_EXCEEDED" and "Concurrent" in message
    return SalesforceCallError(
        what, exc.status, code, message,
        transient=exc.status in (429, 500, 502, 503, 504) or code in TRANSIENT_CODES or concurrent,
        unprocessed=exc.status == 429 or code in UNPROCESSED_CODES or concurrent,
    )  # fmt: skip


def _transport_error(what: str, exc: requests.RequestException) -> AdapterError:
    """A request that got no usable answer. A refused connection or a connect timeout never
    reached Salesforce; a reset, a lost answer or a read timeout may have been acted on."""
    if isinstance(exc, RefusedRequest):
        return AdapterError(f"{what}: {exc}")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return SalesforceCallError(
            what, None, "NON_JSON_BODY", "the answer is not JSON", transient=True
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return AdapterError(f"{what}: TLS verification failed (check ca_bundle)")
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    never_sent = isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)
    return SalesforceCallError(
        what, None, type(exc).__name__, "no answer", transient=True, unprocessed=never_sent
    )


def user_from_identity_url(url: Any) -> str | None:
    """The user id at the end of an identity URL (`https://<login host>/id/<orgId>/<userId>`),
    or None when `url` is not one."""
    if not isinstance(url, str):
        return None
    segments = urlsplit(url).path.strip("/").split("/")
    if len(segments) == 3 and segments[0] == "id" and USER_ID.fullmatch(segments[2]):
        return segments[2]
    return None


GRANT_SETTINGS = {
    "password": "username, password and security_token",
    "refresh_token": "refresh_token",
    "jwt": "username, private_key_file (or private_key) and client_id",
    "client_credentials": "client_id and client_secret",
}
"""What an `invalid_grant` refusal of each login flow points at."""


def _refused_setting(error: Any, auth: str) -> str:
    """The options a refused login names, from the OAuth error code: `invalid_client_id`,
    `invalid_client` (the connected app's key or secret), `invalid_grant` (the flow's own
    credentials: "authentication failure" for a password)."""
    prefix = "adapters.salesforce."
    if error == "invalid_client_id":
        return prefix + "client_id"
    if error == "invalid_client":
        return prefix + "client_id and client_secret"
    if error == "invalid_grant":
        return prefix + GRANT_SETTINGS[auth]
    return prefix.rstrip(".")


def _classify(exc: BaseException) -> Failure:
    if isinstance(exc, SalesforceCallError):
        if exc.code in TRANSIENT_CODES:
            kind = exc.code.lower()
        else:  # no status: the connection failed before an answer
            kind = f"http_{exc.status}" if exc.status is not None else "connection"
        return Failure(exc.transient, kind=kind, unprocessed=exc.unprocessed)
    return Failure(transient=False)


class SalesforceClient:
    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self.hosts: set[str] = {host_of(settings.login_url)}
        self.crm_clock = CrmClock()
        """The org's clock, from each answer's `Date`: read positions are kept in it."""
        self.session = make_session(
            settings.ca_bundle, settings.timeout_seconds, self.hosts, self.crm_clock
        )
        self.daily = DailyBudget(None, settings.daily_reserve)
        self.requests: Counter[str] = Counter()
        self.throttled = 0
        self.traffic = Traffic(limits(settings.bulk_threshold))
        """The core's requests in flight for this org (`endpoints.py`), shared by every thread."""
        self._counting = threading.Lock()
        self._sf: Salesforce | None = None
        self._sent: dict[str, str] = {}
        """The last token request's form (its password or JWT assertion is scrubbed from errors)."""
        self._user_id: str | None = None

    def __repr__(self) -> str:
        return f"SalesforceClient(login_url={redact(self.settings.login_url)!r})"

    # login -----------------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        s = self.settings
        values = [s.client_secret, s.password, s.security_token, s.refresh_token, s.private_key]
        found = [v.get_secret_value() for v in values if v is not None]
        found += [self._sent.get("password", ""), self._sent.get("assertion", "")]
        if self._sf is not None:
            found.append(self._sf.session_id)
        return sorted((v for v in found if len(v) >= 4), key=len, reverse=True)

    def _scrubbed(self, action: Callable[[], T]) -> Callable[[], T]:
        """`action`, with our secrets cut out of the text of any error it raises: an error
        quotes what Salesforce or a proxy answered, and a proxy may echo what it was sent."""

        def run() -> T:
            try:
                return action()
            except AdapterError as exc:
                text = str(exc)
                for secret in self._secrets():
                    text = text.replace(secret, "***")
                exc.args = (text,)
                raise

        return run

    def login(self) -> Salesforce:
        token = self._scrubbed(self._token)
        body = call_with_retries(token, _classify, attempts=self.settings.max_attempts)
        instance = self._trusted_instance(body.get("instance_url"))
        self.hosts.add(host_of(instance))
        self._user_id = user_from_identity_url(body.get("id")) or self._user_id
        self._sf = Salesforce(
            instance_url=instance,
            session_id=body["access_token"],
            session=self.session,
            version=self.settings.api_version,
            object_pairs_hook=None,  # plain dicts: an OrderedDict per row takes 1.7 times as much
        )
        return self._sf

    def _token(self) -> dict[str, Any]:
        """One token request: the answer's JSON, or an error classified for retrying."""
        what = "POST oauth2/token"
        self.requests[what] += 1
        url = self.settings.login_url.rstrip("/") + "/services/oauth2/token"
        self._sent = token_form(self.settings)
        try:
            answer = self.session.post(url, data=self._sent, timeout=self.settings.timeout_seconds)
        except RefusedRequest as exc:
            raise AuthError(
                f"Salesforce login: {exc}", setting="adapters.salesforce.login_url"
            ) from None
        except requests.RequestException as exc:
            raise _transport_error(what, exc) from None
        try:
            body = answer.json()
        except ValueError:
            raise SalesforceCallError(
                what, answer.status_code, "NON_JSON_BODY", excerpt(answer.text), transient=True,
                unprocessed=answer.status_code == 429,
            ) from None  # fmt: skip
        if answer.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            return body
        if answer.status_code == 429 or answer.status_code >= 500:
            raise SalesforceCallError(
                what, answer.status_code, "LOGIN_UNAVAILABLE", excerpt(answer.text),
                transient=True, unprocessed=answer.status_code == 429,
            )  # fmt: skip
        detail = body.get("error_description") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else None
        raise AuthError(
            f"Salesforce login refused ({answer.status_code}): {detail or excerpt(answer.text)}",
            setting=_refused_setting(error, self.settings.auth),
        )

    def _trusted_instance(self, instance_url: Any) -> str:
        """The instance URL the session id may go to: https, under an allowed domain."""
        parts = urlsplit(instance_url if isinstance(instance_url, str) else "")
        host = parts.hostname or ""
        if parts.scheme != "https" or not host or parts.username or parts.password:
            raise AuthError(
                f"the login answer names an instance that is not an https host ({host or 'none'}):"
                " the session is not used",
                setting=DOMAINS_SETTING,
            )
        if not allowed_host(host, self.settings.allowed_domains):
            raise AuthError(
                f"the login answer names instance host {host!r}, which is neither a Salesforce"
                f" domain nor in {DOMAINS_SETTING}: the session is not used",
                setting=DOMAINS_SETTING,
            )
        return f"https://{parts.netloc}"

    @property
    def sf(self) -> Salesforce:
        return self._sf or self.login()

    def integration_user(self) -> str | None:
        """The Id of the user the client logs in as (logging in first when needed): from the
        login answer's identity URL, or else from one `userinfo` request. None, with a
        warning, when Salesforce would not say: the caller then filters nothing."""
        sf = self.sf
        if self._user_id is None:
            self._user_id = self._userinfo(sf.session_id)
        return self._user_id

    def _userinfo(self, session_id: str) -> str | None:
        """`GET /services/oauth2/userinfo` on the login host (OpenID Connect): `user_id`."""
        what = "GET oauth2/userinfo"
        self.requests[what] += 1
        url = self.settings.login_url.rstrip("/") + "/services/oauth2/userinfo"
        try:
            answer = self.session.get(url, headers={"Authorization": f"Bearer {session_id}"})
            user = answer.json().get("user_id") if answer.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError) as exc:
            problem = type(exc).__name__  # never the text: it could quote the request
        else:
            if isinstance(user, str) and USER_ID.fullmatch(user):
                return user
            problem = f"HTTP {answer.status_code}, no user_id"
        log.warning(
            "Salesforce did not name the integration user (%s): incremental reads include"
            " records whose last change is our own write",
            problem,
        )
        return None

    # calls -----------------------------------------------------------------------------------
    def call(self, what: str, action: Callable[[Salesforce], T], *, idempotent: bool = True) -> T:
        """Run `action(sf)`: retried on transient faults (only unprocessed ones when not
        `idempotent`, which raises `OutcomeUnknown` otherwise), one re-login on an expired
        session, a clean stop on the daily limit."""
        relogged = False

        def once() -> T:
            nonlocal relogged
            self.daily.check()
            with self._counting:
                self.requests[what] += 1
            try:
                with self.traffic.request(API):
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
                error = _salesforce_error(what, exc)
                if error.transient:
                    raise error from None
                if error.code == "REQUEST_LIMIT_EXCEEDED":
                    raise BudgetExhausted(
                        f"the org's daily API limit is reached: {error}"
                    ) from None
                raise AuthError(f"{what} refused: {error}", setting="adapters.salesforce") from None
            except SalesforceError as exc:
                raise _salesforce_error(what, exc) from None
            except requests.RequestException as exc:
                raise _transport_error(what, exc) from None
            finally:
                self._observe()
            return result

        def on_retry(failure: Failure) -> None:
            if failure.kind in ("http_503", "http_429", "unable_to_lock_row"):
                with self._counting:
                    self.throttled += 1
            if failure.kind == "http_429":
                self.traffic.pause(1.0)  # the whole pool backs off, not just this request

        return call_with_retries(
            self._scrubbed(once),
            _classify,
            attempts=self.settings.max_attempts,
            on_retry=on_retry,
            idempotent=idempotent,
            what=what,
            sleep=self.traffic.backoff,
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

    def restful(
        self, what: str, path: str, method: str, *, idempotent: bool = True, **kwargs: Any
    ) -> Any:
        return self.call(
            what, lambda sf: sf.restful(path, method=method, **kwargs), idempotent=idempotent
        )
