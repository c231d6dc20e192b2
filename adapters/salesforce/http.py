"""The requests session every Salesforce call uses, with the configured certificate trust
and a timeout.

requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` from the environment override a
session's `verify` (psf/requests#3829), and simple-salesforce never passes `verify` per
request: a transport adapter that sets it on every send is the one place it sticks.
Verification is never turned off; a private CA (a proxy's, or the simulator's) is trusted
through its bundle. simple-salesforce passes no timeout either, and requests waits forever
without one: the same adapter sets it, so a silent server cannot hang a run.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter


class _TrustAdapter(HTTPAdapter):
    def __init__(self, verify: str | bool, timeout: float) -> None:
        super().__init__(max_retries=0)
        self.verify, self.timeout = verify, timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["verify"] = self.verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def make_session(ca_bundle: str | None, timeout: float = 60.0) -> requests.Session:
    """A session that trusts `ca_bundle` (a PEM path) or, when None, the system store, and
    gives up on a request after `timeout` seconds without an answer."""
    session = requests.Session()
    session.mount("https://", _TrustAdapter(ca_bundle or True, timeout))
    return session
