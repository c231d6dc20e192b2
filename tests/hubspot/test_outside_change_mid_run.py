"""A change by someone else between a run's read of a contact and its write to it, over a
real socket: the write bumps the contact's stamp again, so the next run's search hit carries
our write's stamp; the hit's properties (a form's conversion, a rep's edit, a stage or one of
our properties a rep set) still differ from the version the mirror holds after our write, so
the contact is read and decided, not taken as our own write."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.model import RecordUpdate
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import BatchReport, RunOptions, SyncEngine

from tests.hubspot.conftest import FAST, make_adapter

SETTINGS = Settings(crm=CrmSettings(adapter="hubspot"))


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=80, seed=3, custom_properties=True, **FAST) as simulator:
        yield simulator


def props(sim: HubSpotSimulator, contact: str) -> dict[str, str]:
    return sim.store.objects["contacts"][contact]["properties"]


def before_writing(adapter: HubSpotAdapter, contact: str, change: Callable[[], None]) -> list[str]:
    """`change` runs once, just before the run's first write to `contact` (which the run has
    read to plan it); returns a list that holds the contact once it did."""
    fired: list[str] = []
    write = adapter.write_updates

    def write_updates(updates: Sequence[RecordUpdate]):
        if not fired and any(u.contact_id == contact for u in updates):
            change()
            fired.append(contact)
        return write(updates)

    adapter.write_updates = write_updates  # type: ignore[method-assign]
    return fired


def reads(adapter: HubSpotAdapter) -> list[str]:
    """The contacts a run reads from the CRM, as it reads them."""
    seen: list[str] = []
    read_changed = adapter.read_changed

    def counted(*args, **kwargs):
        for batch in read_changed(*args, **kwargs):
            seen.extend(item.key[1] for item in batch.raw if item.key)
            yield batch

    adapter.read_changed = counted  # type: ignore[method-assign]
    return seen


def planned(sim: HubSpotSimulator, store, **options) -> dict[str, dict]:
    found: dict[str, dict] = {}

    def keep(report: BatchReport) -> None:
        found.update((u.contact_id, u.values()) for u in report.updates)
        for task in report.tasks:
            found.setdefault(task.contact_id, {})["task"] = task.key

    engine = SyncEngine(make_adapter(sim), SETTINGS, store, on_batch=keep)
    assert engine.run(RunOptions(dry_run=True, **options)).status == "ok"
    return found


def engaged(sim: HubSpotSimulator, contact: str) -> None:
    """New page views: the next run rescores the contact and writes it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    views = int(props(sim, contact).get("hs_analytics_num_page_views") or 0)
    sim.touch(
        contact,
        {"hs_analytics_num_page_views": str(views + 7), "hs_analytics_last_visit_timestamp": now},
    )


def cold_leads(sim: HubSpotSimulator) -> list[str]:
    return sorted(
        c
        for c, record in sim.store.objects["contacts"].items()
        if not record["archived"]
        and record["properties"].get("lifecyclestage") == "lead"
        and record["properties"].get("crmq_temperature") == "cold"
    )


def race(sim: HubSpotSimulator, store, change: Callable[[str], None]) -> str:
    """A first sync, then a run that reads an engaged cold lead and writes it, with `change`
    made to that lead after the run read it and before it wrote it; returns the lead."""
    assert SyncEngine(make_adapter(sim), SETTINGS, store).run(RunOptions()).status == "ok"
    target = cold_leads(sim)[0]
    engaged(sim, target)
    racing = make_adapter(sim)
    fired = before_writing(racing, target, lambda: change(target))
    assert SyncEngine(racing, SETTINGS, store).run(RunOptions()).status == "ok"
    assert fired == [target], "the run wrote the lead after the change"
    return target


def test_a_form_submitted_between_our_read_and_our_write_is_read_next_run(sim, store):
    target = race(sim, store, lambda lead: sim.submit_form("Demo request", lead))
    assert props(sim, target)["recent_conversion_event_name"] == "Demo request"
    assert props(sim, target)["crmq_temperature"] == "cold", "the racing run did not see it"

    adapter = make_adapter(sim)
    read = reads(adapter)
    assert SyncEngine(adapter, SETTINGS, store).run(RunOptions()).status == "ok"

    assert target in read, "the form's contact is read, not taken as our own write"
    assert props(sim, target)["crmq_temperature"] == "hot", "a demo request makes it hot"
    assert planned(sim, store, full=True).get(target) is None, "a full read finds nothing left"


def test_a_reps_edit_between_our_read_and_our_write_is_read_next_run(sim, store):
    target = race(sim, store, lambda lead: sim.touch(lead, {"jobtitle": "Chief Buyer"}))

    adapter = make_adapter(sim)
    read = reads(adapter)
    assert SyncEngine(adapter, SETTINGS, store).run(RunOptions()).status == "ok"

    assert target in read
    mirrored = store.mirror.by_keys("default", [("contacts", target)])
    assert mirrored[("contacts", target)].contact.title == "Chief Buyer"


def test_our_own_write_alone_is_not_read_again(sim, store):
    assert SyncEngine(make_adapter(sim), SETTINGS, store).run(RunOptions()).status == "ok"
    leads = cold_leads(sim)[:5]
    for lead in leads:
        engaged(sim, lead)
    writing = make_adapter(sim)
    written = before_writing(writing, leads[0], lambda: None)
    assert SyncEngine(writing, SETTINGS, store).run(RunOptions()).status == "ok"
    assert written, "the run wrote the engaged leads"

    adapter = make_adapter(sim)
    read = reads(adapter)
    assert SyncEngine(adapter, SETTINGS, store).run(RunOptions()).status == "ok"

    assert read == [], "a hit stamped by our write with the fields as read is ours"


def test_a_reps_stage_edit_between_our_read_and_our_write_is_read_next_run(sim, store):
    """A rep moves the lifecycle stage on while the run writes the score: our write's stamp
    covers the edit and the fields we never write are as read, but the stage the hit
    carries is not the one the mirror holds after our write, so the contact is read."""
    moved_on = {"lifecyclestage": "salesqualifiedlead"}
    target = race(sim, store, lambda lead: sim.touch(lead, moved_on))

    adapter = make_adapter(sim)
    read = reads(adapter)
    assert SyncEngine(adapter, SETTINGS, store).run(RunOptions()).status == "ok"

    assert target in read, "the rep's stage is read, not taken as our own write"
    mirrored = store.mirror.by_keys("default", [("contacts", target)])[("contacts", target)]
    assert mirrored.contact.owned["stage"] == "sql"
    assert props(sim, target)["lifecyclestage"] == "salesqualifiedlead", "never moved back"
    assert planned(sim, store, full=True).get(target) is None, "a full read finds nothing left"


def test_a_reps_edit_of_our_property_under_unless_edited_is_kept(sim, store):
    """A rep sets our temperature by hand while the run writes the score: the next run
    reads the rep's value, and `unless_edited` keeps it from then on."""
    settings = Settings.model_validate(
        {"crm": {"adapter": "hubspot"}, "fields": {"temperature": {"policy": "unless_edited"}}}
    )
    target = race(sim, store, lambda lead: sim.touch(lead, {"crmq_temperature": "hot"}))

    adapter = make_adapter(sim)
    read = reads(adapter)
    assert SyncEngine(adapter, settings, store).run(RunOptions()).status == "ok"

    assert target in read
    mirrored = store.mirror.by_keys("default", [("contacts", target)])[("contacts", target)]
    assert mirrored.contact.owned["temperature"] == "hot"
    engaged(sim, target)  # a new decision for the contact
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    assert props(sim, target)["crmq_temperature"] == "hot", "the rep's value stays"
