"""Value mappings: a customer's own property values mean canonical answers and stages, as the
mapping data says, for HubSpot (over a real socket) and Salesforce; a value the mapping does
not know fails its record, naming the property and the value; a bad mapping stops the program
naming the key."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.salesforce.translate import (
    ObjectMapping,
    PeopleMapping,
    Related,
    to_contact,
)
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import CriterionStatus, Stage
from crm_qualify.connector.settings import ConfigurationError

from tests.hubspot.conftest import FAST, make_adapter, translate_all

ROOT = Path(__file__).resolve().parents[1]


def test_hubspot_answers_and_stages_in_the_customers_own_values():
    document = copy.deepcopy(load_mapping("hubspot"))
    section = document["objects"]["contacts"]
    section["qualification"] |= {"budget": "budget_status", "need": "need_status"}
    section["qualification_values"]["budget"] = {"Signed off": "met", "Yes": "in_progress"}
    section["stage_values"] = {"evangelist": "customer"}
    with HubSpotSimulator(contacts=12, seed=4, custom_properties=True, **FAST) as sim:
        definitions = sim.store.definitions["contacts"]
        for name in ("budget_status", "need_status"):
            definitions[name] = {**definitions["jobtitle"], "name": name}
        ids = sorted(sim.store.objects["contacts"])[:6]
        values = ["Yes", "Approved", "Signed off", "met", "Maybe"]
        for record, value in zip(ids, values, strict=False):
            sim.touch(record, {"budget_status": value, "need_status": "Yes"})
        sim.touch(ids[5], {"lifecyclestage": "evangelist"})
        base = make_adapter(sim)
        adapter = HubSpotAdapter(base.settings, document, base.client)
        contacts, errors = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))

    by_id = {c.id: c for c in contacts}
    answers = [by_id[i].qualification.get("budget") for i in ids[:4]]
    assert answers == [
        CriterionStatus.IN_PROGRESS,  # the budget table's own meaning of "Yes"
        CriterionStatus.MET,  # the shared table
        CriterionStatus.MET,
        CriterionStatus.MET,  # canonical answers always mean themselves
    ]
    assert by_id[ids[0]].qualification["need"] is CriterionStatus.MET, "shared: Yes = met"
    assert [(e.record, e.field) for e in errors] == [(f"contacts/{ids[4]}", "budget_status")]
    assert "budget_status" in errors[0].message and "'Maybe'" in errors[0].message
    assert by_id[ids[5]].stage is Stage.CUSTOMER and by_id[ids[5]].owned["stage"] == "customer"


def test_salesforce_stage_values_and_unknown_answers():
    document = copy.deepcopy(load_mapping("salesforce"))
    document["objects"]["Lead"]["stage_values"] = {"Nurture": "lead"}
    lead = ObjectMapping.from_document(document, "Lead")
    people = PeopleMapping.from_document(document)
    related = Related(tasks={}, events={}, members={}, campaigns={}, deals={})
    row = {"Id": "00Q1", "SystemModstamp": "2026-11-20T10:00:00.000+0000"}
    nurtured = to_contact(lead, people, {**row, "CRMQ_Stage__c": "Nurture"}, related)
    assert nurtured.stage is Stage.LEAD
    with pytest.raises(ValueError, match="Qualification_Budget__c: unknown answer 'Maybe'"):
        to_contact(lead, people, {**row, "Qualification_Budget__c": "Maybe"}, related)


def test_a_mapping_with_an_unknown_answer_or_stage_is_refused(tmp_path):
    bundled = (ROOT / "mappings" / "hubspot.toml").read_text(encoding="utf-8")
    assert tomllib.loads(bundled)["objects"]["contacts"]["qualification_values"]
    path = tmp_path / "mine.toml"
    path.write_text(bundled.replace('"Approved" = "met"', '"Approved" = "probably"'))
    with pytest.raises(ConfigurationError) as caught:
        load_mapping("hubspot", path)
    assert "qualification_values" in str(caught.value) and "Approved" in str(caught.value)
    path.write_text(
        bundled.replace(
            "[objects.contacts.stage_values]\n", '[objects.contacts.stage_values]\n"1234" = "won"\n'
        )
    )
    with pytest.raises(ConfigurationError) as caught:
        load_mapping("hubspot", path)
    assert "stage_values" in str(caught.value)
