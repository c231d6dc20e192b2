"""A text field shorter than what crm-qualify writes there (reasons mapped to the simulated
org's 80-character CRMQ_Duplicate_Group__c): Salesforce refuses the whole record
(STRING_TOO_LONG), so the text is cut to the field's length as the describe answer gives it,
ending in "…", and the record's other owned fields land; doctor says so beforehand; the cut
value read back is what we wrote, so a rerun writes nothing."""

from __future__ import annotations

from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.connector.commands.sync import diff_rows
from crm_qualify.connector.field_fit import learn_lengths
from crm_qualify.connector.mapping import load_mapping, owned_only
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.salesforce.conftest import settings_for

SHORT = "CRMQ_Duplicate_Group__c"
"""Text(80) in the simulated org."""


def settings() -> Settings:
    return Settings(crm=CrmSettings(adapter="salesforce"))


def short_reasons(sim) -> SalesforceAdapter:
    """The adapter as `crm-qualify` builds it from a mapping copy whose Lead reasons go to an
    80-character field (`plugins.construct`: the mapping without the fields not owned)."""
    mapping = load_mapping("salesforce")
    fields = mapping["objects"]["Lead"]["fields"]
    del fields["duplicate_group"]
    fields["reasons"] = SHORT
    return SalesforceAdapter.from_config(
        settings_for(sim, max_attempts=3), owned_only(mapping, settings().fields)
    )


def leads(sim) -> dict[str, dict]:
    return {i: r for i, r in sim.org.records["Lead"].items() if not r["IsConverted"]}


def test_doctor_says_longer_reasons_will_be_cut_naming_the_key_the_field_and_its_length(sim):
    checks = {c.name: c for c in short_reasons(sim).check()}
    note = checks[f"objects.Lead.fields.reasons = {SHORT}"]
    assert note.ok, "a note, not a failure: the write lands, cut"
    assert "80 characters" in note.detail and "cut" in note.detail and "…" in note.detail
    assert all(check.ok for check in checks.values()), [c for c in checks.values() if not c.ok]


def test_long_reasons_are_cut_to_the_field_so_the_record_lands_and_a_rerun_writes_nothing(
    sim, store
):
    planned: list = []
    dry_adapter = short_reasons(sim)
    learn_lengths(dry_adapter)  # as `sync --dry-run` does, to show what the real run writes
    dry = SyncEngine(dry_adapter, settings(), store, on_batch=planned.append).run(
        RunOptions(dry_run=True)
    )
    assert dry.status == "ok", dry.errors
    shown = [
        row["new"]
        for report in planned
        for row in diff_rows(report, dry_adapter.owned_fields)
        if row.get("field") == "reasons" and row["record"].startswith("Lead/")
    ]
    assert max(map(len, shown)) == 80 and sum(text.endswith("…") for text in shown) > 10
    run = SyncEngine(short_reasons(sim), settings(), store).run(RunOptions())
    assert run.status == "ok", run.errors
    assert not [e for e in run.errors if "STRING_TOO_LONG" in e]
    rows = leads(sim)
    cut = [r[SHORT] for r in rows.values() if r[SHORT] and r[SHORT].endswith("…")]
    assert len(cut) > 10 and all(len(text) == 80 for text in cut)
    assert all(len(r[SHORT] or "") <= 80 for r in rows.values())
    assert all(r["CRMQ_Stage__c"] and r["CRMQ_Score__c"] is not None for r in rows.values())
    assert all(r["Rating"] for r in rows.values())
    dry_fields = sum(len(u.changes) for report in planned for u in report.updates)
    assert dry_fields == run.counts["fields_written"], "dry = real minus the writes"
    written = {i: r[SHORT] for i, r in rows.items() if r[SHORT]}
    assert sorted(shown) == sorted(written.values()), "the dry run showed what landed"

    writes = sim.stats.writes
    again = SyncEngine(short_reasons(sim), settings(), store).run(
        RunOptions(contact_ids=[("Lead", i) for i in sorted(rows)])
    )
    assert again.status == "ok", again.errors
    assert again.counts["fields_written"] == 0 and sim.stats.writes == writes


def test_a_new_process_after_the_fit_check_cuts_too(sim, store):
    """The fit check (which describes) runs once per configuration: a later process, which
    does not run it, still knows each text field's length before it writes."""
    first = SyncEngine(short_reasons(sim), settings(), store).run(RunOptions())
    assert first.status == "ok", first.errors
    lead = sorted(i for i, r in leads(sim).items() if r[SHORT] and r[SHORT].endswith("…"))[0]
    sim.touch(lead, {SHORT: "x", "CRMQ_Score__c": 101.0})
    later = SyncEngine(short_reasons(sim), settings(), store).run(
        RunOptions(contact_ids=[("Lead", lead)])
    )
    assert later.status == "ok", later.errors
    row = sim.org.records["Lead"][lead]
    assert len(row[SHORT]) == 80 and row[SHORT].endswith("…") and row["CRMQ_Score__c"] != 101.0
