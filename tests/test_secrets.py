"""No secret is ever shown: a canary token set through TOML, the environment or a secret file
never appears in a repr, a dump, `config check`, a log line, an error message or the state
store, and is sent to the configured API host only, in the Authorization header."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.connector.cli import main
from crm_qualify.connector.commands import schema
from crm_qualify.connector.contract import AuthError
from crm_qualify.connector.ops.logs import mask_values, register_secrets
from crm_qualify.connector.plugins import adapter_settings, build_adapter, load_adapter_class
from crm_qualify.connector.settings import (
    ConfigurationError,
    CrmSettings,
    Settings,
    describe_validation_error,
    load_settings,
)
from pydantic import BaseModel, SecretStr, ValidationError, field_validator, model_validator

SOURCES = ("toml", "env", "file")
Sent = list[tuple[tuple[str, int], bytes]]


@pytest.fixture
def canary() -> str:
    """A fresh token per test: one registered for log masking earlier cannot hide a leak."""
    return f"pat-canary-{secrets.token_hex(16)}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CRMQ_"):
            monkeypatch.delenv(name)


@pytest.fixture(params=SOURCES)
def source(request: pytest.FixtureRequest) -> str:
    return request.param


def write_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    canary: str,
    *,
    base_url: str = "http://127.0.0.1:9",
    options: str = "",
    extra: str = "",
) -> Path:
    """A HubSpot configuration whose access token, the canary, comes through `source`."""
    table = f"base_url = '{base_url}'\n{options}"
    if source == "toml":
        table += f"access_token = '{canary}'\n"
    elif source == "env":
        monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", canary)
    else:
        secret = tmp_path / "hubspot_token"
        secret.write_text(canary + "\n")
        table += f"access_token_file = '{secret}'\n"
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\n{table}"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n{extra}"
    )
    return config


def test_settings_hold_the_canary_but_never_show_it(tmp_path, monkeypatch, source, canary):
    settings = load_settings(write_config(tmp_path, monkeypatch, source, canary))
    options = settings.adapter_options()
    shown = (
        repr(settings),
        str(settings),
        repr(settings.model_dump()),
        repr(settings.model_dump(mode="json")),
        settings.model_dump_json(),
        repr(options),
    )
    for text in shown:
        assert canary not in text
    assert isinstance(options["access_token"], SecretStr)
    assert options["access_token"].get_secret_value() == canary


def test_the_adapter_gets_the_canary_and_never_shows_it(tmp_path, monkeypatch, source, canary):
    settings = load_settings(write_config(tmp_path, monkeypatch, source, canary))
    adapter = build_adapter(settings)
    options = adapter_settings(load_adapter_class("hubspot"), settings)
    assert options.access_token.get_secret_value() == canary
    for text in (repr(adapter), str(adapter), repr(vars(adapter)), repr(options)):
        assert canary not in text


def test_config_check_of_a_valid_config_never_shows_the_canary(
    tmp_path, monkeypatch, capsys, source, canary
):
    assert main(["config", "check", str(write_config(tmp_path, monkeypatch, source, canary))]) == 0
    captured = capsys.readouterr()
    assert "configuration ok" in captured.out
    assert canary not in captured.out + captured.err


@pytest.mark.parametrize(
    ("options", "extra", "key"),
    [
        ("", "[schedule]\ninterval_minutes = -5\n", "schedule.interval_minutes"),
        ("requests_per_10s = 999\n", "", "adapters.hubspot.requests_per_10s"),
        ("acess_tokn = 'typo'\n", "", "adapters.hubspot.acess_tokn"),
    ],
)
def test_config_check_of_an_invalid_config_never_shows_the_canary(
    tmp_path, monkeypatch, capsys, source, canary, options, extra, key
):
    config = write_config(tmp_path, monkeypatch, source, canary, options=options, extra=extra)
    assert main(["config", "check", str(config)]) == 2
    captured = capsys.readouterr()
    assert key in captured.err
    assert canary not in captured.out + captured.err


@pytest.mark.parametrize(
    ("adapter", "table"),
    [
        ("hubspot", "access_token = ['{canary}']\n"),
        ("hubspot", "access_token = {{ value = '{canary}' }}\n"),
        ("hubspot", "access_token = '{canary}'\nrequests_per_10s = 999\n"),
        (
            "salesforce",
            "client_id = 'app'\nclient_secret = '{canary}'\nauth = 'refresh_token'\n"
            "refresh_token = 'r'\nmax_attempts = 0\n",
        ),
    ],
)
def test_a_wrong_value_never_shows_the_canary_in_the_error(
    tmp_path, capsys, canary, adapter, table
):
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = '{adapter}'\n[adapters.{adapter}]\n{table.format(canary=canary)}"
    )
    settings = load_settings(config)
    with pytest.raises(ConfigurationError) as caught:
        adapter_settings(load_adapter_class(adapter), settings)
    cause = caught.value.__context__
    assert isinstance(cause, ValidationError), "pydantic's own error, input_value and all"
    assert f"adapters.{adapter}" in str(caught.value)
    for text in (str(caught.value), str(cause), repr(cause.errors())):
        assert canary not in text
    assert main(["config", "check", str(config)]) == 2
    captured = capsys.readouterr()
    assert canary not in captured.out + captured.err


def test_a_one_letter_secret_does_not_garble_the_error_it_is_in(tmp_path, capsys):
    """`access_token = "x"` beside a misspelt key: `acess_token: E***tra inputs are not
    permitted`; every x of the message was masked, showing where the value's letter was."""
    config = tmp_path / "c.toml"
    config.write_text("[adapters.hubspot]\naccess_token = 'x'\nacess_token = 'x'\n")
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert "adapters.hubspot.acess_token: Extra inputs are not permitted" in err, err


def test_a_validator_message_quoting_a_secret_is_masked(canary):
    class PluginSettings(BaseModel):
        api_token: str

        @field_validator("api_token")
        @classmethod
        def _shape(cls, value: str) -> str:
            raise ValueError(f"{value!r} does not look like a token")

    class FlowSettings(BaseModel):
        @model_validator(mode="before")
        @classmethod
        def _flow(cls, data: Any) -> Any:
            raise ValueError(f"no flow accepts {data}")

    for model, options in (
        (PluginSettings, {"api_token": canary}),
        (FlowSettings, {"login": {"password": canary}}),
    ):
        with pytest.raises(ValidationError) as caught:
            model.model_validate(options)
        problems = describe_validation_error(caught.value, "adapters.plugin.")
        assert problems and all(p.startswith("adapters.plugin.") for p in problems)
        assert canary not in " ".join(problems)
        assert "***" in " ".join(problems), "the message is kept, the secret masked"


def test_secrets_are_concealed_nested_and_as_numbers_paths_and_flags_are_not(canary):
    settings = Settings(
        adapters={
            "plugin": {
                "oauth": {"refresh_token": canary, "client_id": "app"},
                "credentials": {"password": 31415926},
                "password_file": "/run/secrets/password",
                "session_reuse": True,
                "base_url": "https://crm.example",
            }
        }
    )
    plugin = settings.adapters["plugin"]
    assert isinstance(plugin["oauth"]["refresh_token"], SecretStr)
    assert plugin["oauth"]["client_id"] == "app"
    assert plugin["credentials"]["password"].get_secret_value() == "31415926"
    assert plugin["password_file"] == "/run/secrets/password"
    assert plugin["session_reuse"] is True
    assert canary not in repr(settings) and "31415926" not in settings.model_dump_json()


def test_an_option_the_adapter_declares_plain_gets_its_plain_value(canary):
    class PluginSettings(BaseModel):
        token_url: str
        session_minutes: int
        client_secret: SecretStr

    class Plugin:
        settings_model = PluginSettings

    settings = Settings(
        crm=CrmSettings(adapter="plugin"),
        adapters={
            "plugin": {
                "token_url": "https://login.example/token",
                "session_minutes": 30,
                "client_secret": canary,
            }
        },
    )
    options = adapter_settings(Plugin, settings)
    assert options.token_url == "https://login.example/token"
    assert options.session_minutes == 30
    assert options.client_secret.get_secret_value() == canary


def record_network(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], Sent]:
    """Every address any socket of this process connects to, and every chunk it sends with
    the peer it went to (the in-process simulator's answers included)."""
    connects: list[Any] = []
    sent: Sent = []

    def connect(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(sock: socket.socket, address: Any) -> Any:
            connects.append(address)
            return original(sock, address)

        return wrapper

    def send(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(sock: socket.socket, data: Any, *args: Any) -> Any:
            sent.append((sock.getpeername()[:2], bytes(data)))
            return original(sock, data, *args)

        return wrapper

    monkeypatch.setattr(socket.socket, "connect", connect(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "sendall", send(socket.socket.sendall))
    monkeypatch.setattr(socket.socket, "send", send(socket.socket.send))
    return connects, sent


def debug_lines(err: str, fmt: str) -> list[str]:
    if fmt == "json":
        records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        return [r["message"] for r in records if r["level"] == "DEBUG"]
    return [line for line in err.splitlines() if " DEBUG " in line]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_dry_run_sends_the_canary_only_to_the_api_host_and_never_logs_or_stores_it(
    tmp_path, monkeypatch, capsys, source, canary, fmt
):
    with HubSpotSimulator(contacts=40, seed=3, custom_properties=True, token=canary) as sim:
        assert sim.base_url is not None
        config = write_config(
            tmp_path,
            monkeypatch,
            source,
            canary,
            base_url=sim.base_url,
            extra=f"[logging]\nlevel = 'DEBUG'\nformat = '{fmt}'\n",
        )
        connects, sent = record_network(monkeypatch)
        code = main(["sync", "--once", "--dry-run", "--config", str(config)])
        settings = load_settings(config)
        logging.getLogger("crm_qualify.connector.test").debug(
            "settings %r, adapter %s, options %s",
            settings,
            build_adapter(settings),
            settings.adapter_options(),
        )
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    api = urlsplit(sim.base_url)
    assert set(connects) == {(api.hostname, api.port)}, "no connection anywhere else"
    carrying = [(peer, data) for peer, data in sent if canary.encode() in data]
    assert carrying, "the token was sent"
    assert {peer for peer, _ in carrying} == {(api.hostname, api.port)}
    lines = [
        line for _, data in carrying for line in data.split(b"\r\n") if canary.encode() in line
    ]
    assert set(lines) == {b"Authorization: Bearer " + canary.encode()}, "never in a URL or body"
    assert any("options {'base_url'" in line for line in debug_lines(captured.err, fmt))
    assert canary not in captured.out + captured.err
    stored = list(tmp_path.glob("state.sqlite*"))
    assert stored and all(canary.encode() not in path.read_bytes() for path in stored)


def test_a_refused_token_never_shows_in_the_exception(tmp_path, monkeypatch, source, canary):
    with HubSpotSimulator(contacts=5, seed=3, token="the-portal-wants-another") as sim:
        assert sim.base_url is not None
        config = write_config(
            tmp_path,
            monkeypatch,
            source,
            canary,
            base_url=sim.base_url,
            options="max_attempts = 1\n",
        )
        adapter = build_adapter(load_settings(config))
        with pytest.raises(AuthError) as caught:
            adapter.describe_fields("contacts")
    assert canary not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("blank", ["", " ", " \t "])
def test_a_blank_secret_is_refused_as_missing_before_any_request(
    tmp_path, monkeypatch, capsys, blank
):
    """An empty environment variable or secrets file is no token: without this, `sync` sent
    `Authorization: Bearer ` (empty) to the API."""
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        '[crm]\nadapter = "hubspot"\n[adapters.hubspot]\nbase_url = "http://127.0.0.1:9"\n'
        f'[sync]\nstate_path = "{tmp_path / "state.sqlite"}"\n'
    )
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", blank)
    connects, _ = record_network(monkeypatch)
    assert main(["sync", "--once", "--config", str(config)]) == 2
    assert connects == []
    err = capsys.readouterr().err
    assert "adapters.hubspot.access_token: required with auth = 'private_app'" in err, err
    with pytest.raises(ValidationError, match="client_secret"):
        SalesforceSettings(client_id="app", client_secret=blank, username="u", password="p")


def test_a_secret_from_the_environment_loses_its_surrounding_whitespace(
    tmp_path, monkeypatch, capsys, canary
):
    """`export TOKEN=$'…\\n'` or `$(cat token)` with a newline: without the strip, --debug
    doctor died on `ValueError: Invalid header value b'Bearer <token>\\n'`."""
    with HubSpotSimulator(contacts=5, seed=3, custom_properties=True, token=canary) as sim:
        assert sim.base_url is not None
        config = write_config(tmp_path, monkeypatch, "env", canary, base_url=sim.base_url)
        monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", f" {canary}\r\n")
        options = load_settings(config).adapter_options()  # a plugin's plain SecretStr too
        code = main(["--debug", "doctor", "--config", str(config)])
    assert options["access_token"].get_secret_value() == canary
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert canary not in captured.out + captured.err


@pytest.mark.parametrize("source", ["env", "file"])
@pytest.mark.parametrize("inside", ["\n", "\r\n", "\t", "\x07"])
@pytest.mark.parametrize("command", [["sync", "--once"], ["doctor"], ["config", "check"]])
def test_a_secret_with_a_control_character_inside_is_refused_by_key_before_any_request(
    tmp_path, monkeypatch, capsys, canary, source, inside, command
):
    """A secrets file of two lines: the second was sent as part of the token, and the error
    `Invalid header value b'Bearer ***\\nsecond-line'` showed it and was kept in the state
    store, where `runs` showed it again."""
    second = f"second-line-{secrets.token_hex(8)}"
    write_config(tmp_path, monkeypatch, source, f"{canary}{inside}{second}")
    monkeypatch.chdir(tmp_path)  # ./crm-qualify.toml
    connects, _ = record_network(monkeypatch)
    assert main(command) == 2
    assert main(["runs"]) == 0
    captured = capsys.readouterr()
    assert connects == []
    assert "adapters.hubspot.access_token: holds " in captured.err, captured.err
    for part in (canary, second):
        assert part not in captured.out + captured.err
    assert not list(tmp_path.glob("state.sqlite*")), "no state store was even created"


def test_a_multiline_private_key_is_kept_and_a_password_of_two_lines_refused(canary):
    pem = f"-----BEGIN PRIVATE KEY-----\n{canary}\n-----END PRIVATE KEY-----"
    options = {"client_id": "app", "auth": "jwt", "username": "u"}
    with pytest.raises(ValidationError) as caught:
        SalesforceSettings(**options, private_key=f"\n{pem}\n")
    assert caught.value.errors()[0]["loc"] == ("private_key",)
    assert "line break" not in str(caught.value) and canary not in str(caught.value)
    with pytest.raises(ValidationError, match="password\n.*holds a line break"):
        SalesforceSettings(
            client_id="app", client_secret="s", username="u", password=f"{canary}\nrest"
        )


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_an_unexpected_error_quoting_an_escaped_secret_is_masked_with_or_without_debug(
    monkeypatch, capsys, canary, debug
):
    """`http.client` quotes a refused header as bytes (`b'Bearer tok\\nline'`): the escaped
    form did not match the registered secret, and --debug printed Python's own traceback,
    which no masking saw."""
    secret = f"{canary}\nsecond-line-{secrets.token_hex(8)}"

    def refused_header(args: Any) -> int:
        register_secrets([secret])
        header = f"Bearer {secret}".encode()
        raise ValueError(f"Invalid header value {header!r}")

    monkeypatch.setattr(schema, "run", refused_header)
    assert main([*debug, "schema", "contact"]) == 1
    err = capsys.readouterr().err
    assert "Invalid header value b'Bearer ***'" in err
    assert ("Traceback" in err) == bool(debug)
    for part in secret.split("\n"):
        assert part not in err


def test_every_quoted_form_of_a_secret_is_masked(canary):
    secret = f"{canary}\t\u00e9'\n"
    for quoted in (
        repr(secret),
        json.dumps(secret),
        repr(secret.encode()),
        repr(secret.encode("latin-1")),
    ):
        masked = mask_values(f"got {quoted}", [secret])
        assert canary not in masked and "***" in masked, masked


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        ("http://api.hubapi.com", "must be an https:// URL"),
        ("ftp://x", "must be an https:// URL"),
        ("api.hubapi.com", "must be an https:// URL"),
        ("http://apiuser:hunter2pw@10.0.0.8:8080", "must be an https:// URL"),
        ("https://api.hubapi.co", "host 'api.hubapi.co' is not under HubSpot's domains"),
        ("https://hubapi.com.elsewhere.example", "add it to allowed_domains"),
        ("https://apiuser:hunter2pw@proxy.corp.example", "allowed_domains"),
    ],
)
def test_a_hubspot_base_url_that_would_carry_the_token_elsewhere_is_refused_by_key(
    tmp_path, monkeypatch, capsys, canary, base_url, says
):
    """`config check` accepted them all, and sync sent the token over plain http or to any
    host; now https under hubapi.com (or allowed_domains), or http to this machine."""
    write_config(tmp_path, monkeypatch, "env", canary, base_url=base_url)
    monkeypatch.chdir(tmp_path)
    connects, _ = record_network(monkeypatch)
    assert main(["config", "check"]) == 2
    assert main(["sync", "--once"]) == 2
    err = capsys.readouterr().err
    assert connects == []
    assert err.count("adapters.hubspot.base_url: ") == 2, "config check, then sync"
    assert says in err, err
    assert canary not in err and "hunter2pw" not in err


@pytest.mark.parametrize(
    ("base_url", "allowed_domains"),
    [
        ("https://api.hubapi.com", []),
        ("https://api-eu1.hubapi.com/", []),
        ("http://127.0.0.1:18799", []),
        ("http://localhost:18799", []),
        ("http://[::1]:18799", []),
        ("https://hubspot-proxy.corp.example", ["corp.example"]),
    ],
)
def test_hubspot_hosts_the_simulator_and_listed_proxies_are_accepted(base_url, allowed_domains):
    settings = HubSpotSettings(
        access_token="pat-x", base_url=base_url, allowed_domains=allowed_domains
    )
    assert settings.base_url == base_url


def test_a_secret_set_directly_wins_over_its_file_which_is_dropped_with_a_warning(
    tmp_path, monkeypatch, capsys, caplog, canary
):
    """The environment's token with the TOML's access_token_file gave
    `adapters.hubspot.access_token_file: Extra inputs are not permitted`."""
    config = write_config(tmp_path, monkeypatch, "file", f"{canary}-from-the-file")
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", canary)
    options = adapter_settings(load_adapter_class("hubspot"), load_settings(config))
    assert options.access_token.get_secret_value() == canary
    assert main(["config", "check", str(config)]) == 0
    captured = capsys.readouterr()
    assert canary not in captured.out + captured.err + caplog.text
    assert (
        "adapters.hubspot.access_token is set, so adapters.hubspot.access_token_file is not read"
        in caplog.text
    )


def test_an_adapter_its_client_and_settings_never_show_a_url_password_in_their_repr(tmp_path):
    """`HubSpotAdapter(base_url='http://apiuser:hunter2pw@…')` was what a log line showed, and
    the settings' own reprs showed it until they masked it."""
    config = tmp_path / "crm-qualify.toml"
    for adapter, table in (
        ("hubspot", "base_url = 'http://apiuser:hunter2pw@127.0.0.1:9'\naccess_token = 'pat-x'"),
        (
            "salesforce",
            "login_url = 'https://apiuser:hunter2pw@login.salesforce.com'\nclient_id = 'app'\n"
            "client_secret = 's'\nusername = 'u'\npassword = 'p'",
        ),
    ):
        config.write_text(f"[crm]\nadapter = '{adapter}'\n[adapters.{adapter}]\n{table}\n")
        settings = load_settings(config)
        built = build_adapter(settings)
        shown = (repr(built), repr(built.client), repr(settings), str(settings))
        for text in (*shown, repr(built.settings), str(built.settings)):
            assert "apiuser:***@" in text and "hunter2pw" not in text, text
