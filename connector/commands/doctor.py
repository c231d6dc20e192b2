"""`crm-qualify doctor`, `crm-qualify setup <crm>` and `crm-qualify healthcheck`: check, then
prepare, a CRM for the sync; ask a running daemon whether it is healthy."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from crm_qualify.connector.commands.common import (
    adapter_or_exit,
    add_config_argument,
    config_path,
    settings_or_exit,
)
from crm_qualify.connector.contract import Adapter, AdapterError, CheckResult
from crm_qualify.connector.ops.file_rights import uncreatable, unwritable
from crm_qualify.connector.ops.logs import redact
from crm_qualify.connector.plugins import adapter_settings, load_adapter_class
from crm_qualify.connector.settings import Settings

PROBE_TIMEOUT = 5.0
"""Seconds `doctor` waits for a TCP connection to each configured endpoint."""


def register(subparsers: argparse._SubParsersAction) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="check credentials, permissions, fields and stage values; writes nothing",
        description=(
            "Check the configured CRM before a first sync: that its endpoint answers, that the"
            " credentials work and have the permissions needed, and that the mapped fields,"
            " task fields and stage values exist. Reads only; exit 0 when every check passes,"
            " 1 when one fails, 2 for a configuration error."
        ),
    )
    add_config_argument(doctor)
    doctor.set_defaults(handler=run_doctor)
    setup = subparsers.add_parser(
        "setup",
        help="create the custom fields the mapping needs, where the CRM allows it",
        description=(
            "Create the custom fields crm-qualify writes (score, reasons, temperature, the"
            " task key...) in the CRM, where its API allows it (HubSpot properties); fields"
            " that exist are left alone. Where an admin must create them (Salesforce), doctor"
            " lists what is missing."
        ),
    )
    setup.add_argument("crm", help="adapter name, e.g. hubspot (must match crm.adapter)")
    add_config_argument(setup)
    setup.set_defaults(handler=run_setup)
    health = subparsers.add_parser(
        "healthcheck",
        help="ask the running daemon's /healthz (the container's HEALTHCHECK); exit 0 or 1",
        description=(
            "Ask /healthz of the `crm-qualify run` daemon on this host, at the configured"
            " [server] port (TOML, or CRMQ_SERVER__PORT), and exit 0 when it is healthy, 1"
            " when not. The container's HEALTHCHECK runs it."
        ),
    )
    add_config_argument(health)
    health.add_argument(
        "--timeout", type=float, default=4.0, help="seconds to wait for an answer (default 4)"
    )
    health.set_defaults(handler=run_healthcheck)


def print_results(results: list[CheckResult]) -> bool:
    """An adapter's details are its client's words, and may quote the URL it called (a
    `?api_token=` in it): shown through `redact`, as log lines mask them."""
    for result in results:
        mark = ("warn" if result.warn else "ok  ") if result.ok else "FAIL"
        detail = f": {redact(result.detail)}" if result.detail else ""
        print(f"[{mark}] {result.name}{detail}")
        if result.fix and (result.warn or not result.ok):
            print(f"fix: {result.fix}")
    return all(result.ok for result in results)


def _adapter(args: argparse.Namespace) -> tuple[Settings, Adapter]:
    settings = settings_or_exit(args)
    return settings, adapter_or_exit(settings)


def endpoints(settings: Settings) -> list[tuple[str, str]]:
    """(option key, URL) for every http(s) URL among the active adapter's options
    (`base_url`, `login_url`, ...), defaults included. A URL may hold a proxy's `user:password@`:
    shown through `redact`, as log lines mask it."""
    options = adapter_settings(load_adapter_class(settings.crm.adapter), settings)
    found = []
    for key in type(options).model_fields:
        value = getattr(options, key, None)
        if not (key == "url" or key.endswith("_url")) or not isinstance(value, str):
            continue
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            found.append((key, value))
    return found


def unreachable(url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why a TCP connection to `url`'s host and port fails, or None when one opens (or when a
    proxy carries the traffic, so a direct connection says nothing)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return f"connection refused: nothing listens on {host}:{port} (is the server running?)"
    except socket.gaierror as exc:
        return f"the host name {host!r} does not resolve ({exc.strerror})"
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:g} s (firewall, wrong host or port?)"
    except OSError as exc:
        return f"{exc.strerror or exc} ({host}:{port})"


def network_cause(exc: BaseException) -> str:
    """The innermost reason in a chain of library exceptions (urllib3 wraps the socket error
    in `reason`, requests in `args`), as one line."""
    seen: set[int] = set()
    current: BaseException | None = exc
    innermost = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        innermost = current
        nested = getattr(current, "reason", None)
        if not isinstance(nested, BaseException):
            nested = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    text = str(innermost).strip().splitlines()
    return f"{type(innermost).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_doctor(args: argparse.Namespace) -> int:
    settings, adapter = _adapter(args)
    where = config_path(args)
    print(
        f"doctor: adapter {settings.crm.adapter}, instance {settings.crm.instance},"
        f" configuration {where or 'none (defaults and CRMQ_* variables)'}"
    )
    warnings = (
        unkept_edits(settings, adapter),
        unchecked_clock(settings, adapter),
        unanswered_criteria(settings, adapter),
    )
    for warning in warnings:
        if warning:
            print(f"[warn] {warning}")
    state_ok = print_results([state_check(Path(settings.sync.state_path))])
    urls = endpoints(settings)
    for key, url in urls:
        why = unreachable(url)
        if why:
            print(f"[FAIL] reach {redact(url)}: {why}")
            print(f"fix: check adapters.{settings.crm.adapter}.{key}, the network and any proxy")
            return 1
        print(f"[ok  ] reach {redact(url)}")
    try:
        return 0 if print_results(adapter.check()) and state_ok else 1
    except AdapterError as exc:
        print(f"[FAIL] {type(exc).__name__}: {redact(str(exc))}")
    except Exception as exc:  # a library's network error that no adapter turned into ours
        if getattr(args, "debug", False) or not is_network_error(exc):
            raise
        target = ", ".join(redact(url) for _, url in urls) or f"the {settings.crm.adapter} API"
        print(f"[FAIL] calling {target}: {network_cause(exc)}")
    return 1


def state_check(path: Path) -> CheckResult:
    """Where the state store is (`sync.state_path`, relative to the working directory) and
    whether a sync can write it there: SQLite creates its journal files beside it, so its
    folder must take new files too. A probe file is created and removed; the store itself is
    not opened."""
    where = path.absolute()
    if not where.parent.is_dir():
        problem: str | None = f"{where.parent}: no such folder"
    elif where.exists() and not where.is_file():
        problem = f"{where}: not a file"
    else:
        problem = uncreatable(where) or (unwritable(where) if where.exists() else None)
    if problem:
        fix = "set sync.state_path (CRMQ_SYNC__STATE_PATH) to a writable place, or fix its rights"
        return CheckResult("state store", False, problem, fix=fix)
    if not where.exists():
        return CheckResult("state store", True, f"{where}: none yet, the first sync creates it")
    return CheckResult("state store", True, f"{where} ({where.stat().st_size / 1e6:,.1f} MB)")


def unkept_edits(settings: Settings, adapter: Adapter | type) -> str | None:
    """Why `unless_edited` cannot keep a value a person set before crm-qualify's first write
    to the field, when it cannot: the adapter cannot say who set a value (no `field_sources`),
    so every setter is unknown and only a change since that write is kept. A warning, not a
    failure: the policy still keeps later edits."""
    if callable(getattr(adapter, "field_sources", None)):
        return None
    fields = [
        name
        for name, field in settings.fields.items()
        if field.owned and field.policy == "unless_edited"
    ]
    if not fields:
        return None
    return (
        f"who set a value: adapter {settings.crm.adapter} has no field_sources, so"
        f" unless_edited ({', '.join(sorted(fields))}) keeps only what a person changed after"
        " crm-qualify's first write to the field, not a value set before it"
    )


def unchecked_clock(settings: Settings, adapter: Adapter | type) -> str | None:
    """Why a run cannot stop on a host clock far from the CRM's, when it cannot: the adapter
    does not say the offset its answers' `Date` headers show (no `clock_offset`)."""
    if callable(getattr(adapter, "clock_offset", None)):
        return None
    if not settings.sync.max_clock_offset_minutes:
        return None
    return (
        f"the clock: adapter {settings.crm.adapter} has no clock_offset, so a run cannot tell"
        " this host's clock from the CRM's and sync.max_clock_offset_minutes is not applied"
    )


def unanswered_criteria(settings: Settings, adapter: Adapter | type) -> str | None:
    """Why no one can become SQL by the configured framework, when no one can: it requires
    criteria the mapping gives no answer for (the adapter's `answered_criteria`; a misspelt
    criterion is a configuration error, `mapping.Criteria`, a missing one is this). A warning,
    not a failure: SQL by score (`sql_by_score`) may be the intended path. An adapter that
    does not say which criteria it answers is not judged. `config check` and `doctor`."""
    answered = getattr(adapter, "answered_criteria", None)
    if answered is None:
        return None
    qualification = settings.rules.qualification
    lacking = [name for name, _ in qualification.required if name not in answered]
    if not lacking:
        return None
    table = getattr(adapter, "criteria_table", "qualification")
    mapping = settings.crm.mapping_file
    where = str(mapping) if mapping else f"bundled mappings/{settings.crm.adapter}.toml"
    copy = "" if mapping else " (copy it and set crm.mapping_file)"
    score = (
        "; SQL comes by score only (sql_by_score)"
        if settings.rules.thresholds.sql_by_score
        else ", nor by score (rules.thresholds.sql_by_score is off)"
    )
    return (
        f"rules.qualification: framework {qualification.framework} needs"
        f" {', '.join(lacking)}, with no answer in the mapping (it answers"
        f" {', '.join(sorted(answered)) or 'none'}), so no one becomes SQL by the"
        f" framework{score}. Map each criterion to the CRM field that holds its answer: add"
        f" each to [{table}] of {where}{copy}, or leave one out with [rules.qualification]"
        ' minimum.<criterion> = "not_met" (docs/scoring.md)'
    )


def is_network_error(exc: BaseException) -> bool:
    """A socket, TLS or HTTP-client failure (urllib3's errors are not `OSError`s)."""
    module = type(exc).__module__.split(".")[0]
    return isinstance(exc, OSError) or module in ("urllib3", "requests", "http")


def run_setup(args: argparse.Namespace) -> int:
    settings, adapter = _adapter(args)
    if args.crm != settings.crm.adapter:
        print(
            f"setup {args.crm}: the configuration uses crm.adapter = {settings.crm.adapter!r}",
            file=sys.stderr,
        )
        return 2
    setup = getattr(adapter, "setup", None)
    if setup is None:
        print(f"{args.crm}: this CRM's fields are created by an admin; run doctor for the list")
        return 1
    try:
        return 0 if print_results(setup()) else 1
    except AdapterError as exc:
        print(f"[FAIL] {type(exc).__name__}: {redact(str(exc))}")
        return 1


def health_url(settings: Settings) -> str | None:
    """Where this host's daemon answers /healthz: the configured port, on loopback when it
    listens on every address."""
    host = settings.server.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}/healthz"


def run_healthcheck(args: argparse.Namespace) -> int:
    """Asks the running daemon, which checked its own configuration at start: the adapter
    need not be importable here (a probe runs in the daemon's image, not its process)."""
    try:
        settings = settings_or_exit(args, adapter_names=False)
    except SystemExit:  # the problems are printed; Docker reserves exit code 2
        return 1
    if not settings.server.enabled:
        print("healthcheck: [server] enabled = false, so there is no /healthz to ask")
        return 0
    if settings.server.port == 0:
        print("unhealthy: server.port = 0 picks a free port at start; set a fixed port")
        return 1
    url = health_url(settings)
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            body = answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        print(f"unhealthy: {url} answered {exc.code}: {_health_summary(detail)}")
        return 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {network_cause(exc)}")
        return 1
    print(f"healthy: {url}: {_health_summary(body)}")
    return 0


def _health_summary(body: str) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body.strip()[:200]
    if not isinstance(document, dict):
        return body.strip()[:200]
    keys = ("last_run_status", "last_run_age_seconds", "seconds_since_success")
    return ", ".join(f"{key} {document.get(key)}" for key in keys if key in document) or body
