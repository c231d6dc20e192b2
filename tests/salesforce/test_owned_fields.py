"""highest_stage, customer_type and disqualified against the simulated org: written to the
CRMQ_* picklists and checkbox on Lead and Contact, read back so a rerun writes nothing,
refused by a restricted picklist, and named by doctor when an org lacks them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.simulator import schema
from crm_qualify.connector.mapping import load_mapping, owned_only
from crm_qualify.connector.model import FieldUpdate, RecordUpdate
from crm_qualify.connector.settings import CrmSettings, FieldPolicy, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.salesforce.conftest import settings_for

NEW = ("CRMQ_Highest_Stage__c", "CRMQ_Customer_Type__c", "CRMQ_Disqualified__c")


def people(sim) -> dict[str, dict]:
    leads = {i: r for i, r in sim.org.records["Lead"].items() if not r["IsConverted"]}
    return {**leads, **sim.org.records["Contact"]}


def keys(sim) -> list[tuple[str, str]]:
    return [("Lead" if i.startswith("00Q") else "Contact", i) for i in sorted(people(sim))]


def test_the_fields_land_in_salesforce_and_a_rerun_writes_none_of_them(
    sim, adapter, store, settings
):
    throwaway = sorted(i for i in people(sim) if i.startswith("00Q"))[0]
    sim.org.records["Lead"][throwaway]["Email"] = "someone@mailinator.com"
    engine = SyncEngine(adapter, settings, store)
    first = engine.run(RunOptions())
    assert first.status == "ok", first.errors
    for record, row in people(sim).items():
        assert row["CRMQ_Highest_Stage__c"] == row["CRMQ_Stage__c"], record
        assert row["CRMQ_Disqualified__c"] is (record == throwaway), record
        if row["CRMQ_Customer_Type__c"] is not None:
            assert row["CRMQ_Stage__c"] == "Customer" and record.startswith("003"), record
    types = {row["CRMQ_Customer_Type__c"] for row in people(sim).values()}
    assert types & {"One-time", "Recurring"} and types <= {None, "One-time", "Recurring", "Mixed"}

    before = {i: {name: row[name] for name in NEW} for i, row in people(sim).items()}
    writes = sim.stats.writes
    second = engine.run(RunOptions(contact_ids=keys(sim)))  # everyone read back from the org
    assert second.status == "ok", second.errors
    assert second.counts["read"] == len(before)
    assert second.counts["fields_written"] == 0 and sim.stats.writes == writes
    assert {i: {name: row[name] for name in NEW} for i, row in people(sim).items()} == before


def test_the_highest_stage_never_goes_down_and_an_unknown_one_is_replaced(
    sim, adapter, store, settings
):
    engine = SyncEngine(adapter, settings, store)
    assert engine.run(RunOptions()).status == "ok"
    leads = sorted(
        i for i, r in people(sim).items() if i.startswith("00Q") and r["CRMQ_Stage__c"] == "Lead"
    )
    kept, unknown = leads[:2]
    sim.touch(kept, {"CRMQ_Highest_Stage__c": "Customer", "CRMQ_Score__c": 101.0})
    sim.org.records["Lead"][unknown]["CRMQ_Highest_Stage__c"] = "Evangelist"  # a value since
    # removed from the picklist: Salesforce keeps it on the records that hold it
    run = engine.run(RunOptions(contact_ids=[("Lead", kept), ("Lead", unknown)]))
    assert run.status == "ok", run.errors
    assert sim.org.records["Lead"][kept]["CRMQ_Score__c"] != 101.0, "read and written again"
    assert sim.org.records["Lead"][kept]["CRMQ_Highest_Stage__c"] == "Customer"
    assert sim.org.records["Lead"][unknown]["CRMQ_Highest_Stage__c"] == "Lead"


def test_a_value_the_picklist_does_not_have_fails_its_record_naming_the_field(sim, adapter):
    lead, other = sorted(i for i in people(sim) if i.startswith("00Q"))[:2]
    refused, ok = adapter.write_updates(
        [
            RecordUpdate(
                contact_id=lead,
                object_type="Lead",
                changes=[FieldUpdate(field="customer_type", new="weekly")],
            ),
            RecordUpdate(
                contact_id=other,
                object_type="Lead",
                changes=[
                    FieldUpdate(field="customer_type", new="mixed"),
                    FieldUpdate(field="disqualified", new=True),
                    FieldUpdate(field="highest_stage", new="target"),
                ],
            ),
        ]
    )
    assert not refused.ok and not refused.retryable
    assert refused.field == "CRMQ_Customer_Type__c" and "restricted picklist" in refused.error
    assert ok.ok
    row = sim.org.records["Lead"][other]
    assert [row[name] for name in NEW] == ["Target", "Mixed", True]
    (contact,) = [r.translate() for b in adapter.read_contacts([("Lead", other)]) for r in b.raw]
    assert {k: contact.owned[k] for k in ("highest_stage", "customer_type", "disqualified")} == {
        "highest_stage": "target",
        "customer_type": "mixed",
        "disqualified": True,
    }


def test_an_org_without_the_fields_is_told_how_to_fix_it(sim, adapter, store):
    removed = {s: schema.OBJECTS[s].pop("CRMQ_Customer_Type__c") for s in ("Lead", "Contact")}
    try:
        checks = {c.name: c for c in adapter.check()}
        for sobject in ("Lead", "Contact"):
            assert not checks[f"{sobject} fields"].ok
            assert (
                "CRMQ_Customer_Type__c (Picklist: One-time, Recurring, Mixed) for field"
                " customer_type: create it, or set [fields.customer_type] owned = false"
            ) in checks[f"{sobject} fields"].detail
        settings = Settings(crm=CrmSettings(adapter="salesforce"))
        failed = SyncEngine(adapter, settings, store).run(RunOptions())
        assert failed.status == "failed" and "CRMQ_Customer_Type__c" in " ".join(failed.errors)
        assert "create them (a CRM admin does)" in " ".join(failed.errors), "no setup command"

        settings.fields["customer_type"] = FieldPolicy(owned=False)
        mapping = owned_only(load_mapping("salesforce"), settings.fields)
        given_up = SalesforceAdapter.from_config(settings_for(sim), mapping)
        assert all(c.ok for c in given_up.check())
        run = SyncEngine(given_up, settings, store).run(RunOptions())
        assert run.status == "ok", run.errors
        assert all(row["CRMQ_Highest_Stage__c"] for row in people(sim).values())
    finally:
        for sobject, spec in removed.items():
            schema.OBJECTS[sobject]["CRMQ_Customer_Type__c"] = spec


def test_a_field_that_cannot_hold_our_values_stops_the_sync_before_any_write(sim, adapter, store):
    """A restricted picklist without our values, a read-only field: one configuration error
    naming each, from the same rule as HubSpot's (`field_fit`), not a refusal per record."""
    rating, grade = schema.OBJECTS["Lead"]["Rating"], schema.OBJECTS["Contact"]["CRMQ_Grade__c"]
    saved = (list(rating["picklist"]), grade["updateable"])
    rating["picklist"], grade["updateable"] = ["A", "B", "C"], False
    try:
        checks = {c.name: c for c in adapter.check()}
        lead = checks["objects.Lead.fields.temperature = Rating"]
        assert not lead.ok and lead.detail == (
            "picklist with options A, B, C; crm-qualify writes one of Cold, Warm, Hot"
            " (Cold, Warm, Hot: no option)"
        )
        assert "add the option(s) Cold, Warm, Hot to Rating" in lead.fix
        contact = checks["objects.Contact.fields.grade = CRMQ_Grade__c"]
        assert not contact.ok and contact.detail.startswith("string, read-only;")
        sim.stats.reset()
        run = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="salesforce")), store).run(
            RunOptions()
        )
        assert run.status == "failed" and len(run.errors) == 1
        assert "objects.Lead.fields.temperature = Rating" in run.errors[0]
        assert "objects.Contact.fields.grade = CRMQ_Grade__c" in run.errors[0]
        assert sim.stats.writes == 0
    finally:
        rating["picklist"], grade["updateable"] = saved


def test_the_fields_fit_is_checked_once_per_configuration_not_every_run(sim, adapter, store):
    """The check describes each object: once a configuration's fields fit, a later run that
    writes asks nothing more (two requests saved on every incremental run); another
    configuration is checked again."""
    settings = Settings(crm=CrmSettings(adapter="salesforce"))

    def describes(run_with: Settings, days: int) -> tuple[int, int]:
        before = dict(adapter.usage().requests)
        run = SyncEngine(adapter, run_with, store).run(
            RunOptions(now=datetime.now(UTC) + timedelta(days=days))
        )
        assert run.status == "ok", run.errors
        used = {k: n - before.get(k, 0) for k, n in adapter.usage().requests.items()}
        asked = sum(n for k, n in used.items() if k.startswith("GET describe"))
        return asked, run.counts["fields_written"]

    assert describes(settings, 0)[0] == 2, "Lead and Contact, before the first write"
    asked, written = describes(settings, 40)
    assert written > 0 and asked == 0, "the same configuration: not again"
    other = Settings.model_validate(
        {"crm": {"adapter": "salesforce"}, "fields": {"grade": {"owned": False}}}
    )
    assert describes(other, 80)[0] == 2, "another configuration: checked again"


def test_a_field_of_another_kind_stops_the_run_before_it_reads(sim, adapter, store):
    """Reasons (text) mapped to a number field: its values cannot be read as ours either, and
    every Lead failed its read, each one needing attention, with the one error that said why
    last. The check comes first: one error, nothing read, no record needing attention."""
    reasons = schema.OBJECTS["Lead"]["CRMQ_Reasons__c"]
    saved = dict(reasons)
    reasons.update(type="double", precision=18, scale=0)
    try:
        run = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="salesforce")), store).run(
            RunOptions()
        )
        assert run.status == "failed" and len(run.errors) == 1, run.errors
        assert "objects.Lead.fields.reasons = CRMQ_Reasons__c" in run.errors[0]
        assert run.counts["read"] == 0 and store.attention("default") == []
    finally:
        reasons.clear()
        reasons.update(saved)
