"""The HubSpot adapter end to end against the simulator, over a real socket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.reader import Cursor
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.values import now_ms
from crm_qualify.connector.contract import AuthError
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.model import FieldUpdate, PlannedTask, RecordUpdate
from crm_qualify.connector.sync.engine import CONTACTS_STREAM, RunOptions, SyncEngine

from tests.hubspot.conftest import make_adapter, translate_all


def contact_props(sim, contact_id: str) -> dict:
    return sim.store.objects["contacts"][contact_id]["properties"]


def writes(sim) -> int:
    return sum(
        count
        for key, count in sim.stats.by_endpoint.items()
        if "batch/update" in key or "batch/create" in key
    )


def test_first_run_writes_scores_stages_and_tasks_and_a_rerun_writes_nothing(
    sim, adapter, store, settings
):
    engine = SyncEngine(adapter, settings, store)
    first = engine.run(RunOptions())
    assert first.status == "ok", first.errors
    assert first.counts["read"] == 400
    scored = [
        p
        for p in (contact_props(sim, i) for i in sim.store.objects["contacts"])
        if p.get("crmq_score")
    ]
    assert len(scored) == 400
    assert all(p["crmq_rules_version"] for p in scored)
    assert any("demo request" in (p.get("crmq_reasons") or "") for p in scored)
    tasks = list(sim.store.objects["tasks"].values())
    ours = [t for t in tasks if t["properties"].get("crmq_task_key")]
    assert len(ours) == first.counts["tasks_created"] > 0
    assert store.get_cursor("default", CONTACTS_STREAM) is not None

    before = writes(sim)
    now = datetime.now(UTC)
    # Decayed points move as an event turns a day older: with 400 people, one of their events
    # may do so in the seconds between the runs, and only such a person is decided again.
    due = [m for chunk in store.mirror.chunks("default", read_before=now, exclude=set(),
                                               due_by=now) for m in chunk]  # fmt: skip
    second = engine.run(RunOptions(now=now))

    assert second.status == "ok", second.errors
    assert second.counts["read"] == 0, "search finds our own writes; their stamps are known"
    assert second.counts["redecided"] == len(due), "only a decision the clock moved is redone"
    if not due:
        assert second.counts["fields_written"] == 0
        assert writes(sim) == before
    assert second.counts["tasks_created"] == 0


def test_dry_run_sends_no_write(sim, adapter, store, settings):
    summary = SyncEngine(adapter, settings, store).run(RunOptions(dry_run=True))
    assert summary.counts["fields_planned"] > 0
    assert sim.stats.writes == 0
    assert writes(sim) == 0


def test_throttling_is_retried_and_counted(sim, adapter, store, settings):
    sim.faults.add("429", times=2, path_contains="/batch/update")
    sim.faults.add("503", times=1, path_contains="/batch/read")
    summary = SyncEngine(adapter, settings, store).run(RunOptions())
    assert summary.status == "ok", summary.errors
    assert adapter.usage().throttled == 2
    assert all(contact_props(sim, i).get("crmq_score") for i in sim.store.objects["contacts"])


def test_a_record_failing_in_a_batch_is_reported_the_rest_written(sim, adapter):
    ids = sorted(sim.store.objects["contacts"])[:5]
    sim.faults.add("207", ids=[ids[2]])
    updates = [
        RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=42)]) for i in ids
    ]
    results = adapter.write_updates(updates)
    assert [r.contact_id for r in results] == ids
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert results[2].error == f"INVALID_VALUE: Simulated validation failure for {ids[2]}"
    assert contact_props(sim, ids[0])["crmq_score"] == "42"


def test_an_invalid_value_fails_only_its_own_record(sim, adapter):
    ids = sorted(sim.store.objects["contacts"])[:6]
    updates = [
        RecordUpdate(contact_id=i, changes=[FieldUpdate(field="temperature", new="hot")])
        for i in ids
    ]
    updates[3] = RecordUpdate(
        contact_id=ids[3], changes=[FieldUpdate(field="temperature", new="lukewarm")]
    )
    results = adapter.write_updates(updates)
    assert [r.ok for r in results] == [True, True, True, False, True, True]
    assert results[3].field == "crmq_temperature"
    assert results[3].error.startswith("INVALID_OPTION: lukewarm was not one of the allowed")
    assert contact_props(sim, ids[5])["crmq_temperature"] == "hot"


def test_a_stage_set_further_along_by_a_person_is_kept(sim, adapter, store, settings):
    contact_id = sorted(sim.store.objects["contacts"])[0]
    sim.touch(contact_id, {"lifecyclestage": "customer"})
    SyncEngine(adapter, settings, store).run(RunOptions())
    assert contact_props(sim, contact_id)["lifecyclestage"] == "customer"


def test_more_contacts_at_one_instant_than_a_page_are_each_read_once(sim, adapter):
    ids = sorted(sim.store.objects["contacts"])
    instant = now_ms() - 60_000
    with sim.store.lock:
        for contact_id in ids[:450]:
            sim.store.update("contacts", contact_id, {"jobtitle": "Imported"}, instant, human=True)
    seen = []
    since = Cursor(since=instant - 3_600_000)
    for chunk, _ in adapter.reader.changed(since, datetime.now(UTC)):
        seen += chunk
    assert len(seen) == len(set(seen)), "no contact is read twice"
    assert set(ids[:450]) <= set(seen)


def test_our_writes_during_a_read_hide_no_record(sim, adapter):
    """Writes move records past `until` while we page: keyset paging must not skip any."""
    since = Cursor(since=0)
    seen = []
    for chunk, _ in adapter.reader.changed(since, datetime.now(UTC)):
        seen += chunk
        adapter.write_updates(
            [RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=1)]) for i in chunk]
        )
    assert sorted(seen) == sorted(sim.store.objects["contacts"])


def test_tasks_are_created_once_and_found_by_key(sim, adapter):
    contact_id = sorted(sim.store.objects["contacts"])[0]
    task = PlannedTask(
        key=f"crmq:contacts:{contact_id}:hot_call:2026-W48",
        contact_id=contact_id,
        object_type="contacts",
        kind="hot_call",
        subject="Call",
        owner_id=None,
        due=datetime.now(UTC) + timedelta(hours=24),
        priority="high",
        task_type="call",
    )
    (created,) = adapter.create_tasks([task])
    assert created.ok and created.crm_id
    record = sim.store.objects["tasks"][created.crm_id]["properties"]
    assert record["crmq_task_key"] == task.key
    assert record["hs_task_priority"] == "HIGH"
    assert sim.store.association_types("tasks", created.crm_id, "contacts")
    assert adapter.find_tasks([task.key, "crmq:none"]) == {task.key: created.crm_id}
    (closed,) = adapter.close_tasks([created.crm_id])
    assert closed.ok


def test_a_bad_record_is_reported_by_field_and_the_rest_read(sim, adapter):
    ids = sorted(sim.store.objects["contacts"])[:3]
    contact_props(sim, ids[1])["hs_email_last_open_date"] = "last tuesday"
    contact_props(sim, ids[1])["hs_email_open"] = "3"
    contacts, errors = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
    assert [c.id for c in contacts] == [ids[0], ids[2]]
    (error,) = errors
    assert error.record == f"contacts/{ids[1]}"
    assert error.field == "hs_email_last_open_date"


def test_deals_make_opportunities_and_customers(sim, adapter):
    ids = sorted(sim.store.objects["contacts"])
    contacts, _ = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
    statuses = {deal.status for c in contacts for deal in c.deals}
    assert {"open", "won"} <= statuses


def test_a_wrong_token_is_an_auth_error_that_does_not_echo_it(sim):
    settings = HubSpotSettings(access_token="pat-canary-secret-123", base_url=sim.base_url)
    wrong = HubSpotAdapter.from_config(settings, load_mapping("hubspot"))
    with pytest.raises(AuthError) as caught:
        list(wrong.read_changed(None, until=datetime.now(UTC)))
    assert "pat-canary-secret-123" not in str(caught.value)
    assert caught.value.setting == "adapters.hubspot.access_token"
    assert "pat-canary-secret-123" not in repr(settings)
    checks = wrong.check()
    assert not checks[0].ok and "canary" not in checks[0].detail


def test_check_names_missing_properties_and_setup_creates_them():
    with HubSpotSimulator(contacts=20, seed=1) as bare:
        adapter = make_adapter(bare)
        missing = {c.name: c for c in adapter.check()}["mapped properties"]
        assert not missing.ok and "crmq_score" in missing.detail
        created = adapter.setup()
        assert all(c.ok for c in created)
        assert {c.name: c for c in adapter.check()}["mapped properties"].ok
        assert all(c.detail == "exists" for c in adapter.setup()), "setup is idempotent"


def test_setup_takes_a_create_whose_answer_was_lost_for_done():
    """The group's and the first property's creates are served but their answers lost: the
    client sends them again, HubSpot answers 409 OBJECT_ALREADY_EXISTS, and setup reports
    both made instead of failing (the CLI against a faulty simulator found it)."""
    with HubSpotSimulator(contacts=5, seed=1) as bare:
        adapter = make_adapter(bare)
        for request in ("properties", "property_groups"):  # the listings go through
            bare.faults.add("slow", request=request, delay=0.01)
            bare.faults.add("lost", request=request)
        created = adapter.setup()
        assert bare.faults.pending() == 0
        assert all(c.ok for c in created), [c for c in created if not c.ok]
        assert {c.name: c for c in adapter.check()}["mapped properties"].ok


def test_owned_values_keep_hubspot_text_so_a_rollback_restores_them_exactly(sim, adapter):
    ids = sorted(sim.store.objects["contacts"])[:5]
    written = [17, 17.0, 17.25, "17.0", "0017"]
    adapter.write_updates(
        [
            RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=value)])
            for i, value in zip(ids, written, strict=True)
        ]
    )
    stored = [contact_props(sim, i)["crmq_score"] for i in ids]
    assert stored == ["17", "17", "17.25", "17.0", "0017"]
    contact_props(sim, ids[0])["crmq_scored_at"] = "2025-01-01T00:00:00Z"
    contacts, _ = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
    owned = {c.id: c.owned for c in contacts}
    assert [owned[i]["score"] for i in ids] == stored, "read back as HubSpot's own text"
    assert owned[ids[0]]["scored_at"] == "2025-01-01T00:00:00Z"
    adapter.write_updates(
        [
            RecordUpdate(contact_id=i, changes=[FieldUpdate(field="score", new=owned[i]["score"])])
            for i in ids
        ]
    )
    assert [contact_props(sim, i)["crmq_score"] for i in ids] == stored


def test_task_keys_are_found_in_chunks_and_listed_for_a_new_ledger(sim, adapter):
    contact_id = sorted(sim.store.objects["contacts"])[0]
    due = datetime.now(UTC) + timedelta(days=1)
    tasks = [
        PlannedTask(
            key=f"crmq:contacts:{contact_id}:hot_call:2026-W{n:03d}-with-a-long-suffix",
            contact_id=contact_id,
            kind="hot_call",
            subject="Call",
            due=due,
        )
        for n in range(150)
    ]
    created = {t.key: r.crm_id for t, r in zip(tasks, adapter.create_tasks(tasks), strict=True)}
    assert all(created.values())
    # 150 long keys in one IN filter would pass HubSpot's 3,000-character search body limit,
    # which the simulator enforces with a 400: the look-up is chunked to fit
    assert adapter.find_tasks([t.key for t in tasks] + ["crmq:none"]) == created
    listed = dict(adapter.existing_task_keys())
    assert {k: listed[k] for k in created} == created
    ours = {
        t["properties"]["crmq_task_key"]: tid
        for tid, t in sim.store.objects["tasks"].items()
        if t["properties"].get("crmq_task_key") and not t["archived"]
    }
    assert listed == ours


def test_doctor_checks_the_task_key_property(sim, adapter):
    checks = {c.name: c for c in adapter.check()}
    assert checks["task key property"].ok
    del sim.store.definitions["tasks"]["crmq_task_key"]
    checks = {c.name: c for c in adapter.check()}
    assert not checks["task key property"].ok
    assert "crm-qualify setup" in checks["task key property"].detail


def test_doctor_names_a_missing_read_property_and_a_task_key_of_the_wrong_type(sim, adapter):
    """A property the mapping reads is the portal's to create (no `setup` fix offered); a
    task key property that is not text cannot be searched by key."""
    del sim.store.definitions["contacts"]["jobtitle"]
    sim.store.definitions["tasks"]["crmq_task_key"]["type"] = "number"
    checks = {c.name: c for c in adapter.check()}
    mapped = checks["mapped properties"]
    assert not mapped.ok and mapped.detail == "missing: jobtitle"
    key = checks["task key property"]
    assert not key.ok and key.detail == "tasks.crmq_task_key is number, expected string"


def test_doctor_stops_at_a_refused_token(sim):
    settings = HubSpotSettings(access_token="pat-not-this-portal", base_url=sim.base_url)
    checks = HubSpotAdapter(settings, load_mapping("hubspot"), HubSpotClient(settings)).check()
    assert [(c.name, c.ok) for c in checks] == [("credentials", False)]
    (refused,) = checks
    assert refused.fix == "check adapters.hubspot.access_token"
    assert "pat-not-this-portal" not in f"{refused.detail} {refused.fix}"


def test_outcomes_are_the_closed_deals_with_their_contacts(sim, adapter):
    stages = {
        stage["id"]: stage["metadata"]
        for pipeline in sim.store.pipelines
        for stage in pipeline["stages"]
    }
    closed = {
        deal_id: stages[deal["properties"]["dealstage"]]["probability"] == "1.0"
        for deal_id, deal in sim.store.objects["deals"].items()
        if stages[deal["properties"]["dealstage"]]["isClosed"] == "true"
    }
    outcomes = list(adapter.fetch_outcomes(datetime(2000, 1, 1, tzinfo=UTC)))
    assert {o.deal_id: o.won for o in outcomes} == closed and any(closed.values())
    assert all(
        set(o.contact_ids) == set(sim.store.associations("deals", o.deal_id, "contacts"))
        for o in outcomes
    )
