"""The requests session every Salesforce call uses: certificate trust, a timeout, no redirects,
and no host but the ones the client logged in with.

requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` from the environment override a
session's `verify` (psf/requests#3829), and simple-salesforce never passes `verify` per
request: a transport adapter that sets it on every send is the one place it sticks.
Verification is never turned off; a private CA (a proxy's, or the simulator's) is trusted
through its bundle. simple-salesforce passes no timeout either, and requests waits forever
without one: the same adapter sets it, so a silent server cannot hang a run.

The same adapter is where credentials are kept home. requests follows redirects, re-posting a
307's body (a login form with the password) to wherever `Location` points; here any 3xx answer
is an error before requests looks at it, and a request to a host outside `hosts` (the login
host and the checked instance host) is refused before a byte is sent.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any
from urllib.parse import urlsplit

import requests
from crm_qualify.connector.crm_clock import CrmClock
from requests.adapters import HTTPAdapter


class RefusedRequest(requests.RequestException):
    """A request the session would not send, or an answer it would not use (never retried)."""


def host_of(url: str) -> str:
    """`host:port` of a URL, lower case, the port made explicit, so that equal hosts compare
    equal however they were written."""
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or 443}"


class _TrustAdapter(HTTPAdapter):
    def __init__(
        self,
        verify: str | bool,
        timeout: float,
        hosts: Set[str] | None,
        crm_clock: CrmClock | None = None,
    ) -> None:
        super().__init__(max_retries=0)
        self.verify, self.timeout, self.hosts = verify, timeout, hosts
        self.crm_clock = crm_clock

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        target = host_of(request.url or "")
        if self.hosts is not None and target not in self.hosts:
            raise RefusedRequest(
                f"refused to send a request to {target}: only to the login and instance hosts,"
                " over https"
            )
        kwargs["verify"] = self.verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        response = super().send(request, **kwargs)
        if self.crm_clock is not None:
            self.crm_clock.observe(response.headers.get("Date"))
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location") or ""
            response.close()
            elsewhere = f" to {host_of(location)}" if location.startswith("http") else ""
            raise RefusedRequest(
                f"{target} answered {response.status_code}, a redirect{elsewhere}: redirects are"
                " never followed"
            )
        return response


def make_session(
    ca_bundle: str | None,
    timeout: float = 60.0,
    hosts: Set[str] | None = None,
    crm_clock: CrmClock | None = None,
) -> requests.Session:
    """A session that trusts `ca_bundle` (a PEM path) or, when None, the system store, gives up
    on a request after `timeout` seconds without an answer, sends only to `hosts` (`host_of`
    values; a live set the caller may grow) when given, and tells `crm_clock` each answer's
    `Date`."""
    session = requests.Session()
    session.mount("https://", _TrustAdapter(ca_bundle or True, timeout, hosts, crm_clock))
    session.mount("http://", _TrustAdapter(ca_bundle or True, timeout, frozenset()))
    return session
