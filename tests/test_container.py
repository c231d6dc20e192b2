"""What can be tested of the container without a docker engine: its files, its entrypoint
and its health check, run the way the image runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from crm_qualify.connector.commands.config import reference_markdown, reference_rows
from crm_qualify.connector.ops.observability import Health, Metrics, serve
from crm_qualify.connector.settings import Settings

from tests.test_scheduler import PATCHED_CLI

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_the_image_is_conventional_and_its_sources_exist():
    assert DOCKERFILE.startswith("#") and "FROM python:3.11-slim" in DOCKERFILE
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.M), "runs as a non-root user"
    assert 'VOLUME ["/data"]' in DOCKERFILE
    assert "CRMQ_SYNC__STATE_PATH=/data/" in DOCKERFILE
    assert 'ENTRYPOINT ["crm-qualify"]' in DOCKERFILE and 'CMD ["run"]' in DOCKERFILE
    for source in re.findall(r"^COPY (.+) \S+$", DOCKERFILE, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), name
    assert (ROOT / ".dockerignore").exists()


def _healthcheck_code() -> str:
    (line,) = [line for line in DOCKERFILE.splitlines() if "urlopen" in line]
    command = json.loads(line.strip().removeprefix("CMD "))
    assert command[:2] == ["python", "-c"]
    return command[2]


def test_the_healthcheck_passes_when_healthy_and_fails_when_not():
    health = Health(max_age_seconds=3600)
    server = serve("127.0.0.1", 0, Metrics("hubspot"), health)
    env = {**os.environ, "CRMQ_SERVER__PORT": str(server.server_address[1])}
    try:
        health.record("ok")
        assert subprocess.run([sys.executable, "-c", _healthcheck_code()], env=env).returncode == 0
        health.record("failed")
        failing = subprocess.run(
            [sys.executable, "-c", _healthcheck_code()], env=env, capture_output=True
        )
        assert failing.returncode != 0
    finally:
        server.shutdown()


def test_the_entrypoint_runs_as_the_container_would(tmp_path):
    env = {**os.environ, "CRMQ_CONFIG": "", "CRMQ_SYNC__STATE_PATH": str(tmp_path / "s.sqlite")}
    result = subprocess.run(["crm-qualify", "run", "--help"], env=env, capture_output=True)
    assert result.returncode == 0 and b"SIGTERM" in result.stdout
    missing = subprocess.run(
        ["crm-qualify", "config", "check"],
        env={**env, "CRMQ_CONFIG": str(tmp_path / "absent.toml")},
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "absent.toml" in missing.stderr


def test_the_admin_guide_holds_the_generated_configuration_reference():
    guide = (ROOT / "docs" / "admin.md").read_text()
    block = guide.split("<!-- reference:start -->\n", 1)[1].split("\n<!-- reference:end -->")[0]
    assert block == reference_markdown(), "run: crm-qualify config reference, paste into admin.md"


def image_env(tmp_path: Path) -> dict[str, str]:
    """The Dockerfile's ENV, with /config and /data moved under tmp_path."""
    block = re.findall(r"^ENV ((?:.*\\\n)*.*)$", DOCKERFILE, re.M)
    pairs = re.findall(r"(\w+)=(\S+)", " ".join(block))
    env = {name: value for name, value in pairs}
    env["CRMQ_CONFIG"] = str(tmp_path / env["CRMQ_CONFIG"].lstrip("/"))
    env["CRMQ_SYNC__STATE_PATH"] = str(tmp_path / env["CRMQ_SYNC__STATE_PATH"].lstrip("/"))
    return env


def test_the_image_command_runs_a_sync_and_passes_its_own_healthcheck(tmp_path):
    """ENTRYPOINT + CMD with the image's environment and a mounted config, against the
    in-memory CRM; the HEALTHCHECK command then asks the running daemon."""
    env = image_env(tmp_path)
    assert env["CRMQ_SYNC__STATE_PATH"].endswith("data/crm-qualify.sqlite")
    config = Path(env["CRMQ_CONFIG"])
    config.parent.mkdir(parents=True)
    Path(env["CRMQ_SYNC__STATE_PATH"]).parent.mkdir(parents=True)
    config.write_text(
        f"[crm]\nadapter = 'memory'\nmapping_file = '{ROOT / 'mappings' / 'hubspot.toml'}'\n"
        "[server]\nhost = '127.0.0.1'\n"
    )
    env = {**os.environ, **env, "CRMQ_SERVER__PORT": "0"}
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", DOCKERFILE, re.M).group(1))
    command = json.loads(re.search(r"^CMD (\[.+\])$", DOCKERFILE, re.M).group(1))
    assert entrypoint + command == ["crm-qualify", "run"]
    process = subprocess.Popen(
        [sys.executable, "-c", PATCHED_CLI, *command],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, port = [], None
    while not any('"run ok' in line for line in lines):
        line = process.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
        found = re.search(r"127\.0\.0\.1:(\d+)/healthz", line)
        port = port or (found and found.group(1))
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == len(lines), [line for line in lines if not line.startswith("{")]
    healthcheck = subprocess.run(
        [sys.executable, "-c", _healthcheck_code()], env={**env, "CRMQ_SERVER__PORT": port}
    )
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert healthcheck.returncode == 0
    assert process.returncode == 0
    assert Path(env["CRMQ_SYNC__STATE_PATH"]).exists(), "state on the /data volume"


def test_every_settings_key_is_in_the_admin_guide():
    guide = (ROOT / "docs" / "admin.md").read_text()
    for key, *_ in reference_rows(Settings):
        if key not in ("adapters", "fields"):  # tables: `adapters.<name>.…`, `fields.<field>.…`
            assert f"`{key}`" in guide, key
    for section in Settings.model_fields:
        assert f"`{section}." in guide or f"`[{section}]`" in guide, section
