"""Configuration: the shipped example is valid, every problem names its key, secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from crm_qualify.connector.cli import main
from crm_qualify.connector.settings import ConfigurationError, load_settings, resolve_secret_files
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"


def test_the_shipped_example_config_is_valid(capsys, monkeypatch):
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-na1-example")
    settings = load_settings(EXAMPLE)
    assert settings.crm.adapter == "hubspot"
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert "configuration ok" in capsys.readouterr().out


def test_every_problem_is_reported_with_its_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[sync]\nstate_pth = 'x'\n[schedule]\ninterval_minutes = -5\n"
        "[fields.scor]\npolicy = 'always'\n[logging]\nlevel = 'LOUD'\n"
    )
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    for key in ("sync.state_pth", "schedule.interval_minutes", "fields", "logging.level"):
        assert key in err, err


def test_rules_errors_name_the_rules_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules]\nno_such_rule = 1\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "rules.no_such_rule" in capsys.readouterr().err


def test_toml_syntax_error_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.toml"
    bad.write_text("[crm\nadapter = 'hubspot'\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "broken.toml" in capsys.readouterr().err


def test_missing_file_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings("/nonexistent/crm-qualify.toml")


def test_unknown_adapter_is_named(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[crm]\nadapter = 'pipedrive'\n")
    assert main(["config", "check", str(config)]) == 2
    assert "crm.adapter: unknown adapter 'pipedrive'" in capsys.readouterr().err


def test_environment_overrides_the_file_with_nested_keys(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("[sync]\nstate_path = 'from-file.sqlite'\n")
    monkeypatch.setenv("CRMQ_SYNC__STATE_PATH", "from-env.sqlite")
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-canary-123")
    settings = load_settings(config)
    assert settings.sync.state_path == Path("from-env.sqlite")
    assert settings.adapters["hubspot"]["access_token"].get_secret_value() == "pat-canary-123"


def test_secret_files_fill_their_option(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("pat-from-file\n")
    resolved = resolve_secret_files({"access_token_file": str(secret)})
    assert list(resolved) == ["access_token"]
    assert isinstance(resolved["access_token"], SecretStr)
    assert resolved["access_token"].get_secret_value() == "pat-from-file"


def test_unreadable_secret_file_names_the_key_not_the_content(tmp_path):
    with pytest.raises(ConfigurationError) as caught:
        resolve_secret_files({"password_file": str(tmp_path / "missing")}, "adapters.salesforce.")
    assert "adapters.salesforce.password_file" in str(caught.value)


def test_a_bad_secret_value_is_never_echoed(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\naccess_token = 12345\n")
    main(["config", "check", str(config)])
    captured = capsys.readouterr()
    assert "12345" not in captured.out + captured.err


def test_an_environment_value_that_is_not_json_for_its_table_is_a_configuration_error(
    monkeypatch, capsys
):
    monkeypatch.delenv("CRMQ_CONFIG", raising=False)
    monkeypatch.setenv("CRMQ_SCHEDULE", "{interval_minutes: 5")
    assert main(["config", "check"]) == 2
    assert 'field "schedule"' in capsys.readouterr().err
