"""Adapters load through entry points and are checked against the contract."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from crm_qualify.connector import plugins
from crm_qualify.connector.contract import REQUIRED_METHODS
from crm_qualify.connector.mapping import ADAPTER_GROUP, load_mapping
from crm_qualify.connector.settings import ConfigurationError


class Incomplete:
    name = "broken"

    def check(self):
        return []


def _fake_entry_points(monkeypatch, value: str) -> None:
    point = EntryPoint(name="broken", value=value, group=ADAPTER_GROUP)
    monkeypatch.setattr(plugins, "available_adapters", lambda: {"broken": point})


def test_a_plugin_missing_methods_is_named_with_what_it_lacks(monkeypatch):
    _fake_entry_points(monkeypatch, "tests.test_plugins:Incomplete")
    with pytest.raises(plugins.PluginError) as caught:
        plugins.load_adapter_class("broken")
    message = str(caught.value)
    assert "'broken'" in message and "tests.test_plugins:Incomplete" in message
    assert "write_updates" in message and "settings_model" in message


def test_a_plugin_that_fails_to_import_is_named(monkeypatch):
    _fake_entry_points(monkeypatch, "tests.no_such_module:Adapter")
    with pytest.raises(plugins.PluginError, match="'broken'.*failed to import"):
        plugins.load_adapter_class("broken")


def test_the_memory_adapter_satisfies_the_contract(monkeypatch):
    _fake_entry_points(monkeypatch, "tests.memory_adapter:MemoryAdapter")
    adapter_class = plugins.load_adapter_class("broken")
    assert all(callable(getattr(adapter_class, name)) for name in REQUIRED_METHODS)


def test_unknown_adapter_lists_the_installed_ones():
    with pytest.raises(ConfigurationError, match="available: .*hubspot"):
        plugins.load_adapter_class("nope")


def test_built_in_adapters_are_registered():
    assert {"hubspot", "salesforce"} <= set(plugins.available_adapters())


def test_a_plugin_ships_its_mapping_beside_its_adapter_module(tmp_path, monkeypatch):
    """A consultant's package cannot add to `crm_qualify.mappings`: its `<name>.toml` next to
    the module its entry point names is the bundled mapping (`demo --crm <name>` has no other
    way to get one)."""
    package = tmp_path / "toyplug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "adapter.py").write_text("class ToyAdapter: ...\n")
    (package / "toy.toml").write_text('crm = "toy"\n[objects.people.fields]\nscore = "points"\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    point = EntryPoint(name="toy", value="toyplug.adapter:ToyAdapter", group=ADAPTER_GROUP)
    monkeypatch.setattr(
        "crm_qualify.connector.mapping.entry_points",
        lambda group, name: [point] if (group, name) == (ADAPTER_GROUP, "toy") else [],
    )
    assert load_mapping("toy")["objects"]["people"]["fields"] == {"score": "points"}
    with pytest.raises(ConfigurationError, match="cannot read bundled mappings/other.toml"):
        load_mapping("other")
