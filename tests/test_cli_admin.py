"""An admin's first hour at the command line: the version, help for every command, where the
configuration is found, read-only commands that create nothing, aligned `runs`, and one-line
errors that say what to do (a traceback only under --debug)."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint, version
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector import plugins
from crm_qualify.connector.cli import build_parser, main
from crm_qualify.connector.commands import doctor, schema
from crm_qualify.connector.ops import logs
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore
from urllib3.exceptions import MaxRetryError, NewConnectionError

from tests.fake_clock import set_state_clock
from tests.memory_adapter import MemoryAdapter
from tests.test_daemon import contacts

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "hubspot.toml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No CRMQ_* variable from the machine, an empty working directory, and no secret value
    that other tests registered (some are plain words) masking what is compared here."""
    monkeypatch.setattr(logs, "_secrets", set())
    for name in list(os.environ):
        if name.startswith("CRMQ_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --version and help ---------------------------------------------------------------------------
def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"crm-qualify {version('crm-qualify')}"


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, object]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[prefix + name] = sub
                found |= subcommands(sub, f"{prefix}{name} ")
    return found


def test_every_command_has_a_description_in_its_help():
    commands = subcommands(build_parser())
    assert {"doctor", "runs", "schema", "setup", "config check", "healthcheck"} <= set(commands)
    undescribed = [name for name, parser in commands.items() if not parser.description]
    assert not undescribed, f"add description= to: {undescribed}"


def test_help_of_each_command_shows_its_description():
    result = subprocess.run(
        ["crm-qualify", "doctor", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0 and "credentials" in result.stdout
    assert "--config" in result.stdout and "./crm-qualify.toml" in result.stdout


# one line, or the traceback under --debug ---------------------------------------------------
def boom(args: argparse.Namespace) -> int:
    raise RuntimeError("the sky fell\nsecond line")


def test_an_unexpected_error_is_one_line_without_debug(monkeypatch, capsys):
    monkeypatch.setattr(schema, "run", boom)
    assert main(["schema", "contact"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: RuntimeError: the sky fell (rerun with --debug for the traceback)"
    )


@pytest.mark.parametrize(
    "argv", [["--debug", "schema", "contact"], ["schema", "contact", "--debug"]]
)
def test_debug_shows_the_traceback_before_or_after_the_command(monkeypatch, capsys, argv):
    monkeypatch.setattr(schema, "run", boom)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("RuntimeError: the sky fell\nsecond line\n")


def test_a_missing_optional_package_names_the_extra_that_brings_it(monkeypatch, capsys):
    def needs_trustme(args: argparse.Namespace) -> int:
        raise ModuleNotFoundError("No module named 'trustme'", name="trustme")

    monkeypatch.setattr(schema, "run", needs_trustme)
    assert main(["schema", "contact"]) == 2
    assert "pip install 'crm-qualify[simulators]'" in capsys.readouterr().err


# where the configuration comes from ---------------------------------------------------------
def instance_in_use(capsys, *argv: str) -> str:
    assert main(["config", "check", *argv]) == 0
    return re.search(r"instance (\S+),", capsys.readouterr().out).group(1)


def test_config_is_found_by_flag_then_environment_then_working_directory(
    tmp_path, monkeypatch, capsys
):
    for name in ("cwd", "env", "flag"):
        (tmp_path / f"{name}.toml").write_text(f"[crm]\ninstance = '{name}'\n")
    assert instance_in_use(capsys) == "default", "no file: built-in defaults"
    (tmp_path / "crm-qualify.toml").write_text("[crm]\ninstance = 'cwd'\n")
    assert instance_in_use(capsys) == "cwd"
    monkeypatch.setenv("CRMQ_CONFIG", str(tmp_path / "env.toml"))
    assert instance_in_use(capsys) == "env"
    assert instance_in_use(capsys, str(tmp_path / "flag.toml")) == "flag"


def test_every_command_finds_the_file_in_the_working_directory(tmp_path, capsys):
    (tmp_path / "crm-qualify.toml").write_text("[rules.weights]\ndemo_request = 1\n")
    contact = {"id": "c1", "origin": "inbound", "events": [{"type": "demo_request", "at": NOW}]}
    (tmp_path / "one.jsonl").write_text(json.dumps(contact) + "\n")
    assert main(["score", "one.jsonl", "--now", NOW]) == 0
    here = json.loads(capsys.readouterr().out)
    (tmp_path / "crm-qualify.toml").unlink()
    assert main(["score", "one.jsonl", "--now", NOW]) == 0
    default = json.loads(capsys.readouterr().out)
    assert here["score"] < default["score"]


NOW = "2026-11-22T12:00:00Z"


# read-only commands never create a state file -----------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["runs"],
        ["runs", "--json"],
        ["errors"],
        ["errors", "--json"],
    ],
)
def test_read_only_commands_say_there_are_no_runs_and_create_nothing(tmp_path, capsys, argv):
    assert main(argv) == 0
    captured = capsys.readouterr()
    said = captured.err if "--json" in argv else captured.out
    assert said.strip() == (
        "no runs yet for instance default: no state file at crm-qualify.sqlite"
        " (`crm-qualify sync --once` or `crm-qualify run` creates it)"
    )
    if "--json" in argv:
        assert captured.out == "", "nothing a JSON reader would choke on"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["report", "duplicates"])
def test_a_report_without_a_state_file_is_the_empty_report_and_creates_no_state(
    tmp_path, capsys, command
):
    """`--html` wrote nothing and `--json` printed nothing, exit 0: a scheduled job kept
    yesterday's page, and a JSON reader got no input."""
    assert main([command, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["records" if command == "duplicates" else "contacts"] == 0
    assert "no runs yet for instance default" in captured.err
    page = tmp_path / "page.html"
    assert main([command, "--html", str(page)]) == 0
    assert "no runs yet for instance default" in capsys.readouterr().out
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert list(tmp_path.iterdir()) == [page], "no state file created"


def test_a_rollback_without_a_state_file_creates_none(tmp_path, capsys):
    assert main(["rollback", "20260101T000000-abcdef"]) == 2
    assert "no state file at crm-qualify.sqlite" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# runs ---------------------------------------------------------------------------------------
def seeded_runs(path: Path) -> dict[str, str]:
    store = StateStore(path)
    ids = {}
    ids["dry"] = store.start_run("default", mode="full", dry_run=True)
    store.finish_run(
        ids["dry"], "ok", {"read": 1200, "fields_planned": 3400, "tasks_planned": 69}, []
    )
    ids["sync"] = store.start_run("default", mode="incremental", dry_run=False)
    store.finish_run(
        ids["sync"],
        "partial",
        {"read": 1200, "fields_written": 3400, "tasks_created": 69},
        ["contacts/42 crmq_score: refused", "contacts/43 crmq_grade: refused"],
    )
    time.sleep(0.01)
    ids["rollback"] = store.start_run("default", mode=f"rollback of {ids['sync']}", dry_run=False)
    store.finish_run(ids["rollback"], "ok", {"fields_written": 3390, "tasks_closed": 69}, [])
    store.close()
    return ids


def test_runs_are_a_table_with_aligned_columns_and_a_rollback_shows_what_it_removed(
    tmp_path, capsys
):
    ids = seeded_runs(tmp_path / "crm-qualify.sqlite")
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, *rest = lines
    rows = [line for line in rest if not line.startswith("    ")]
    assert [row.split()[0] for row in rows] == [ids["rollback"], ids["sync"], ids["dry"]]
    for column in ("STARTED", "MODE", "STATUS", "FIELDS", "TASKS"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows), column
    for column in ("READ", "ERRORS"):  # numbers: right-aligned under the header's end
        end = header.index(column) + len(column)
        assert all(row[end - 1] != " " and row[end : end + 1] in ("", " ") for row in rows)
    rollback, sync, dry = rows
    assert "69 removed" in rollback and "3,390 restored" in rollback
    assert "69 created" in sync and "3,400 written" in sync and "partial" in sync
    assert "69 planned" in dry and "(dry run)" in dry
    assert "    contacts/42 crmq_score: refused" in lines


def test_runs_json_keeps_every_count(tmp_path, capsys):
    ids = seeded_runs(tmp_path / "crm-qualify.sqlite")
    assert main(["runs", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[0]["id"] == ids["rollback"]
    assert records[0]["counts"]["tasks_closed"] == 69


def test_runs_show_task_creates_whose_outcome_is_unknown(tmp_path, capsys):
    ids = seeded_runs(tmp_path / "crm-qualify.sqlite")
    store = StateStore(tmp_path / "crm-qualify.sqlite")
    lost = store.start_run("default", mode="once", dry_run=False)
    store.finish_run(lost, "ok", {"read": 5, "tasks_created": 1, "tasks_uncertain": 2}, [])
    store.close()
    assert main(["runs"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "1 created, 2 outcome unknown" in rows[lost]
    assert "unknown" not in rows[ids["sync"]]


def test_runs_count_the_tasks_a_run_found_after_an_unknown_outcome_as_created(tmp_path, capsys):
    """The run that settles lost answers showed "0 created" though it found 39 tasks."""
    store = StateStore(tmp_path / "crm-qualify.sqlite")
    settling = store.start_run("default", mode="once", dry_run=False)
    store.finish_run(settling, "ok", {"read": 5, "tasks_created": 3, "tasks_recovered": 39}, [])
    store.close()
    assert main(["runs"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert "42 created (39 found after an unknown outcome)" in row


def test_runs_show_the_follow_ups_a_sync_removed(tmp_path, capsys):
    seeded_runs(tmp_path / "crm-qualify.sqlite")
    store = StateStore(tmp_path / "crm-qualify.sqlite")
    merged = store.start_run("default", mode="once", dry_run=False)
    store.finish_run(merged, "ok", {"read": 5, "tasks_created": 0, "tasks_closed": 2}, [])
    store.close()
    assert main(["runs"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "0 created, 2 removed" in rows[merged], "doubled by a merge in the CRM"


def test_runs_name_a_full_read(tmp_path, capsys):
    """`--full` and an incremental run are both `sync --once`: the mode says which read all."""
    store = StateStore(tmp_path / "crm-qualify.sqlite")
    engine = SyncEngine(MemoryAdapter(contacts(3)), Settings(), store)
    first = engine.run(RunOptions())  # no cursor yet: everyone is read
    again = engine.run(RunOptions())
    full = engine.run(RunOptions(full=True))
    store.close()
    assert main(["runs"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "once, full" in rows[first.run_id] and "once, full" in rows[full.run_id]
    assert "once" in rows[again.run_id] and "full" not in rows[again.run_id]


def test_runs_are_newest_first_as_recorded_though_the_clock_was_set_back(
    tmp_path, capsys, monkeypatch
):
    """Ordered by start time, a run made while the clock was 100 days ahead stayed on top,
    and each run after the clock was corrected went below it (off the default --limit)."""
    store = StateStore(tmp_path / "crm-qualify.sqlite")
    engine = SyncEngine(MemoryAdapter(contacts(3)), Settings(), store)
    ids = [engine.run(RunOptions()).run_id]
    set_state_clock(monkeypatch, timedelta(days=100))
    ids.append(engine.run(RunOptions()).run_id)
    set_state_clock(monkeypatch, timedelta(0))
    ids += [engine.run(RunOptions()).run_id for _ in range(2)]
    store.close()
    assert main(["runs", "--limit", "3"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[0] for row in rows] == ids[:0:-1], "newest first, in the order recorded"
    ahead = datetime.now(UTC) + timedelta(days=100)
    assert rows[2][1] == f"{ahead:%Y-%m-%d}", "each shows its start time as stamped"


def test_runs_show_the_fields_the_policies_held_back(tmp_path, capsys):
    store = StateStore(tmp_path / "crm-qualify.sqlite")
    kept = store.start_run("default", mode="once", dry_run=False)
    counts = {"read": 5, "fields_written": 12, "fields_held_back": 3}
    store.finish_run(kept, "ok", counts, [])
    store.close()
    assert main(["runs"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "12 written, 3 held back" in rows[kept]


# simulate -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("crm", "size"), [("hubspot", "--contacts"), ("salesforce", "--records")])
def test_a_simulator_on_a_busy_port_says_so_in_one_line(crm, size):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(  # one record: the simulator seeds its data before it listens
            ["crm-qualify", "simulate", crm, "--port", str(port), size, "1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: the {crm} simulator cannot listen on port {port}: the port is already in"
        " use (another simulator still running?); stop what listens there, or pick another"
        " with --port (--port 0: any free port)"
    )
    assert "Traceback" not in result.stderr


# doctor -------------------------------------------------------------------------------------
def test_doctor_names_an_unreachable_url_and_the_cause_at_once(tmp_path, capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    (tmp_path / "crm-qualify.toml").write_text(
        f"[adapters.hubspot]\naccess_token = 'pat-x'\nbase_url = '{url}'\n"
    )
    started = time.monotonic()
    assert main(["doctor"]) == 1
    assert time.monotonic() - started < 5, "no minute of retries before saying so"
    captured = capsys.readouterr()
    assert f"[FAIL] reach {url}: connection refused" in captured.out
    assert "adapters.hubspot.base_url" in captured.out
    assert "retry" not in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("listening", [True, False])
def test_doctor_masks_the_password_a_url_holds(tmp_path, capsys, listening):
    """`[ok  ] reach http://apiuser:hunter2pw@…` printed the password a proxy needs."""
    with HubSpotSimulator(contacts=5) as sim:
        port = urlsplit(sim.base_url).port if listening else closed_port()
        (tmp_path / "crm-qualify.toml").write_text(
            f"[adapters.hubspot]\naccess_token = '{sim.token}'\n"
            f"base_url = 'http://apiuser:hunter2pw@127.0.0.1:{port}'\n"
        )
        main(["doctor"])
    out = capsys.readouterr().out
    mark = "[ok  ]" if listening else "[FAIL]"
    assert f"{mark} reach http://apiuser:***@127.0.0.1:{port}" in out
    assert "hunter2pw" not in out


class UnreachableAdapter(MemoryAdapter):
    """A CRM whose HTTP client gives up with urllib3's own error, not an AdapterError."""

    def check(self):
        reason = NewConnectionError(None, "Failed to establish a new connection: refused")
        raise MaxRetryError(None, "/crm/v3/properties/contacts", reason)


def as_memory_adapter(monkeypatch, tmp_path, where: str) -> Path:
    """The adapter class at `where` installed as `memory`, configured in the current
    directory's crm-qualify.toml (returned)."""
    known = plugins.available_adapters()
    monkeypatch.setattr(
        plugins,
        "available_adapters",
        lambda: {**known, "memory": EntryPoint("memory", where, "x")},
    )
    config = tmp_path / "crm-qualify.toml"
    config.write_text(f"[crm]\nadapter = 'memory'\nmapping_file = '{MAPPING}'\n")
    return config


@pytest.fixture
def unreachable_adapter(monkeypatch, tmp_path):
    as_memory_adapter(monkeypatch, tmp_path, "tests.test_cli_admin:UnreachableAdapter")


def test_doctor_reports_a_library_network_error_as_one_line(unreachable_adapter, capsys):
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] calling the memory API: NewConnectionError:" in out
    assert "Failed to establish a new connection: refused" in out


def test_doctor_under_debug_shows_the_library_error(unreachable_adapter, capsys):
    assert main(["--debug", "doctor"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and "MaxRetryError" in err


def test_network_cause_finds_the_innermost_reason():
    """As urllib3 builds it: MaxRetryError(reason=NewConnectionError from the socket error)."""
    reason = NewConnectionError(None, "Failed to establish a new connection")
    reason.__cause__ = ConnectionRefusedError(111, "Connection refused")
    cause = doctor.network_cause(MaxRetryError(None, "/x", reason))
    assert cause == "ConnectionRefusedError: [Errno 111] Connection refused"


@pytest.fixture
def memory_adapter(monkeypatch, tmp_path) -> Path:
    """`crm.adapter = 'memory'`: a CRM that cannot say who set a value (no `field_sources`)."""
    return as_memory_adapter(monkeypatch, tmp_path, "tests.memory_adapter:MemoryAdapter")


def test_doctor_warns_that_unless_edited_cannot_keep_edits_made_before_the_first_write(
    memory_adapter, capsys
):
    assert main(["doctor"]) == 0, "a warning, not a failure"
    out = capsys.readouterr().out
    assert (
        "[warn] who set a value: adapter memory has no field_sources, so unless_edited"
        " (temperature) keeps only what a person changed after crm-qualify's first write to"
        " the field, not a value set before it" in out
    )


def test_doctor_does_not_warn_without_an_unless_edited_field(memory_adapter, capsys):
    with memory_adapter.open("a") as config:
        config.write("[fields.temperature]\npolicy = 'always'\n")
    assert main(["doctor"]) == 0
    assert "[warn] who set a value" not in capsys.readouterr().out


def test_doctor_warns_that_the_clock_is_not_checked_without_clock_offset(memory_adapter, capsys):
    """A consultant's adapter without the optional `clock_offset` ran under a clock 30 days
    ahead and wrote on it: nothing said the check did not apply."""
    assert main(["doctor"]) == 0
    assert (
        "[warn] the clock: adapter memory has no clock_offset, so a run cannot tell this host's"
        " clock from the CRM's and sync.max_clock_offset_minutes is not applied"
    ) in capsys.readouterr().out


@pytest.mark.parametrize("name", ["hubspot", "salesforce"])
def test_the_built_in_adapters_answer_who_set_a_value(name):
    adapter = plugins.load_adapter_class(name)
    assert doctor.unkept_edits(Settings(crm={"adapter": name}), adapter) is None
    assert doctor.unchecked_clock(Settings(crm={"adapter": name}), adapter) is None


def salesforce_config(tmp_path: Path, **options: str) -> None:
    lines = [
        "[crm]",
        "adapter = 'salesforce'",
        "[adapters.salesforce]",
        f"login_url = 'https://127.0.0.1:{closed_port()}'",
        "allowed_domains = ['127.0.0.1']",
        "client_id = 'id'",
        "client_secret = 'cli-admin-client-secret-7f3'",
        "username = 'admin@example.com'",
        "password = 'cli-admin-password-7f3'",
        *(f"{key} = '{value}'" for key, value in options.items()),
    ]
    (tmp_path / "crm-qualify.toml").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("command", [["doctor"], ["sync", "--once", "--dry-run"]])
def test_a_missing_ca_bundle_is_named_before_any_call(tmp_path, capsys, command):
    salesforce_config(tmp_path, ca_bundle=str(tmp_path / "absent-ca.pem"))
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"adapters.salesforce.ca_bundle: {tmp_path / 'absent-ca.pem'}: no such file" in err
    assert "Traceback" not in err


# healthcheck --------------------------------------------------------------------------------
def test_healthcheck_of_a_daemon_that_is_not_there_is_unhealthy(tmp_path, capsys):
    port = closed_port()
    (tmp_path / "crm-qualify.toml").write_text(f"[server]\nport = {port}\n")
    assert main(["healthcheck", "--timeout", "2"]) == 1
    assert f"unhealthy: http://127.0.0.1:{port}/healthz" in capsys.readouterr().out


def test_healthcheck_with_a_broken_configuration_is_unhealthy_not_exit_2(tmp_path, capsys):
    (tmp_path / "crm-qualify.toml").write_text("[server]\nport = 'x'\n")
    assert main(["healthcheck"]) == 1
    assert "server.port" in capsys.readouterr().err


def test_healthcheck_url_uses_loopback_for_every_address():
    from crm_qualify.connector.settings import Settings

    assert doctor.health_url(Settings(server={"host": "0.0.0.0", "port": 9})) == (
        "http://127.0.0.1:9/healthz"
    )
    assert doctor.health_url(Settings(server={"host": "::", "port": 9})) == (
        "http://[::1]:9/healthz"
    )
    assert doctor.health_url(Settings(server={"host": "10.1.2.3", "port": 9})) == (
        "http://10.1.2.3:9/healthz"
    )


def test_the_cli_module_runs_as_a_script():
    result = subprocess.run(
        [sys.executable, "-m", "crm_qualify.connector.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.startswith("crm-qualify ")


def test_doctor_names_the_setting_to_fix_when_the_token_is_refused(tmp_path, capsys):
    """`[FAIL] credentials: HubSpot rejected the access token` said what, not where to fix."""
    with HubSpotSimulator(contacts=5) as sim:
        (tmp_path / "crm-qualify.toml").write_text(
            f"[adapters.hubspot]\naccess_token = 'pat-wrong-token'\nbase_url = '{sim.base_url}'\n"
        )
        assert main(["doctor", "--config", str(tmp_path / "crm-qualify.toml")]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] credentials: HubSpot rejected the access token" in out
    assert "fix: check adapters.hubspot.access_token" in out


def test_doctor_says_where_the_state_store_is_and_whether_a_sync_can_write_it(
    memory_adapter, capsys, tmp_path
):
    """An admin learns before the first sync where the state file will be (a relative
    path is the working directory's) and that its place takes it: a missing folder, a
    read-only mount (tried, not asked: root passes access(2)) and a directory in its place
    fail, naming the path and the key; doctor creates no state file."""
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    state = Path.cwd() / "crm-qualify.sqlite"
    assert f"[ok  ] state store: {state}: none yet, the first sync creates it" in out
    assert not state.exists()

    for place, problem in (
        (tmp_path / "no-such" / "s.sqlite", f"{tmp_path / 'no-such'}: no such folder"),
        (Path("/proc/s.sqlite"), "/proc: cannot create a file there"),
        (tmp_path, f"{tmp_path}: not a file"),
    ):
        with memory_adapter.open("a") as config:
            config.write(f"[sync]\nstate_path = '{place}'\n")
        assert main(["doctor"]) == 1, place
        out = capsys.readouterr().out
        assert f"[FAIL] state store: {problem}" in out, out
        assert "fix: set sync.state_path (CRMQ_SYNC__STATE_PATH)" in out
        memory_adapter.write_text(
            memory_adapter.read_text().replace(f"[sync]\nstate_path = '{place}'\n", "")
        )

    (tmp_path / "kept.sqlite").write_bytes(b"x" * 2_000_000)
    with memory_adapter.open("a") as config:
        config.write(f"[sync]\nstate_path = '{tmp_path / 'kept.sqlite'}'\n")
    assert main(["doctor"]) == 0
    assert f"[ok  ] state store: {tmp_path / 'kept.sqlite'} (2.0 MB)" in capsys.readouterr().out
