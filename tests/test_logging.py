"""Logs: text on a terminal, JSON lines otherwise, the run id on every line, no secret ever."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.salesforce.client import SalesforceCallError, _classify
from crm_qualify.connector.model import Contact, EngagementEvent, EventType, Origin
from crm_qualify.connector.ops.logs import (
    configure_logging,
    redact,
    register_secrets,
    run_context,
    secret_values,
)
from crm_qualify.connector.ops.scheduler import Daemon
from crm_qualify.connector.settings import ScheduleSettings, Settings
from crm_qualify.connector.sync.engine import SyncEngine
from crm_qualify.connector.sync.retrying import call_with_retries
from crm_qualify.connector.sync.state import StateStore
from pydantic import SecretStr

from tests.memory_adapter import MemoryAdapter

CANARY = "pat-canary-5b0e41d2c9"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def capture():
    """Our handler on a string stream; removed afterwards so other tests keep their logging."""
    handlers = []

    def configure(fmt: str = "auto", stream: io.StringIO | None = None) -> io.StringIO:
        stream = stream if stream is not None else io.StringIO()
        handlers.append(configure_logging("DEBUG", fmt, stream))
        return stream

    yield configure
    for handler in handlers:
        logging.getLogger().removeHandler(handler)
    logging.captureWarnings(False)


def sync(tmp_path) -> str:
    contact = Contact(
        id="c1",
        origin=Origin.INBOUND,
        updated_at=NOW,
        events=[EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(days=1))],
    )
    store = StateStore(tmp_path / "state.sqlite")
    summary = SyncEngine(MemoryAdapter([contact]), Settings(), store).run()
    store.close()
    return summary.run_id


def test_json_lines_carry_the_run_id(capture, tmp_path):
    stream = capture("json")
    logging.getLogger("crmq.test").info("before the run")
    run_id = sync(tmp_path)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records[0]["run_id"] == "-" and records[0]["message"] == "before the run"
    in_run = [r for r in records if r["logger"].startswith("crm_qualify.connector.")]
    assert in_run and all(r["run_id"] == run_id for r in in_run)
    assert {"time", "level", "logger", "run_id", "message"} <= set(records[-1])


def test_the_end_of_a_run_is_a_sentence_with_its_counts_as_json_fields(capture, tmp_path):
    stream = capture("json")
    run_id = sync(tmp_path)
    (end,) = [json.loads(line) for line in stream.getvalue().splitlines() if '"run ok' in line]
    assert end["run_id"] == run_id and end["status"] == "ok"
    assert end["message"].startswith("run ok: read 1, scored 1, fields written ")
    assert "{" not in end["message"] and "_" not in end["message"]
    assert end["counts"]["read"] == 1 and end["counts"]["tasks_created"] == 1


def test_lines_from_other_threads_during_a_run_carry_its_id(capture):
    stream = capture("json")
    scheduler = logging.getLogger("apscheduler.scheduler")

    def elsewhere() -> None:
        scheduler.warning("Execution of job skipped: maximum number of running instances")

    with run_context("run-9"):
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    scheduler.warning("between runs")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["run_id"] for r in records] == ["run-9", "-"]


def test_a_scheduled_run_has_its_id_on_every_line_apscheduler_included(capture, tmp_path):
    stream = capture("json")
    contact = Contact(id="c1", origin=Origin.INBOUND, updated_at=NOW)
    engine = SyncEngine(MemoryAdapter([contact]), Settings(), StateStore(tmp_path / "s.sqlite"))
    daemon = Daemon(engine, ScheduleSettings(interval_minutes=60, jitter_seconds=0))
    daemon.start()
    deadline = time.monotonic() + 20
    while '"run ok' not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert daemon.stop(10)
    engine.store.close()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    start = next(i for i, r in enumerate(records) if r["message"].startswith("run started"))
    end = next(i for i, r in enumerate(records) if r["message"].startswith("run ok"))
    run_id = records[start]["run_id"]
    assert run_id != "-" and all(r["run_id"] == run_id for r in records[start : end + 1])
    assert any(r["logger"].startswith("apscheduler") for r in records), "its lines still show"
    assert not any("Running job" in r["message"] for r in records), (
        "the executor's job lines, before the run has an id, say what 'run started' says"
    )


def test_auto_is_text_on_a_terminal_and_json_otherwise(capture, tmp_path):
    terminal = capture("auto", Terminal())
    run_id = sync(tmp_path)
    lines = terminal.getvalue().splitlines()
    assert lines and all(f"[run {run_id}]" in line for line in lines)
    assert not lines[0].startswith("{")
    piped = capture("auto")
    logging.getLogger("crmq.test").warning("piped")
    assert json.loads(piped.getvalue())["message"] == "piped"


def test_registered_secrets_and_token_shapes_are_masked_in_every_logger(capture):
    register_secrets(secret_values({"hubspot": {"access_token": SecretStr(CANARY)}}))
    stream = capture("json")
    library = logging.getLogger("urllib3.connectionpool")
    level, library.level = library.level, logging.DEBUG  # other tests may have quieted it
    library.debug("GET /crm?hapikey=%s", CANARY)
    library.setLevel(level)
    logging.getLogger("simple_salesforce").info("headers {'Authorization': 'Bearer 00Dabc!xyz12'}")
    logging.getLogger("crm_qualify.connector.x").info(
        "login password=hunter2hunter, access_token=abc.def"
    )
    try:
        raise RuntimeError(f"server said: bad token {CANARY}")
    except RuntimeError:
        logging.getLogger("crm_qualify.connector.y").exception("request failed")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"unverified request with {CANARY}", UserWarning, stacklevel=1)
    text = stream.getvalue()
    assert CANARY not in text
    for leaked in ("00Dabc!xyz12", "hunter2hunter", "abc.def"):
        assert leaked not in text
    assert "GET /crm?hapikey=***" in text
    assert "'Authorization': 'Bearer ***'" in text
    assert "password=***, access_token=***" in text
    assert "RuntimeError: server said: bad token ***" in text, "the traceback is kept, masked"
    assert "unverified request with ***" in text, "warnings go through the same filter"


def test_masking_keeps_ordinary_words():
    for text in ("Bearer of bad news", "token bucket refilled", "basic information"):
        assert redact(text) == text
    assert redact("https://me:s3cret@proxy:8080/") == "https://me:***@proxy:8080/"
    assert redact("<sessionId>00D!AQ.x</sessionId>") == "<sessionId>***</sessionId>"


def test_secret_values_finds_nested_and_secretstr_options_but_not_file_paths():
    found = secret_values(
        {
            "hubspot": {"access_token": "pat-1", "base_url": "https://api.hubapi.com"},
            "salesforce": {
                "client_secret": SecretStr("cs-2"),
                "password_file": "/run/secrets/sf_password",
                "username": "admin@example.com",
            },
        }
    )
    assert found == ["pat-1", "cs-2"]


@pytest.mark.parametrize("token_matches", [True, False])
def test_a_file_secret_never_reaches_any_output_even_on_errors(tmp_path, token_matches):
    """`sync --once` at DEBUG with the token read from a /run/secrets-style file; when the
    CRM refuses it, the 401 error path must not echo it either."""
    secret = tmp_path / "hubspot_token"
    secret.write_text(CANARY + "\n")
    sim_token = CANARY if token_matches else "another-token-entirely"
    with HubSpotSimulator(contacts=40, seed=3, custom_properties=True, token=sim_token) as sim:
        config = tmp_path / "crm-qualify.toml"
        config.write_text(
            f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
            f"access_token_file = '{secret}'\nmax_attempts = 1\n"
            f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
            "[logging]\nlevel = 'DEBUG'\nformat = 'json'\n"
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "crm_qualify.connector.cli",
                "sync",
                "--once",
                "--config",
                str(config),
            ],
            env={**os.environ, "CRMQ_CONFIG": ""},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == (0 if token_matches else 1), result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "run_id" in output, "logs were captured"
    assert CANARY not in output
    if token_matches:  # DEBUG shows every request (one user saw no line more than at INFO)
        debug = [json.loads(line) for line in result.stderr.splitlines() if '"DEBUG"' in line]
        assert any(line["message"].endswith(" ms") for line in debug), result.stderr[-2000:]
    store = StateStore(tmp_path / "state.sqlite")
    (run,) = store.runs()
    assert CANARY not in json.dumps(run.errors)
    assert bool(run.errors) != token_matches
    store.close()


def test_a_retry_names_its_request_and_a_failed_connection_as_such(caplog):
    """Salesforce retries logged `transient http_None, retry 1 of 4`: no request named, and
    a connection that failed before any answer shown as an HTTP status of None."""
    reset = SalesforceCallError(
        "GET query Lead", None, "", "reset", transient=True, unprocessed=True
    )
    failures = iter([reset])

    def flaky() -> str:
        failure = next(failures, None)
        if failure:
            raise failure
        return "ok"

    with caplog.at_level("WARNING"):
        assert call_with_retries(flaky, _classify, max_wait=0, what="GET query Lead") == "ok"
    assert "GET query Lead: transient connection, retry 1 of 5" in caplog.text
