"""What docs/adapters.md ("Settings") tells a plugin author, held to the code: a settings
model without `extra="forbid"` lets typos through, and a credential stops the program before
any API call only when the model requires it (the documented validator refuses a blank one
too). HubSpot's own token is checked the same way."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from crm_qualify.connector import plugins
from crm_qualify.connector.cli import main
from crm_qualify.connector.commands import config as config_command
from crm_qualify.connector.ops import logs
from crm_qualify.connector.settings import OptionalSecret
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError

from tests.memory_adapter import MemoryAdapter
from tests.test_secrets import record_network

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "hubspot.toml"
TOKEN_VARIABLE = "CRMQ_ADAPTERS__MYCRM__API_TOKEN"


class Lenient(BaseModel):
    base_url: str = "http://127.0.0.1:9"
    api_token: SecretStr | None = None


class Documented(BaseModel):
    """The model docs/adapters.md shows."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = "http://127.0.0.1:9"
    api_token: OptionalSecret = Field(default=None, validate_default=True)

    @field_validator("api_token")
    @classmethod
    def _required(cls, value):
        if value is None:
            raise PydanticCustomError("missing", "required: the API token")
        return value


class LenientAdapter(MemoryAdapter):
    settings_model = Lenient

    @classmethod
    def from_config(cls, settings, mapping):
        return cls()


class DocumentedAdapter(LenientAdapter):
    settings_model = Documented


class UnusableMappingAdapter(LenientAdapter):
    """A plugin without a mapping schema, whose `from_config` refuses the mapping."""

    @classmethod
    def from_config(cls, settings, mapping):
        raise ValueError("'pageview' is not a valid EventType")


@pytest.fixture(autouse=True)
def no_registered_secrets(monkeypatch):
    monkeypatch.setattr(logs, "_secrets", set())
    for name in ("CRMQ_CONFIG", TOKEN_VARIABLE, "CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def install(monkeypatch, adapter: str) -> None:
    known = plugins.available_adapters()
    point = EntryPoint("mycrm", f"tests.test_plugin_settings:{adapter}", plugins.ADAPTER_GROUP)
    adapters = {**known, "mycrm": point}
    monkeypatch.setattr(plugins, "available_adapters", lambda: adapters)
    monkeypatch.setattr(config_command, "available_adapters", lambda: adapters)


def write_config(tmp_path: Path, options: str = "", adapter: str = "mycrm") -> Path:
    config = tmp_path / "crm-qualify.toml"
    mapping = f"mapping_file = '{MAPPING}'\n" if adapter == "mycrm" else ""
    config.write_text(
        f"[crm]\nadapter = '{adapter}'\n{mapping}[adapters.{adapter}]\n{options}"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
    )
    return config


@pytest.mark.parametrize(
    ("adapter", "caught"), [("LenientAdapter", False), ("DocumentedAdapter", True)]
)
def test_typos_in_options_pass_strict_check_unless_the_model_forbids_extras(
    tmp_path, monkeypatch, capsys, adapter, caught
):
    install(monkeypatch, adapter)
    config = write_config(
        tmp_path, "api_token = 'tok-1234'\nbase_ur = 'http://x'\napi_tokn = 'y'\n"
    )
    assert main(["config", "check", "--strict", str(config)]) == (2 if caught else 0)
    err = capsys.readouterr().err
    assert ("adapters.mycrm.base_ur: Extra inputs are not permitted" in err) == caught
    assert ("adapters.mycrm.api_tokn: Extra inputs are not permitted" in err) == caught


def test_an_optional_credential_is_never_asked_for_and_sync_goes_on_without_it(
    tmp_path, monkeypatch, capsys
):
    install(monkeypatch, "LenientAdapter")
    config = write_config(tmp_path)
    assert main(["config", "check", "--strict", str(config)]) == 0
    assert main(["sync", "--once", "--config", str(config)]) == 0


@pytest.mark.parametrize("token", [None, "", "  "])
def test_the_documented_credential_is_not_set_yet_for_check_and_stops_sync_and_doctor(
    tmp_path, monkeypatch, capsys, token
):
    install(monkeypatch, "DocumentedAdapter")
    if token is not None:
        monkeypatch.setenv(TOKEN_VARIABLE, token)
    config = write_config(tmp_path)
    assert main(["config", "check", str(config)]) == 0
    assert "warning: adapters.mycrm.api_token: not set yet" in capsys.readouterr().err
    assert main(["config", "check", "--strict", str(config)]) == 2
    connects, _ = record_network(monkeypatch)
    for command in (["sync", "--once"], ["doctor"]):
        assert main([*command, "--config", str(config)]) == 2
        assert "adapters.mycrm.api_token: required: the API token" in capsys.readouterr().err
    assert connects == [], "stopped before any API call"


def test_a_mapping_a_plugin_without_a_schema_cannot_use_is_named_by_its_file(
    tmp_path, monkeypatch, capsys
):
    """The adapter's own error can name no key: the file it came from is named."""
    install(monkeypatch, "UnusableMappingAdapter")
    config = write_config(tmp_path)
    expected = (
        f"crm.mapping_file: {MAPPING}: the mycrm adapter cannot use it: ValueError:"
        " 'pageview' is not a valid EventType"
    )
    for command in (["config", "check"], ["sync", "--once", "--config"]):
        assert main([*command, str(config)]) == 2
        assert expected in capsys.readouterr().err


@pytest.mark.parametrize("command", [["sync", "--once"], ["doctor"]])
def test_hubspot_with_no_access_token_at_all_stops_before_any_api_call(
    tmp_path, monkeypatch, capsys, command
):
    config = write_config(tmp_path, "base_url = 'http://127.0.0.1:9'\n", adapter="hubspot")
    connects, _ = record_network(monkeypatch)
    assert main([*command, "--config", str(config)]) == 2
    assert "adapters.hubspot.access_token: required with auth = 'private_app'" in (
        capsys.readouterr().err
    )
    assert connects == []
