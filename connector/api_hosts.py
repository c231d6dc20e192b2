"""Where an adapter may send its credentials: over https to its CRM's own domains, or to hosts
an admin lists in the adapter's `allowed_domains` (a TLS proxy); plain http only where the
adapter allows this machine, on which a simulator listens. A URL outside them is a
configuration error, so a typo never sends a token to someone else's host."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit


def under_domains(host: str, domains: Iterable[str]) -> bool:
    """Whether `host` is one of `domains`, or under one (`acme.my.salesforce.com`)."""
    host = host.lower().rstrip(".")
    return any(
        host == domain or host.endswith("." + domain)
        for domain in (d.lower().strip(".") for d in domains)
    )


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address: a request to it never leaves this machine."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def endpoint_problem(
    url: str,
    *,
    crm: str,
    domains: Sequence[str],
    extra: Iterable[str],
    loopback: bool = False,
) -> str | None:
    """Why credentials may not be sent to `url`, or None. `loopback`: http or https to this
    machine is fine without listing it. The message never quotes the URL, which may hold a
    `user:password@`; the host alone is named."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "not a URL"
    if loopback and is_loopback(host) and parts.scheme in ("http", "https"):
        return None
    if parts.scheme != "https" or not host:
        plain_http = " (plain http:// only to this machine, e.g. the simulator)" if loopback else ""
        return f"must be an https:// URL{plain_http}"
    if not under_domains(host, (*domains, *extra)):
        return (
            f"host {host!r} is not under {crm}'s domains ({', '.join(domains)}): add it to"
            f" allowed_domains if it really serves {crm}'s API (a TLS proxy)"
        )
    return None
