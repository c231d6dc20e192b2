"""Logging an admin can route: every record carries the current run id, lines are text on a
terminal or JSON for a log shipper, and secrets are masked in every line, whoever logs it."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import SecretStr

current_run_id: ContextVar[str | None] = ContextVar("crmq_run_id", default=None)


@contextmanager
def run_context(run_id: str) -> Iterator[None]:
    token = current_run_id.set(run_id)
    try:
        yield
    finally:
        current_run_id.reset(token)


class RunIdFilter(logging.Filter):
    """Adds `run_id` to every record so formatters (text or JSON) can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = current_run_id.get() or "-"
        return True


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
    re.compile(r"(://[^:/@\s]+:)[^@/\s]+(?=@)"),
]
_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Values that must never be printed, whatever the message that carries them."""
    _secrets.update(v for v in values if isinstance(v, str) and len(v) >= 4)


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


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` as ***, longest first since one may contain another."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def mask_secrets(text: str) -> str:
    """Registered secrets masked; unlike `redact`, `password: Field required` stays readable."""
    return mask_values(text, _secrets)


def redact(text: str) -> str:
    text = mask_secrets(text)
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


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


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "run_id": getattr(record, "run_id", "-"),
            "message": record.getMessage(),
        }
        return json.dumps(document, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s [run %(run_id)s] %(name)s: %(message)s"


def configure_logging(
    level: str = "INFO", fmt: str = "auto", stream: IO[str] | None = None
) -> logging.Handler:
    """Route every logger to one handler: readable on a terminal, JSON lines otherwise (or as
    configured), each line with the run id, secrets masked."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
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
    logging.captureWarnings(True)  # library warnings go through the same masking
    return handler
