"""The owned fields in configuration and mappings: highest_stage, customer_type and
disqualified default to owned like the others, both bundled mappings name a CRM field for
every owned field, and a field given up (`owned = false`) leaves the adapter's mapping, so a
CRM without it still syncs."""

from __future__ import annotations

from pathlib import Path

import pytest
from crm_qualify.connector.mapping import load_mapping, owned_only
from crm_qualify.connector.model import OWNED_FIELDS
from crm_qualify.connector.plugins import build_adapter
from crm_qualify.connector.settings import ConfigurationError, FieldPolicy, load_settings

ROOT = Path(__file__).resolve().parents[1]
NEW = ("highest_stage", "customer_type", "disqualified")


def test_an_existing_config_owns_the_new_fields(tmp_path):
    path = tmp_path / "crm-qualify.toml"
    path.write_text('[fields.score]\nowned = true\n[fields.grade]\npolicy = "if_empty"\n')
    fields = load_settings(path).fields
    assert set(NEW) <= set(OWNED_FIELDS)
    for name in NEW:
        assert fields[name].owned and fields[name].policy == "always"


def test_the_new_fields_take_a_policy_or_are_given_up(tmp_path):
    path = tmp_path / "crm-qualify.toml"
    path.write_text(
        '[fields.highest_stage]\npolicy = "if_empty"\n[fields.disqualified]\nowned = false\n'
    )
    fields = load_settings(path).fields
    assert fields["highest_stage"].policy == "if_empty"
    assert not fields["disqualified"].owned and fields["customer_type"].owned


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_every_bundled_object_maps_every_owned_field_and_its_values(crm):
    document = load_mapping(crm)
    for name, section in document["objects"].items():
        assert set(section["fields"]) == set(OWNED_FIELDS), name
        assert set(section["highest_stages"]) == {
            "target", "subscriber", "lead", "mql", "sql", "opportunity", "customer",
        }  # fmt: skip
        assert set(section["customer_types"]) == {"one_time", "recurring", "mixed"}


def test_a_mapping_with_an_unknown_customer_type_is_refused(tmp_path):
    bundled = (ROOT / "mappings" / "hubspot.toml").read_text(encoding="utf-8")
    path = tmp_path / "mine.toml"
    path.write_text(bundled.replace('mixed = "mixed"', 'weekly = "weekly"'))
    with pytest.raises(ConfigurationError) as caught:
        load_mapping("hubspot", path)
    assert "customer_types" in str(caught.value) and "weekly" in str(caught.value)


def test_fields_given_up_leave_the_mapping_but_the_stage_is_still_read():
    document = load_mapping("salesforce")
    policies = {
        "disqualified": FieldPolicy(owned=False),
        "stage": FieldPolicy(owned=False),
        "score": FieldPolicy(),
    }
    kept = owned_only(document, policies)
    for sobject in ("Lead", "Contact"):
        fields = kept["objects"][sobject]["fields"]
        assert "disqualified" not in fields and fields["stage"] == "CRMQ_Stage__c"
        assert fields["score"] == "CRMQ_Score__c"
        assert "disqualified" in document["objects"][sobject]["fields"], "input left as it was"
    assert owned_only(document, {"score": FieldPolicy()}) is document


def test_the_adapter_is_built_without_the_fields_given_up(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-na1-example")
    path = tmp_path / "crm-qualify.toml"
    path.write_text(
        "[fields.customer_type]\nowned = false\n[fields.highest_stage]\nowned = false\n"
    )
    adapter = build_adapter(load_settings(path))
    assert "crmq_customer_type" not in adapter.contacts.properties
    assert "crmq_highest_stage" not in adapter.contacts.properties
    assert "crmq_disqualified" in adapter.contacts.properties
    assert adapter.contacts.owned.fields["stage"] == "lifecyclestage"
