"""Logging an admin can route: every record carries the current run id, lines are text on a
terminal or JSON for a log shipper, and secrets are masked in every line, whoever logs it.

On a terminal, lines go through one shared `rich` console (`console_for`), the same one the
live progress line (`crm_qualify.connector.ops.progress`) draws on, so a log line is printed
above the progress line instead of over it. A message is a sentence a person reads; what a
program needs (counts, progress) also rides in `extra=` and becomes JSON fields.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote, quote_plus

from pydantic import SecretStr
from rich.console import Console
from rich.text import Text

current_run_id: ContextVar[str | None] = ContextVar("crmq_run_id", default=None)
_active_runs: dict[int, str] = {}
"""Runs in flight in this process, newest last: a line logged by another thread during a run
(APScheduler's scheduler thread, an HTTP pool) carries the run's id too."""
_active_lock = threading.Lock()


@contextmanager
def run_context(run_id: str) -> Iterator[None]:
    token = current_run_id.set(run_id)
    with _active_lock:
        slot = max(_active_runs, default=0) + 1
        _active_runs[slot] = run_id
    try:
        yield
    finally:
        with _active_lock:
            _active_runs.pop(slot, None)
        current_run_id.reset(token)


def active_run_id() -> str | None:
    """The run this thread is in, else the newest run in flight in this process, else None."""
    run_id = current_run_id.get()
    if run_id:
        return run_id
    with _active_lock:
        return _active_runs[max(_active_runs)] if _active_runs else None


class RunIdFilter(logging.Filter):
    """Adds `run_id` to every record so formatters (text or JSON) can print it. It sits on the
    handler, not on a logger, so third-party loggers' records (APScheduler, urllib3) get it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = active_run_id() or "-"
        return True


COUNT_WORDS = {
    "read": "read",
    "scored": "scored",
    "fields_written": "fields written",
    "records_written": "records written",
    "tasks_created": "tasks created",
    "tasks_closed": "tasks removed",
    "fields_planned": "fields planned",
    "tasks_planned": "tasks planned",
    "fields_held_back": "held back",
}
"""The counts a person reads first, in this order, and how a sentence names them."""
IMPACT_COUNTS = frozenset(
    {"stages_moving", "stages_moved", "temperatures_moving", "temperatures_moved"}
)
"""Counts the sync's own impact line gives ('moved: ...'), left out of the sentence."""


def counts_sentence(counts: Mapping[str, int]) -> str:
    """`read 300, scored 300, fields written 120, …`: the main counts first, the others
    after, zeros left out (except `read`), underscores as spaces."""
    parts = [
        f"{word} {counts.get(key, 0):,}"
        for key, word in COUNT_WORDS.items()
        if counts.get(key) or key == "read"
    ]
    parts += [
        f"{key.replace('_', ' ')} {value:,}"
        for key, value in sorted(counts.items())
        if key not in COUNT_WORDS and key not in IMPACT_COUNTS and value
    ]
    return ", ".join(parts)


SECRET_KEYS = (
    "token",
    "password",
    "passphrase",
    "secret",
    "api_key",
    "apikey",
    "private_key",
    "session",
)
"""Option names holding one of these (access_token, client_secret, session_id...) are secret."""
_PATTERNS = [
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=!-]{8,}"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:basic|oauth|token)\s+)[^\s\"',}]+"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|password|security_token|api_key"
        r"|session_?id)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}<]+"
    ),
    re.compile(r"(?i)(<(?:sessionId|password)>)[^<]+"),
    re.compile(  # a query or form parameter whose name `is_secret_key`: ?api_token=, &apikey=
        r"(?i)([?&](?![\w.-]*_file=)[\w.-]*(?:" + "|".join(SECRET_KEYS) + r")[\w.-]*=)[^&#\s\"'<>]+"
    ),
]
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@/\s]+(?=@)")
_secrets: set[str] = set()
SHORTEST_SECRET = 4
"""Shorter values are not masked: `x` as a token masked every x of a message (`E***tra
inputs are not permitted`), which garbled it and showed where the value's letters were."""


def register_secrets(values: Iterable[str]) -> None:
    """Values that must never be printed, whatever the message that carries them."""
    _secrets.update(v for v in values if isinstance(v, str) and len(v) >= SHORTEST_SECRET)


def is_secret_key(key: str) -> bool:
    """A secret-looking option name; `X_file` holds a path to the secret, not the secret."""
    name = key.lower()
    return not name.endswith("_file") and any(part in name for part in SECRET_KEYS)


def secret_values(options: dict[str, Any]) -> list[str]:
    """Secret-looking option values (tokens, passwords, keys) in a settings table, nested."""
    found = []
    for key, value in options.items():
        if isinstance(value, dict):
            found += secret_values(value)
        elif isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif is_secret_key(key) and isinstance(value, str):
            found.append(value)
    return found


def without_secrets(options: dict[str, Any]) -> dict[str, Any]:
    """A settings table less its secrets, nested: each secret-looking option or `SecretStr`
    value, and each `X_file` (where a secret is read from). What a fingerprint may depend on:
    a rotated token is no change, and no secret, not even hashed, reaches the state store."""
    return {
        key: without_secrets(value) if isinstance(value, dict) else value
        for key, value in options.items()
        if not (is_secret_key(key) or key.lower().endswith("_file") or isinstance(value, SecretStr))
    }


_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"
"""What `requests` leaves unquoted in a URL it is given whole (`requote_uri`)."""
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def quoted_forms(secret: str) -> set[str]:
    """`secret` as messages may quote it: as is, and escaped as `repr` of a str or of its
    bytes and JSON write it. `http.client` refuses a header with `Invalid header value
    b'Bearer tok\\n'`: the escaped newline would keep the plain secret from matching. A client
    error quotes the URL it sent, so also every way a URL or form body carries it:
    percent-encoded as a query value (`quote_plus`, as `requests` encodes `params=`), a path
    segment, or a URL built by hand, with upper- or lower-case escapes."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    for encoding in ("utf-8", "latin-1"):  # the body's, and the one http.client sends headers in
        forms.add(repr(secret.encode(encoding, "backslashreplace"))[2:-1])
    encoded = {quote_plus(secret), quote(secret, safe=""), quote(secret), quote(secret, _URI_SAFE)}
    forms |= encoded | {_PERCENT.sub(lambda m: m.group().lower(), form) for form in encoded}
    return forms


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (in any of its `quoted_forms`) as ***, longest first since
    one may contain another. A blank one (a secret set to spaces, refused as unset) would mask
    every space, and one under `SHORTEST_SECRET` characters every such letter: skipped."""
    kept = {secret for secret in secrets if len(secret.strip()) >= SHORTEST_SECRET}
    forms = {form for secret in kept for form in quoted_forms(secret)}
    for form in sorted(forms, key=len, reverse=True):
        if form.strip() and form in text:
            text = text.replace(form, "***")
    return text


def mask_secrets(text: str) -> str:
    """Registered secrets masked; unlike `redact`, `password: Field required` stays readable."""
    return mask_values(text, _secrets)


def mask_url_passwords(text: str) -> str:
    """`scheme://user:password@host` as `scheme://user:***@host`, wherever it occurs."""
    return _URL_PASSWORD.sub(r"\1***", text)


def redact(text: str) -> str:
    text = mask_secrets(text)
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1***", text)
    return mask_url_passwords(text)


class RedactFilter(logging.Filter):
    """On every handler: masks registered secrets and token-shaped strings in any record,
    including those of third-party loggers (urllib3, hubspot, simple_salesforce)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            cleaned += "\n" + redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


_STANDARD = set(vars(logging.LogRecord("x", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "run_id",
    "taskName",
}


def _structured(value: Any) -> Any:
    """An `extra=` value as JSON can hold it, strings masked like the message."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _structured(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_structured(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: the sentence in `message`, and every field
    a caller passed with `extra=` (counts, progress) as a field of its own."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "run_id": getattr(record, "run_id", "-"),
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in document:
                document[key] = _structured(value)
        return json.dumps(document, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s [run %(run_id)s] %(name)s: %(message)s"
LEVEL_STYLES = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red", "DEBUG": "dim"}

_consoles: dict[int, Console] = {}
_consoles_lock = threading.Lock()


def console_for(stream: IO[str]) -> Console:
    """The one rich console writing to `stream`: the log handler and the progress line share
    it, which is what keeps them from overwriting each other on a terminal."""
    with _consoles_lock:
        console = _consoles.get(id(stream))
        if console is None or console.file is not stream:
            console = Console(file=stream, highlight=False, soft_wrap=True, emoji=False)
            _consoles[id(stream)] = console
        return console


class ConsoleHandler(logging.Handler):
    """Text lines through the shared rich console: above a live progress line, never over it.
    Lines are not re-wrapped (the terminal wraps them), so a copied line is one line."""

    def __init__(self, console: Console, styled: bool = True) -> None:
        super().__init__()
        self.console = console
        self.styled = styled

    def emit(self, record: logging.LogRecord) -> None:
        try:
            style = LEVEL_STYLES.get(record.levelname, "") if self.styled else ""
            line = Text(self.format(record), style=style)
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


def configure_logging(
    level: str = "INFO", fmt: str = "auto", stream: IO[str] | None = None
) -> logging.Handler:
    """Route every logger to one handler: readable on a terminal, JSON lines otherwise (or as
    configured), each line with the run id, secrets masked."""
    stream = stream or sys.stderr
    terminal = stream.isatty()
    use_json = fmt == "json" or (fmt == "auto" and not terminal)
    handler: logging.Handler
    if terminal:  # through the console a live progress line draws on, JSON lines included
        handler = ConsoleHandler(console_for(stream), styled=not use_json)
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RunIdFilter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "crmq", False):
            root.removeHandler(old)
    handler.crmq = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler's "Running job"/"executed successfully" come before the run has an id and
    # after it ended; "run started" and "run ok" say the same with the id. Its warnings
    # (a missed or skipped run) still show, with the id of the run in flight.
    logging.getLogger("apscheduler.executors").setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)  # library warnings go through the same masking
    return handler
