"""highest_stage, customer_type and disqualified against the simulated portal: written as the
crmq_* properties `setup` creates, read back so a rerun writes nothing, refused by HubSpot
when a value is not an option, and named by doctor when a portal lacks them."""

from __future__ import annotations

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.mapping import load_mapping, owned_only
from crm_qualify.connector.model import FieldUpdate, RecordUpdate, Stage
from crm_qualify.connector.settings import CrmSettings, FieldPolicy, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.hubspot.conftest import FAST, FakeClock, make_adapter, translate_all

NEW = ("crmq_highest_stage", "crmq_customer_type", "crmq_disqualified")
CANONICAL = {
    v: Stage(k) for k, v in load_mapping("hubspot")["objects"]["contacts"]["stages"].items()
}


def props(sim: HubSpotSimulator) -> dict[str, dict[str, str]]:
    return {i: r["properties"] for i, r in sim.store.objects["contacts"].items()}


def test_the_fields_land_in_hubspot_and_a_rerun_writes_none_of_them(sim, adapter, store, settings):
    engine = SyncEngine(adapter, settings, store)
    first = engine.run(RunOptions())
    assert first.status == "ok", first.errors
    people = props(sim)
    assert all(p.get("crmq_disqualified") in ("true", "false") for p in people.values())
    assert any(p["crmq_disqualified"] == "true" for p in people.values()), "throw-away addresses"
    for record, p in people.items():
        highest = Stage(p["crmq_highest_stage"])  # an option value, canonical
        if p.get("lifecyclestage") in CANONICAL:
            assert highest == CANONICAL[p["lifecyclestage"]], record
        if p.get("crmq_customer_type"):
            assert highest is Stage.CUSTOMER, record
    types = {p.get("crmq_customer_type") for p in people.values()}
    assert types & {"one_time", "recurring"} and types <= {None, "one_time", "recurring", "mixed"}

    before = {i: {name: p.get(name) for name in NEW} for i, p in props(sim).items()}
    every = [("contacts", i) for i in sorted(people)]
    second = engine.run(RunOptions(contact_ids=every))  # every contact read back from HubSpot
    assert second.status == "ok", second.errors
    assert second.counts["read"] == 400
    assert second.counts["fields_written"] == 0
    assert {i: {name: p.get(name) for name in NEW} for i, p in props(sim).items()} == before


def test_the_highest_stage_a_person_or_an_earlier_run_set_is_kept(sim, adapter, store, settings):
    engine = SyncEngine(adapter, settings, store)
    assert engine.run(RunOptions()).status == "ok"
    lead = next(i for i, p in sorted(props(sim).items()) if p["crmq_highest_stage"] == "lead")
    score = props(sim)[lead]["crmq_score"]
    sim.touch(lead, {"crmq_highest_stage": "customer", "crmq_score": "101"})
    again = engine.run(RunOptions(contact_ids=[("contacts", lead)]))
    assert again.status == "ok", again.errors
    assert props(sim)[lead]["crmq_score"] == score, "the contact was read and written again"
    assert props(sim)[lead]["crmq_highest_stage"] == "customer", "never goes down"


def test_a_highest_stage_that_is_no_option_any_more_is_replaced(sim, adapter, store, settings):
    engine = SyncEngine(adapter, settings, store)
    assert engine.run(RunOptions()).status == "ok"
    record = sorted(sim.store.objects["contacts"])[0]
    written = props(sim)[record]["crmq_highest_stage"]
    props(sim)[record]["crmq_highest_stage"] = "legacy_stage"  # an option since deleted
    (contact,), errors = translate_all(adapter.read_contacts([("contacts", record)]))
    assert not errors and contact.owned["highest_stage"] == "legacy_stage"
    run = engine.run(RunOptions(contact_ids=[("contacts", record)]))
    assert run.status == "ok", run.errors
    assert props(sim)[record]["crmq_highest_stage"] == written


def test_values_hubspot_refuses_fail_their_record_naming_the_property(sim, adapter):
    ids = sorted(sim.store.objects["contacts"])[:3]
    updates = [
        RecordUpdate(contact_id=ids[0], changes=[FieldUpdate(field="customer_type", new="weekly")]),
        RecordUpdate(contact_id=ids[1], changes=[FieldUpdate(field="highest_stage", new="won")]),
        RecordUpdate(
            contact_id=ids[2],
            changes=[
                FieldUpdate(field="customer_type", new="mixed"),
                FieldUpdate(field="disqualified", new=True),
                FieldUpdate(field="highest_stage", new="target"),
            ],
        ),
    ]
    refused_type, refused_stage, ok = adapter.write_updates(updates)
    assert not refused_type.ok and not refused_type.retryable
    assert refused_type.field == "crmq_customer_type"
    assert not refused_stage.ok and refused_stage.field == "crmq_highest_stage"
    assert ok.ok
    with pytest.raises(ValueError, match="not a valid boolean"):  # the adapter sends only
        sim.touch(ids[0], {"crmq_disqualified": "maybe"})  # true / false; HubSpot checks
    stored = props(sim)[ids[2]]
    assert (stored["crmq_customer_type"], stored["crmq_disqualified"]) == ("mixed", "true")
    assert stored["crmq_highest_stage"] == "target", "target has an option, unlike lifecyclestage"
    (contact,), _ = translate_all(adapter.read_contacts([("contacts", ids[2])]))
    assert {k: contact.owned[k] for k in ("customer_type", "disqualified", "highest_stage")} == {
        "customer_type": "mixed",
        "disqualified": True,
        "highest_stage": "target",
    }


def _adapter(sim: HubSpotSimulator, mapping: dict) -> HubSpotAdapter:
    adapter = make_adapter(sim)
    clock = FakeClock()
    client = HubSpotClient(adapter.settings, clock=clock, sleep=clock.sleep)
    return HubSpotAdapter(adapter.settings, mapping, client)


def test_a_portal_set_up_before_these_fields_is_told_how_to_fix_it(store):
    with HubSpotSimulator(contacts=30, seed=2, **FAST) as older:
        adapter = make_adapter(older)
        assert all(c.ok for c in adapter.setup())
        for name in NEW:  # as a portal set up by an earlier version has it
            del older.store.definitions["contacts"][name]
        missing = {c.name: c for c in adapter.check()}["mapped properties"]
        assert not missing.ok
        for name, field in zip(
            NEW, ("highest_stage", "customer_type", "disqualified"), strict=True
        ):
            assert f"{name} for field {field}: run crm-qualify setup hubspot" in missing.detail
            assert f"[fields.{field}] owned = false" in missing.detail
        assert "crmq_score" not in missing.detail

        policies = {name: FieldPolicy(owned=False) for name in ("highest_stage", "customer_type")}
        settings = Settings(crm=CrmSettings(adapter="hubspot"), fields=policies)
        given_up = _adapter(older, owned_only(load_mapping("hubspot"), settings.fields))
        checks = {c.name: c for c in given_up.check()}
        assert not checks["mapped properties"].ok, "disqualified is still owned"
        assert "crmq_highest_stage" not in checks["mapped properties"].detail

        settings.fields["disqualified"] = FieldPolicy(owned=False)
        given_up = _adapter(older, owned_only(load_mapping("hubspot"), settings.fields))
        assert all(c.ok for c in given_up.check())
        run = SyncEngine(given_up, settings, store).run(RunOptions())
        assert run.status == "ok", run.errors
        assert all(p.get("crmq_score") for p in props(older).values())

        created = {c.name: c.detail for c in adapter.setup()}
        assert {n for n, d in created.items() if d == "created"} == {
            f"contacts.{name}" for name in NEW
        }
        assert all(c.ok for c in adapter.check())
        definition = older.store.definitions["contacts"]["crmq_customer_type"]
        assert definition["type"] == "enumeration"
        assert [o["value"] for o in definition["options"]] == ["one_time", "recurring", "mixed"]


def test_a_field_owned_from_now_on_is_read_before_it_is_written(sim, store):
    """The mirror holds no CRM value of a field the adapter did not read. Once the mapping or
    the owned fields change, the next run (its dry run too) reads every record again, so a
    newly owned field's values in HubSpot count: here `if_empty` keeps one a person set."""
    person_set = sorted(sim.store.objects["contacts"])[5]
    sim.touch(person_set, {"crmq_duplicate": "true"})
    before = Settings(crm=CrmSettings(adapter="hubspot"))
    assert not before.fields["duplicate"].owned
    mapping = load_mapping("hubspot")
    reads_without = make_adapter(sim, owned_only(mapping, before.fields))
    assert SyncEngine(reads_without, before, store).run(RunOptions()).status == "ok"
    assert SyncEngine(reads_without, before, store).run(RunOptions()).counts["read"] == 0

    fields = {**before.fields, "duplicate": FieldPolicy(owned=True, policy="if_empty")}
    after = Settings(crm=CrmSettings(adapter="hubspot"), fields=fields)
    reads_with = make_adapter(sim, owned_only(mapping, after.fields))
    engine = SyncEngine(reads_with, after, store)
    planned: set[tuple[str, str]] = set()
    engine.on_batch = lambda report: planned.update(
        (update.contact_id, change.field) for update in report.updates for change in update.changes
    )
    dry = engine.run(RunOptions(dry_run=True))
    assert dry.status == "ok" and dry.counts["read"] == 400
    assert (person_set, "duplicate") not in planned
    assert len({cid for cid, name in planned if name == "duplicate"}) == 399

    engine.on_batch = None
    run = engine.run(RunOptions())
    assert run.status == "ok" and run.counts["read"] == 400, run.errors
    flags = {i: p.get("crmq_duplicate") for i, p in props(sim).items()}
    assert flags.pop(person_set) == "true", "a value the mirror never read is not overwritten"
    assert set(flags.values()) == {"false"}
    again = engine.run(RunOptions())
    assert again.counts["read"] == 0 and again.counts["fields_written"] == 0


def test_setup_creates_only_the_properties_of_fields_owned():
    """The duplicate flag and group are not owned by default: setup created them anyway."""
    with HubSpotSimulator(contacts=5, seed=2, **FAST) as sim:
        adapter = _adapter(sim, owned_only(load_mapping("hubspot"), Settings().fields))
        created = {c.name for c in adapter.setup() if c.detail == "created"}
        assert "contacts.crmq_score" in created and "tasks.crmq_task_key" in created
        assert not created & {"contacts.crmq_duplicate", "contacts.crmq_duplicate_group"}
        assert all(c.ok for c in adapter.check())
