"""A contact's form submissions stay its own when its email changes or it is merged.

HubSpot lists submissions per form with the email the visitor typed, not the contact: a
contact's are those under its email or one of its additional emails (`hs_additional_emails`,
where a merge keeps the merged record's), and its own conversion properties (first and recent
conversion) prove the ones no longer under any of them. Through the engine over a real socket
against the simulator, as the user test drove it (`submit_form`, an email edit, a merge).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.values import DAY_MS, now_ms
from crm_qualify.connector.model import EventType
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.hubspot.conftest import FAST, make_adapter, translate_all


@pytest.fixture(scope="module")
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=60, seed=12, custom_properties=True, **FAST) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def engine(sim: HubSpotSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = StateStore(tmp_path_factory.mktemp("forms") / "state.sqlite")
    engine = SyncEngine(make_adapter(sim), Settings(crm=CrmSettings(adapter="hubspot")), store)
    assert engine.run(RunOptions()).status == "ok"
    yield engine
    store.close()


def run(engine: Any) -> None:
    summary = engine.run(RunOptions(now=datetime.now(UTC) + timedelta(milliseconds=5)))
    assert summary.status == "ok", summary.errors


def new_contact(sim: HubSpotSimulator, **props: str) -> str:
    base = {"lifecyclestage": "lead", "hs_analytics_source": "ORGANIC_SEARCH"}
    with sim.store.lock:
        return sim.store.create("contacts", base | props, now_ms())["id"]


def props(sim: HubSpotSimulator, contact_id: str) -> dict[str, str]:
    return sim.store.objects["contacts"][contact_id]["properties"]


def hot_calls(sim: HubSpotSimulator, contact_id: str) -> list[dict[str, str]]:
    tasks = (
        sim.store.get("tasks", t) for t in sim.store.associations("contacts", contact_id, "tasks")
    )
    return [
        t["properties"]
        for t in tasks
        if t and ":hot_call:" in (t["properties"].get("crmq_task_key") or "")
    ]


def test_a_demo_requested_before_the_email_changed_keeps_its_contact_hot(sim, engine):
    contact = new_contact(sim, firstname="Priya", lastname="Raman", email="priya.raman@gmail.com")
    sim.submit_form("Request a demo", contact)
    with sim.store.lock:
        sim.store.update(
            "contacts", contact, {"email": "priya.raman@solvane.io"}, now_ms(), human=True
        )
    run(engine)
    written = props(sim, contact)
    assert written["recent_conversion_event_name"] == "Request a demo"
    assert written["crmq_temperature"] == "hot"
    assert written["crmq_score"] == "40"
    assert "+40 demo request" in written["crmq_reasons"]
    (call,) = hot_calls(sim, contact)
    assert call["hs_task_subject"].startswith("Call hot lead Priya Raman")


def test_a_merged_contact_keeps_the_demo_its_other_record_requested(sim, engine):
    work = new_contact(
        sim, firstname="Marcus", lastname="Chen", email="marcus.chen@quantix.io", company="Quantix"
    )
    home = new_contact(sim, firstname="Marcus", lastname="Chen", email="marcus.chen.home@yahoo.com")
    sim.submit_form("Request a demo", home)
    run(engine)
    assert props(sim, home)["crmq_temperature"] == "hot"
    assert len(hot_calls(sim, home)) == 1
    merged = sim.merge_contacts(work, home)
    assert props(sim, merged)["hs_additional_emails"] == "marcus.chen.home@yahoo.com"
    run(engine)
    written = props(sim, merged)
    assert (written["crmq_temperature"], written["crmq_score"]) == ("hot", "40"), "no free mail now"
    assert len(hot_calls(sim, merged)) == 1, "the call the merge moved is the episode's"


def test_submissions_under_an_additional_email_count_each_once(sim):
    """Two demo requests under the old address (one proved by the conversion properties too)
    and a download under the new one: three events, none twice, none lost."""
    contact = new_contact(sim, email="old.address@gmail.com")
    now = now_ms()
    sim.submit_form("Request a demo", contact, at=now - 2 * DAY_MS)
    sim.submit_form("Whitepaper: Security Guide", contact, at=now - DAY_MS)
    sim.submit_form("Request a demo", contact, at=now - 3_600_000)
    with sim.store.lock:
        sim.store.update(
            "contacts",
            contact,
            {"email": "new.address@corp.io", "hs_additional_emails": "Old.Address@gmail.com"},
            now_ms(),
            human=True,
        )
    adapter = make_adapter(sim)
    (read,), errors = translate_all(adapter.read_contacts([("contacts", contact)]))
    assert not errors
    kinds = sorted(e.type.value for e in read.events if e.detail)
    assert kinds == sorted(
        [EventType.DEMO_REQUEST.value, EventType.DEMO_REQUEST.value, "content_download"]
    )


def test_a_conversion_only_the_contacts_properties_show_is_counted_once(sim):
    """Submissions gone from every address the contact has: its first and recent conversion
    stand in for them, counted by the forms' rules; a submission still found is not counted
    again from the properties."""
    contact = new_contact(sim, email="first@gmail.com")
    now = now_ms()
    sim.submit_form("Whitepaper: Security Guide", contact, at=now - 3 * DAY_MS)
    sim.submit_form("Request a demo", contact, at=now - DAY_MS)
    with sim.store.lock:
        sim.store.update("contacts", contact, {"email": "second@corp.io"}, now_ms(), human=True)
    sim.submit_form("Request a demo", contact, at=now - 3_600_000)
    adapter = make_adapter(sim)
    (read,), errors = translate_all(adapter.read_contacts([("contacts", contact)]))
    assert not errors
    forms = sorted((e.type.value, e.at) for e in read.events if e.detail)
    assert forms == sorted(
        [
            ("content_download", datetime.fromtimestamp((now - 3 * DAY_MS) / 1000, UTC)),
            ("demo_request", datetime.fromtimestamp((now - 3_600_000) / 1000, UTC)),
        ]
    ), "the first conversion from the properties, the recent one found once"


def test_another_form_sent_within_the_minute_does_not_hide_a_conversion(sim):
    """A demo requested from the old address, the email changed, and a newsletter signup
    from the new one 30 s later: the demo (the first conversion) is no submission found, and
    counts; the newsletter is found once."""
    contact = new_contact(sim, email="old@gmail.com")
    now = now_ms()
    sim.submit_form("Request a demo", contact, at=now - 30_000)
    with sim.store.lock:
        sim.store.update("contacts", contact, {"email": "new@corp.io"}, now_ms(), human=True)
    sim.submit_form("Newsletter signup", contact, at=now)
    adapter = make_adapter(sim)
    (read,), errors = translate_all(adapter.read_contacts([("contacts", contact)]))
    assert not errors
    assert sorted(e.type.value for e in read.events if e.detail) == [
        "demo_request",
        "newsletter_signup",
    ]
